"""One connection from pgtls to an upstream PostgreSQL server (an asyncio protocol).

A connection lives in one of three modes:

* **parsed** — bytes are split into messages and handed to the request at the
  head of a queue: the startup exchange, then queries (pipelined: several may be
  in flight, answers arrive in order, each ends at its ReadyForQuery);
* **relayed** — a client owns the session: every chunk goes to the sink as it
  arrives, unparsed (the hot path; see :mod:`pgtls.backends.relay.session`);
* **scanning** — the client left at an unknown point of the stream: bytes are
  searched for a marker pgtls sent (an unguessable name in an error it
  provokes), and parsing resumes right after it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import secrets
import socket
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgtls.backends.relay import wire
from pgtls.backends.relay.txnwire import ServerStatements
from pgtls.backends.relay.upauth import Authenticator
from pgtls.errors import PROTOCOL_VIOLATION, PgError

# Startup of an upstream session over the private socket: a fork and backend start (a few ms).
CONNECT_TIMEOUT = 30.0

Sink = Callable[[bytes], None]


class UpstreamGone(Exception):
    """The upstream connection closed or broke."""


@dataclass
class Result:
    tag: str = ""
    columns: list[str] = field(default_factory=list)
    rows: list[list[str | None]] = field(default_factory=list)
    notices: list[wire.ErrorFields] = field(default_factory=list)
    status: str = "I"


class _Request:
    """One pipelined request: everything up to its ReadyForQuery."""

    __slots__ = ("future", "result", "error", "on_message")

    def __init__(
        self, fut: asyncio.Future[Result], on_message: Callable[[bytes, bytes], None] | None = None
    ) -> None:
        self.future = fut
        self.result = Result()
        self.error: wire.ErrorFields | None = None
        self.on_message = on_message


class UpstreamConn(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.params: dict[str, str] = {}
        self.pid = 0
        self.key = b""
        self.closed = False
        self.close_error: wire.ErrorFields | None = None  # a FATAL the server sent before closing
        self._buf = bytearray()
        self._queue: collections.deque[_Request] = collections.deque()
        self._sink: Sink | None = None
        self._on_lost: Callable[[], None] | None = None
        self._scan: bytes | None = None
        self._scanbuf = bytearray()
        self._write_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self.on_resume: Callable[[], None] | None = None  # writing may go on (the relay resumes its client)
        self._stray = False  # bytes arrived with nobody asking (pooled and idle)
        self.created = 0.0
        self.last_used = 0.0
        self.startup_params: tuple[
            tuple[str, str], ...
        ] = ()  # the client startup parameters it was opened with
        self._prepared: set[str] = set()
        self.generation = 0  # the relay's pool generation when it was opened (see RelayBackend.generation)
        self.endpoint: Any = None  # a network upstream: where it is and whether over TLS (netconnect)
        self.holder: object = None  # the client session whose identity row this backend's pid has
        self.statements = ServerStatements()  # statements transaction pooling prepared here (txnwire)

    # --- asyncio.Protocol ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = typing.cast(asyncio.Transport, transport)  # uvloop's transports are no subclasses
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        sink = self._sink
        if sink is not None:
            sink(data)
            return
        if self._scan is not None:
            self._scanned(data)
            return
        self._buf += data
        self._dispatch()

    def eof_received(self) -> bool:
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._queue and (error := self._queue[0].error) is not None:  # a FATAL, then the server closed
            req = self._queue.popleft()
            if not req.future.done():
                req.future.set_exception(QueryError(error, ""))
                req.future.exception()
        self._fail_all(UpstreamGone(str(exc) if exc else "upstream closed the connection"))
        for w in self._drain_waiters:
            if not w.done():
                w.set_result(None)
        self._drain_waiters.clear()
        cb = self._on_lost
        self._on_lost = None
        if cb is not None:
            cb()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self.on_resume is not None:
            self.on_resume()
        for w in self._drain_waiters:
            if not w.done():
                w.set_result(None)
        self._drain_waiters.clear()

    # --- writing ------------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed and data:
            self.transport.write(data)

    @property
    def write_paused(self) -> bool:
        return self._write_paused

    async def drain(self) -> None:
        while self._write_paused and not self.closed:
            fut = asyncio.get_running_loop().create_future()
            self._drain_waiters.append(fut)
            await fut

    def pause_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def close(self) -> None:
        """Say goodbye (Terminate) and close."""
        if self.transport is not None and not self.closed:
            with contextlib.suppress(Exception):
                self.transport.write(wire.TERMINATE)
            self.transport.close()
        self.closed = True

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
        self.closed = True

    # --- relay mode -------------------------------------------------------------------------
    def attach(self, sink: Sink, on_lost: Callable[[], None]) -> None:
        """Hand every received chunk to ``sink`` until :meth:`detach`; ``on_lost`` when the server goes."""
        self._sink = sink
        self._on_lost = on_lost
        if self._buf:
            data = bytes(self._buf)
            self._buf.clear()
            sink(data)

    def detach(self) -> None:
        self._sink = None
        self._on_lost = None

    @property
    def usable(self) -> bool:
        """Idle in the pool with nothing unexpected received."""
        return not self.closed and not self._stray and not self._buf and not self._queue

    # --- parsed mode ----------------------------------------------------------------------------
    def _dispatch(self) -> None:
        try:
            for kind, body in wire.split_messages(self._buf):
                self._message(kind, body)
        except PgError as e:
            self._fail_all(e)
            self.abort()

    def _message(self, kind: bytes, body: bytes) -> None:
        if not self._queue:
            if kind == b"E":
                self.close_error = wire.error_fields(body)
            elif kind in (b"S", b"N", b"A"):
                pass  # ParameterStatus / notice / notification while idle: harmless, but note it
            self._stray = True
            return
        req = self._queue[0]
        if req.on_message is not None:
            req.on_message(kind, body)
        r = req.result
        if kind == b"D":
            r.rows.append(wire.data_row(body))
        elif kind == b"T":
            r.columns = _column_names(body)
        elif kind == b"C":
            r.tag = body.rstrip(b"\0").decode("utf-8", "replace")
        elif kind == b"E":
            if req.error is None:
                req.error = wire.error_fields(body)
        elif kind == b"N":
            r.notices.append(wire.error_fields(body))
        elif kind == b"S":
            name, value = wire.parameter_status(body)
            self.params[name] = value
        elif kind == b"Z":
            r.status = chr(body[0]) if body else "I"
            self._queue.popleft()
            if not req.future.done():
                if req.error is not None:
                    req.future.set_exception(QueryError(req.error, r.status))
                else:
                    req.future.set_result(r)

    def _fail_all(self, exc: BaseException) -> None:
        while self._queue:
            req = self._queue.popleft()
            if not req.future.done():
                req.future.set_exception(exc)
                req.future.exception()  # mark retrieved: a caller may have stopped waiting

    def _request(
        self, data: bytes, on_message: Callable[[bytes, bytes], None] | None = None
    ) -> asyncio.Future[Result]:
        fut: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        if self.closed:
            fut.set_exception(UpstreamGone("upstream connection is closed"))
            return fut
        self._queue.append(_Request(fut, on_message))
        self.write(data)
        return fut

    async def execute(self, sql: str, params: Sequence[str | None] | None = None) -> Result:
        """One statement (simple protocol without params, extended with text params); errors raise."""
        data = wire.query(sql) if params is None else wire.extended_query(sql, params)
        return await self._request(data)

    def execute_prepared(self, name: str, sql: str, params: Sequence[str | None]) -> asyncio.Future[Result]:
        """Like :meth:`execute` with a named prepared statement, parsed on first use (pgtls's own
        connections: PostgreSQL plans a per-login query once per connection instead of every time)."""
        data = wire.bind_execute_sync(name, params)
        if name not in self._prepared:
            self._prepared.add(name)  # later requests pipelined behind this one may bind it already
            fut = self._request(wire.parse(name, sql) + data)

            def failed(f: asyncio.Future[Result]) -> None:
                if f.cancelled() or f.exception() is not None:
                    self._prepared.discard(name)

            fut.add_done_callback(failed)
            return fut
        return self._request(data)

    # --- after a client: find where the stream stands ---------------------------------------
    def _scanned(self, data: bytes) -> None:
        marker = self._scan
        assert marker is not None
        buf = self._scanbuf
        buf += data
        i = buf.find(marker)
        if i < 0:
            keep = len(marker) - 1
            if len(buf) > keep:
                del buf[: len(buf) - keep]
            return
        # The marker is the last value of its DataRow: the stream is aligned right after it.
        rest = bytes(buf[i + len(marker) :])
        buf.clear()
        self._scan = None
        self._buf += rest
        self._dispatch()

    def settle(self, reset_query: str) -> tuple[asyncio.Future[Result], asyncio.Future[Result]]:
        """After a client left at a message boundary with its last request complete: a query whose
        one value is a fresh marker, then the reset query, pipelined.  Whatever the server still
        sends for the client is skipped up to the marker; the two futures answer the two queries
        (the first one's status tells whether the session was idle)."""
        marker = new_marker()
        loop = asyncio.get_running_loop()
        probe: asyncio.Future[Result] = loop.create_future()
        reset: asyncio.Future[Result] = loop.create_future()
        if self.closed:
            for f in (probe, reset):
                f.set_exception(UpstreamGone("upstream connection is closed"))
                f.exception()
            return probe, reset
        self._queue.append(_Request(probe))
        self._queue.append(_Request(reset))
        self._scan = marker.encode()
        self._scanbuf.clear()
        self.write(wire.query(f"SELECT '{marker}'") + wire.query(reset_query))
        return probe, reset

    # --- startup ------------------------------------------------------------------------------
    async def startup(self, params: dict[str, str], auth: Authenticator | None = None) -> None:
        """StartupMessage and the exchange up to the first ReadyForQuery.  Without ``auth`` only trust
        (the private socket); with it, the methods an upstream may ask for (:mod:`upauth`)."""
        fut: asyncio.Future[Result] = asyncio.get_running_loop().create_future()

        def on_message(kind: bytes, body: bytes) -> None:
            if kind == b"R":
                try:
                    if auth is None:
                        code = int.from_bytes(body[:4], "big")
                        if code != 0:
                            raise PgError(
                                PROTOCOL_VIOLATION,
                                f"the upstream server asked for authentication "
                                f"method {code}, which pgtls does not answer",
                                severity="FATAL",
                            )
                    else:
                        reply = auth.on_request(body)
                        if reply:
                            self.write(reply)
                except PgError as e:
                    self._fail_all(e)
                    self.abort()
            elif kind == b"K":
                self.pid = int.from_bytes(body[:4], "big")
                self.key = bytes(body[4:])

        self._queue.append(_Request(fut, on_message))
        self.write(wire.startup_message(params))
        await fut


class QueryError(Exception):
    """An ErrorResponse for a request; ``status`` is the ReadyForQuery status that followed."""

    def __init__(self, fields: wire.ErrorFields, status: str) -> None:
        super().__init__(fields.message)
        self.fields = fields
        self.status = status


def _column_names(body: bytes) -> list[str]:
    n = int.from_bytes(body[:2], "big")
    pos = 2
    out = []
    for _ in range(n):
        end = body.index(b"\0", pos)
        out.append(body[pos:end].decode("utf-8", "replace"))
        pos = end + 1 + 18
    return out


async def connect_unix(path: Path, params: dict[str, str], timeout: float = CONNECT_TIMEOUT) -> UpstreamConn:
    """An upstream session over a Unix socket, started (ReadyForQuery seen)."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(timeout):
        _, conn = await loop.create_unix_connection(UpstreamConn, str(path))
        try:
            await conn.startup(params)
        except QueryError as e:
            conn.abort()
            raise _as_fatal(e.fields) from None
        except BaseException:
            conn.abort()
            raise
    now = loop.time()
    conn.created = conn.last_used = now
    return conn


def _as_fatal(fields: wire.ErrorFields) -> PgError:
    err = fields.to_error("FATAL")
    return PgError(
        err.sqlstate, err.message, severity="FATAL", detail=err.detail, hint=err.hint, extra=err.extra
    )


async def send_cancel(path: Path, pid: int, key: bytes) -> None:
    """A CancelRequest to the upstream backend ``pid`` (PostgreSQL answers by closing)."""
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(5):
            reader, writer = await asyncio.open_unix_connection(str(path))
            writer.write(wire.cancel_request(pid, key))
            await writer.drain()
            await reader.read(1)
            writer.close()


def new_marker() -> str:
    return "pgtls_probe_" + secrets.token_hex(16)
