"""A loopback TCP forwarder that records the first 8 bytes of every connection it forwards, in its own
process (a client library holding the GIL while it waits, as libpq's cancel does, cannot stall it).

    python -m tests.relay.recorder TARGET_PORT RECORD_FILE    # prints its own port, then forwards
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path


def pipe(a: socket.socket, b: socket.socket) -> None:
    try:
        while data := a.recv(65536):
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(target: int, record: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    print(listener.getsockname()[1], flush=True)
    while True:
        c, _ = listener.accept()
        first = c.recv(8, socket.MSG_PEEK | socket.MSG_WAITALL)
        with record.open("a") as f:
            f.write(first.hex() + "\n")
        u = socket.create_connection(("127.0.0.1", target))
        for a, b in ((c, u), (u, c)):
            threading.Thread(target=pipe, args=(a, b), daemon=True).start()


class Recorder:
    """The forwarder as a child process; ``firsts`` reads what it recorded."""

    def __init__(self, target: int, record: Path) -> None:
        self.record = record
        record.write_text("")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.relay.recorder", str(target), str(record)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    @property
    def firsts(self) -> list[bytes]:
        time.sleep(0.1)
        return [bytes.fromhex(line) for line in self.record.read_text().split()]

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


if __name__ == "__main__":
    serve(int(sys.argv[1]), Path(sys.argv[2]))
