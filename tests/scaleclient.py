"""A minimal PostgreSQL protocol client on asyncio for holding thousands of TLS sessions at once.

Used by the scale test (``tests/relay/test_txn_pool.py``) and ``bench/txn_scale.py``: SSLRequest, a TLS
handshake verifying the server against a root certificate, a protocol 3.0 startup for a trust login, then
simple Queries read up to ReadyForQuery.  No libpq: ten thousand libpq connections would cost a thread or a
process each in every Python driver.
"""

from __future__ import annotations

import asyncio
import resource
import ssl
import struct
from collections.abc import Awaitable, Callable
from typing import Any

SSL_REQUEST = struct.pack("!ii", 8, 80877103)
TERMINATE = b"X\0\0\0\x04"


def startup(user: str = "postgres", database: str = "postgres") -> bytes:
    body = struct.pack("!i", 196608) + f"user\0{user}\0database\0{database}\0\0".encode()
    return struct.pack("!i", len(body) + 4) + body


def query(sql: str) -> bytes:
    q = sql.encode() + b"\0"
    return b"Q" + struct.pack("!i", len(q) + 4) + q


async def messages_to_ready(reader: asyncio.StreamReader) -> list[tuple[str, bytes]]:
    """The messages (type, body) up to and with ReadyForQuery."""
    out = []
    while True:
        head = await reader.readexactly(5)
        kind = head[:1].decode()
        out.append((kind, await reader.readexactly(struct.unpack("!i", head[1:])[0] - 4)))
        if kind == "Z":
            return out


async def read_to_ready(reader: asyncio.StreamReader) -> bool:
    """Read messages up to ReadyForQuery; False if an ErrorResponse came before it."""
    return all(kind != "E" for kind, _body in await messages_to_ready(reader))


async def login(
    port: int, ctx: ssl.SSLContext, user: str = "postgres", database: str = "postgres", pipelined: bytes = b""
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TLS session on 127.0.0.1:``port`` (SSLRequest, then TLS with SNI ``localhost``), logged in and idle;
    ``pipelined`` (messages) is sent with the startup packet, and its replies are left to read."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(SSL_REQUEST)
        await writer.drain()
        if await reader.readexactly(1) != b"S":
            raise RuntimeError("the server refused TLS")
        await writer.start_tls(ctx, server_hostname="localhost")
        writer.write(startup(user, database) + pipelined)
        await writer.drain()
        if not await read_to_ready(reader):
            raise RuntimeError("login refused")
    except BaseException:
        writer.close()
        raise
    return reader, writer


Session = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def login_many(
    port: int,
    ctx: ssl.SSLContext,
    n: int,
    concurrency: int,
    user: str = "postgres",
    pipelined: bytes = b"",
    then: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]] | None = None,
    return_exceptions: bool = False,
) -> list[Any]:
    """``n`` TLS sessions logged in as ``user`` (:func:`login`, ``pipelined`` sent with each startup packet), at most ``concurrency`` logins (and
    ``then(reader, writer)``, run on each session once it is in) at a time.  The sessions in order; with
    ``return_exceptions`` a failed one is its exception instead of the first failure raised."""
    gate = asyncio.Semaphore(concurrency)

    async def one() -> Session:
        async with gate:
            reader, writer = await login(port, ctx, user=user, pipelined=pipelined)
            if then is not None:
                await then(reader, writer)
            return reader, writer

    return await asyncio.gather(*(one() for _ in range(n)), return_exceptions=return_exceptions)


def terminate_all(sessions: list[Session]) -> None:
    """Send Terminate on every session and close it."""
    for _reader, writer in sessions:
        writer.write(TERMINATE)
        writer.close()


def hold(port: int, n: int, rootcert: str, concurrency: int, logged_in: Any, go: Any, done: Any) -> None:
    """In a client process: log ``n`` TLS sessions in (at most ``concurrency`` handshakes at a time) and put
    ``(connected, failures, sample errors)`` on ``logged_in``; keep them all idle until ``go`` is set, then
    run ``SELECT 1`` on every one, end them with Terminate, and put ``(queries answered, failures)`` on
    ``done``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = n + 1000
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), max(hard, need)))
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    async def main() -> None:
        ctx = ssl.create_default_context(cafile=rootcert)
        gate = asyncio.Semaphore(concurrency)
        sessions = await login_many(port, ctx, n, concurrency, return_exceptions=True)
        live = [s for s in sessions if not isinstance(s, BaseException)]
        errors = [repr(s)[:200] for s in sessions if isinstance(s, BaseException)]
        logged_in.put((len(live), len(errors), errors[:3]))
        await asyncio.get_running_loop().run_in_executor(None, go.wait)

        async def use(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
            async with gate:
                writer.write(query("SELECT 1"))
                ok = await read_to_ready(reader)
                writer.write(TERMINATE)
                writer.close()
                return ok

        answers = await asyncio.gather(*(use(r, w) for r, w in live), return_exceptions=True)
        done.put((sum(a is True for a in answers), sum(a is not True for a in answers)))

    asyncio.run(main())
