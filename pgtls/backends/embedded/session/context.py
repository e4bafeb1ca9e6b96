"""What the session's helpers (extended.py, copy_protocol.py, cursors.py, inline.py, the statement handlers of
utility.py, transaction.py and settings_stmt.py) use of the session.

They take a :class:`SessionContext`, not the session class (core.py), and see only these public names;
core.py's ``EmbeddedSession`` satisfies it structurally.  The protocol states of the other helpers appear
as the few flags a helper reads or sets (``ExtendedFlags``, ``CopyFlags``), so no helper imports another
helper's class for them.
"""

from __future__ import annotations

import threading
from typing import Protocol

from pgtls.backends.embedded.engine.context import BackendFacts, StatementContext
from pgtls.backends.embedded.engine.databases import DatabaseFiles
from pgtls.backends.embedded.engine.execute import Result
from pgtls.backends.embedded.fastpath.lookup import PointLookups
from pgtls.backends.embedded.features.advisory import AdvisoryLocks, LockTable
from pgtls.backends.embedded.features.foreignkeys import Guard
from pgtls.backends.embedded.features.notify import Hub, Listener
from pgtls.backends.embedded.features.savepoints import Journal
from pgtls.backends.embedded.features.settings import GucDefaults, Gucs
from pgtls.backends.embedded.session.output import Output
from pgtls.backends.embedded.session.prepared import Portal, Prepared
from pgtls.backends.embedded.sql.kinds import Statement
from pgtls.errors import PgError


class ExtendedFlags(Protocol):
    skipping: bool  # after an extended-protocol error, everything up to Sync is ignored

    @property
    def statements(self) -> dict[str, Prepared]: ...  # prepared statements by name ("" unnamed)

    @property
    def portals(self) -> dict[str, Portal]: ...

    def discard_all(self) -> None: ...  # DISCARD ALL: every prepared statement and portal


class CopyFlags(Protocol):
    @property
    def active(self) -> bool: ...  # a COPY FROM STDIN waits for its data

    extended: bool  # the COPY came through the extended protocol


class OpenCursor(Protocol):
    @property
    def result(self) -> Result: ...


class CursorTable(Protocol):
    def get(self, name: str) -> OpenCursor | None: ...

    def detach(self) -> None: ...  # read the pending result of the cursor that holds it into memory

    def end_transaction(self, commit: bool) -> None: ...  # before COMMIT/ROLLBACK reaches DuckDB

    def names(self) -> frozenset[str]: ...  # the open cursors' names

    def keep(self, names: frozenset[str]) -> None: ...  # close every cursor but those named


class SessionBackend(BackendFacts, Protocol):
    @property
    def lookups(self) -> PointLookups: ...  # the point-lookup indexes of every database


class HostBackend(SessionBackend, Protocol):
    """What the session itself (core.py) uses of the backend that opened it (backend.py)."""

    @property
    def settings(self) -> object: ...  # the server's settings snapshot source

    @property
    def catalog_values(self) -> dict[str, str]: ...  # lower name -> value in the catalog's pgtls_settings

    @property
    def catalog_timezone(self) -> str: ...

    @property
    def files(self) -> DatabaseFiles: ...

    @property
    def hub(self) -> Hub: ...  # LISTEN/NOTIFY between sessions

    @property
    def locks(self) -> LockTable: ...  # advisory locks between sessions

    def defaults(self) -> GucDefaults: ...

    def default_overrides(self, defaults: GucDefaults) -> dict[str, str]: ...


class SessionContext(StatementContext, Protocol):
    """The session as its protocol helpers see it."""

    tx: str  # PostgreSQL's transaction status: I idle, T in a block, E failed block (transaction.py sets it)
    implicit: bool  # inside an implicit transaction (multi-statement Q, extended batch)
    streaming: Result | None  # a suspended portal's result still pending on the connection
    writing: bool  # may have changed data since it was last idle: no point-lookup answers
    temp_objects: bool  # created a TEMP object, which may hide a table from the point-lookup index
    pending_status: list[tuple[str, str]]  # ParameterStatus to send before ReadyForQuery

    @property
    def backend(self) -> HostBackend: ...

    @property
    def in_transaction(self) -> bool: ...  # a transaction block or an implicit transaction

    @property
    def cancelled(self) -> threading.Event:
        """Set when a cancel arrived while a statement ran (for waits outside DuckDB: advisory locks)."""
        ...

    @property
    def advisory(self) -> AdvisoryLocks: ...

    @property
    def out(self) -> Output | None: ...

    @property
    def running(self) -> threading.Event:
        """Set while DuckDB runs a statement of the session (a cancel interrupts it then)."""
        ...

    @property
    def gucs(self) -> Gucs: ...

    @property
    def journal(self) -> Journal: ...

    @property
    def fkeys(self) -> Guard: ...

    @property
    def listener(self) -> Listener: ...

    @property
    def extended(self) -> ExtendedFlags: ...

    @property
    def copy(self) -> CopyFlags: ...

    @property
    def cursors(self) -> CursorTable: ...

    def execute(self, sql: str, offset: int = 0, duck_type: str | None = None) -> Result: ...

    def detach_stream(self) -> None: ...

    def run_in_duckdb(self, st: Statement) -> Result: ...

    def send_result(
        self, res: Result, out: Output, describe: bool, formats: list[int] | None = None, limit: int = 0
    ) -> bool: ...

    def fail(self, err: PgError, out: Output) -> None: ...

    def ready(self, out: Output) -> str: ...

    def continue_query(self, stmts: list[tuple[int, str]], out: Output) -> str | None: ...

    def begin_implicit(self) -> None: ...

    def end_implicit(self, commit: bool) -> None: ...

    def transaction_ended(self, commit: bool) -> None:
        """After the DuckDB transaction ended: deliver or drop its notifications, release its locks."""
        ...

    def rollback_quietly(self) -> None: ...  # ROLLBACK the DuckDB transaction, if DuckDB still has one

    def setting_changed(self, canon: str) -> None:
        """After parameter ``canon`` changed: mirror it into DuckDB, and report it if PostgreSQL does."""
        ...
