"""postmaster.pid: PostgreSQL's lock file in the data directory, used by `pgtls reload|stop`.

Lines as PostgreSQL writes them: pid, data directory, start time (epoch),
port, first socket directory, first listen address, shared-memory key
(blank here), status.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from pgtls.osproc import process_alive

PIDFILE = "postmaster.pid"
__all__ = ["PIDFILE", "PidFile", "process_alive", "read_pid"]


def read_pid(data_dir: Path) -> int | None:
    try:
        first = (data_dir / PIDFILE).read_text().splitlines()[0]
        return int(first)
    except (OSError, ValueError, IndexError):
        return None


class PidFile:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / PIDFILE
        self.data_dir = data_dir
        self.start = int(time.time())
        self.owned = False

    def acquire(self) -> None:
        old = read_pid(self.data_dir)
        if old is not None and old != os.getpid() and process_alive(old):
            raise RuntimeError(
                f'lock file "{PIDFILE}" already exists',
                f'Is another postmaster (PID {old}) running in data directory "{self.data_dir}"?',
            )
        self.write()
        self.owned = True

    def write(self, port: int = 0, socket_dir: str = "", listen: str = "", status: str = "starting") -> None:
        text = (
            f"{os.getpid()}\n{self.data_dir}\n{self.start}\n{port}\n{socket_dir}\n{listen}\n\n{status:<8}\n"
        )
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)

    def release(self) -> None:
        if self.owned and read_pid(self.data_dir) == os.getpid():
            try:
                self.path.unlink()
            except OSError:
                pass
        self.owned = False
