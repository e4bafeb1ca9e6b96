"""One client connection, from the first byte to the end of its session.

The steps are those of PostgreSQL's backend start: negotiation (SSLRequest,
GSSENCRequest, CancelRequest, direct TLS) driven by the sans-IO
:class:`~pgtls.protocol.startup.StartupMachine`, the startup packet, the
connection limit, authentication (see :mod:`pgtls.server.authflow`), then the
session loop that hands every message to the backend in a worker thread.

``authentication_timeout`` covers negotiation, the TLS handshake and
authentication together; on expiry the connection is dropped without a word,
as PostgreSQL does.
"""

from __future__ import annotations

import asyncio
import struct
import time
from concurrent.futures import Executor
from typing import Any, Protocol, cast

from pgtls import log
from pgtls import tls as tlsmod
from pgtls.backends.base import (
    AsyncBackend,
    AsyncSession,
    AsyncSessionBase,
    Backend,
    DetachedSession,
    Send,
    Session,
    SessionInfo,
    TlsInfo,
)
from pgtls.errors import ADMIN_SHUTDOWN, INTERNAL_ERROR, PROTOCOL_VIOLATION, TOO_MANY_CONNECTIONS, PgError
from pgtls.protocol import messages as m
from pgtls.protocol.limits import PQ_LARGE_MESSAGE_LIMIT, PQ_SMALL_MESSAGE_LIMIT
from pgtls.protocol.startup import (
    PROTOCOL_LATEST_MINOR,
    CancelRequest,
    Closed,
    DirectTLS,
    GSSENCRequest,
    LegacyProtocolError,
    LogOnly,
    NeedData,
    SSLRequest,
    Startup,
    StartupMachine,
)
from pgtls.server import admin
from pgtls.server.authflow import AlreadyLogged, AuthOutcome, AuthServer, authenticate
from pgtls.server.channel import Channel, RawConn, TlsFailed
from pgtls.server.offload import Offload
from pgtls.server.registry import Entry
from pgtls.server.snapshot import Snapshot
from pgtls.server.state import ADMIN_DATABASE

# Frontend message types a session may send (PostgreSQL's PostgresMain switch).
SESSION_MESSAGE_TYPES = frozenset(b"QPBEDCHSFdcfX")
LARGE_MESSAGE_TYPES = frozenset(b"QFBPd")  # Query, FunctionCall, Bind, Parse, CopyData
UNENCRYPTED_AFTER_REQUEST_DETAIL = (
    "This could be either a client-software bug or evidence of an attempted man-in-the-middle attack."
)


class ConnServer(AuthServer, Protocol):
    """What a connection needs of its server (:class:`pgtls.server.server.Server` is one)."""

    @property
    def backend(self) -> Any: ...
    @property
    def is_async(self) -> bool: ...
    @property
    def shutting_down(self) -> bool: ...
    @property
    def shutting_down_fast(self) -> bool: ...
    @property
    def tls_offload(self) -> Offload: ...
    @property
    def connections(self) -> set[Any]: ...
    @property
    def db_executor(self) -> Executor: ...

    def connection_done(self, conn: Any) -> None: ...

    async def cancel(self, pid: int, key: bytes) -> None: ...


