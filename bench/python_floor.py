#!/usr/bin/env python3
"""What any Python proxy pays: the least a pooling TLS relay in Python can do, next to pgtls and PgBouncer.

The floor server (``--serve``, started by this script) is the smallest thing ``pgbench`` accepts as a TLS
front door to PostgreSQL: uvloop, one ``ssl.SSLObject`` on memory BIOs per client (the same OpenSSL work as
pgtls: TLS 1.3, the same ECDSA chain), the whole handshake on the event loop (no thread hand-off), no
authentication and no hba, no configuration, no logging, no limits or timeouts, no client identity for SQL,
no cancel keys of its own.  At login it takes an idle upstream session of a pool (opened over PostgreSQL's
Unix socket with trust at start) and answers with that session's ParameterStatus and BackendKeyData; then it
relays whole messages both ways, keeps a Terminate from the upstream, and on the client's Terminate sends
``DISCARD ALL`` (PgBouncer's and pgtls's reset) and returns the session to the pool when it answers.  It
is not safe to put in front of anything; it measures what the interpreter, asyncio and OpenSSL cost a relay
that does almost nothing else.

    .venv/bin/python bench/python_floor.py [--rounds 3] [-T 4] [--select-time 8]

Variants add one piece of pgtls's login each (``FLOORS``): ``floor+offload`` does the first handshake step
(the public-key work) in a thread of pgtls's own ``Offload``, as pgtls does when another connection shares
its loop; ``floor+noop`` hands a no-op to that thread at the same point and does the handshake on the loop
(the hand-off's own cost); ``floor+2rt`` makes two round trips per login on a shared privileged upstream
session (a prepared ``SELECT``, where pgtls runs its role lookup and its identity-row upsert);
``floor+both`` the hand-off with the handshake and the round trips; ``floor+task`` is the bare floor with its
login written as pgtls writes its own (a coroutine per connection awaiting each step under a login timeout,
and the reset awaited), to see what that style costs.

The servers (the floors and PgBouncer in front of the same PostgreSQL, pgtls with one worker and its managed
cluster) take turns over ``pgbench -n -C -c 2 -j 2`` (TLS connects, ``SELECT 1``), and the bare floor, pgtls
and PgBouncer over ``pgbench -n -S -M simple -c 8 -j 2`` (select-only).  Printed per server: rate, the proxy
process's own CPU per unit, the PostgreSQL behind it, and the ratios floor/PgBouncer and pgtls/floor.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import functools
import socket
import ssl
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from pgtls.server.offload import Offload  # noqa: E402

SSL_REQUEST = 80877103
PROTOCOL_3 = 196608
AUTH_OK = b"R\0\0\0\x08\0\0\0\0"
RFQ_IDLE = b"Z\0\0\0\x05I"
DISCARD_ALL = b"Q\0\0\0\x10DISCARD ALL\0"
RFQ_HEAD = b"Z\0\0\0\x05"


def _msg(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!i", 4 + len(body)) + body


PREPARE = _msg(b"P", b"floor\0SELECT $1::int\0\0\0") + _msg(b"S", b"")
BIND_EXECUTE = _msg(b"B", b"\0floor\0\0\0\0\x01\0\0\0\x011\0\0") + _msg(b"E", b"\0\0\0\0\0") + _msg(b"S", b"")
UPSTREAM_POOL = 12  # sessions opened at start (pgbench uses at most 8 at once here)
# The floor and its variants, each one more piece of pgtls's login: its crowded handshake's thread hand-off,
# its two round trips to PostgreSQL per login (role lookup and identity row; here a prepared SELECT each).
FLOORS = {
    "floor": "",
    "floor+task": "task",
    "floor+noop": "noop",
    "floor+offload": "offload",
    "floor+2rt": "roundtrips=2",
    "floor+both": "offload,roundtrips=2",
}
READ_SIZE = 65536


# ---------------------------------------------------------------- the floor server


def _split(buf: bytearray) -> tuple[bytes, bool]:
    """Whole messages at the front of ``buf`` (removed from it), and whether a Terminate was among them (it
    and what follows are dropped: the client is leaving)."""
    pos, n = 0, len(buf)
    while n - pos >= 5:
        length = int.from_bytes(buf[pos + 1 : pos + 5], "big")
        if n - pos < 1 + length:
            break
        if buf[pos] == 0x58:  # 'X'
            out = bytes(buf[:pos])
            buf.clear()
            return out, True
        pos += 1 + length
    out = bytes(buf[:pos])
    del buf[:pos]
    return out, False


class Upstream(asyncio.Protocol):
    """One upstream session over PostgreSQL's Unix socket: its login, then relayed or resetting."""

    def __init__(self, pool: list[Upstream]) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.client: Client | None = None
        self.login = bytearray()
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.greeting = b""  # ParameterStatus + BackendKeyData, replayed to each client
        self.resetting = False
        self.reset_done: asyncio.Future[None] | None = None  # for a client that waits for the reset

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        body = b"user\0postgres\0database\0postgres\0\0"
        self.transport.write(struct.pack("!ii", 8 + len(body), PROTOCOL_3) + body)

    def data_received(self, data: bytes) -> None:
        if self.client is not None:
            self.client.send(data)
        elif self.resetting:
            if data.endswith(RFQ_IDLE):
                self.resetting = False
                self.pool.append(self)
                if self.reset_done is not None:
                    self.reset_done.set_result(None)
                    self.reset_done = None
        elif not self.ready.done():
            self.login += data
            if self.login.endswith(RFQ_IDLE):
                keep, pos = bytearray(), 0
                while pos < len(self.login):
                    kind, length = self.login[pos], int.from_bytes(self.login[pos + 1 : pos + 5], "big")
                    if kind in (0x53, 0x4B):  # ParameterStatus, BackendKeyData
                        keep += self.login[pos : pos + 1 + length]
                    pos += 1 + length
                self.greeting = bytes(keep)
                self.ready.set_result(None)

    def release(self) -> None:
        self.client = None
        assert self.transport is not None
        self.resetting = True
        self.transport.write(DISCARD_ALL)


