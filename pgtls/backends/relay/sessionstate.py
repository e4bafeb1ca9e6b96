"""Which statements leave state in a server session that transaction pooling would lose.

In transaction mode a client's next transaction may run on another server
connection, so anything a statement leaves behind in the *session* (not the
transaction) would silently vanish.  pgtls reads each Query and Parse with
PostgreSQL's own parser (pglast) when a cheap look at the text says it might
matter, and pins the client to its server connection until it leaves when it
does (docs/relay.md, "Transaction pooling"):

=========================================  =====================================
statement                                  effect
=========================================  =====================================
``SET`` / ``SET SESSION`` (not ``LOCAL``)  pin
``set_config(name, value, false)``         pin (``true``: transaction-local, fine)
``LISTEN``                                 pin
``pg_advisory_lock`` & co (session level)  pin (the ``_xact_`` ones are fine)
``DECLARE ... WITH HOLD``                  pin
``CREATE TEMP`` table, view, sequence      pin
``PREPARE`` (SQL)                          pin
``LOAD``                                   pin
``DISCARD ALL`` / ``DEALLOCATE ALL``       the client's and the server's prepared statements are forgotten
=========================================  =====================================

A statement that does not parse is left to PostgreSQL (which will refuse it).
State made inside functions (``EXECUTE 'SET ...'`` in PL/pgSQL) is not seen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Text that may hide one of the statements above; anything else is not parsed at all.
_MAYBE = re.compile(
    rb"(?:^|;)\s*(?:set|listen|declare|prepare|create|load|discard|deallocate)\b|advisory_lock|set_config|/\*|--",
    re.IGNORECASE,
)
_SESSION_LOCKS = frozenset({"pg_advisory_lock", "pg_advisory_lock_shared", "pg_try_advisory_lock",
                            "pg_try_advisory_lock_shared"})
CURSOR_OPT_HOLD = 0x0020
# The largest statement text read; a longer one that looks like it may leave state pins its client.
MAX_INSPECTED = 1 << 20


@dataclass(frozen=True)
class Verdict:
    pin: str | None = None  # why the client must keep its server connection
    forget_statements: bool = False  # DISCARD ALL / DEALLOCATE ALL


NOTHING = Verdict()


def inspect(sql: bytes) -> Verdict:
    """What running ``sql`` (one Query's or Parse's text) does to the session."""
    if not _MAYBE.search(sql):
        return NOTHING
    if len(sql) > MAX_INSPECTED:
        return Verdict(pin="a statement too long to inspect")
    try:
        from pglast import parse_sql

        stmts = parse_sql(sql.decode("utf-8", "replace"))
    except Exception:  # noqa: BLE001 - PostgreSQL will say what is wrong with it
        return NOTHING
    pin: str | None = None
    forget = False
    for raw in stmts:
        stmt = raw.stmt
        name = type(stmt).__name__
        why: str | None = None
        if name == "VariableSetStmt":
            kind = getattr(stmt.kind, "name", str(stmt.kind))
            var = (stmt.name or "").upper()
            if stmt.is_local or not kind.startswith("VAR_SET") or var in ("TRANSACTION", "TRANSACTION SNAPSHOT"):
                pass  # SET LOCAL, SET TRANSACTION ...: this transaction only; RESET: back to the default
            elif var == "SESSION CHARACTERISTICS":
                why = "SET SESSION CHARACTERISTICS"
            else:
                why = "SET"
        elif name == "ListenStmt":
            why = "LISTEN"
        elif name == "DeclareCursorStmt" and stmt.options & CURSOR_OPT_HOLD:
            why = "a cursor WITH HOLD"
        elif name == "PrepareStmt":
            why = "PREPARE"
        elif name == "LoadStmt":
            why = "LOAD"
        elif name in ("CreateStmt", "CreateTableAsStmt", "ViewStmt", "CreateSeqStmt"):
            rel = stmt.into.rel if name == "CreateTableAsStmt" else (stmt.view if name == "ViewStmt" else (
                stmt.sequence if name == "CreateSeqStmt" else stmt.relation))
            if getattr(rel, "relpersistence", "p") == "t":
                why = "a temporary table"
        elif name == "DiscardStmt" and getattr(stmt.target, "name", "") == "DISCARD_ALL":
            forget = True
        elif name == "DeallocateStmt" and getattr(stmt, "isall", stmt.name is None):
            forget = True
        if why is None:
            why = _calls(stmt)
        if why is not None and pin is None:
            pin = why
    return Verdict(pin=pin, forget_statements=forget)


def plain(sql: bytes) -> bool:
    """PostgreSQL's parser takes ``sql`` and it leaves nothing in the session (a Parse pgtls may answer)."""
    if len(sql) > MAX_INSPECTED or inspect(sql) is not NOTHING:
        return False
    try:
        from pglast.parser import parse_sql_json

        parse_sql_json(sql.decode("utf-8", "strict"))
    except Exception:  # noqa: BLE001 - a server will say what is wrong
        return False
    return True


def _calls(stmt: object) -> str | None:
    """Session-level advisory locks and session-wide set_config among the statement's function calls."""
    from pglast import ast
    from pglast.visitors import Visitor

    found: list[str] = []

    class Calls(Visitor):  # type: ignore[misc]
        def visit_FuncCall(self, ancestors: object, node: ast.FuncCall) -> None:  # noqa: N802 - pglast's name
            fname = node.funcname[-1].sval.lower() if node.funcname else ""
            if fname in _SESSION_LOCKS:
                found.append("a session-level advisory lock")
            elif fname == "set_config":
                args = node.args or ()
                local = args[2] if len(args) == 3 else None
                val = getattr(local, "val", None)
                if not (isinstance(val, ast.Boolean) and val.boolval) and not (
                        isinstance(val, ast.String) and val.sval.lower() in ("t", "true", "on", "yes", "1")):
                    found.append("set_config(..., false)")

    Calls()(stmt)
    return found[0] if found else None
