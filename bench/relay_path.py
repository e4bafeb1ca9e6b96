#!/usr/bin/env python3
"""Micro-benchmark: the relay's own CPU per select transaction, in process, against OpenSSL's floor.

    .venv/bin/python bench/relay_path.py [-n 20000] [--rounds 3]

A real ``RelaySession`` between a real ``Channel`` (TLS 1.3 session made with the test certificates, memory
BIOs) and a real ``UpstreamConn``, on pgtls's event loop (``pgtls.server.eventloop``); only the two sockets
are replaced by transports that count bytes.  Each transaction feeds one client TLS record (a simple Query, or Parse/Bind/Describe/Execute/Sync
as ``pgbench -M extended`` sends) and one upstream reply (RowDescription, DataRow, CommandComplete,
ReadyForQuery) and the session decrypts, walks, forwards, encrypts.  The floor is the same decrypt and
encrypt done straight on the SSL object.  Everything stays in the CPU's caches here, which a real
server's event loop (woken after PostgreSQL and the client ran on the same core) does not have: compare
with the per-transaction Python time of ``compare.py --profile --profiler perf``.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import struct
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._servers import CERT, KEY  # noqa: E402
from pgtls.backends.relay.session import RelaySession  # noqa: E402
from pgtls.backends.relay.upstream import UpstreamConn  # noqa: E402
from pgtls.server.channel import Channel, RawConn  # noqa: E402
from pgtls.server.eventloop import run_event_loop  # noqa: E402
from tests import certset  # noqa: E402

SQL = b"SELECT abalance FROM pgbench_accounts WHERE aid = "
WARMUP = 200


class CountingTransport:
    """Where the bytes would go: counted, dropped."""

    def __init__(self) -> None:
        self.sent = 0

    def write(self, data: bytes) -> None:
        self.sent += len(data)

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def close(self) -> None: ...


class NoBackend:
    generation = 0

    def close_idle_sessions(self) -> None: ...

    async def cancel_upstream(self, conn: UpstreamConn) -> None: ...

    def forget_identity(self, conn: UpstreamConn, database: str) -> None: ...


def message(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!I", len(body) + 4) + body


def request(mode: str) -> bytes:
    if mode == "simple":
        return message(b"Q", SQL + b"12345;\0")
    return (
        message(b"P", b"\0" + SQL + b"$1;\0\0\0")
        + message(b"B", b"\0\0\0\0\0\x01\0\0\0\x0512345\0\0")
        + message(b"D", b"P\0")
        + message(b"E", b"\0\0\0\0\0")
        + message(b"S", b"")
    )


def reply(mode: str) -> bytes:
    rows = (
        message(b"T", b"\0\x01abalance\0" + bytes(18))
        + message(b"D", b"\0\x01\0\0\0\x010")
        + message(b"C", b"SELECT 1\0")
        + message(b"Z", b"I")
    )
    return rows if mode == "simple" else message(b"1", b"") + message(b"2", b"") + rows


def tls_pair(
    certs: certset.CertSet,
) -> tuple[ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO, ssl.SSLObject, ssl.MemoryBIO]:
    """(client, its outgoing BIO, server's incoming BIO, server, server's outgoing BIO), handshake done."""
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(certs.path(CERT), certs.path(KEY))
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cctx.check_hostname = False
    cctx.verify_mode = ssl.CERT_NONE
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = cctx.wrap_bio(c_in, c_out)
    server = sctx.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        for end in (client, server):
            try:
                end.do_handshake()
            except ssl.SSLWantReadError:
                pass
        if c_out.pending:
            s_in.write(c_out.read())
        if s_out.pending:
            c_in.write(s_out.read())
    client.do_handshake()
    server.do_handshake()
    return client, c_out, s_in, server, s_out


def records(client: ssl.SSLObject, out: ssl.MemoryBIO, data: bytes, n: int) -> list[bytes]:
    recs = []
    for _ in range(n):
        client.write(data)
        recs.append(out.read())
    return recs


def relayed(certs: certset.CertSet, mode: str, n: int) -> float:
    """CPU seconds per transaction through RelaySession."""
    client, c_out, s_in, server, s_out = tls_pair(certs)
    recs = records(client, c_out, request(mode), n + WARMUP)
    answer = reply(mode)

    async def run() -> float:
        raw = RawConn(lambda r: None)
        raw.connection_made(CountingTransport())  # type: ignore[arg-type]
        channel = Channel(raw, None)
        channel.sslobj, channel._in, channel._out = server, s_in, s_out
        up = UpstreamConn()
        up.connection_made(CountingTransport())  # type: ignore[arg-type]
        session = RelaySession(NoBackend(), None, up, "postgres")  # type: ignore[arg-type]
        task = asyncio.ensure_future(session.run(channel, bytearray(), lambda: False))
        await asyncio.sleep(0)
        for i in range(WARMUP):
            raw.data_received(recs[i])
            up.data_received(answer)
        t0 = time.process_time()
        for i in range(WARMUP, WARMUP + n):
            raw.data_received(recs[i])
            up.data_received(answer)
        spent = time.process_time() - t0
        task.cancel()
        return spent / n

    return run_event_loop(run())


def floor(certs: certset.CertSet, mode: str, n: int) -> float:
    """CPU seconds per transaction of the TLS work alone: one record decrypted, one reply encrypted."""
    client, c_out, s_in, server, s_out = tls_pair(certs)
    recs = records(client, c_out, request(mode), n)
    answer = reply(mode)
    read, write, take, feed = server.read, server.write, s_out.read, s_in.write
    t0 = time.process_time()
    for rec in recs:
        feed(rec)
        read(1 << 17)
        write(answer)
        take()
    return (time.process_time() - t0) / n


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        certs = certset.build(Path(d))
        for mode in ("simple", "extended"):
            for r in range(args.rounds):
                total, tls = relayed(certs, mode, args.n), floor(certs, mode, args.n)
                print(
                    f"{mode:8} round {r + 1}: relay {total * 1e6:5.2f} us/txn, of which TLS alone "
                    f"{tls * 1e6:5.2f}, pgtls's Python {(total - tls) * 1e6:5.2f}"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