class Admin(Upstream):
    """The privileged session: one prepared statement, run by pipelined requests answered in order."""

    def __init__(self) -> None:
        super().__init__([])
        self.waiting: collections.deque[asyncio.Future[None]] = collections.deque()

    def data_received(self, data: bytes) -> None:
        if not self.ready.done():
            super().data_received(data)
            if self.ready.done():
                assert self.transport is not None
                self.transport.write(PREPARE)
            return
        for _ in range(data.count(RFQ_HEAD)):
            if self.waiting:
                self.waiting.popleft().set_result(None)

    def request(self) -> asyncio.Future[None]:
        assert self.transport is not None
        f: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append(f)
        self.transport.write(BIND_EXECUTE)
        return f


@dataclass
class Extras:
    """What the floor does of pgtls's own work (all off: the bare floor)."""

    offload: Offload | None = None  # the first handshake step in a thread
    admin: Admin | None = None  # login round trips on the privileged session
    round_trips: int = 0
    noop: bool = False  # the hand-off without the work: a no-op in the thread, the handshake on the loop


def _nothing() -> None:
    return None


class Client(asyncio.Protocol):
    """One client: SSLRequest, TLS on memory BIOs, the startup packet, then the relay."""

    def __init__(self, ctx: ssl.SSLContext, take: Callable[[], Upstream | None], extras: Extras) -> None:
        self.ctx = ctx
        self.take = take
        self.extras = extras
        self.held: list[bytes] = []  # raw bytes that came while the first handshake step ran in a thread
        self.stepped = False  # that step has been sent to a thread
        self.transport: asyncio.Transport | None = None
        self.state = 0  # 0 SSLRequest, 1 handshake, 2 startup packet, 3 relay, 4 gone, 5 login, 6 in a thread
        self.buf = bytearray()
        self.inc = ssl.MemoryBIO()
        self.out = ssl.MemoryBIO()
        self.tls: ssl.SSLObject | None = None
        self.upstream: Upstream | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    def send(self, data: bytes) -> None:
        assert self.tls is not None and self.transport is not None
        self.tls.write(data)
        self.transport.write(self.out.read())

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        if self.state == 0:
            self.buf += data
            if len(self.buf) < 8:
                return
            if struct.unpack_from("!ii", self.buf) != (8, SSL_REQUEST):
                self.transport.close()
                return
            self.transport.write(b"S")
            self.tls = self.ctx.wrap_bio(self.inc, self.out, server_side=True)
            data, self.state = bytes(self.buf[8:]), 1
            self.buf.clear()
            if not data:
                return
        if self.state == 6:
            self.held.append(data)
            return
        if self.state == 1 and self.extras.offload is not None and not self.stepped:
            self.held.append(data)
            self._handshake_in_thread()
            return
        assert self.tls is not None
        self.inc.write(data)
        if self.state == 1:
            try:
                self.tls.do_handshake()
            except ssl.SSLWantReadError:
                if self.out.pending:
                    self.transport.write(self.out.read())
                return
            except ssl.SSLError:
                self.transport.close()
                return
            if self.out.pending:
                self.transport.write(self.out.read())
            self.state = 2
        try:
            while True:
                chunk = self.tls.read(READ_SIZE)
                if not chunk:
                    break
                self.buf += chunk
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLError:
            self.transport.close()
            return
        if self.state == 2:
            if len(self.buf) < 4 or len(self.buf) < int.from_bytes(self.buf[:4], "big"):
                return
            del self.buf[: int.from_bytes(self.buf[:4], "big")]
            up = self.take()
            if up is None:
                self.transport.close()  # the floor has no queue: pgbench here never uses more than the pool
                return
            self.upstream, up.client = up, self
            if self.extras.admin is not None:
                self.state = 5
                asyncio.ensure_future(self._login())
                return
            self.state = 3
            self.send(AUTH_OK + up.greeting + RFQ_IDLE)
        if self.state == 3:
            self._relay()

    def _handshake_in_thread(self) -> None:
        """pgtls's crowded path: the handshake step with the public-key work goes to a thread and back."""
        assert self.tls is not None and self.extras.offload is not None
        self.state, self.stepped = 6, True
        if self.extras.noop:
            self.extras.offload.run(_nothing).add_done_callback(self._back_from_nothing)
            return
        for chunk in self.held:
            self.inc.write(chunk)
        self.held.clear()
        tls = self.tls

        def step() -> bool:
            try:
                tls.do_handshake()
            except ssl.SSLWantReadError:
                return False
            return True

        def done(f: asyncio.Future[bool]) -> None:
            assert self.transport is not None
            if self.state != 6:
                return  # the client went meanwhile
            if f.exception() is not None:
                self.transport.close()
                return
            if self.out.pending:
                self.transport.write(self.out.read())
            self.state = 2 if f.result() else 1
            held, self.held = self.held, []
            for chunk in held:
                self.data_received(chunk)

        self.extras.offload.run(step).add_done_callback(done)

    def _back_from_nothing(self, _f: asyncio.Future[None]) -> None:
        """The hand-off alone (variant noop): the thread did nothing; the handshake step runs here."""
        if self.state != 6:
            return
        self.state = 1
        held, self.held = self.held, []
        for chunk in held:
            self.data_received(chunk)

    async def _login(self) -> None:
        """pgtls's login round trips to PostgreSQL (role lookup, identity row), as prepared statements on a
        shared privileged session."""
        assert self.extras.admin is not None and self.upstream is not None
        for _ in range(self.extras.round_trips):
            await self.extras.admin.request()
        if self.state != 5:
            return
        self.state = 3
        self.send(AUTH_OK + self.upstream.greeting + RFQ_IDLE)
        self._relay()

    def _relay(self) -> None:
        assert self.transport is not None
        if self.state == 3:
            out, terminated = _split(self.buf)
            assert self.upstream is not None and self.upstream.transport is not None
            if out:
                self.upstream.transport.write(out)
            if terminated:
                self._leave()
                self.transport.close()

    def _leave(self) -> None:
        if self.state == 4:
            return
        if self.upstream is not None:
            self.upstream.release()
            self.upstream = None
        self.state = 4

    def connection_lost(self, exc: Exception | None) -> None:
        self._leave()


