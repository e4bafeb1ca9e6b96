"""Malformed startup traffic against a live server: a FATAL or a close, never a traceback,
and the server still serves the next client."""

from __future__ import annotations

import socket
import ssl
import struct

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pgtls.protocol.startup import gssenc_request_packet, ssl_request_packet, startup_packet
from tests.pgtlsserver import tls_server

HBA = "local all all trust\nhost all all 127.0.0.1/32 trust\n"


@pytest.fixture(scope="module")
def server(certs):
    s = tls_server(certs, hba=HBA, authentication_timeout="2s")
    yield s
    s.cleanup()


def _send(port: int, data: bytes, tls_after: bytes | None = None) -> bytes:
    sock = socket.create_connection(("127.0.0.1", port), timeout=3)
    out = b""
    try:
        sock.sendall(data)
        if tls_after is not None:
            if sock.recv(1) != b"S":
                return out
            t = ssl._create_unverified_context().wrap_socket(sock)
            t.sendall(tls_after)
            t.settimeout(3)
            try:
                t.shutdown(socket.SHUT_WR)
            except (OSError, ssl.SSLError):
                pass
            try:
                while chunk := t.recv(65536):
                    out += chunk
            except (OSError, ssl.SSLError):
                pass
            return out
        sock.shutdown(socket.SHUT_WR)
        while chunk := sock.recv(65536):
            out += chunk
    except (OSError, ssl.SSLError):
        pass
    finally:
        sock.close()
    return out


def _length_prefixed(body: bytes) -> bytes:
    return struct.pack("!i", len(body) + 4) + body


startup_like = st.one_of(
    st.binary(max_size=200),
    st.binary(max_size=64).map(_length_prefixed),
    st.tuples(st.integers(-(2**31), 2**31 - 1), st.binary(max_size=64)).map(
        lambda t: _length_prefixed(struct.pack("!i", t[0]) + t[1])),
    st.dictionaries(st.text(max_size=12), st.text(max_size=12), max_size=4).map(
        lambda d: startup_packet({k.replace("\0", ""): v.replace("\0", "") for k, v in d.items()})),
    st.binary(max_size=100).map(lambda b: struct.pack("!ii", 8 + len(b), 3 << 16) + b),  # unterminated etc.
    st.binary(max_size=100).map(lambda b: ssl_request_packet() + b),
    st.binary(max_size=100).map(lambda b: gssenc_request_packet() + b),
    st.binary(max_size=100).map(lambda b: b"\x16\x03\x01" + b),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(startup_like)
def test_random_plaintext_startup(server, data):
    _send(server.port, data)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(startup_like)
def test_random_bytes_inside_tls(server, data):
    _send(server.port, ssl_request_packet(), tls_after=data)


def test_server_survived(server):
    log = server.full_log()
    assert "Traceback" not in log
    assert "Task exception was never retrieved" not in log
    assert server.proc is not None and server.proc.poll() is None
    with psycopg.connect(server.dsn(sslmode="require")) as c:
        assert c.execute("select 1").fetchone() == (1,)
