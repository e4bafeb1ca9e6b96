"""The session's output buffer: backend messages handed to the server in big chunks."""

from __future__ import annotations

from pgtls.backends.base import Send

FLUSH_BYTES = 64 * 1024  # hand output to the server in chunks of about this size


class Output:
    """Buffers backend messages and passes them to ``send`` in big chunks."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._parts: list[bytes] = []
        self._size = 0

    def add(self, data: bytes) -> None:
        self._parts.append(data)
        self._size += len(data)
        if self._size >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        if self._parts:
            data = b"".join(self._parts)
            self._parts.clear()
            self._size = 0
            self._send(data)
