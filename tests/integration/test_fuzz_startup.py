"""Malformed startup traffic against a live server: a FATAL or a close, never a pgtls bug, and the
server still serves the next client.

A bug does not show as a traceback: Connection.run catches every exception, logs "unexpected error on
connection" and answers FATAL XX000.  So each test function checks, after every input it sends and once
more at its end, that no such log line appeared, that no reply carried XX000 and that the server is
alive (tests/serverwatch.py) -- in the same function, so ``-k`` cannot run the fuzzing without the check.
"""

from __future__ import annotations

import socket
import ssl
import struct
from collections.abc import Callable

import psycopg
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pgtls.protocol.startup import gssenc_request_packet, ssl_request_packet, startup_packet
from tests.pgtlsserver import PgtlsServer, tls_server
from tests.serverwatch import Watch

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
        lambda t: _length_prefixed(struct.pack("!i", t[0]) + t[1])
    ),
    st.dictionaries(st.text(max_size=12), st.text(max_size=12), max_size=4).map(
        lambda d: startup_packet({k.replace("\0", ""): v.replace("\0", "") for k, v in d.items()})
    ),
    st.binary(max_size=100).map(lambda b: struct.pack("!ii", 8 + len(b), 3 << 16) + b),  # unterminated etc.
    st.binary(max_size=100).map(lambda b: ssl_request_packet() + b),
    st.binary(max_size=100).map(lambda b: gssenc_request_packet() + b),
    st.binary(max_size=100).map(lambda b: b"\x16\x03\x01" + b),
)


# Short and truncated packets, always tried first: a partial length word, lengths below the minimum
# (including 0 and negative), a packet that ends before its length, an empty startup body.
SHORT = [b"", b"\x00", b"\x00\x00\x08", struct.pack("!i", 0), struct.pack("!i", 4), struct.pack("!i", 7),
         struct.pack("!i", -1), struct.pack("!i", 8), struct.pack("!ii", 8, 3 << 16)[:6],
         struct.pack("!ii", 8, 3 << 16), struct.pack("!ii", 12, 80877102)[:9]]  # fmt: skip


def _with_short_examples(test: Callable[[bytes], None]) -> Callable[[bytes], None]:
    for data in SHORT:
        test = example(data)(test)
    return test


def _serves_a_client(server: PgtlsServer) -> None:
    with psycopg.connect(server.dsn(sslmode="require", connect_timeout=10)) as c:
        assert c.execute("select 1").fetchone() == (1,)


def test_random_plaintext_startup(server):
    watch = Watch(server)

    @settings(max_examples=120, deadline=None)
    @given(startup_like)
    @_with_short_examples
    def fuzz(data: bytes) -> None:
        watch.check(_send(server.port, data), data)

    fuzz()
    watch.check()
    _serves_a_client(server)
    watch.check()


def test_random_bytes_inside_tls(server):
    watch = Watch(server)

    @settings(max_examples=40, deadline=None)
    @given(startup_like)
    @_with_short_examples
    def fuzz(data: bytes) -> None:
        watch.check(_send(server.port, ssl_request_packet(), tls_after=data), data)

    fuzz()
    watch.check()
    _serves_a_client(server)
    watch.check()


def test_server_survived(server):
    """The whole log of the module's server: no bug line at all, and it still serves."""
    watch = Watch(server)
    watch.offset = 0
    watch.check()
    _serves_a_client(server)
