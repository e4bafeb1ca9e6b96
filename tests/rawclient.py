"""A deliberately low-level client for negotiation tests: raw bytes in, raw bytes out."""

from __future__ import annotations

import socket
import ssl
import struct
import time


class Raw:
    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.tls: ssl.SSLSocket | None = None

    @property
    def s(self) -> socket.socket:
        return self.tls or self.sock

    def send(self, data: bytes) -> None:
        self.s.sendall(data)

    def recv_exact(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.s.recv(n - len(out))
            if not chunk:
                break
            out += chunk
        return out

    def recv_all(self, timeout: float = 3.0) -> bytes:
        """Everything until the server closes (or timeout)."""
        self.s.settimeout(timeout)
        out = b""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                chunk = self.s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except (TimeoutError, ssl.SSLError, ConnectionResetError):
            pass
        return out

    def closed_by_server(self, timeout: float = 3.0) -> bool:
        self.s.settimeout(timeout)
        try:
            return self.s.recv(1) == b""
        except (ConnectionResetError, ssl.SSLError):
            return True
        except TimeoutError:
            return False

    def start_tls(
        self, *, alpn: list[str] | None = None, cafile: str | None = None, server_hostname: str = "localhost"
    ) -> None:
        ctx = ssl.create_default_context(cafile=cafile) if cafile else ssl._create_unverified_context()
        if alpn:
            ctx.set_alpn_protocols(alpn)
        self.tls = ctx.wrap_socket(self.sock, server_hostname=server_hostname if cafile else None)

    def close(self) -> None:
        try:
            self.s.close()
        except OSError:
            pass


def parse_messages(data: bytes) -> list[tuple[bytes, bytes]]:
    """Split backend messages; a trailing partial message is dropped."""
    out = []
    pos = 0
    while pos + 5 <= len(data):
        kind = data[pos : pos + 1]
        (length,) = struct.unpack_from("!i", data, pos + 1)
        if pos + 1 + length > len(data):
            break
        out.append((kind, data[pos + 5 : pos + 1 + length]))
        pos += 1 + length
    return out


def error_fields(body: bytes) -> dict[str, str]:
    fields = {}
    for part in body.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode(errors="replace")
    return fields


def first_error(data: bytes) -> dict[str, str] | None:
    for kind, body in parse_messages(data):
        if kind == b"E":
            return error_fields(body)
    return None