LOGIN_TIMEOUT = 60.0
RESET_TIMEOUT = 10.0


class TaskClient(asyncio.Protocol):
    """The bare floor's login written the way pgtls writes its own (variant task): one coroutine per
    connection that awaits each step (the SSLRequest's bytes, each handshake flight, the startup packet, the
    relay's end, the reset's answer) under a login timeout, with bytes handed to it through a future; the
    relay itself stays in the protocol callbacks, as in pgtls."""

    def __init__(self, ctx: ssl.SSLContext, take: Callable[[], Upstream | None]) -> None:
        self.ctx = ctx
        self.take = take
        self.transport: asyncio.Transport | None = None
        self.inbox = bytearray()  # raw bytes not yet taken by the coroutine
        self.waiter: asyncio.Future[None] | None = None
        self.eof = False
        self.relaying = False
        self.inc = ssl.MemoryBIO()
        self.out = ssl.MemoryBIO()
        self.tls: ssl.SSLObject | None = None
        self.upstream: Upstream | None = None
        self.buf = bytearray()  # plaintext not yet relayed
        self.ended: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        self.task = asyncio.ensure_future(self.run())

    def data_received(self, data: bytes) -> None:
        if self.relaying:
            self._relay(data)
            return
        self.inbox += data
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self._wake()
        if self.ended is not None and not self.ended.done():
            self.ended.set_result(None)

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def recv(self) -> bytes:
        while not self.inbox:
            if self.eof:
                raise ConnectionError("client gone")
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
            self.waiter = None
        data = bytes(self.inbox)
        self.inbox.clear()
        return data

    def send(self, data: bytes) -> None:
        assert self.tls is not None and self.transport is not None
        self.tls.write(data)
        self.transport.write(self.out.read())

    def _decrypt(self) -> None:
        assert self.tls is not None
        try:
            while chunk := self.tls.read(READ_SIZE):
                self.buf += chunk
        except ssl.SSLWantReadError:
            pass

    async def _login(self) -> None:
        assert self.transport is not None
        raw = bytearray()
        while len(raw) < 8:
            raw += await self.recv()
        if struct.unpack_from("!ii", raw) != (8, SSL_REQUEST):
            raise ConnectionError("not an SSLRequest")
        self.transport.write(b"S")
        self.tls = self.ctx.wrap_bio(self.inc, self.out, server_side=True)
        self.inc.write(bytes(raw[8:]))
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                if self.out.pending:
                    self.transport.write(self.out.read())
                self.inc.write(await self.recv())
        if self.out.pending:
            self.transport.write(self.out.read())
        while True:
            self._decrypt()
            if len(self.buf) >= 4 and len(self.buf) >= int.from_bytes(self.buf[:4], "big"):
                break
            self.inc.write(await self.recv())
        del self.buf[: int.from_bytes(self.buf[:4], "big")]
        up = self.take()
        if up is None:
            raise ConnectionError("no idle upstream session")
        self.upstream, up.client = up, cast(Client, self)
        self.send(AUTH_OK + up.greeting + RFQ_IDLE)

    def _relay(self, data: bytes) -> None:
        if data:
            self.inc.write(data)
        self._decrypt()
        out, terminated = _split(self.buf)
        assert self.upstream is not None and self.upstream.transport is not None
        if out:
            self.upstream.transport.write(out)
        if terminated and self.ended is not None and not self.ended.done():
            self.ended.set_result(None)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(LOGIN_TIMEOUT):
                await self._login()
            self.ended = loop.create_future()
            self.relaying = True
            if self.inbox or self.buf:
                pending = bytes(self.inbox)
                self.inbox.clear()
                self._relay(pending)
            await self.ended
        except (ConnectionError, ssl.SSLError, TimeoutError):
            pass
        finally:
            self.relaying = False
            up, self.upstream = self.upstream, None
            if up is not None:
                up.reset_done = loop.create_future()
                up.release()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(RESET_TIMEOUT):
                        await up.reset_done
            assert self.transport is not None
            self.transport.close()


