"""The client connection's byte transport (pgtls.server.channel) over real loopback sockets and real TLS:
received bytes reach the TLS engine at most TLS_PIECE at a time in every path (pre-login reads, the
handshake's pipelined bytes, the relay's callback), and nothing is lost, reordered or duplicated on the way.

An OpenSSL memory BIO keeps the largest buffer it ever held, so what these tests pin down is how much the
input BIO is ever asked to hold: with whole chunks fed at once, a client that sent a large message kept an
input buffer that size for the rest of its connection."""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from pgtls.server.channel import TLS_PIECE, Channel, RawConn

PAYLOAD = 300_000  # bytes the client sends at once: several 256 KiB socket reads' worth of TLS records
BACKLOG_BEFORE_READING = 100_000  # raw bytes queued on the server side before its first read
# A piece of ciphertext, plus at most one record that a piece left incomplete (16 KiB and its overhead).
MAX_INPUT_PENDING = TLS_PIECE + (1 << 14) + 256


def _contexts(certs: Any) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(str(certs.path("server-chain.crt")), str(certs.path("server.key")))
    client = ssl.create_default_context(cafile=str(certs.path("root_ca.crt")))
    return server, client


async def _pair() -> tuple[RawConn, asyncio.StreamReader, asyncio.StreamWriter, asyncio.base_events.Server]:
    """A pgtls RawConn accepted on a loopback port and the asyncio client connected to it."""
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[RawConn] = loop.create_future()
    server = await loop.create_server(lambda: RawConn(accepted.set_result), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    return await accepted, reader, writer, server


async def _until(cond: Callable[[], bool], what: str) -> None:
    for _ in range(1000):
        if cond():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def _run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(main(), 30))


def test_plain_reads_with_a_limit_keep_order_and_the_rest() -> None:
    async def main() -> None:
        raw, _reader, writer, server = await _pair()
        data = os.urandom(PAYLOAD)
        writer.write(data)
        await _until(lambda: len(raw.inbox) >= BACKLOG_BEFORE_READING, "the backlog")
        got = bytearray()
        while len(got) < PAYLOAD:
            piece = await raw.recv(TLS_PIECE)
            assert 0 < len(piece) <= TLS_PIECE
            got += piece
        assert bytes(got) == data
        writer.close()
        assert await raw.recv(TLS_PIECE) == b""  # EOF once all is read
        server.close()

    _run(main)


@pytest.mark.parametrize("pipelined_with_hello", [False, True], ids=["after_handshake", "with_client_hello"])
def test_tls_reads_feed_the_engine_in_pieces(certs: Any, pipelined_with_hello: bool) -> None:
    """A client sends 300 KB right after its handshake (with_client_hello: the server only starts its
    handshake once those bytes are queued, as when a direct-TLS client's first flight and data arrive
    together); the server reads them through Channel.recv, and the engine's input never holds more than a
    piece and one incomplete record."""
    server_ctx, client_ctx = _contexts(certs)

    async def main() -> None:
        raw, _reader, writer, server = await _pair()
        channel = Channel(raw, None)
        data = os.urandom(PAYLOAD)
        client_done = asyncio.ensure_future(writer.start_tls(client_ctx, server_hostname="localhost"))
        if pipelined_with_hello:
            await _until(lambda: len(raw.inbox) > 0, "the ClientHello")
            initial = bytes(raw.inbox)
            raw.inbox.clear()
            handshake = asyncio.ensure_future(channel.start_tls(server_ctx, initial))
        else:
            handshake = asyncio.ensure_future(channel.start_tls(server_ctx, b""))
        await client_done
        writer.write(data)
        await handshake
        await _until(lambda: len(raw.inbox) >= BACKLOG_BEFORE_READING, "the backlog")
        got = bytearray()
        most = 0
        while len(got) < PAYLOAD:
            piece = await channel.recv()
            assert piece
            got += piece
            assert channel._in is not None
            most = max(most, channel._in.pending)
        assert bytes(got) == data
        assert most <= MAX_INPUT_PENDING, most
        writer.close()
        server.close()

    _run(main)


def test_the_relay_callback_feeds_the_engine_in_pieces(certs: Any) -> None:
    """Bytes queued before the relay takes over and bytes that arrive in its callback: all delivered in
    order, the engine's input never above a piece and one incomplete record."""
    server_ctx, client_ctx = _contexts(certs)

    async def main() -> None:
        raw, _reader, writer, server = await _pair()
        channel = Channel(raw, None)
        handshake = asyncio.ensure_future(channel.start_tls(server_ctx, b""))
        await writer.start_tls(client_ctx, server_hostname="localhost")
        await handshake
        first, second = os.urandom(PAYLOAD), os.urandom(PAYLOAD)
        writer.write(first)
        await _until(lambda: len(raw.inbox) >= BACKLOG_BEFORE_READING, "the backlog")
        got = bytearray()
        most = 0
        ended = asyncio.get_running_loop().create_future()
        inbio = channel._in
        assert inbio is not None
        real_write = inbio.write

        class Watched:  # ssl.MemoryBIO's type cannot take attributes: watch its writes through a stand-in
            pending = property(lambda _self: inbio.pending)

            @staticmethod
            def write(b: bytes) -> int:
                nonlocal most
                n = real_write(b)
                most = max(most, inbio.pending)
                return n

        channel._in = Watched()  # type: ignore[assignment]

        def on_plain(b: bytes) -> None:
            got.extend(b)

        channel.relay(on_plain, lambda: ended.done() or ended.set_result(None))
        writer.write(second)
        await _until(lambda: len(got) >= 2 * PAYLOAD, "all the bytes")
        assert bytes(got) == first + second
        assert most <= MAX_INPUT_PENDING, most
        writer.close()
        await ended
        server.close()

    _run(main)
