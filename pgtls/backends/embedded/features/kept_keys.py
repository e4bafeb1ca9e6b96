"""The foreign keys pgtls keeps (foreignkeys.py, ddl/foreign_keys.py), hooked in around each statement DuckDB runs.

* CREATE TABLE declaring such keys: the table and the keys' records commit together (an implicit
  transaction), and the keys are checked and recorded after the table exists.
* a writing statement naming a table of a kept key: checked after it ran (its RETURNING rows are read
  first), in the same transaction.
* DROP TABLE of a table such keys reference: 2BP01, or with CASCADE those keys dropped first.
* any DDL: every session reads the keys again; DDL in a transaction block is remembered.
"""

from __future__ import annotations

import duckdb

from pgtls.backends.embedded.engine.execute import Result, materialized
from pgtls.backends.embedded.engine.statement_hooks import StatementWork
from pgtls.backends.embedded.features import foreignkeys
from pgtls.backends.embedded.features.ddl import foreign_keys as ddl_keys
from pgtls.backends.embedded.features.savepoints import is_pure_read

_KEY_CHECKED = frozenset(
    {"INSERT", "UPDATE", "DELETE", "MERGE", "WITH"}
)  # may write a table of a kept foreign key


class KeptKeys:
    """The session's :class:`~pgtls.backends.embedded.engine.hooks.StatementHook` for kept foreign keys."""

    def __init__(self, guard: foreignkeys.Guard) -> None:
        self.guard = guard

    def before(
        self, cur: duckdb.DuckDBPyConnection, words: list[str], sql: str, rewritten: str
    ) -> StatementWork | None:
        first = words[0] if words else ""
        if first == "CREATE" and "references" in sql.lower() and ddl_keys.keeps_keys(cur, sql):

            def record_keys(cur: duckdb.DuckDBPyConnection, res: Result) -> tuple[Result, list[str]]:
                after = ddl_keys.kept_keys_after_create(cur, sql)
                for stmt in after:
                    cur.execute(stmt)
                return res, after

            return StatementWork(transaction=True, after=record_keys)
        # the names in a writing statement that names a table of a kept foreign key
        checked = (
            self.guard.involved(cur, rewritten)
            if first in _KEY_CHECKED and not is_pure_read(first, rewritten)
            else None
        )
        if checked:

            def check_keys(cur: duckdb.DuckDBPyConnection, res: Result) -> tuple[Result, list[str]]:
                res = materialized(res)
                return res, self.guard.after_statement(cur, checked)

            return StatementWork(transaction=True, after=check_keys)
        if first == "DROP" and len(words) > 1 and words[1] == "TABLE" and self.guard.current(cur):
            stmts, notices = ddl_keys.drop_table_plan(cur, rewritten)
            return StatementWork(transaction=bool(stmts), pre=stmts, notices=notices)
        return None

    def after_ddl(self, in_transaction: bool) -> None:
        foreignkeys.bump()
        self.guard.ddl_in_transaction = self.guard.ddl_in_transaction or in_transaction