async def serve(port: int, cert: str, key: str, upstream_socket: str, variant: str) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    loop = asyncio.get_running_loop()
    pool: list[Upstream] = []
    for _ in range(UPSTREAM_POOL):
        _, up = await loop.create_unix_connection(lambda: Upstream(pool), upstream_socket)
        await up.ready
        pool.append(up)

    extras = Extras()
    task = False
    for item in filter(None, variant.split(",")):
        if item == "task":
            task = True
        elif item in ("offload", "noop"):
            extras.offload = Offload(4, "floor-tls")
            extras.noop = item == "noop"
        elif item.startswith("roundtrips="):
            extras.round_trips = int(item.split("=", 1)[1])
            _, extras.admin = await loop.create_unix_connection(Admin, upstream_socket)
            await extras.admin.ready
        else:
            raise SystemExit(f"unknown floor variant {item!r}")

    def take() -> Upstream | None:
        return pool.pop() if pool else None

    def client() -> asyncio.Protocol:
        return TaskClient(ctx, take) if task else Client(ctx, take, extras)

    server = await loop.create_server(client, "127.0.0.1", port, backlog=1024)
    print("ready", flush=True)
    await server.serve_forever()


# ---------------------------------------------------------------- the comparison


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    proc.wait(10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--serve",
        nargs=5,
        metavar=("PORT", "CERT", "KEY", "UPSTREAM_SOCKET", "VARIANT"),
        help=argparse.SUPPRESS,
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("-T", type=int, default=4, help="seconds per connect run")
    ap.add_argument("--select-time", type=int, default=8, help="seconds per select-only run")
    args = ap.parse_args(argv)
    if args.serve:
        from pgtls.server.eventloop import run_event_loop

        port, cert, key, upstream, variant = args.serve
        run_event_loop(serve(int(port), cert, key, upstream, variant))
        return 0

    from bench._servers import (
        CERT,
        KEY,
        bench_workspace,
        pgbench_init,
        read_tree,
        run_cleanup,
        run_pgbench,
        start_pgbouncer,
        start_pgtls,
        start_postgres,
        tree_cpu_seconds,
    )
    from tests import certset

    cleanup: list[Callable[[], None]] = []
    work, env, sql = bench_workspace("pgtls-floor-", cleanup)
    try:
        certs = certset.build(work / "certs")
        pg = start_postgres(certs, cleanup)
        assert pg.proc is not None
        pgbench_init(pg.port, env, host=str(pg.sockdir))
        bouncer = start_pgbouncer(certs, pg, cleanup)
        pgtls = start_pgtls(certs, cleanup, workers="1")
        assert bouncer.proc is not None and pgtls.proc is not None
        pgbench_init(pgtls.port, env)
        pm = pgtls.postmaster_pid()
        assert pm is not None
        floors: dict[str, tuple[subprocess.Popen[str], int]] = {}
        for name, variant in FLOORS.items():
            port = _free_port()
            proc = subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--serve",
                    str(port),
                    certs.path(CERT),
                    certs.path(KEY),
                    str(pg.sockdir / f".s.PGSQL.{pg.port}"),
                    variant,
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            cleanup.append(functools.partial(_stop, proc))
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", name
            floors[name] = (proc, port)

        pgtls_pid, pg_pid, bouncer_pid = pgtls.proc.pid, pg.proc.pid, bouncer.proc.pid

        def pgtls_cpu(part: str) -> Callable[[], float]:
            def read() -> float:
                t = read_tree(pgtls_pid, (pm,))
                return t.sub[pm].total if part == "pg" else t.total - t.sub[pm].total

            return read

        def cpu_of(pid: int) -> Callable[[], float]:
            return lambda: tree_cpu_seconds(pid)

        # name -> (the proxy's own CPU, the CPU of the PostgreSQL behind it, the port clients use)
        servers: dict[str, tuple[Callable[[], float], Callable[[], float], int]] = {
            name: (cpu_of(proc.pid), cpu_of(pg_pid), port) for name, (proc, port) in floors.items()
        }
        servers["pgtls"] = (pgtls_cpu("proxy"), pgtls_cpu("pg"), pgtls.port)
        servers["pgbouncer"] = (cpu_of(bouncer_pid), cpu_of(pg_pid), bouncer.port)
        parts = {
            "connect": ["-n", "-C", "-f", str(sql), "-c", "2", "-j", "2", "-T", str(args.T)],
            "select": ["-n", "-S", "-M", "simple", "-c", "8", "-j", "2", "-T", str(args.select_time)],
        }
        results: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
        for r in range(args.rounds):
            for part, pgbench_args in parts.items():
                # the floor's variants differ only in their logins
                names = [n for n in servers if part == "connect" or n in ("floor", "pgtls", "pgbouncer")]
                for name in names if r % 2 == 0 else names[::-1]:
                    proxy_cpu, pg_cpu, port = servers[name]
                    p0, g0 = proxy_cpu(), pg_cpu()
                    out = run_pgbench(port, env, pgbench_args, 120)
                    time.sleep(0.3)  # let exited backends be reaped into their parent's CPU
                    p1, g1 = proxy_cpu(), pg_cpu()
                    n = out["transactions"]
                    row = (out["tps"], (p1 - p0) * 1e6 / n, (g1 - g0) * 1e6 / n)
                    results.setdefault((part, name), []).append(row)
                    print(
                        f"[{part} {r + 1}/{args.rounds}] {name:13s} {row[0]:8.0f}/s  proxy {row[1]:7.1f} us  "
                        f"PostgreSQL {row[2]:7.1f} us per unit",
                        flush=True,
                    )
        print("\nmedians per unit (connect: per TLS connection; select: per transaction)")
        print(f"{'part':8s} {'server':13s} {'rate/s':>8s} {'proxy us':>9s} {'PG us':>8s}")
        med: dict[tuple[str, str], tuple[float, float, float]] = {}
        for (part, name), rows in results.items():
            med[(part, name)] = (
                statistics.median(x[0] for x in rows),
                statistics.median(x[1] for x in rows),
                statistics.median(x[2] for x in rows),
            )
            rate, proxy, pgus = med[(part, name)]
            print(f"{part:8s} {name:13s} {rate:8.0f} {proxy:9.1f} {pgus:8.1f}")
        for part in parts:
            fl, pt, pb = med[(part, "floor")], med[(part, "pgtls")], med[(part, "pgbouncer")]
            print(
                f"{part}: proxy CPU floor/PgBouncer {fl[1] / pb[1]:.2f}x, pgtls/floor {pt[1] / fl[1]:.2f}x, "
                f"pgtls/PgBouncer {pt[1] / pb[1]:.2f}x; rate floor/PgBouncer {fl[0] / pb[0]:.2f}x, "
                f"pgtls/PgBouncer {pt[0] / pb[0]:.2f}x"
            )
    finally:
        run_cleanup(cleanup)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
