"""Utility statements the session answers itself, one handler each (session/core.py ``_HANDLERS``).

Each takes the session as a :class:`~pgtls.backends.embedded.session.context.SessionContext` and the
:class:`~pgtls.backends.embedded.sql.kinds.Statement`; the ones that change the session's transaction
state are in transaction.py, those that change its settings in settings_stmt.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from pgtls.backends.embedded.catalog import shared as catalog
from pgtls.backends.embedded.engine import errormap as sqlerrors
from pgtls.backends.embedded.engine.execute import Result, _none, drain
from pgtls.backends.embedded.features import advisory, cancel, notify
from pgtls.backends.embedded.pgtypes import typemap as T
from pgtls.backends.embedded.rewrite.pipeline import rewrite
from pgtls.backends.embedded.session.context import SessionContext
from pgtls.backends.embedded.sql import commands
from pgtls.backends.embedded.sql.kinds import Statement
from pgtls.backends.embedded.sql.lexer import table_list, tokens, unquote_ident
from pgtls.errors import INSUFFICIENT_PRIVILEGE, PgError


def tag(text: str) -> Result:
    """The result of a statement that returns no rows: only its command tag."""
    return Result(None, _none, lambda n: text)


def text_result(columns: list[str], rows: Sequence[tuple[str | None, ...]], tag: str = "") -> Result:
    cols = [T.Column(c, T.TEXT, -1, "VARCHAR") for c in columns]
    return Result(cols, drain(list(rows)), (lambda n: tag) if tag else (lambda n: f"SELECT {n}"))


def refuse_attach(s: SessionContext, st: Statement) -> Result:
    # the file system is off limits, and the catalog database stays
    raise PgError("42501", f"permission denied to {st.first.lower()} a database")


def query(s: SessionContext, st: Statement) -> Result:
    """A SELECT: a function call a feature answers itself, or a query for DuckDB."""
    sql = st.sql
    if "advisory" in sql and (lock_call := advisory.match(sql)) is not None:
        return advisory_call(s, lock_call)
    if "pg_notify" in sql and (call := notify.match_pg_notify(sql)) is not None:
        s.listener.notify(call[0], call[1], in_block=s.in_transaction)
        return notify.void_result(call[2])
    if "pg_cancel_backend" in sql and (sig := cancel.match_cancel(sql)) is not None:
        return cancel.cancel_backend(s, *sig)
    return s.run_in_duckdb(st)


def advisory_call(s: SessionContext, call: advisory.Call) -> Result:
    arity_ok = not call.args if call.function == "pg_advisory_unlock_all" else len(call.args) in (1, 2)
    if not arity_ok:
        types = ", ".join(["bigint"] * len(call.args))
        raise PgError("42883", f"function {call.function}({types}) does not exist",
                      hint="No function matches the given name and argument types. "
                           "You might need to add explicit type casts.")  # fmt: skip
    values: list[int] = []
    if call.args:
        duck = "BIGINT" if len(call.args) == 1 else "INTEGER"
        exprs = ", ".join(f"CAST(({rewrite(a)}) AS {duck})" for a in call.args)
        try:
            row = s.cur.execute(f"SELECT {exprs}").fetchone()
        except duckdb.Error as e:
            raise sqlerrors.translate(e) from None
        if row is None or any(v is None for v in row):
            return advisory.result(call, None, null=True)  # strict functions: NULL in, NULL out (no lock)
        values = [int(v) for v in row]
    s.cancelled.clear()
    s.running.set()
    try:
        value = s.advisory.call(call, values, s.in_transaction, s.cancelled.is_set, s.notice)
    finally:
        s.running.clear()
    return advisory.result(call, value)


def notify_command(s: SessionContext, st: Statement) -> Result:
    sql, offset = st.sql, st.offset
    command, channel, payload = notify.parse_listen(sql, offset)
    in_block = s.in_transaction
    if command == "LISTEN":
        assert channel is not None
        s.listener.listen(channel, in_block)
    elif command == "UNLISTEN":
        s.listener.unlisten(channel, in_block)
    else:
        assert channel is not None
        s.listener.notify(channel, payload, in_block)
    return tag(command)


def show(s: SessionContext, st: Statement) -> Result:
    name = commands.parse_show(st.sql)
    if name.upper() not in ("TABLES", "DATABASES") and not name.upper().startswith("ALL TABLES"):
        return show_command(s, name)
    return s.run_in_duckdb(st)


def show_command(s: SessionContext, name: str) -> Result:
    hidden = frozenset() if s.info.is_superuser else catalog.SUPERUSER_ONLY_SETTINGS
    if name.lower() == "all":
        rows = [(n, v, None) for n, v in s.gucs.all() if n.lower() not in hidden]
        return text_result(["name", "setting", "description"], rows, "SHOW")
    if name.lower() in hidden:
        raise PgError(
            INSUFFICIENT_PRIVILEGE,
            f'permission denied to examine "{name}"',
            detail=catalog.SUPERUSER_ONLY_DETAIL,
        )
    canon = s.gucs.canonical(name) or name
    return text_result([canon], [(s.gucs.get(name),)], "SHOW")


def lock_table(s: SessionContext, st: Statement) -> Result:
    """LOCK [TABLE] [ONLY] name [*], ... [IN mode MODE] [NOWAIT]: PostgreSQL's checks (a transaction
    block, tables that exist), and nothing to lock: DuckDB has no table locks, and its optimistic
    concurrency gives 40001 to the second writer of a row instead (docs/embedded.md)."""
    sql = st.sql
    if s.tx == "I" and not s.implicit:
        raise PgError("25P01", "LOCK TABLE can only be used in transaction blocks")
    toks = [t for t in tokens(sql) if t.text != ";"]
    found, _next = table_list(toks, 2 if len(toks) > 1 and toks[1].text.upper() == "TABLE" else 1)
    for a, b in found:
        try:
            s.cur.execute(f"SELECT 1 FROM {sql[toks[a].start : toks[b].end]} LIMIT 0")
        except duckdb.Error as e:
            err = sqlerrors.translate(e)
            raise PgError(err.sqlstate, err.message) from None  # PostgreSQL gives no position here
    return tag("LOCK TABLE")


def set_constraints(s: SessionContext, st: Statement) -> Result:
    """SET CONSTRAINTS {ALL | name, ...} {DEFERRED | IMMEDIATE}: accepted, with PostgreSQL's syntax
    errors and warning.  The switch applies to the DEFERRABLE foreign keys pgtls keeps (foreignkeys.py);
    IMMEDIATE checks what was deferred.  DuckDB's own foreign keys are never deferrable."""
    sql, offset = st.sql, st.offset
    toks = [t for t in tokens(sql) if t.text != ";"][2:]
    i = 0
    names: list[str] | None = None
    if toks and toks[0].text.upper() == "ALL":
        i = 1
    else:
        names = []
        while i < len(toks) and toks[i].kind in ("word", "ident"):
            if i + 1 < len(toks) and toks[i + 1].text == ".":
                i += 2
                continue
            names.append(unquote_ident(toks[i].text))
            if i + 1 < len(toks) and toks[i + 1].text == ",":
                i += 2
                continue
            i += 1
            break
    mode = toks[i] if i < len(toks) else None
    if i == 0 or mode is None or mode.text.upper() not in ("DEFERRED", "IMMEDIATE") or i + 1 < len(toks):
        bad = toks[i + 1] if mode is not None and mode.text.upper() in ("DEFERRED", "IMMEDIATE") else mode
        if bad is None:
            raise PgError(
                "42601", "syntax error at end of input", position=offset + len(sql.rstrip(" ;\n")) + 1
            )
        raise PgError("42601", f'syntax error at or near "{bad.text}"', position=offset + bad.start + 1)
    if s.tx == "I" and not s.implicit:
        s.notice(
            PgError("25P01", "SET CONSTRAINTS can only be used in transaction blocks", severity="WARNING")
        )
    try:
        s.fkeys.set_constraints(s.cur, names, mode.text.upper() == "DEFERRED")
    except duckdb.Error as e:
        raise sqlerrors.translate(e) from None
    return tag("SET CONSTRAINTS")


def database_command(s: SessionContext, st: Statement) -> Result:
    first, sql = st.first, st.sql
    if s.in_transaction:
        raise PgError("25001", f"{first} DATABASE cannot run inside a transaction block")
    name, if_exists = commands.parse_database_name(sql, 2)
    if first == "CREATE":
        s.backend.files.create(name)
        return tag("CREATE DATABASE")
    if name == s.info.database:
        raise PgError("55006", "cannot drop the currently open database")
    try:
        s.backend.files.drop(name)
        s.backend.lookups.forget(name)
    except PgError as e:
        if e.sqlstate == "3D000" and if_exists:
            s.notice(PgError("00000", f'database "{name}" does not exist, skipping', severity="NOTICE"))
        else:
            raise
    return tag("DROP DATABASE")