class Connection:
    def __init__(self, server: ConnServer, raw: RawConn) -> None:
        self.server = server
        self.raw = raw
        self.snap: Snapshot = server.snapshot
        self.channel = Channel(raw, server.tls_offload)
        self.entry: Entry | None = None
        self.tls_facts: tlsmod.ConnectionFacts | None = None
        self.tls_config: tlsmod.TlsConfig | None = (
            None  # the configuration the handshake used (SNI: its host's)
        )
        self.host = "[local]" if raw.is_unix or raw.peer is None else raw.peer[0]
        self.port = None if raw.peer is None else raw.peer[1]
        self.startup: Startup | None = None
        self.started = time.monotonic()
        self.inbuf = bytearray()  # plaintext received after the startup packet, not yet consumed

    @property
    def settings(self):  # noqa: ANN201 - Settings
        return self.snap.settings

    def trace(self, message: str) -> None:
        if self.settings["trace_connection_negotiation"]:
            log.log(message)

    # --- top level ---
    async def run(self) -> None:
        detached = False  # the session relays in callbacks alone; _after_detached finishes the connection
        try:
            detached = await self._serve()
        except Exception as e:  # noqa: BLE001 - one connection's bug must never take the server down
            self._ended_by(e)
        finally:
            if not detached:
                await self.finish()

    async def _serve(self) -> bool:
        if self.server.log_aspect(self.snap, "receipt"):
            if self.raw.is_unix:
                log.log("connection received: host=[local]")
            else:
                log.log(f"connection received: host={self.host} port={self.port}")
        timeout = float(self.settings["authentication_timeout"])
        try:
            async with asyncio.timeout(timeout):
                startup = await self.negotiate()
                if startup is None:
                    return False
                ident = await self.begin_session(startup)
        except TimeoutError:
            return False  # PostgreSQL exits silently on authentication timeout
        await self.open_session(startup, ident)
        return await self.session_loop()

    async def _after_detached(self, session: DetachedSession) -> None:
        try:
            await session.finish_run()
        except Exception as e:  # noqa: BLE001 - as in run
            self._ended_by(e)
        finally:
            await self.finish()

    def _ended_by(self, e: Exception) -> None:
        """What the connection's end by ``e`` logs and tells the client."""
        if isinstance(e, PgError):
            self.send_error(e)
        elif isinstance(e, LogOnly):
            log.log(e.message)
        elif isinstance(e, Closed):
            if e.log:
                log.log(e.log)
        elif isinstance(e, (TlsFailed, ConnectionError, OSError)):
            pass
        else:
            log.log(f"unexpected error on connection from host={self.host}: {type(e).__name__}: {e}")
            self.channel.send(m.error_response(PgError(INTERNAL_ERROR, "internal error", severity="FATAL")))

    def send_error(self, e: PgError) -> None:
        if not isinstance(e, AlreadyLogged):
            log.emit(e.severity, e.message, detail=e.detail, hint=e.hint)
        self.channel.send(e.v2_bytes() if isinstance(e, LegacyProtocolError) else m.error_response(e))

    async def finish(self) -> None:
        entry = self.entry
        if entry is not None:
            self.server.registry.remove(entry.info.pid)
            if entry.session is not None:
                session = entry.session
                try:
                    if self.server.is_async:
                        await cast(AsyncSessionBase, session).release(fast=self.server.shutting_down_fast)
                    else:
                        await asyncio.get_running_loop().run_in_executor(
                            self.server.db_executor, cast(Session, session).close
                        )
                except Exception as e:  # noqa: BLE001 - a failing close must not take the server down
                    log.log(f"error closing session: {e}")
            if self.server.log_aspect(self.snap, "disconnections"):
                elapsed = time.monotonic() - self.started
                hours, rest = divmod(elapsed, 3600)
                minutes, seconds = divmod(rest, 60)
                port = f" port={self.port}" if self.port is not None else ""
                log.log(
                    f"disconnection: session time: {int(hours)}:{int(minutes):02d}:{seconds:06.3f} "
                    f"user={entry.info.user} database={entry.info.database} host={self.host}{port}"
                )
        self.server.connection_done(self)
        self.channel.close()

    # --- negotiation ---
    async def negotiate(self) -> Startup | None:
        sm = StartupMachine()
        ch = self.channel
        tls = self.snap.tls
        while True:
            ev = sm.next_event()
            if isinstance(ev, NeedData):
                sm.receive_data(await ch.recv())
                continue
            if isinstance(ev, DirectTLS):
                if tls is None or self.raw.is_unix:
                    self.trace("direct SSL connection rejected")
                    return None
                await self.handshake(tls, sm.take_buffer())
                if (
                    self.channel.sslobj is None
                    or self.channel.sslobj.selected_alpn_protocol() != "postgresql"
                ):
                    self.trace("direct SSL connection rejected")
                    raise LogOnly(
                        "received direct SSL connection request without ALPN protocol negotiation extension"
                    )
                self.trace("direct SSL connection accepted")
                ch.direct_tls = True
                sm.tls_started(direct=True)
                continue
            if isinstance(ev, SSLRequest):
                ok = tls is not None and not self.raw.is_unix and not ch.tls
                self.trace("SSLRequest accepted" if ok else "SSLRequest rejected")
                ch.send(b"S" if ok else b"N")
                sm.answered_ssl()
                if ok:
                    assert tls is not None
                    # PostgreSQL 17+: bytes the client pipelined after SSLRequest are the start of the TLS stream.
                    await self.handshake(tls, sm.take_buffer())
                    sm.tls_started(direct=False)
                elif sm.buffered:
                    raise PgError(
                        PROTOCOL_VIOLATION,
                        "received unencrypted data after SSL request",
                        severity="FATAL",
                        detail=UNENCRYPTED_AFTER_REQUEST_DETAIL,
                    )
                continue
            if isinstance(ev, GSSENCRequest):
                self.trace("GSSENCRequest rejected")
                ch.send(b"N")
                sm.answered_gss()
                if sm.buffered:
                    raise PgError(
                        PROTOCOL_VIOLATION,
                        "received unencrypted data after GSSAPI encryption request",
                        severity="FATAL",
                        detail=UNENCRYPTED_AFTER_REQUEST_DETAIL,
                    )
                continue
            if isinstance(ev, CancelRequest):
                await self.server.cancel(ev.pid, ev.key)
                return None
            assert isinstance(ev, Startup)
            self.inbuf += sm.take_buffer()
            return ev

    def _alone(self) -> bool:
        """No other client connection on this process's loop: nobody to stall, so the handshake's public-key
        step runs on the loop instead of going to a worker thread and back."""
        return len(self.server.connections) <= 1

    async def handshake(self, tls: tlsmod.TlsConfig, initial: bytes) -> None:
        try:
            await self.channel.start_tls(tls.context, initial, alone=self._alone)
        except TlsFailed as e:
            err = tlsmod.accept_error(
                e.exc if e.exc is not None else EOFError(), self.channel.handshake_obj, tls.protocol_range
            )
            log.log(err.message, detail=err.detail, hint=err.hint)
            self.server.stats.handshake_failed(str(e))
            raise
        assert self.channel.sslobj is not None
        self.tls_config = tls.for_context(self.channel.sslobj.context)  # SNI may have chosen another host's
        try:
            self.tls_facts = tlsmod.connection_facts(self.channel.sslobj)
        except tlsmod.PeerCertError as e:
            self.server.stats.handshake_failed("client certificate name")
            raise LogOnly(str(e)) from None
        self.server.stats.handshake(self.tls_facts.version, self.tls_facts.cipher)

    # --- startup, limits, authentication ---

    async def begin_session(self, startup: Startup) -> AuthOutcome:
        """Limits and authentication (within authentication_timeout)."""
        self.startup = startup
        ch = self.channel
        if startup.needs_negotiation:
            # The newest minor version this server speaks that the client asked for (ProcessStartupPacket).
            ch.hold(
                m.negotiate_protocol_version(min(startup.minor, PROTOCOL_LATEST_MINOR), startup.unrecognized)
            )
        if self.server.shutting_down:
            raise PgError(ADMIN_SHUTDOWN, "the database system is shutting down", severity="FATAL")
        max_conn = int(self.settings["max_connections"])
        if self.server.registry.count() >= max_conn:
            raise PgError(TOO_MANY_CONNECTIONS, "sorry, too many clients already", severity="FATAL")

        return await authenticate(self, startup)

    async def open_session(self, startup: Startup, ident: AuthOutcome) -> None:
        """After authentication (outside authentication_timeout, as PostgreSQL): the backend's session
        (which may wait for a pooled upstream session), then ParameterStatus, BackendKeyData, ReadyForQuery."""
        ch = self.channel
        info = SessionInfo(
            pid=self.server.registry.new_pid(),
            user=startup.user,
            database=startup.database,
            client_addr=None if self.raw.is_unix else self.host,
            client_port=self.port,
            application_name=startup.params.get("application_name", ""),
            options={k: v for k, v in startup.params.items() if k not in ("user", "database")},
            tls=self.tls_info(),
            is_superuser=ident.is_superuser,
            proven=ident.proven,
        )
        entry = Entry(info=info, cancel_key=self.server.registry.new_cancel_key(startup.minor))
        self.server.registry.add(entry)
        self.entry = entry
        if self.server.is_async and startup.database == ADMIN_DATABASE:
            if not admin.allowed(self.server, startup.user, ident.is_superuser):
                raise admin.refused(startup.user)
            entry.session = admin.AdminSession(self.server, info.pid)
            parameters = entry.session.parameters()
        elif self.server.is_async:
            entry.session = await cast(AsyncBackend, self.server.backend).open(info)
            parameters = entry.session.parameters()
        else:
            loop = asyncio.get_running_loop()
            session = await loop.run_in_executor(
                self.server.db_executor,
                cast(Backend, self.server.backend).open_session,
                info,
                self.server.registry,
            )
            entry.session = session
            parameters = session.startup_parameters()
        out: list[bytes] = []  # after AuthenticationOk, which authenticate() held (Channel.hold)
        for name, value in parameters:
            out.append(m.parameter_status(name, value))
        out.append(m.backend_key_data(info.pid, entry.cancel_key))
        out.append(m.ready_for_query("I"))
        ch.send(b"".join(out))
        if self.server.log_aspect(self.snap, "authorization"):
            line = f"connection authorized: user={info.user} database={info.database}"
            if "application_name" in startup.params:
                line += f" application_name={info.application_name}"
            if info.tls is not None:
                line += f" SSL enabled (protocol={info.tls.version}, cipher={info.tls.cipher}, bits={info.tls.bits})"
            log.log(line)

    def tls_info(self) -> TlsInfo | None:
        f = self.tls_facts
        if f is None:
            return None
        return TlsInfo(
            version=f.version,
            cipher=f.cipher,
            bits=f.bits,
            client_cert_present=f.peer_cert_der is not None,
            client_dn=f.client_dn,
            client_serial=f.client_serial,
            issuer_dn=f.issuer_dn,
            client_cert_der=f.peer_cert_der,
        )

    # --- reading messages ---
    async def read_message(self, buf: bytearray, max_len: int) -> tuple[bytes, bytes] | None:
        """One complete message from ``buf`` (refilled from the channel); None at EOF."""
        while True:
            msg = take_message(buf, max_len)
            if msg is not None:
                return msg
            data = await self.channel.recv()
            if not data:
                return None
            buf += data

    # --- the session ---
    async def session_loop(self) -> bool:
        """Serve the session; True when it goes on in callbacks alone (its end is handled then)."""
        entry = self.entry
        assert entry is not None and entry.session is not None
        if self.server.is_async:
            entry.state = "active"
            if hasattr(entry.session, "finish_run"):
                # Transaction pooling: an idle client holds no task (and no coroutine frames) until it leaves.
                detached = cast(DetachedSession, entry.session)
                loop = asyncio.get_running_loop()

                def on_end() -> None:
                    loop.create_task(self._after_detached(detached))

                detached.start(self.channel, self.inbuf, on_end)
                return True
            relayed = cast(AsyncSession, entry.session)
            await relayed.run(self.channel, self.inbuf, lambda: self.server.shutting_down_fast)
            return False
        session = cast(Session, entry.session)  # not is_async: a blocking Session
        loop = asyncio.get_running_loop()
        send = self.channel.threadsafe_sender(loop)
        channel = self.channel

        def post_on_loop(data: bytes) -> None:
            if not channel.closing:
                channel.send(data)

        def post(data: bytes) -> None:
            loop.call_soon_threadsafe(post_on_loop, data)

        session.set_async_sender(post)
        buf = self.inbuf
        while True:
            first = await self.read_message(buf, PQ_LARGE_MESSAGE_LIMIT)
            if first is None:
                return False
            batch = [first]
            while (more := take_message(buf, PQ_LARGE_MESSAGE_LIMIT)) is not None:
                batch.append(more)
            terminate = False
            for i, (kind, _body) in enumerate(batch):
                if kind == b"X":
                    batch = batch[:i]
                    terminate = True
                    break
                if kind[0] not in SESSION_MESSAGE_TYPES:
                    # Run what came before, then refuse like PostgreSQL.
                    await self.run_batch(session, batch[:i], send)
                    raise PgError(
                        PROTOCOL_VIOLATION, f"invalid frontend message type {kind[0]}", severity="FATAL"
                    )
            if batch:
                await self.run_batch(session, batch, send)
            if terminate or self.server.shutting_down_fast:
                return False

    async def run_batch(self, session: Session, batch: list[tuple[bytes, bytes]], send: Send) -> None:
        if not batch:
            return
        entry = self.entry
        assert entry is not None
        for kind, body in batch:
            if kind == b"Q":
                entry.query = body.rstrip(b"\0").decode("utf-8", "replace")
        entry.state = "active"
        if (reply := session.answer_inline(batch)) is not None:
            self.channel.send(reply)  # answered without database work (the embedded point-lookup index)
            await self.channel.drain()
            entry.state = "idle"
            return

        # The last chunk of output is held back and written here once the worker is done, so a short
        # reply costs one hop between threads (the result) instead of two (the data, then the result).
        held: list[bytes] = []

        def hold(data: bytes) -> None:
            if held:
                send(held.pop())
            held.append(data)

        def work() -> str | None:
            status = None
            for kind, body in batch:
                st = session.handle(kind, body, hold)
                if st is not None:
                    status = st
            return status

        try:
            status = await asyncio.get_running_loop().run_in_executor(self.server.db_executor, work)
        finally:
            if held:
                self.channel.send(
                    held.pop()
                )  # after the chunks queued by the worker: the loop runs them in order
        await self.channel.drain()
        if status is not None:
            entry.state = {"I": "idle", "T": "idle in transaction", "E": "idle in transaction (aborted)"}.get(
                status, "idle"
            )


def take_message(buf: bytearray, max_len: int) -> tuple[bytes, bytes] | None:
    """Split one message (type byte, Int32 length, body) off the front of ``buf``.

    As PostgreSQL's SocketBackend: a type that is no frontend message comes back at once with an empty body
    (the caller refuses it with FATAL); only Query, FunctionCall, Bind, Parse and CopyData may be large, the
    others are cut at PQ_SMALL_MESSAGE_LIMIT; a bad length is logged only (COMMERROR) and the connection ends.
    """
    if len(buf) < 5:
        return None
    if buf[0] not in SESSION_MESSAGE_TYPES and buf[0] != 88:  # 88: Terminate
        kind = bytes(buf[0:1])
        buf.clear()
        return kind, b""
    (length,) = struct.unpack_from("!i", buf, 1)
    limit = max_len if buf[0] in LARGE_MESSAGE_TYPES else min(max_len, PQ_SMALL_MESSAGE_LIMIT)
    if length < 4 or length > limit:
        raise LogOnly("invalid message length")
    if len(buf) < 1 + length:
        return None
    kind = bytes(buf[0:1])
    body = bytes(buf[5 : 1 + length])
    del buf[: 1 + length]
    return kind, body
