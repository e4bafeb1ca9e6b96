"""The interface between the front door (server/) and what stands behind it.

Two kinds of backend stand there.  A :class:`Backend` (the embedded DuckDB
database) gets every frontend message of a session and answers it; an
:class:`AsyncBackend` (the relay to PostgreSQL) gets the session's byte
stream and runs on the event loop.  The rest of this note is about the first.

After authentication the server hands every frontend message of a session to a
:class:`Session`.  A session is a blocking object: the server calls it from a
worker thread, never from the event loop, and never from two threads at once
(except :meth:`Session.cancel`, which may be called from any thread).

Output goes through ``send``: a thread-safe callable that queues protocol bytes
for the client (it may block for flow control).  A session should pass large
chunks (tens of kB) rather than one call per row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

Send = Callable[[bytes], None]


@dataclass(frozen=True)
class TlsInfo:
    """What a session may learn about the connection's TLS (pg_stat_ssl, sslinfo)."""

    version: str  # "TLSv1.3"
    cipher: str  # OpenSSL name, e.g. "TLS_AES_256_GCM_SHA384"
    bits: int
    client_cert_present: bool = False
    client_dn: str | None = None  # slash format, e.g. "/CN=alice"
    client_serial: int | None = None
    issuer_dn: str | None = None
    client_cert_der: bytes | None = None


@dataclass(frozen=True)
class SessionInfo:
    pid: int  # the session's backend pid as reported in BackendKeyData
    user: str
    database: str
    client_addr: str | None  # None for Unix-domain sockets
    client_port: int | None
    application_name: str = ""
    options: dict[str, str] = field(default_factory=dict)  # other startup parameters (DateStyle, ...)
    tls: TlsInfo | None = None
    is_superuser: bool = True
    # What the login proved (a password, SCRAM's ClientKey/ServerKey): for a relay's login upstream as the
    # same role.  In memory only; no repr, so it never reaches a log.
    proven: object | None = field(default=None, repr=False, compare=False)


class ActivityRow(Protocol):
    """One row of pg_stat_activity / pg_stat_ssl as the registry knows it."""

    info: SessionInfo
    state: str
    query: str


class Registry(Protocol):
    """What a backend may ask the server about all sessions (for pg_stat_ssl, pg_stat_activity)."""

    def sessions(self) -> Sequence[ActivityRow]: ...


class Session(Protocol):
    def startup_parameters(self) -> list[tuple[str, str]]:
        """ParameterStatus pairs sent after AuthenticationOk (server_version, ...)."""
        ...

    def handle(self, kind: bytes, body: bytes, send: Send) -> str | None:
        """Process one frontend message; return the transaction status I/T/E after a
        ReadyForQuery was sent, or None when no ReadyForQuery was due (e.g. Parse/Bind before Sync).

        The session writes ReadyForQuery itself through ``send``; the return value only
        keeps the server's activity view (state idle / active / idle in transaction) right.
        """
        ...

    def answer_inline(self, batch: list[tuple[bytes, bytes]]) -> bytes | None:
        """The complete reply to a batch of frontend messages (type, body) if the session can give it at
        once, without blocking (no database work); None to have :meth:`handle` run them on a worker
        thread.  Called on the event loop, only between batches."""
        ...

    def cancel(self) -> None:
        """Interrupt the running statement (CancelRequest); called from another thread."""
        ...

    def set_async_sender(self, post: Send) -> None:
        """Where the session may write asynchronous messages (NotificationResponse) while it is idle, from
        any thread; ``post`` never blocks."""
        ...

    def close(self) -> None: ...


class Backend(Protocol):
    def open_session(self, info: SessionInfo, registry: Registry) -> Session:
        """Open a session; raises pgtls.errors.PgError (FATAL, e.g. 3D000) if it cannot. Blocking."""
        ...

    def close(self) -> None: ...


class RoleLookup(Protocol):
    """The roles one login may ask about (pgtls.auth.decide.RoleLookup)."""

    def get(self, name: str) -> object: ...

    def is_member(self, user: str, group: str) -> bool: ...


class ClientConn(Protocol):
    """The connection under a :class:`ClientStream` (the server's RawConn), as a relay drives it."""

    resume_hook: Callable[[], None] | None  # called when writing to the client may go on
    sink: Callable[[bytes], None] | None  # set by ClientStream.relay: the bytes, straight from the socket
    on_eof: Callable[[], None] | None

    @property
    def write_paused(self) -> bool: ...

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


class ClientStream(Protocol):
    """The client's side of a relayed session (the server's Channel)."""

    @property
    def raw(self) -> ClientConn: ...

    async def recv(self) -> bytes: ...

    def send(self, data: bytes) -> None: ...

    def relay(self, on_plain: Callable[[bytes], None], on_eof: Callable[[], None]) -> None:
        """From now on the client's bytes (decrypted) go to ``on_plain`` as they arrive, its EOF to ``on_eof``."""
        ...

    def close(self) -> None: ...


class AsyncSessionBase(Protocol):
    """What every session of an asyncio backend offers, however it relays."""

    def parameters(self) -> list[tuple[str, str]]:
        """ParameterStatus pairs for the client, as the upstream session reports them."""
        ...

    async def cancel(self) -> None: ...

    async def release(self, fast: bool = False) -> None:
        """End the session: keep the upstream session for reuse or close it (never leak it)."""
        ...


class AsyncSession(AsyncSessionBase, Protocol):
    async def run(self, channel: ClientStream, pending: bytearray, stopping: Callable[[], bool]) -> None:
        """Relay until the client or the upstream ends the session; ``pending`` holds bytes already read."""
        ...


class DetachedSession(AsyncSessionBase, Protocol):
    """A session that relays in callbacks alone and needs no task while its client idles."""

    def start(self, channel: ClientStream, pending: bytearray, on_end: Callable[[], None]) -> None:
        """Relay from now on (``pending``: bytes already read); ``on_end()`` is called on the loop once the client
        or the upstream ended the session, and :meth:`finish_run` is then due."""
        ...

    async def finish_run(self) -> None:
        """The end of the session's relay, once ``on_end`` was called (may raise as ``run`` does)."""
        ...


class AsyncBackend(Protocol):
    is_async: bool  # True

    async def start(self) -> None: ...

    async def role_lookup(self, user: str, database: str) -> RoleLookup:
        """What authentication needs to know about ``user`` (and its memberships), fresh, from the upstream
        that serves ``database``."""
        ...

    async def open(self, info: SessionInfo) -> AsyncSession | DetachedSession:
        """A session for an authenticated client; raises PgError (FATAL) if it cannot."""
        ...

    def reload(self) -> None: ...

    async def stop(self, mode: str) -> None: ...
