"""A worker process of a multi-process server: what it inherits, how it talks to its supervisor, and how it
passes on CancelRequests that name another worker's session (the worker's entry point, which builds its
:class:`~pgtls.server.server.Server`, is :mod:`pgtls.server.worker`).

The supervisor (:mod:`pgtls.server.supervisor`) starts each worker as ``python -m pgtls.server.worker`` with
the description below in the environment (``PGTLS_WORKER``, JSON: its number, the number of workers, the
file descriptors of its listening sockets and of its control channel, the run directory and the ``-c``
settings).  The control channel is a Unix socket pair carrying JSON lines:

* worker → supervisor: ``{"ready": true}`` once it accepts connections; ``{"reload": [...]}`` after each
  SIGHUP, listing what it kept from its old configuration (empty: everything reloaded);
* supervisor → worker: ``{"cluster": "down"}`` / ``{"cluster": "ready"}`` when the managed PostgreSQL
  restarts.  End of file means the supervisor is gone: the worker shuts down fast.

Cancel routing: worker ``n`` hands out session pids ``p`` with ``p % workers == n``.  A CancelRequest that
lands elsewhere is written, unchanged, to worker ``n``'s cancel socket in the private run directory, where
``n`` treats it as if it had arrived itself (its own log lines for an unknown pid or a wrong key).
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pgtls import log
from pgtls.protocol.startup import CANCEL_REQUEST_CODE, MAX_CANCEL_KEY_LENGTH, cancel_request_packet
from pgtls.server.shared import MAX_CONTROL_LINE, cancel_socket

WORKER_ENV = "PGTLS_WORKER"
# A peer's cancel packet: length, code, pid, key of 1..MAX_CANCEL_KEY_LENGTH bytes.
_CANCEL_MIN, _CANCEL_MAX = 13, 12 + MAX_CANCEL_KEY_LENGTH
PEER_CANCEL_TIMEOUT = 5.0  # seconds a forwarded cancel may take, each way


@dataclass(frozen=True)
class WorkerRole:
    index: int
    count: int
    control_fd: int
    tcp_fds: tuple[int, ...]
    unix_fds: tuple[int, ...]
    run_dir: Path
    overrides: dict[str, str]
    restarts: int = 0  # times the supervisor started this worker again

    def to_env(self) -> str:
        return json.dumps(
            {
                "index": self.index,
                "count": self.count,
                "control": self.control_fd,
                "tcp": list(self.tcp_fds),
                "unix": list(self.unix_fds),
                "run_dir": str(self.run_dir),
                "overrides": self.overrides,
                "restarts": self.restarts,
            }
        )

    @classmethod
    def from_env(cls, text: str) -> WorkerRole:
        d = json.loads(text)
        return cls(
            int(d["index"]),
            int(d["count"]),
            int(d["control"]),
            tuple(d["tcp"]),
            tuple(d["unix"]),
            Path(d["run_dir"]),
            dict(d["overrides"]),
            int(d.get("restarts", 0)),
        )


async def control_messages(reader: asyncio.StreamReader) -> AsyncIterator[dict[str, Any]]:
    """The JSON objects of a control channel, until its end (lines that are not one are skipped)."""
    while True:
        try:
            line = await reader.readline()
        except (ConnectionError, ValueError):
            return
        if not line:
            return
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if isinstance(msg, dict):
            yield msg


class Control:
    """The worker's end of its control channel."""

    def __init__(self, fd: int) -> None:
        self._sock = socket.socket(fileno=fd)
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None

    async def open(self, on_message: Callable[[dict[str, Any]], None], on_eof: Callable[[], None]) -> None:
        reader, self._writer = await asyncio.open_unix_connection(sock=self._sock, limit=MAX_CONTROL_LINE)

        async def read() -> None:
            async for msg in control_messages(reader):
                on_message(msg)
            on_eof()

        self._task = asyncio.get_running_loop().create_task(read())

    def send(self, msg: dict[str, Any]) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(json.dumps(msg).encode() + b"\n")


async def forward_cancel(run_dir: Path, owner: int, pid: int, key: bytes) -> None:
    """Pass a CancelRequest on to the worker whose session ``pid`` is."""
    log.debug(f"passing the cancel request for process {pid} to worker {owner}")
    try:
        async with asyncio.timeout(PEER_CANCEL_TIMEOUT):
            _, writer = await asyncio.open_unix_connection(str(cancel_socket(run_dir, owner)))
            writer.write(cancel_request_packet(pid, key))
            await writer.drain()
            writer.close()
            await writer.wait_closed()
    except (OSError, TimeoutError) as e:
        log.log(f"could not pass the cancel request for process {pid} to worker {owner}: {e}")


def cancel_peer_handler(cancel: Callable[[int, bytes], Any]) -> Callable[..., Any]:
    """The handler of this worker's cancel socket: one CancelRequest per connection."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(PEER_CANCEL_TIMEOUT):
                head = await reader.readexactly(4)
                length = int.from_bytes(head, "big")
                if not _CANCEL_MIN <= length <= _CANCEL_MAX:
                    return
                body = await reader.readexactly(length - 4)
            code, pid = struct.unpack_from("!ii", body)
            if code == CANCEL_REQUEST_CODE:
                await cancel(pid, body[8:])
        except (asyncio.IncompleteReadError, OSError, TimeoutError):
            pass
        finally:
            writer.close()

    return handle
