"""The extended query protocol: Parse, Bind, Describe, Execute, Sync, Flush, Close.

Follows PostgreSQL's postgres.c: after an error every message up to Sync is
ignored; messages between Syncs run in one implicit transaction unless the
client opened a block; the unnamed statement and portal are replaced by the
next Parse/Bind; Execute with a row limit stops with PortalSuspended and the
portal resumes where it stopped.  Parameters are bound by substituting typed
literals (params.py), so a portal is simply the statement text with values.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

import duckdb

from pgtls.backends.embedded.engine import errormap as sqlerrors
from pgtls.backends.embedded.engine.execute import EXPLAIN_COLUMNS, describe_only, statement_type
from pgtls.backends.embedded.features import advisory, notify
from pgtls.backends.embedded.jsonb import operators as jsonb
from pgtls.backends.embedded.pgtypes import params
from pgtls.backends.embedded.pgtypes import typemap as T
from pgtls.backends.embedded.rewrite.pipeline import rewrite
from pgtls.backends.embedded.session.context import SessionContext
from pgtls.backends.embedded.session.cursors import fetch_target
from pgtls.backends.embedded.session.prepared import Portal, Prepared
from pgtls.backends.embedded.sql.commands import parse_show
from pgtls.backends.embedded.sql.lexer import Token, substitute_params, tokens, words
from pgtls.backends.embedded.sql.reader import split_statements
from pgtls.errors import PgError
from pgtls.protocol import messages as m

if TYPE_CHECKING:
    from pgtls.backends.embedded.session.output import Output

MAX_PARAMS = 65535  # the protocol's Int16 parameter count


def resolve_formats(codes: list[int], n: int) -> list[int]:
    if not codes:
        return [0] * n
    if len(codes) == 1:
        return codes * n
    if len(codes) != n:
        raise PgError("08P01", f"bind message has {len(codes)} result formats but query has {n} columns")
    return codes


def _returning_probe(sql: str) -> str | None:
    """``SELECT <returning list> FROM <target> LIMIT 0`` for INSERT/UPDATE/DELETE ... RETURNING."""
    toks = tokens(sql)
    up = [t.text.upper() if t.kind == "word" else t.text for t in toks]
    if "RETURNING" not in up:
        return None
    target: Token | None = None
    for key in ("INTO", "UPDATE", "FROM"):
        if key in up:
            target = toks[up.index(key) + 1]
            break
    if target is None:
        return None
    j = up.index(key) + 1
    end = toks[j].end
    while j + 2 < len(toks) and toks[j + 1].text == ".":
        j += 2
        end = toks[j].end
    ret = toks[up.index("RETURNING")]
    return f"SELECT {sql[ret.end :]} FROM {sql[target.start : end]} LIMIT 0"


class Extended:
    def __init__(self, session: SessionContext) -> None:
        self.s = session
        self.statements: dict[str, Prepared] = {}
        self.portals: dict[str, Portal] = {}
        self.skipping = False

    def discard_all(self) -> None:
        self.statements.clear()
        self.portals.clear()

    def message(self, kind: bytes, body: bytes, out: Output) -> str | None:
        if self.s.copy.active and kind in (b"S", b"H"):
            # postgres.c's CopyGetData: Flush and Sync during COPY FROM STDIN are ignored "for the convenience
            # of client libraries that may send those without noticing that the command was COPY" (pg8000
            # sends Execute, Sync, CopyData..., CopyDone, Sync: only the last Sync gets ReadyForQuery).
            return None
        if kind == b"S":
            return self.sync(out)
        if kind == b"H":
            return None
        if self.skipping:
            return None
        try:
            r = m.Reader(body)
            if kind == b"P":
                self.parse(r, out)
            elif kind == b"B":
                self.bind(r, out)
            elif kind == b"D":
                self.describe(r, out)
            elif kind == b"E":
                self.execute(r, out)
            elif kind == b"C":
                self.close(r, out)
        except PgError as e:
            if e.severity == "FATAL":
                raise
            self.s.fail(e, out)
            self.skipping = True
        except Exception as e:  # see EmbeddedSession.continue_query
            self.s.fail(sqlerrors.internal_error(e), out)
            self.skipping = True
        return None

    def sync(self, out: Output) -> str:
        self.skipping = False
        try:
            self.s.end_implicit(commit=True)
        except PgError as e:
            self.s.fail(e, out)
        if self.s.tx == "I":  # portals live until the end of their transaction
            self.portals.clear()
            self.s.streaming = None
        return self.s.ready(out)

    # --- Parse --------------------------------------------------------------------------------
    def parse(self, r: m.Reader, out: Output) -> None:
        name = r.cstring()
        sql = r.cstring()
        n = r.int16()
        if n < 0:
            raise m.ProtocolError("invalid parameter count")
        oids = [r.int32() & 0xFFFFFFFF for _ in range(n)]
        r.expect_end()
        if name and name in self.statements:
            raise PgError("42P05", f'prepared statement "{name}" already exists')
        stmts = split_statements(sql)
        if len(stmts) > 1:
            raise PgError("42601", "cannot insert multiple commands into a prepared statement")
        w = words(sql, 4)
        if self.s.tx == "E" and (w[:1] or [""])[0] not in ("COMMIT", "END", "ROLLBACK", "ABORT"):
            raise sqlerrors.aborted_transaction()
        duck_type = None
        self.s.detach_stream()
        self.s.cursors.detach()
        try:
            if w and w[0] in ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "VALUES"):
                duck_type = statement_type(
                    jsonb.with_operators(self.s.cur, rewrite(sql))
                )  # syntax errors: Parse's
            oids = params.infer_types(self.s.cur, sql, oids)
        except duckdb.Error as e:
            raise sqlerrors.translate(e, sql) from None
        if len(oids) > MAX_PARAMS:
            raise PgError("54000", "too many parameters")
        self.statements[name] = Prepared(sql, oids, w, duck_type)
        out.add(m.parse_complete())

    # --- Bind ---------------------------------------------------------------------------------
    def bind(self, r: m.Reader, out: Output) -> None:
        portal_name = r.cstring()
        stmt_name = r.cstring()
        nfmt = r.int16()
        fmts = [r.int16() for _ in range(nfmt)]
        nparams = r.int16()
        raw: list[bytes | None] = []
        for _ in range(nparams):
            ln = r.int32()
            raw.append(None if ln == -1 else r.take(ln))
        nres = r.int16()
        res_fmts = [r.int16() for _ in range(nres)]
        r.expect_end()
        stmt = self.statements.get(stmt_name)
        if stmt is None:
            raise PgError("26000", f'prepared statement "{stmt_name}" does not exist')
        if nparams != len(stmt.param_oids):
            raise PgError(
                "08P01",
                f'bind message supplies {nparams} parameters, but prepared statement "{stmt_name}" '
                f"requires {len(stmt.param_oids)}",
            )
        if portal_name and portal_name in self.portals:
            raise PgError("42P03", f'cursor "{portal_name}" already exists')
        if any(f not in (0, 1) for f in fmts + res_fmts):
            raise PgError("08P01", "unsupported format code")
        pfmts = resolve_formats(fmts, nparams)
        rendered: list[str] = []
        for value, fmt, oid in zip(raw, pfmts, stmt.param_oids, strict=True):
            t = T.BY_OID.get(oid)
            if value is None:
                rendered.append(params.literal(None, t))
                continue
            try:
                v = params.decode_binary(oid, value) if fmt == 1 else value.decode()
            except (UnicodeDecodeError, ValueError, IndexError, struct.error) as e:
                raise PgError("22P03", f"incorrect binary data format in bind parameter: {e}") from None
            rendered.append(params.literal(v, t))
        sql = substitute_params(stmt.sql, lambda k: rendered[k - 1] if 0 < k <= len(rendered) else "NULL")
        self.portals[portal_name] = Portal(stmt, sql, res_fmts)
        out.add(m.bind_complete())

    # --- Describe -----------------------------------------------------------------------------
    def _columns(self, sql: str, first: str) -> list[T.Column] | None:
        if first == "EXPLAIN":
            return list(EXPLAIN_COLUMNS)
        if first == "SHOW":  # answered by the session: one text column (three for SHOW ALL)
            name = parse_show(sql)
            if name.lower() == "all":
                return [T.Column(n, T.TEXT, -1, "VARCHAR") for n in ("name", "setting", "description")]
            if not self.s.gucs.known(name):
                return None
            return [T.Column(self.s.gucs.canonical(name) or name, T.TEXT, -1, "VARCHAR")]
        if first == "FETCH":
            c = self.s.cursors.get(fetch_target(sql) or "")
            return c.result.columns if c else None
        if first == "SELECT" and (call := notify.match_pg_notify(sql)) is not None:
            return notify.void_result(call[2]).columns
        if first == "SELECT" and (lock_call := advisory.match(sql)) is not None:
            return advisory.columns(lock_call)
        self.s.detach_stream()
        self.s.cursors.detach()
        try:
            probe = sql
            if first in ("INSERT", "UPDATE", "DELETE"):
                probe = _returning_probe(sql) or ""
                if not probe:
                    return None
            if first in ("SELECT", "VALUES", "WITH", "TABLE", "FROM", "INSERT", "UPDATE", "DELETE", "("):
                return describe_only(self.s.cur, jsonb.with_operators(self.s.cur, rewrite(probe)))
        except duckdb.Error as e:
            raise sqlerrors.translate(e, sql) from None
        return None

    def describe(self, r: m.Reader, out: Output) -> None:
        which = r.take(1)
        name = r.cstring()
        r.expect_end()
        if which == b"S":
            stmt = self.statements.get(name)
            if stmt is None:
                raise PgError("26000", f'prepared statement "{name}" does not exist')
            out.add(m.parameter_description(stmt.param_oids))
            nulls = [params.literal(None, T.BY_OID.get(o)) for o in stmt.param_oids]
            probe = substitute_params(stmt.sql, lambda k: nulls[k - 1] if 0 < k <= len(nulls) else "NULL")
            cols = self._columns(probe, (stmt.words or [""])[0])
            out.add(m.row_description([c.field(0) for c in cols]) if cols else m.no_data())
            return
        if which != b"P":
            raise m.ProtocolError("invalid DESCRIBE message subtype")
        portal = self.portals.get(name)
        if portal is None:
            cursor = self.s.cursors.get(name)  # a DECLAREd cursor is a portal too
            if cursor is None or not cursor.result.columns:
                raise PgError("34000", f'portal "{name}" does not exist')
            out.add(m.row_description([c.field(0) for c in cursor.result.columns]))
            return
        first = (portal.stmt.words or [""])[0]
        if first in ("PRAGMA", "CALL", "DESCRIBE", "SUMMARIZE"):
            self._start(portal)  # these can only be described by running them
            cols = portal.result.columns if portal.result else None
        else:
            cols = self._columns(portal.sql, first)
        portal.columns = cols
        portal.described = True
        if cols:
            fmts = resolve_formats(portal.formats, len(cols))
            out.add(m.row_description([c.field(f) for c, f in zip(cols, fmts, strict=True)]))
        else:
            out.add(m.no_data())

    # --- Execute ------------------------------------------------------------------------------
    def _start(self, portal: Portal) -> None:
        if portal.result is not None:
            return
        first = (portal.stmt.words or [""])[0]
        # Statements up to Sync form one implicit transaction; a read-only SELECT needs none of its own.
        if self.s.tx == "I" and not self.s.implicit and portal.stmt.duck_type != "SELECT" and first not in (
            "BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT", "CREATE", "DROP", "SET", "SHOW", "VACUUM",
        ):  # fmt: skip
            self.s.begin_implicit()
        self.s.copy.extended = True
        portal.result = self.s.execute(portal.sql, duck_type=portal.stmt.duck_type)

    def execute(self, r: m.Reader, out: Output) -> None:
        name = r.cstring()
        limit = r.int32()
        r.expect_end()
        portal = self.portals.get(name)
        if portal is None:
            raise PgError("34000", f'portal "{name}" does not exist')
        if not tokens(portal.sql):
            out.add(m.empty_query_response())
            return
        if portal.finished:
            out.add(m.command_complete(portal.result.tag(0) if portal.result else "SELECT 0"))
            return
        self._start(portal)
        res = portal.result
        assert res is not None
        n = len(res.columns) if res.columns is not None else 0
        done = self.s.send_result(res, out, describe=False, formats=resolve_formats(portal.formats, n),
                                  limit=max(limit, 0))  # fmt: skip
        portal.finished = done

    # --- Close --------------------------------------------------------------------------------
    def close(self, r: m.Reader, out: Output) -> None:
        which = r.take(1)
        name = r.cstring()
        r.expect_end()
        if which == b"S":
            self.statements.pop(name, None)
        elif which == b"P":
            portal = self.portals.pop(name, None)
            if portal is not None and portal.result is not None and portal.result is self.s.streaming:
                self.s.streaming = None  # DuckDB drops the pending result with the next statement
        else:
            raise m.ProtocolError("invalid CLOSE message subtype")
        out.add(m.close_complete())
