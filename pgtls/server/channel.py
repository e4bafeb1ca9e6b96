"""Byte transport of one client connection: a raw asyncio protocol plus an optional TLS layer.

The TLS layer is an ``ssl.SSLObject`` over two ``MemoryBIO``\\ s, so pgtls owns
every byte it received: nothing is buffered out of sight between an SSLRequest
answer and the handshake (CVE-2021-23214), and bytes already read (a pipelined
or direct-TLS ClientHello) are handed to the TLS engine explicitly.  asyncio's
``start_tls`` is avoided on purpose (it drops already-buffered bytes on 3.11).

Handshake steps run in a worker thread: they do the public-key operations, and
the event loop must stay free for other connections.  When there is no other
connection to keep waiting, or only cheap MACs are left, they run on the loop.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import typing
from collections.abc import Callable

from pgtls.server.offload import Offload

# Pause reading when this much unconsumed input is queued (flow control against a flooding client).
READ_HIGH_WATER = 1 << 20
# A worker thread that produces output blocks when this much is queued for the client.
SEND_HIGH_WATER = 4 << 20
# Plaintext goes through the TLS engine at most this much at a time, each piece's records taken out of the
# memory BIO before the next goes in, and received TLS bytes go in at most this much at a time (in the
# handshake, in reads and in a relay's callback alike): an OpenSSL memory BIO keeps the largest buffer it
# ever held, so without pieces every client would keep, for as long as it stays connected, as much memory
# as its largest reply or read (bench/README.md, "Where an idle client's memory goes").  One TLS record
# holds 16 KiB of plaintext.
TLS_PIECE = 1 << 14


class RawConn(asyncio.Protocol):
    """The socket side: collects received bytes and wakes one waiter."""

    def __init__(self, on_connect: Callable[[RawConn], None]) -> None:
        self._on_connect = on_connect
        self.transport: asyncio.Transport | None = None
        self.inbox = bytearray()
        self.eof = False
        self.lost = False
        self._waiter: asyncio.Future[None] | None = None
        self._write_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._reading_paused = False
        self.peer: tuple[str, int] | None = None
        self.is_unix = False
        self.resume_hook: Callable[[], None] | None = None  # called when writing may go on (a relay resumes)
        # A relay takes the bytes straight from data_received (no buffer, no waiter) and hears of EOF.
        self.sink: Callable[[bytes], None] | None = None
        self.on_eof: Callable[[], None] | None = None

    # --- asyncio.Protocol ---
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = typing.cast(asyncio.Transport, transport)  # uvloop's transports are no subclasses
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            peer = transport.get_extra_info("peername")
            self.peer = (str(peer[0]), int(peer[1])) if peer else None
        else:
            self.is_unix = True
        self._on_connect(self)

    def data_received(self, data: bytes) -> None:
        sink = self.sink
        if sink is not None:
            sink(data)
            return
        self.inbox += data
        if len(self.inbox) > READ_HIGH_WATER and not self._reading_paused and self.transport:
            self.transport.pause_reading()
            self._reading_paused = True
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        self._tell_eof()
        return True  # keep the socket open for a last FATAL message

    def _tell_eof(self) -> None:
        cb = self.on_eof
        if cb is not None:
            self.on_eof = None
            cb()

    def pause_reading(self) -> None:
        if self.transport is not None and not self.lost and not self._reading_paused:
            self.transport.pause_reading()
            self._reading_paused = True

    def resume_reading(self) -> None:
        if self.transport is not None and not self.lost and self._reading_paused:
            self.transport.resume_reading()
            self._reading_paused = False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.eof = True
        self._tell_eof()
        self._wake()
        self._wake_drain()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_drain()
        if self.resume_hook is not None:
            self.resume_hook()

    @property
    def write_paused(self) -> bool:
        return self._write_paused

    # --- helpers ---
    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _wake_drain(self) -> None:
        for w in self._drain_waiters:
            if not w.done():
                w.set_result(None)
        self._drain_waiters.clear()

    async def recv(self, limit: int = 0) -> bytes:
        """The bytes received so far, at most ``limit`` of them if given (waiting if none); b'' at EOF."""
        inbox = self.inbox
        while not inbox:
            if self.eof:
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if limit and len(inbox) > limit:
            data = bytes(inbox[:limit])
            del inbox[:limit]
            if len(inbox) > READ_HIGH_WATER:
                return data
        else:
            data = bytes(inbox)
            inbox.clear()
        if self._reading_paused and self.transport and not self.lost:
            self.transport.resume_reading()
            self._reading_paused = False
        return data

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.lost and data:
            self.transport.write(data)

    def writelines(self, parts: list[bytes]) -> None:
        if self.transport is not None and not self.lost and parts:
            self.transport.writelines(parts)

    async def drain(self) -> None:
        while self._write_paused and not self.lost:
            fut = asyncio.get_running_loop().create_future()
            self._drain_waiters.append(fut)
            await fut

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class TlsFailed(Exception):
    """The TLS handshake failed; ``exc`` is the underlying error (None: EOF)."""

    def __init__(self, reason: str, exc: BaseException | None = None) -> None:
        super().__init__(reason)
        self.exc = exc


class Channel:
    """Plaintext view of a connection: TLS (if started) is applied transparently."""

    def __init__(self, raw: RawConn, offload: Offload | None) -> None:
        self.raw = raw
        self.offload = offload
        self.sslobj: ssl.SSLObject | None = None
        self._in: ssl.MemoryBIO | None = None
        self._out: ssl.MemoryBIO | None = None
        self.direct_tls = False
        self.handshake_obj: ssl.SSLObject | None = None  # kept for verify-failure details
        self._closing = False
        # thread -> loop output queue accounting (made by threadsafe_sender: only the DuckDB backend's
        # threads send from outside the loop, and a Condition is about 1.3 KB per idle client)
        self._cond: threading.Condition | None = None
        self._inflight = 0
        self._held = b""  # plaintext that goes out with the next send (see hold)

    @property
    def tls(self) -> bool:
        return self.sslobj is not None

    async def start_tls(
        self, context: ssl.SSLContext, initial: bytes, alone: Callable[[], bool] | None = None
    ) -> None:
        """Run the server handshake; ``initial`` are bytes already received (fed first).  A step goes to the
        worker threads unless ``alone()`` says no other connection shares the loop (nothing to stall) or
        what is left of the handshake is cheap."""
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        sslobj = context.wrap_bio(self._in, self._out, server_side=True)
        self.handshake_obj = sslobj
        if initial:  # read again below, TLS_PIECE at a time
            self.raw.inbox[:0] = initial
        offload = self.offload
        inline = False  # the rest of the handshake is cheap (see _rest_is_cheap)
        while True:
            if not self._in.pending:
                # Nothing to feed the engine yet: wait here rather than spend a thread hand-off on a
                # handshake step that could only ask for more data.
                self._flush_tls()
                data = await self.raw.recv(TLS_PIECE)
                if not data:
                    raise TlsFailed("EOF detected") from None
                self._in.write(data)
            try:
                if inline or offload is None or (alone is not None and alone()):
                    sslobj.do_handshake()
                else:
                    await offload.run(sslobj.do_handshake)
                break
            except ssl.SSLWantReadError:
                inline = inline or _rest_is_cheap(context, sslobj)
                self._flush_tls()
                data = await self.raw.recv(TLS_PIECE)
                if not data:
                    raise TlsFailed("EOF detected") from None
                self._in.write(data)
            except ssl.SSLError as e:
                self._flush_tls()  # send the alert
                raise TlsFailed(_ssl_reason(e), e) from None
            except OSError as e:
                raise TlsFailed(str(e), e) from None
        self._flush_tls()
        self.sslobj = sslobj

    def _flush_tls(self) -> None:
        assert self._out is not None
        data = self._out.read()
        if data:
            self.raw.write(data)

    async def recv(self) -> bytes:
        """Next plaintext bytes (b'' at EOF)."""
        self._release_held()  # the client may be waiting for it
        if self.sslobj is None:
            return await self.raw.recv()
        assert self._in is not None
        while True:
            if not self._in.pending and not self.sslobj.pending():
                # Nothing to decrypt: wait for bytes instead of asking OpenSSL (which would raise WantRead).
                raw = await self.raw.recv(TLS_PIECE)
                if not raw:
                    return b""
                self._in.write(raw)
            try:
                data = self.sslobj.read(1 << 15)  # one TLS record (at most 16 KiB of plaintext) per read
                if data:
                    return data
                return b""  # clean TLS close_notify
            except ssl.SSLWantReadError:
                raw = await self.raw.recv(TLS_PIECE)
                if not raw:
                    return b""
                self._in.write(raw)
            except ssl.SSLZeroReturnError:
                return b""
            except ssl.SSLError:
                return b""
            finally:
                self._flush_tls()

    # --- relaying: bytes pushed from the protocol callbacks, no task in between ---
    def relay(self, on_plain: Callable[[bytes], None], on_eof: Callable[[], None]) -> None:
        """From now on, hand every piece of plaintext the client sends to ``on_plain`` as it arrives (TLS
        records decrypted in the callback), and call ``on_eof`` once when the client's side ends.  Bytes
        already received but not read are handed over at once."""
        self._release_held()
        raw = self.raw
        done = False

        def eof() -> None:
            nonlocal done
            if not done:
                done = True
                on_eof()

        if self.sslobj is None:

            def sink(data: bytes) -> None:
                on_plain(data)
        else:
            sslobj, inbio, outbio = self.sslobj, self._in, self._out
            assert inbio is not None and outbio is not None

            def sink(data: bytes) -> None:
                n = len(data)
                if n <= TLS_PIECE:  # the usual case: all of it at once
                    if n:
                        inbio.write(data)
                    fed, view = n, None
                else:
                    view = memoryview(data)
                    inbio.write(view[:TLS_PIECE])
                    fed = TLS_PIECE
                parts = []
                try:
                    while True:
                        try:
                            chunk = sslobj.read(1 << 17)
                        except ssl.SSLWantReadError:
                            if fed >= n or view is None:
                                raise
                            inbio.write(view[fed : fed + TLS_PIECE])
                            fed = min(fed + TLS_PIECE, n)
                            continue
                        if not chunk:  # close_notify
                            raise ssl.SSLZeroReturnError
                        parts.append(chunk)
                        if fed >= n and not inbio.pending and not sslobj.pending():
                            break  # all decrypted: no second read just to be told WantRead
                except ssl.SSLWantReadError:
                    pass
                except (ssl.SSLZeroReturnError, ssl.SSLError):
                    if parts:
                        on_plain(b"".join(parts))
                    self._flush_tls()
                    eof()
                    return
                if outbio.pending:  # reading rarely produces TLS output (a key update's answer)
                    self._flush_tls()
                if parts:
                    on_plain(parts[0] if len(parts) == 1 else b"".join(parts))

        raw.on_eof = eof
        raw.sink = sink
        pending = bytes(raw.inbox)
        raw.inbox.clear()
        if pending or self.sslobj is not None:
            sink(pending)  # with TLS also what the engine holds already
        if raw.eof:
            eof()

    def hold(self, data: bytes) -> None:
        """Plaintext that goes out with the next :meth:`send` (or before the next read, or at close): as
        PostgreSQL does not flush NegotiateProtocolVersion, AuthenticationOk or SASLFinal on their own, the
        client gets them in one TLS record with what follows, and wakes once."""
        self._held += data

    def _release_held(self) -> None:
        if self._held:
            self.send(b"")

    def send(self, data: bytes) -> None:
        """Queue plaintext for the client (event-loop thread only)."""
        if self._held:
            data = self._held + data
            self._held = b""
        if not data:
            return
        if self.sslobj is None:
            self.raw.write(data)
            return
        if len(data) <= TLS_PIECE:
            try:
                self.sslobj.write(data)
            except ssl.SSLError:
                return
            self._flush_tls()
            return
        sslobj, outbio = self.sslobj, self._out
        assert outbio is not None
        view = memoryview(data)
        records = []
        try:
            for start in range(0, len(data), TLS_PIECE):
                sslobj.write(view[start : start + TLS_PIECE])
                records.append(outbio.read())
        except ssl.SSLError:
            pass  # what was encrypted still goes out: the records after it would follow it in sequence
        self.raw.writelines(records)

    async def drain(self) -> None:
        await self.raw.drain()

    def threadsafe_sender(self, loop: asyncio.AbstractEventLoop) -> Callable[[bytes], None]:
        """A ``send`` for worker threads: ordered, with back-pressure at SEND_HIGH_WATER."""
        if self._cond is None:
            self._cond = threading.Condition()
        cond = self._cond

        def _write(data: bytes) -> None:
            self.send(data)
            if self.raw._write_paused and not self.raw.lost:
                loop.create_task(self._release_after_drain(len(data)))
            else:
                self._release(len(data))

        def send(data: bytes) -> None:
            if not data:
                return
            with cond:
                while self._inflight > SEND_HIGH_WATER and not self.raw.lost:
                    cond.wait(1.0)
                if self.raw.lost:
                    return
                self._inflight += len(data)
            loop.call_soon_threadsafe(_write, data)

        return send

    async def _release_after_drain(self, n: int) -> None:
        await self.raw.drain()
        self._release(n)

    def _release(self, n: int) -> None:
        cond = self._cond
        assert cond is not None  # only threadsafe_sender's sends are counted
        with cond:
            self._inflight -= n
            cond.notify_all()

    @property
    def closing(self) -> bool:
        return self._closing or self.raw.lost

    def close(self) -> None:
        if self._closing:
            return
        self._release_held()
        self._closing = True
        if self.sslobj is not None:
            try:
                self.sslobj.unwrap()
            except (ssl.SSLError, ValueError, OSError):
                pass
            self._flush_tls()
        self.raw.close()
        if self._cond is not None:
            with self._cond:
                self._cond.notify_all()


def _ssl_reason(e: ssl.SSLError) -> str:
    reason = getattr(e, "reason", None)
    if isinstance(e, ssl.SSLCertVerificationError):
        return "certificate verify failed"
    if reason:
        return str(reason).lower().replace("_", " ")
    return str(e)


def _rest_is_cheap(context: ssl.SSLContext, sslobj: ssl.SSLObject) -> bool:
    """After the server's first TLS 1.3 flight (key exchange and signature done in a worker thread), what is
    left without a client certificate to verify is the client's Finished: a few MACs, cheaper on the loop
    than a thread hand-off.  TLS 1.2 (its key exchange comes in the next step) and client certificates
    (public-key verification) stay in the thread."""
    if sslobj.context.verify_mode != ssl.CERT_NONE:  # SNI may have switched to a host that asks for one
        return False
    cipher = sslobj.cipher()
    return cipher is not None and cipher[1] == "TLSv1.3"
