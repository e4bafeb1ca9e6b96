"""What a helper below the session may use of the session running its statement.

Helpers in catalog/ and features/ take a :class:`StatementContext`, not the session class: the session
(session/core.py) satisfies it structurally, and a helper sees only these public names.  Read-only
properties, so that the session may hold richer objects (its backend is an ``EmbeddedBackend``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import duckdb

from pgtls.backends.base import Registry, SessionInfo
from pgtls.errors import PgError

if TYPE_CHECKING:
    from pgtls.auth.roles import RoleStore


class BackendFacts(Protocol):
    """What the backend shared by all sessions tells a helper: files, roles and authentication rules."""

    @property
    def data_dir(self) -> Path: ...

    @property
    def roles(self) -> RoleStore: ...

    def role_rows(
        self, info: SessionInfo, secrets: bool = False
    ) -> tuple[list[dict[str, object]], list[dict[str, object]]]: ...

    def hba_rules(self) -> list[tuple[object, ...]]: ...

    def ident_mappings(self) -> list[tuple[object, ...]]: ...


class StatementContext(Protocol):
    """The session a statement runs in, as catalog/ and features/ see it."""

    @property
    def cur(self) -> duckdb.DuckDBPyConnection:
        """The session's DuckDB connection."""
        ...

    @property
    def info(self) -> SessionInfo: ...

    @property
    def registry(self) -> Registry:
        """Every session of the server (pg_stat_activity, pg_cancel_backend)."""
        ...

    @property
    def backend(self) -> BackendFacts: ...

    @property
    def tx(self) -> str:
        """PostgreSQL's transaction status: I idle, T in a block, E failed block."""
        ...

    @property
    def tz(self) -> dt.tzinfo:
        """The session's TimeZone."""
        ...

    def setting(self, name: str) -> str:
        """The session's value of a configuration parameter."""
        ...

    def notice(self, err: PgError) -> None:
        """Send a NoticeResponse (a WARNING or NOTICE) with the statement's output."""
        ...

    def is_superuser(self) -> bool:
        """Whether the session's role is a superuser now."""
        ...
