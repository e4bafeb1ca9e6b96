"""The DDL planner (:func:`plan`): what the session runs instead of a CREATE, ALTER or TRUNCATE statement.

The session calls it with its cursor, after the text rewrites, as a DDL hook (session/steps.py ``DDL_HOOKS``).
"""

from __future__ import annotations

import duckdb

from pgtls.backends.embedded.features.ddl.alter import plan_alter
from pgtls.backends.embedded.features.ddl.identity import rewrite_create_table
from pgtls.backends.embedded.features.ddl.parsing import Unsupported
from pgtls.backends.embedded.features.ddl.truncate import plan_truncate
from pgtls.backends.embedded.sql.lexer import tokens, words_at
from pgtls.errors import PgError


def plan(cur: duckdb.DuckDBPyConnection, sql: str, notices: list[PgError] | None = None) -> list[str] | None:
    """The statements to run, in the session's transaction and in this order, instead of ``sql`` (already
    rewritten), or None to run ``sql`` as it is.  The command tag stays ``sql``'s; the last statement is
    the one whose result is the statement's.  Raises PgError for what PostgreSQL refuses."""
    toks = tokens(sql)
    if len(toks) < 2 or toks[0].kind != "word":
        return None
    first = toks[0].text.upper()
    if first == "CREATE":
        low = sql.lower()
        return rewrite_create_table(sql) if "serial" in low or "identity" in low else None
    if first == "TRUNCATE":
        return plan_truncate(cur, toks, notices if notices is not None else [])
    if first != "ALTER" or not words_at(toks, 1, "TABLE") or len(toks) < 3:
        return None
    try:
        return plan_alter(cur, sql, toks, notices if notices is not None else [])
    except Unsupported:
        return None
