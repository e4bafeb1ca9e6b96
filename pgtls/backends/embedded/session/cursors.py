"""SQL-level cursors: DECLARE / FETCH / MOVE / CLOSE (DuckDB has none of its own).

A declared cursor runs its query at once and reads the result lazily from the
session's DuckDB connection.  DuckDB keeps only one pending result per
connection, so before the connection runs anything else the live cursor's
remaining rows are read into memory (:meth:`SqlCursors.detach`).  Cursors are
forward-only (PostgreSQL's NO SCROLL); a cursor is dropped at the end of its
transaction unless declared WITH HOLD, in which case it is read to the end at
COMMIT, as PostgreSQL materializes holdable cursors.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from pgtls.backends.embedded.engine import errormap as sqlerrors
from pgtls.backends.embedded.engine.execute import Result, Row, _none
from pgtls.backends.embedded.session.context import SessionContext
from pgtls.backends.embedded.sql.lexer import Token, tokens, unquote_ident
from pgtls.errors import PgError

ALL = 1 << 62


@dataclass
class Cursor:
    name: str
    result: Result
    hold: bool
    declared_in_tx: bool


def _pull(res: Result, n: int) -> list[Row]:
    out: list[Row] = []
    while len(out) < n:
        if res.buffered:
            take = res.buffered[: n - len(out)]
            res.buffered = res.buffered[len(take) :]
            out += take
            continue
        rows = res.fetch(min(n - len(out), 10000))
        if not rows:
            res.done = True
            break
        out += rows
    return out


class SqlCursors:
    def __init__(self, session: SessionContext) -> None:
        self.s = session
        self.cursors: dict[str, Cursor] = {}
        self.live: Cursor | None = None  # the cursor whose result is pending on the connection

    def get(self, name: str) -> Cursor | None:
        return self.cursors.get(name)

    def detach(self, keep: Cursor | None = None) -> None:
        c = self.live
        if c is None or c is keep:
            return
        self.live = None
        res = c.result
        if res.done:
            return
        try:
            res.buffered = res.buffered + [tuple(r) for r in res.fetch(ALL)]
        except duckdb.Error as e:
            raise sqlerrors.translate(e) from None
        res.fetch = _none

    def names(self) -> frozenset[str]:
        """The open cursors' names (a savepoint remembers them)."""
        return frozenset(self.cursors)

    def keep(self, names: frozenset[str]) -> None:
        """Close every cursor but those named (ROLLBACK TO SAVEPOINT)."""
        self.cursors = {k: c for k, c in self.cursors.items() if k in names}

    def end_transaction(self, commit: bool) -> None:
        """Called before COMMIT/ROLLBACK reaches DuckDB: WITH HOLD cursors survive a commit, read to the end."""
        live = self.live
        if live is not None and commit and live.hold:
            self.detach()
        self.live = None
        self.cursors = {k: c for k, c in self.cursors.items() if c.hold and (commit or not c.declared_in_tx)}
        for c in self.cursors.values():
            c.declared_in_tx = False

    def command(self, first: str, sql: str) -> Result:
        toks = tokens(sql)
        w = [t.text.upper() if t.kind == "word" else t.text for t in toks]
        if first == "DECLARE":
            return self.declare(sql, toks, w)
        if first == "CLOSE":
            if w[1] == "ALL":
                self.detach()
                self.cursors.clear()
            else:
                name = unquote_ident(toks[1].text)
                c = self.cursors.pop(name, None)
                if c is None:
                    raise PgError("34000", f'cursor "{name}" does not exist')
                if self.live is c:
                    self.live = None
                    self.s.detach_stream()
            return Result(None, _none, lambda n: "CLOSE CURSOR")
        return self.fetch(first, toks, w)

    def declare(self, sql: str, toks: list[Token], w: list[str]) -> Result:
        name = unquote_ident(toks[1].text)
        if "FOR" not in w:
            raise PgError("42601", "syntax error at end of input")
        k = w.index("FOR")
        options = w[2:k]
        hold = "WITH" in options and "HOLD" in options and "WITHOUT" not in options
        if "SCROLL" in options and "NO" not in options:
            raise PgError("0A000", "scrollable cursors are not supported by the embedded backend")
        if self.s.tx == "I" and not self.s.implicit and not hold:
            raise PgError("25P01", "DECLARE CURSOR can only be used in transaction blocks")
        if name in self.cursors:
            raise PgError("42P03", f'cursor "{name}" already exists')
        query = sql[toks[k].end :]
        self.detach()
        res = self.s.execute(query)
        if res.columns is None:
            raise PgError("42P11", "cannot open a non-SELECT query as a cursor")
        c = Cursor(name, res, hold, self.s.tx != "I" or self.s.implicit)
        self.cursors[name] = c
        self.live = c
        self.s.streaming = None  # the cursor, not a portal, owns the pending result now
        return Result(None, _none, lambda n: "DECLARE CURSOR")

    def fetch(self, first: str, toks: list[Token], w: list[str]) -> Result:
        i = 1
        count = 1
        if i < len(w) and w[i] in ("NEXT", "FORWARD"):
            i += 1
            if w[i - 1] == "FORWARD" and i < len(w) and (w[i] == "ALL" or toks[i].kind == "number"):
                count = ALL if w[i] == "ALL" else int(w[i])
                i += 1
        elif i < len(w) and w[i] == "ALL":
            count = ALL
            i += 1
        elif i < len(w) and toks[i].kind == "number":
            count = int(w[i])
            i += 1
        elif i < len(w) and w[i] in ("PRIOR", "FIRST", "LAST", "ABSOLUTE", "RELATIVE", "BACKWARD"):
            raise PgError("55000", "cursor can only scan forward",
                          hint="Declare it with SCROLL option to enable backward scan.")  # fmt: skip
        if i < len(w) and w[i] in ("FROM", "IN"):
            i += 1
        if i >= len(toks):
            raise PgError("42601", "syntax error at end of input")
        name = unquote_ident(toks[i].text)
        c = self.cursors.get(name)
        if c is None:
            raise PgError("34000", f'cursor "{name}" does not exist')
        self.detach(keep=c)
        self.s.detach_stream()
        res = c.result
        if first == "MOVE":
            moved = len(_pull(res, count))
            return Result(None, _none, lambda n: f"MOVE {moved}")
        remaining = [count]

        def limited(n: int) -> list[Row]:
            take = min(n, remaining[0])
            if take <= 0:
                return []
            rows = _pull(res, take)
            remaining[0] -= len(rows)
            return rows

        return Result(res.columns, limited, lambda n: f"FETCH {n}")


def fetch_target(sql: str) -> str | None:
    """The cursor name a FETCH/MOVE statement reads from."""
    toks = tokens(sql)
    names = [t for t in toks[1:] if t.kind in ("word", "ident")]
    if not names:
        return None
    last = names[-1]
    return unquote_ident(last.text)
