"""Synchronous helpers for command-line tools that talk to the managed cluster (init, ``pgtls role``).

They use the running cluster when pgtls serves, and start it for the duration
otherwise (:func:`pgtls.backends.relay.cluster.running`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from pgtls.backends.relay.cluster import admin_user, running
from pgtls.backends.relay.pgbin import PgBin
from pgtls.backends.relay.pgbin import find as find_pgbin
from pgtls.backends.relay.upstream import QueryError, Result, connect_unix


class SqlError(Exception):
    """An ErrorResponse from the cluster: PostgreSQL's message (and SQLSTATE)."""

    def __init__(self, message: str, sqlstate: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


Statement = tuple[str, Sequence[str | None] | None]


def run_sql(
    data_dir: Path, statements: Sequence[Statement], database: str = "postgres", pgbin: PgBin | None = None
) -> list[Result]:
    """Run statements as the cluster's superuser, in order; the first error raises SqlError."""
    return run_sql_in(data_dir, [(database, statements)], pgbin)[0]


def run_sql_in(
    data_dir: Path, work: Sequence[tuple[str, Sequence[Statement]]], pgbin: PgBin | None = None
) -> list[list[Result]]:
    """Like :func:`run_sql` for several databases, with one start of the cluster at most."""
    pgbin = pgbin or find_pgbin()
    user = admin_user(data_dir)

    async def one(sock: Path, database: str, statements: Sequence[Statement]) -> list[Result]:
        conn = await connect_unix(sock, {"user": user, "database": database, "application_name": "pgtls"})
        try:
            out = []
            for sql, params in statements:
                try:
                    out.append(await conn.execute(sql, params))
                except QueryError as e:
                    raise SqlError(e.fields.message, e.fields.sqlstate) from None
            return out
        finally:
            conn.close()

    async def go(sock: Path) -> list[list[Result]]:
        return [await one(sock, db, statements) for db, statements in work]

    with running(data_dir, pgbin) as sock:
        return asyncio.run(go(sock))
