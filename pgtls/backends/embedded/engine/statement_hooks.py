"""Hooks around one statement DuckDB runs: what a feature or a rewrite registers, and the session calls.

The session (session/core.py ``run_in_duckdb``) takes each statement DuckDB runs through, in this order:

1. its :class:`RewriteStep` list: text to text with the session's cursor, each for the statements whose
   first word it names (the PostgreSQL-to-DuckDB text rewrites, jsonb's operators);
2. its :class:`StatementHook` list, for features with per-session state (the kept foreign keys of
   features/kept_keys.py): ``before`` may ask for an implicit transaction, statements to run first,
   notices, and a function to call with the result; ``after_ddl`` follows every CREATE / ALTER / DROP /
   COMMENT / TRUNCATE;
3. its :class:`DdlHook` list: statements to run instead of a DDL statement (features/ddl/planner.py).

session/steps.py registers them all, in that order.  The session does the work, so a feature needs nothing
of the session.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import duckdb

from pgtls.backends.embedded.engine.execute import Result
from pgtls.errors import PgError


@dataclass
class StatementWork:
    """What a feature does around one statement (see :class:`StatementHook`)."""

    transaction: bool = False  # the statement and the feature's work commit together: begin an implicit one
    pre: list[str] = field(default_factory=list)  # to run (and journal) before the statement
    notices: list[PgError] = field(default_factory=list)  # to send before the statement runs
    # with the statement's result: the result to give (maybe read into memory) and statements that ran
    # after it (to journal)
    after: Callable[[duckdb.DuckDBPyConnection, Result], tuple[Result, list[str]]] | None = None


class StatementHook(Protocol):
    def before(
        self, cur: duckdb.DuckDBPyConnection, words: list[str], sql: str, rewritten: str
    ) -> StatementWork | None:
        """Before DuckDB runs ``rewritten`` (``sql`` as the client sent it; ``words``: its first words)."""
        ...

    def after_ddl(self, in_transaction: bool) -> None:
        """After a CREATE / ALTER / DROP / COMMENT / TRUNCATE ran."""
        ...


@dataclass(frozen=True)
class RewriteStep:
    """One text rewrite of a statement DuckDB runs (``apply``: the text so far and the session's cursor)."""

    name: str
    apply: Callable[[duckdb.DuckDBPyConnection, str], str]
    # the first words (upper case) of the statements it applies to; None: every statement
    statements: frozenset[str] | None = None
    # a quick test of the text so far, before ``apply`` runs; None: always
    needed: Callable[[str], bool] | None = None

    def applies(self, first: str, sql: str) -> bool:
        return (self.statements is None or first in self.statements) and (
            self.needed is None or self.needed(sql)
        )


# the DDL planner's signature: the statements to run instead of ``sql`` (the last one's result is the
# statement's), or None to run ``sql`` as it is; notices for the client are appended to the list
DdlPlan = Callable[[duckdb.DuckDBPyConnection, str, list[PgError]], list[str] | None]


@dataclass(frozen=True)
class DdlHook:
    """Statements to run instead of a DDL statement whose first word is in ``statements``."""

    name: str
    statements: frozenset[str]
    plan: DdlPlan
