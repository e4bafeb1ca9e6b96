"""Hooks around one statement DuckDB runs, for features with per-session state.

A session holds a list of :class:`StatementHook` (session/core.py ``statement_hooks``; the kept foreign
keys of features/kept_keys.py are one).  For each statement DuckDB runs, ``before`` may ask for an
implicit transaction, statements to run first, notices, and a function to call with the result;
``after_ddl`` follows every CREATE / ALTER / DROP / COMMENT / TRUNCATE.  The session does the work, in
this order, so a feature needs nothing of the session.
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
