"""Protocol 3.2 (PostgreSQL 18): 32-byte cancel keys for a client that asks for 3.2, 4-byte ones for 3.0,
NegotiateProtocolVersion down to 3.2 for a newer minor; compared with PostgreSQL 18 run directly. 3.2 clients
(psycopg on libpq 18 with max_protocol_version=latest, psql 18 with max_protocol_version=3.2) cancel a query
through pgtls with their long key."""

from __future__ import annotations

import os
import re
import signal
import struct
import subprocess
import threading
import time

import psycopg
import pytest

from pgtls.protocol.startup import cancel_request_packet, ssl_request_packet, startup_packet
from tests.pgserver import managed_pg_bin
from tests.pgtlsserver import tls_server
from tests.rawclient import Raw, parse_messages


def hello(port: int, minor: int, extra: dict[str, str] | None = None) -> list[tuple[bytes, bytes]]:
    """The server's messages up to ReadyForQuery after a startup packet of protocol 3.<minor> (trust)."""
    r = Raw(port)
    try:
        r.send(startup_packet({"user": "postgres", "database": "postgres", **(extra or {})}, minor=minor))
        data = b""
        while not data.endswith(b"Z\x00\x00\x00\x05I"):
            chunk = r.s.recv(65536)
            if not chunk:
                break
            data += chunk
        return parse_messages(data)
    finally:
        r.close()


def shape(msgs: list[tuple[bytes, bytes]]) -> list[tuple[str, object]]:
    """What must agree: message types in order, the key length of BackendKeyData, NegotiateProtocolVersion."""
    out: list[tuple[str, object]] = []
    for kind, body in msgs:
        if kind == b"K":
            out.append(("K", len(body) - 4))
        elif kind == b"v":
            out.append(("v", body))
        elif kind in (b"R", b"Z", b"E"):
            out.append((kind.decode(), body[:4] if kind == b"R" else body))
    return out


@pytest.mark.parametrize(
    ("minor", "extra"), [(0, None), (1, None), (2, None), (3, None), (2, {"_pq_.unknown": "1"})]
)
def test_startup_agrees_with_postgresql_18(relay_and_pg, minor, extra):
    ours, pg = relay_and_pg
    got, want = shape(hello(ours.port, minor, extra)), shape(hello(pg.port, minor, extra))
    assert got == want
    keylen = dict(x for x in got if x[0] == "K")["K"]
    assert keylen == (32 if minor >= 2 else 4)


def test_a_32_byte_key_cancels_and_a_wrong_one_does_not(relay_and_pg):
    ours, _ = relay_and_pg
    with psycopg.connect(ours.dsn(max_protocol_version="latest"), autocommit=True) as c:
        assert c.pgconn.full_protocol_version == 30002  # libpq 18 and pgtls agreed on 3.2
        # libpq 18 keeps the long key: cancel through it, then with a forged key of the right length.
        threading.Timer(0.5, c.cancel).start()
        with pytest.raises(psycopg.errors.QueryCanceled):
            c.execute("SELECT pg_sleep(10)")
        pid = c.info.backend_pid
        r = Raw(ours.port)
        r.send(cancel_request_packet(pid, bytes(32)))
        assert r.closed_by_server()
        r.close()
        c.execute("SELECT 1")
    assert "wrong key in cancel request for process" in ours.log()


def test_backend_key_data_bytes(relay_and_pg):
    ours, _ = relay_and_pg
    msgs = hello(ours.port, 2)
    body = next(b for k, b in msgs if k == b"K")
    (pid,) = struct.unpack("!i", body[:4])
    assert pid > 0 and len(set(body[4:])) > 4  # random bytes, not a padded 32-bit key


def _psql(ours, *args: str, **kw: object) -> list[str]:
    """psql 18 (the managed PostgreSQL's own, libpq 18) against pgtls, asking for protocol 3.2."""
    return [
        str(managed_pg_bin() / "psql"),
        "-X",
        "-d",
        ours.dsn(max_protocol_version="3.2", **kw),
        *args,
    ]


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


def test_psql_18_negotiates_32_and_cancels(relay_and_pg):
    """psql with libpq 18 and max_protocol_version=3.2: \\conninfo says 3.2, and Ctrl-C (SIGINT, which psql
    turns into a CancelRequest with the 32-byte key it was given) cancels the running query."""
    ours, _ = relay_and_pg
    r = subprocess.run(
        _psql(ours, "-c", r"\conninfo"), capture_output=True, text=True, timeout=30, env=_clean_env()
    )
    assert r.returncode == 0, r.stderr
    version = re.search(r"Protocol Version\s*\|\s*(\S+)", r.stdout)
    assert version is not None and version.group(1) == "3.2", r.stdout

    tag = f"psql_cancel_{os.getpid()}"
    p = subprocess.Popen(
        _psql(ours, "-c", f"SELECT pg_sleep(30) /* {tag} */", application_name=tag),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_clean_env(),
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            running = ours.sql(
                f"SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%{tag}%'"
                " AND pid <> pg_backend_pid()"
            )
            if running[0][0] == "1":
                break
            time.sleep(0.1)
        else:
            pytest.fail("the query never started")
        started = time.monotonic()
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert time.monotonic() - started < 10
    assert p.returncode == 1, err
    assert "canceling statement due to user request" in err


@pytest.fixture(scope="module")
def trust_tls(certs):
    s = tls_server(certs)
    yield s
    print(s.full_log()[-4000:])
    s.cleanup()


@pytest.mark.parametrize("extra", [{}, {"_pq_.unknown": "1"}])
def test_the_login_reply_is_one_tls_record(trust_tls, extra):
    """As PostgreSQL (which flushes neither NegotiateProtocolVersion nor AuthenticationOk on their own), the
    whole reply to a trust login -- up to ReadyForQuery -- comes in one TLS record: one read of the TLS
    socket (OpenSSL returns at most one record per read) holds all of it."""
    r = Raw(trust_tls.port)
    try:
        r.send(ssl_request_packet())
        assert r.recv_exact(1) == b"S"
        r.start_tls()
        r.send(startup_packet({"user": "postgres", "database": "postgres", **extra}, minor=2))
        first = r.s.recv(65536)
        kinds = [k for k, _ in parse_messages(first)]
        assert kinds[:2] == ([b"v", b"R"] if extra else [b"R", b"S"])  # NegotiateProtocolVersion first
        assert first.endswith(b"Z\x00\x00\x00\x05I"), kinds
    finally:
        r.close()
