"""What the worker processes of one server share: a small memory-mapped file in a private run directory.

Layout (native 64-bit integers): ``[generation][sessions of worker 0]...[sessions of worker N-1]``.

* Each worker writes only its own session count, so no lock is needed to keep the counts right; the sum is
  what ``max_connections`` and the reserved slots are checked against (a login racing another on a second
  worker may see the total one short, as two PostgreSQL backends starting at once may).
* ``generation`` is bumped by a worker that relays CREATE/DROP/ALTER DATABASE or ALTER ROLE; every other
  worker sees the change (at its next pool checkout, or within its maintenance interval) and closes its idle
  pooled sessions, so PostgreSQL's wait for other sessions of a database (up to 5 s in DROP DATABASE) ends.

The run directory also holds each worker's cancel socket (``cancel-<n>``): a CancelRequest that lands on
another worker is passed on there (see :mod:`pgtls.server.workerlink`).
"""

from __future__ import annotations

import hashlib
import mmap
import os
import struct
import tempfile
from pathlib import Path

RUN_DIR = "pgtls_run"
STATE_FILE = "workers.state"
MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux
MAX_CONTROL_LINE = 1 << 16  # a JSON line between the processes: supervisor–worker control, worker–worker asks
_SLOT = struct.Struct("=q")


def run_dir_of(data_dir: Path) -> Path:
    """The private run directory (in DIR, or under the temp directory when DIR's path is too long)."""
    d = data_dir.resolve() / RUN_DIR
    if len(str(d / "cancel-999")) <= MAX_SOCKET_PATH:
        return d
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"pgtls-run-{digest}"


def prepare_run_dir(data_dir: Path) -> Path:
    d = run_dir_of(data_dir)
    d.mkdir(mode=0o700, exist_ok=True)
    os.chmod(d, 0o700)
    for stale in d.glob("cancel-*"):
        stale.unlink(missing_ok=True)
    return d


def cancel_socket(run_dir: Path, index: int) -> Path:
    return run_dir / f"cancel-{index}"


class SharedState:
    """The mapped file; ``index`` is this process's slot (the supervisor creates the file with index -1)."""

    def __init__(self, run_dir: Path, count: int, index: int, *, create: bool = False) -> None:
        path = run_dir / STATE_FILE
        size = _SLOT.size * (1 + count)
        flags = os.O_RDWR | (os.O_CREAT | os.O_TRUNC if create else 0)
        fd = os.open(path, flags, 0o600)
        try:
            if create:
                os.ftruncate(fd, size)
            self._map = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        self.count, self.index = count, index
        self._seen = self.generation()

    def _get(self, slot: int) -> int:
        return int(_SLOT.unpack_from(self._map, slot * _SLOT.size)[0])

    def _set(self, slot: int, value: int) -> None:
        _SLOT.pack_into(self._map, slot * _SLOT.size, value)

    # --- sessions ---
    def set_sessions(self, n: int, index: int | None = None) -> None:
        self._set(1 + (self.index if index is None else index), n)

    def sessions(self, index: int) -> int:
        return self._get(1 + index)

    def total_sessions(self) -> int:
        return sum(self._get(1 + i) for i in range(self.count))

    # --- generation ---
    def generation(self) -> int:
        return self._get(0)

    def bump_generation(self) -> None:
        self._seen = self._get(0) + 1
        self._set(0, self._seen)

    def generation_changed(self) -> bool:
        """Whether another worker bumped the generation since this one last looked."""
        g = self._get(0)
        if g == self._seen:
            return False
        self._seen = g
        return True
