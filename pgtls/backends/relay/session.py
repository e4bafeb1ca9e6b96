"""One relayed session: the client's bytes to the upstream session and back, then the session's return.

The hot path does no per-message work on what PostgreSQL sends: each chunk
the upstream socket delivers is handed to the client channel (TLS) from the
protocol callback, with no task switch; the only look at it is whether the
chunk ends with a ReadyForQuery (its last six bytes).  The client's direction
walks message headers (a few per query, COPY data skipped in bulk) to keep a
Terminate from a pooled session and to know where the client stopped.

When the client goes, the upstream session is kept only if the client's last
message completed a request, nothing was half sent, and the last chunk looked
idle.  Then a marker query (an unguessable value, so nothing the client sent
can look like it) is pipelined with the reset query: whatever the server still
owed the client is skipped up to the marker, and the session returns to the
pool only if both answers say idle.  Otherwise the session is closed, which
ends an open transaction the way PostgreSQL does when a client vanishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from typing import Protocol

from pgtls.backends.base import ClientConn, ClientStream
from pgtls.backends.relay import wire
from pgtls.backends.relay.pool import Pool
from pgtls.backends.relay.upstream import QueryError, UpstreamConn, UpstreamGone
from pgtls.errors import PgError
from pgtls.protocol import messages as m
from pgtls.protocol.startup import LogOnly

# How long the marker and reset may take after the client left.
RESET_TIMEOUT = 10.0
# Statements after which idle pooled sessions must go: CREATE/DROP/ALTER DATABASE need other sessions of a
# database gone; ALTER ROLE|USER|DATABASE ... SET changes what a new session starts with, and a pooled
# session is a new session to its next client.
_POOL_FLUSHING = re.compile(
    rb"\s*(?:(?:drop|create|alter)\s+database|alter\s+(?:role|user))\b", re.IGNORECASE
)
_WATCH = frozenset(b"QP")
CONNECTION_FAILURE = "08006"


async def reset_for_pool(conn: UpstreamConn, reset_query: str) -> bool:
    """After a client left at a message boundary with the session idle: the marker query and the reset query
    (see the module's docstring); True when both answered idle and the session may serve another client."""
    probe, reset = conn.settle(reset_query)
    try:
        async with asyncio.timeout(RESET_TIMEOUT):
            first = await probe
            second = await reset
        conn.statements.clear()  # the reset query may have dropped transaction pooling's statements
        return first.status == "I" and second.status == "I"
    except (QueryError, UpstreamGone, PgError, TimeoutError, ConnectionError):
        return False
    finally:
        for f in (probe, reset):
            if f.done() and not f.cancelled():
                f.exception()


def upstream_closed() -> bytes:
    """The FATAL ErrorResponse a client gets when its upstream session closed between replies."""
    return m.error_response(
        PgError(
            CONNECTION_FAILURE,
            "the PostgreSQL server behind pgtls closed the connection unexpectedly",
            severity="FATAL",
        )
    )


def unhook_client(raw: ClientConn) -> None:
    """The client connection's callbacks into a relay, removed when the relay ends."""
    raw.sink = None
    raw.on_eof = None
    raw.resume_hook = None


class SessionBackend(Protocol):
    """What a relayed session needs of its backend (:class:`pgtls.backends.relay.backend.RelayBackend` is
    one)."""

    @property
    def generation(self) -> int: ...

    def close_idle_sessions(self) -> None: ...

    async def cancel_upstream(self, conn: UpstreamConn) -> None: ...

    def forget_identity(self, conn: UpstreamConn, database: str) -> None: ...


class RelaySession:
    def __init__(self, backend: SessionBackend, pool: Pool, conn: UpstreamConn, database: str) -> None:
        self.backend = backend
        self.pool = pool
        self.conn = conn
        self.database = database
        self.tail: str | None = (
            "I"  # ReadyForQuery status the last upstream chunk ended with (None: mid-reply)
        )
        self.tracker = wire.FrontendTracker(_WATCH)
        self.upstream_lost = False
        self.released = False
        self._paused = False
        self._answered: asyncio.Event | None = None
        self.client_error: LogOnly | None = None

    def parameters(self) -> list[tuple[str, str]]:
        return list(self.conn.params.items())

    async def run(self, channel: ClientStream, pending: bytearray, stopping: Callable[[], bool]) -> None:
        """Relay until the client terminates or goes, or the upstream session ends.

        Both directions run in protocol callbacks: the client's bytes are decrypted and written to the
        upstream socket in the client's data_received, the upstream's are encrypted and written to the
        client in the upstream's; this coroutine only waits for the end.
        """
        conn = self.conn
        raw = channel.raw
        send = channel.send
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        tracker = self.tracker

        def end() -> None:
            if not done.done():
                done.set_result(None)

        rfq = wire.RFQ_PREFIX

        def sink(data: bytes) -> None:
            send(data)
            # wire.ends_with_ready, inlined: 73, 84, 69 are I, T, E
            self.tail = chr(data[-1]) if data[-6:-1] == rfq and data[-1] in (73, 84, 69) else None
            if self.tail is not None and self._answered is not None:
                self._answered.set()
            if raw.write_paused and not self._paused:
                self._paused = True
                conn.pause_reading()

        def client_writable() -> None:
            if self._paused:
                self._paused = False
                conn.resume_reading()

        def lost() -> None:
            self.upstream_lost = True
            if self.tail is not None:  # between replies: say why, as PostgreSQL's own FATALs do
                send(upstream_closed())
            channel.close()
            end()

        def from_client(data: bytes) -> None:
            if done.done():
                return
            try:
                out = tracker.feed(data)
            except LogOnly as e:
                self.client_error = e
                end()
                return
            if tracker.watched:
                self._watched()
            if out:
                self._forward(out)
                if conn.write_paused:
                    raw.pause_reading()
            if tracker.terminated:
                end()

        raw.resume_hook = client_writable
        conn.on_resume = raw.resume_reading
        conn.attach(sink, lost)
        if pending:
            data = bytes(pending)
            pending.clear()
            from_client(data)
        channel.relay(from_client, end)
        try:
            await done
        finally:
            unhook_client(raw)
            conn.on_resume = None
        if self.client_error is not None:
            raise self.client_error
        if tracker.terminated and self.tail is None and not conn.closed:
            # Terminate after a request: the client still reads the reply (as PostgreSQL sends it) first.
            self._answered = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RESET_TIMEOUT):
                    await self._answered.wait()

    def _forward(self, data: bytes) -> None:
        if data:
            self.tail = None  # a reply is owed until a chunk ends with ReadyForQuery again
            self.conn.write(data)

    def _watched(self) -> None:
        for head in self.tracker.watched:
            body = head[5:]
            if head[:1] == b"P":
                body = body[body.find(b"\0") + 1 :]
            if _POOL_FLUSHING.match(body):
                self.backend.close_idle_sessions()
        self.tracker.watched.clear()

    async def cancel(self) -> None:
        if not self.released and not self.conn.closed:
            await self.backend.cancel_upstream(self.conn)

    async def release(self, fast: bool = False) -> None:
        """Give the upstream session back: reset and pooled, or closed."""
        if self.released:
            return
        self.released = True
        conn = self.conn
        conn.detach()
        if self._paused:
            self._paused = False
            conn.resume_reading()
        reusable = False
        if (
            not fast
            and not self.upstream_lost
            and not conn.closed
            and self.tracker.synced
            and self.tail == "I"
        ):
            reusable = await reset_for_pool(conn, self.pool._settings().reset_query)
        if conn.generation != self.backend.generation:
            reusable = False  # opened before a CREATE/DROP/ALTER DATABASE or ALTER ROLE
        if not reusable:
            self.backend.forget_identity(conn, self.database)
        with contextlib.suppress(RuntimeError):
            self.pool.release(conn, reusable)
