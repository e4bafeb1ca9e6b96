"""The steps a statement DuckDB runs goes through, registered here in their order (engine/statement_hooks.py).

:meth:`~pgtls.backends.embedded.session.core.EmbeddedSession.run_in_duckdb` names no feature: it applies
:data:`REWRITE_STEPS` to the text, then the session's statement hooks (:func:`statement_hooks`), then the
first of :data:`DDL_HOOKS` that plans the statement.  A new text rewrite goes into :data:`REWRITE_STEPS` at
the place its input needs (each step sees the text the ones before it left), a feature with per-session
state around each statement into :func:`statement_hooks`, statements to run instead of a DDL statement into
:data:`DDL_HOOKS`.
"""

from __future__ import annotations

import duckdb

from pgtls.backends.embedded.engine.statement_hooks import DdlHook, RewriteStep, StatementHook
from pgtls.backends.embedded.features import foreignkeys
from pgtls.backends.embedded.features.ddl.planner import plan
from pgtls.backends.embedded.features.kept_keys import KeptKeys
from pgtls.backends.embedded.jsonb import operators as jsonb
from pgtls.backends.embedded.rewrite import bytea_input, groupby
from pgtls.backends.embedded.rewrite.pipeline import rewrite


def _pipeline(cur: duckdb.DuckDBPyConnection, sql: str) -> str:
    return rewrite(sql)


REWRITE_STEPS: tuple[RewriteStep, ...] = (
    # PostgreSQL's spellings as DuckDB's, on the text alone (rewrite/pipeline.py)
    RewriteStep("pipeline", _pipeline),
    # '\x...' strings bound for bytea columns (the column types come from the cursor)
    RewriteStep(
        "bytea_input",
        bytea_input.rewrite,
        frozenset({"INSERT", "UPDATE", "DELETE", "SELECT", "WITH"}),
        bytea_input.needs_rewrite,
    ),
    # GROUP BY a primary key: the table's other columns are grouped too, as PostgreSQL allows
    RewriteStep("groupby", groupby.rewrite, frozenset({"SELECT"}), groupby.needs_rewrite),
    # jsonb's ||, @>, <@, - and #- where an operand is jsonb (which columns are jsonb: per session)
    RewriteStep(
        "jsonb_operators",
        jsonb.with_operators,
        frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "VALUES"}),
    ),
)

DDL_HOOKS: tuple[DdlHook, ...] = (
    # serial and identity columns, ALTER TABLE forms DuckDB refuses, TRUNCATE as PostgreSQL's
    DdlHook("ddl", frozenset({"CREATE", "ALTER", "TRUNCATE"}), plan),
)


def statement_hooks(guard: foreignkeys.Guard) -> list[StatementHook]:
    """A new session's statement hooks (``guard``: its kept foreign keys, features/foreignkeys.py)."""
    return [KeptKeys(guard)]
