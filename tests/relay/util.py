"""Helpers the relay's tests share."""

from __future__ import annotations

import socket
import ssl
import struct
import time
from collections.abc import Callable

from tests import scaleclient


def wait_for(cond: Callable[[], object], timeout: float = 10.0) -> bool:
    """Poll ``cond`` until it is true or ``timeout`` passes; its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return bool(cond())


def startup_message(user: str, database: str = "postgres") -> bytes:
    return scaleclient.startup(user, database)


def read_to_ready(sock: socket.socket) -> bytes:
    """Everything up to and including an idle ReadyForQuery."""
    got = b""
    while not got.endswith(b"Z\0\0\0\x05I"):
        chunk = sock.recv(65536)
        assert chunk, got
        got += chunk
    return got


def read_to_eof(sock: socket.socket) -> bytes:
    """Everything until the server closes (a TLS close without close_notify counts as the end)."""
    got = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ssl.SSLEOFError, ConnectionResetError):
            return got
        if not chunk:
            return got
        got += chunk


def raw_login(port: int, user: str, database: str = "postgres") -> socket.socket:
    """A plain-protocol session on a trust line, read up to its first ReadyForQuery."""
    raw = socket.create_connection(("127.0.0.1", port))
    raw.sendall(startup_message(user, database))
    read_to_ready(raw)
    return raw


def tls_request(port: int) -> ssl.SSLSocket:
    """SSLRequest, then TLS without verifying the server (what a test of the server's own answers needs)."""
    raw = socket.create_connection(("127.0.0.1", port))
    raw.sendall(b"\0\0\0\x08\x04\xd2\x16\x2f")
    assert raw.recv(1) == b"S"
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx.wrap_socket(raw, server_hostname="localhost")


def query_message(sql: str) -> bytes:
    q = sql.encode() + b"\0"
    return b"Q" + struct.pack("!i", len(q) + 4) + q
