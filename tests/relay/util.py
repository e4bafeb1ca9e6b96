"""Helpers the relay's tests share."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable


def wait_for(cond: Callable[[], object], timeout: float = 10.0) -> bool:
    """Poll ``cond`` until it is true or ``timeout`` passes; its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return bool(cond())


def raw_login(port: int, user: str, database: str = "postgres") -> socket.socket:
    """A plain-protocol session on a trust line, read up to its first ReadyForQuery."""
    raw = socket.create_connection(("127.0.0.1", port))
    body = struct.pack("!i", 196608) + f"user\0{user}\0database\0{database}\0\0".encode()
    raw.sendall(struct.pack("!i", len(body) + 4) + body)
    got = b""
    while not got.endswith(b"Z\0\0\0\x05I"):
        chunk = raw.recv(65536)
        assert chunk, got
        got += chunk
    return raw


def query_message(sql: str) -> bytes:
    q = sql.encode() + b"\0"
    return b"Q" + struct.pack("!i", len(q) + 4) + q
