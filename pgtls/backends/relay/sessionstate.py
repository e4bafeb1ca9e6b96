"""Which statements leave state in a server session that transaction pooling would lose.

In transaction mode a client's next transaction may run on another server
connection, so anything a statement leaves behind in the *session* (not the
transaction) would silently vanish.  pgtls reads each Query and Parse with
PostgreSQL's own parser (pglast) when a cheap look at the text says it might
matter.  :func:`inspect` says which kinds of session state a text makes and
which it ends (its statements taken in order); the relay pins the client
while any kind lasts (docs/relay.md, "Transaction pooling", has the table):

====================================  ===========================================
makes (pins)                          ended by
====================================  ===========================================
SET / set_config(..., false)          RESET ALL
LISTEN                                UNLISTEN *
session-level advisory locks          pg_advisory_unlock_all()
DECLARE ... WITH HOLD                 CLOSE ALL
CREATE TEMP table, view, sequence     DISCARD TEMP
PREPARE (SQL)                         DEALLOCATE ALL
LOAD                                  (nothing)
====================================  ===========================================

``DISCARD ALL`` ends all of them but LOAD; with ``DEALLOCATE ALL`` it also
forgets the client's protocol-level prepared statements.

A statement that does not parse is left to PostgreSQL (which will refuse it).
State made inside functions (``EXECUTE 'SET ...'`` in PL/pgSQL) is not seen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pglast import ast

# Text that may hide one of the statements above; anything else is not parsed at all.
_MAYBE = re.compile(
    rb"(?:^|;)\s*(?:set|reset|listen|unlisten|declare|close|prepare|create|load|discard|deallocate)\b"
    rb"|advisory_|set_config|/\*|--",
    re.IGNORECASE,
)
_SESSION_LOCKS = frozenset(
    {"pg_advisory_lock", "pg_advisory_lock_shared", "pg_try_advisory_lock", "pg_try_advisory_lock_shared"}
)
CURSOR_OPT_HOLD = 0x0020
# The largest statement text read; a longer one that looks like it may leave state pins its client.
MAX_INSPECTED = 1 << 20

# What pins a client, by kind of state; each kind is released by the statements of RELEASED_BY.
SETTINGS, LISTENING, LOCKS, HELD_CURSORS, TEMP_TABLES, PREPARED, LOADED, TOO_LONG = (
    "SET",
    "LISTEN",
    "a session-level advisory lock",
    "a cursor WITH HOLD",
    "a temporary table",
    "PREPARE",
    "LOAD",
    "a statement too long to inspect",
)
EVERYTHING = frozenset({SETTINGS, LISTENING, LOCKS, HELD_CURSORS, TEMP_TABLES, PREPARED})  # DISCARD ALL


@dataclass(frozen=True)
class Verdict:
    pins: frozenset[str] = frozenset()  # kinds of session state the text leaves (after its releases)
    releases: frozenset[str] = frozenset()  # kinds it ends (and does not make again later in the text)
    forget_statements: bool = False  # DISCARD ALL / DEALLOCATE ALL

    @property
    def pin(self) -> str | None:
        return min(self.pins) if self.pins else None


NOTHING = Verdict()


def inspect(sql: bytes) -> Verdict:
    """What running ``sql`` (one Query's or Parse's text) does to the session, statement by statement."""
    if not _MAYBE.search(sql):
        return NOTHING
    if len(sql) > MAX_INSPECTED:
        return Verdict(pins=frozenset({TOO_LONG}))
    try:
        from pglast import parse_sql

        stmts = parse_sql(sql.decode("utf-8", "replace"))
    except Exception:  # noqa: BLE001 - PostgreSQL will say what is wrong with it
        return NOTHING
    pins: set[str] = set()
    releases: set[str] = set()
    forget = False
    for raw in stmts:
        if raw.stmt is None:  # not from parse_sql (empty statements are left out), but RawStmt allows it
            continue
        made, ended = _effects(raw.stmt)
        if DeallocateAll in ended:
            forget = True
        ended.discard(DeallocateAll)
        pins -= ended
        releases |= ended
        pins |= made
        releases -= made
    return Verdict(frozenset(pins), frozenset(releases), forget)


DeallocateAll = "DEALLOCATE ALL"  # a marker among the kinds a statement ends: the protocol statements go too


def _effects(stmt: ast.Node) -> tuple[set[str], set[str]]:
    """(kinds of state the statement makes, kinds it ends)."""
    from pglast import ast

    made: set[str] = set()
    ended: set[str] = set()
    if isinstance(stmt, ast.VariableSetStmt):
        kind = getattr(stmt.kind, "name", str(stmt.kind))
        var = (stmt.name or "").upper()
        if kind == "VAR_RESET_ALL":
            ended.add(SETTINGS)
        elif (
            stmt.is_local or not kind.startswith("VAR_SET") or var in ("TRANSACTION", "TRANSACTION SNAPSHOT")
        ):
            pass  # SET LOCAL, SET TRANSACTION ...: this transaction only; RESET x: one of several
        else:
            made.add(SETTINGS)
    elif isinstance(stmt, ast.ListenStmt):
        made.add(LISTENING)
    elif isinstance(stmt, ast.UnlistenStmt) and stmt.conditionname is None:
        ended.add(LISTENING)
    # (a DECLARE's options are never None: the grammar always sets CURSOR_OPT_FAST_PLAN)
    elif isinstance(stmt, ast.DeclareCursorStmt) and (stmt.options or 0) & CURSOR_OPT_HOLD:
        made.add(HELD_CURSORS)
    elif isinstance(stmt, ast.ClosePortalStmt) and stmt.portalname is None:
        ended.add(HELD_CURSORS)
    elif isinstance(stmt, ast.PrepareStmt):
        made.add(PREPARED)
    elif isinstance(stmt, ast.LoadStmt):
        made.add(LOADED)
    elif isinstance(stmt, ast.CreateStmt | ast.CreateTableAsStmt | ast.ViewStmt | ast.CreateSeqStmt):
        rel = (
            stmt.into.rel
            if isinstance(stmt, ast.CreateTableAsStmt) and stmt.into is not None
            else stmt.view
            if isinstance(stmt, ast.ViewStmt)
            else stmt.sequence
            if isinstance(stmt, ast.CreateSeqStmt)
            else stmt.relation
            if isinstance(stmt, ast.CreateStmt)
            else None
        )
        if getattr(rel, "relpersistence", "p") == "t":
            made.add(TEMP_TABLES)
    elif isinstance(stmt, ast.DiscardStmt):
        target = getattr(stmt.target, "name", "")
        if target == "DISCARD_ALL":
            ended |= EVERYTHING | {DeallocateAll}
        elif target == "DISCARD_TEMP":
            ended.add(TEMP_TABLES)
    elif isinstance(stmt, ast.DeallocateStmt) and getattr(stmt, "isall", stmt.name is None):
        ended |= {PREPARED, DeallocateAll}
    calls = _calls(stmt)
    if "lock" in calls:
        made.add(LOCKS)
    if "set_config" in calls:
        made.add(SETTINGS)
    if "unlock_all" in calls:
        ended.add(LOCKS)
    return made, ended


def plain(sql: bytes) -> bool:
    """PostgreSQL's parser takes ``sql`` and it leaves nothing in the session (a Parse pgtls may answer)."""
    if len(sql) > MAX_INSPECTED:
        return False
    v = inspect(sql)
    if v.pins or v.releases or v.forget_statements:
        return False
    try:
        from pglast.parser import parse_sql_json

        parse_sql_json(sql.decode("utf-8", "strict"))
    except Exception:  # noqa: BLE001 - a server will say what is wrong
        return False
    return True


def _calls(stmt: ast.Node) -> set[str]:
    """Among the statement's function calls: session-level advisory locks ("lock"), session-wide set_config
    ("set_config"), pg_advisory_unlock_all ("unlock_all")."""
    from pglast import ast
    from pglast.visitors import Visitor

    found: set[str] = set()

    class Calls(Visitor):
        def visit_FuncCall(self, ancestors: object, node: ast.FuncCall) -> None:  # noqa: N802 - pglast's name
            fname = node.funcname[-1].sval.lower() if node.funcname else ""
            if fname in _SESSION_LOCKS:
                found.add("lock")
            elif fname == "pg_advisory_unlock_all":
                found.add("unlock_all")
            elif fname == "set_config":
                args = node.args or ()
                local = args[2] if len(args) == 3 else None
                val = getattr(local, "val", None)
                if not (isinstance(val, ast.Boolean) and val.boolval) and not (
                    isinstance(val, ast.String)
                    and (val.sval or "").lower() in ("t", "true", "on", "yes", "1")
                ):
                    found.add("set_config")

    Calls()(stmt)
    return found
