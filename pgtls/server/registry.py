"""The session registry: backend pids, cancel keys and what pg_stat_activity / pg_stat_ssl show.

Owned by the server process; backends read it through the small
:class:`pgtls.backends.base.Registry` protocol from worker threads, so access
is guarded by a lock.
"""

from __future__ import annotations

import hmac
import itertools
import os
import secrets
import threading
from dataclasses import dataclass, field

from pgtls.backends.base import AsyncSession, DetachedSession, Session, SessionInfo
from pgtls.protocol.startup import MAX_CANCEL_KEY_LENGTH
from pgtls.server.shared import SharedState

_MAX_PID = 2_147_483_647


@dataclass
class Entry:
    info: SessionInfo
    cancel_key: bytes
    state: str = "idle"
    query: str = ""
    session: Session | AsyncSession | DetachedSession | None = None  # the last two: when the backend is_async
    backend_start: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)


class SessionRegistry:
    """With worker processes (``stride`` > 1) worker ``offset`` hands out the pids ``p`` with
    ``p % stride == offset``, so any worker knows which one a CancelRequest's pid belongs to; ``shared``
    then holds every worker's session count, and :meth:`count` is the server's total."""

    def __init__(self, stride: int = 1, offset: int = 0, shared: SharedState | None = None) -> None:
        self._lock = threading.Lock()
        self._entries: dict[int, Entry] = {}
        self.stride, self.offset, self.shared = stride, offset, shared
        # Backend "pids" are unique per server; they start above the real pid range of this process so they
        # do not collide with the server's own pid in logs.
        self._pids = itertools.count(os.getpid() * 10 % 2_000_000_000 // stride + 1)

    def new_pid(self) -> int:
        with self._lock:
            while True:
                pid = (next(self._pids) % (_MAX_PID // self.stride)) * self.stride + self.offset
                if pid and pid not in self._entries:
                    return pid

    def owner(self, pid: int) -> int:
        """The worker whose session ``pid`` is."""
        return pid % self.stride

    def _changed(self) -> None:
        if self.shared is not None:
            self.shared.set_sessions(len(self._entries))

    @staticmethod
    def new_cancel_key(minor: int = 0) -> bytes:
        """Random bytes, as PostgreSQL 18's cancel keys: 4 for a protocol 3.0 or 3.1 session, 32 for 3.2."""
        return secrets.token_bytes(MAX_CANCEL_KEY_LENGTH if minor >= 2 else 4)

    def add(self, entry: Entry) -> None:
        with self._lock:
            self._entries[entry.info.pid] = entry
            self._changed()

    def remove(self, pid: int) -> None:
        with self._lock:
            self._entries.pop(pid, None)
            self._changed()

    def get(self, pid: int) -> Entry | None:
        with self._lock:
            return self._entries.get(pid)

    def sessions(self) -> list[Entry]:
        with self._lock:
            return list(self._entries.values())

    def count(self) -> int:
        """Sessions of the whole server (every worker's)."""
        with self._lock:
            if self.shared is not None:
                return self.shared.total_sessions()
            return len(self._entries)

    def local_count(self) -> int:
        """Sessions of this process."""
        with self._lock:
            return len(self._entries)

    def count_user(self, user: str) -> int:
        with self._lock:
            return sum(1 for e in self._entries.values() if e.info.user == user)

    def find_for_cancel(self, pid: int, key: bytes) -> tuple[Entry | None, bool]:
        """(the entry with that pid, whether the key matches it), compared in constant time (a key of
        another length never matches)."""
        entry = self.get(pid)
        if entry is None:
            return None, False
        return entry, hmac.compare_digest(entry.cancel_key, key)
