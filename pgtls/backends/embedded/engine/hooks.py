"""The hooks features register into, so that the engine runs them without importing them.

The engine (execute.py) is below every feature: it calls what is registered here at fixed points of
running one statement, and a feature module registers its functions when it is imported (jsonb/,
features/foreignkeys.py).  The session imports every feature, so all are registered before the first
statement runs.  The order of registration is the order of the calls.

* ``column_names``: a PostgreSQL column name for DuckDB's name of a result column, or None (next hook).
* ``result_columns``: the RowDescription columns of a result, retyped (json or jsonb).
* ``comment_statements``: a ``COMMENT ON`` statement as it should run (a feature keeps marks in comments).
* ``after_ddl``: after CREATE / ALTER / DROP / COMMENT succeeded; a DuckDB error here is ignored.

Per session, features hook in around each statement DuckDB runs through statement_hooks.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb

from pgtls.backends.embedded.pgtypes.typemap import Column

ColumnName = Callable[[str], str | None]
ResultColumns = Callable[[duckdb.DuckDBPyConnection, str, list[str], list[str], list[Column]], list[Column]]
CommentStatement = Callable[[duckdb.DuckDBPyConnection, str], str]
AfterDdl = Callable[[duckdb.DuckDBPyConnection, str, str], None]


@dataclass
class EngineHooks:
    column_names: list[ColumnName] = field(default_factory=list)
    result_columns: list[ResultColumns] = field(default_factory=list)
    comment_statements: list[CommentStatement] = field(default_factory=list)
    after_ddl: list[AfterDdl] = field(default_factory=list)

    def column_name(self, duck_name: str) -> str | None:
        for hook in self.column_names:
            if (name := hook(duck_name)) is not None:
                return name
        return None

    def retype(self, cur: duckdb.DuckDBPyConnection, sql: str, names: list[str], ducks: list[str],
               cols: list[Column]) -> list[Column]:  # fmt: skip
        for hook in self.result_columns:
            cols = hook(cur, sql, names, ducks, cols)
        return cols

    def comment_statement(self, cur: duckdb.DuckDBPyConnection, sql: str) -> str:
        for hook in self.comment_statements:
            sql = hook(cur, sql)
        return sql

    def ddl_done(self, cur: duckdb.DuckDBPyConnection, sql: str, first: str) -> None:
        for hook in self.after_ddl:
            try:
                hook(cur, sql, first)
            except duckdb.Error:
                pass  # the statement itself succeeded


HOOKS = EngineHooks()
