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

from pgtls.backends.base import Session, SessionInfo
from pgtls.protocol.startup import MAX_CANCEL_KEY_LENGTH


@dataclass
class Entry:
    info: SessionInfo
    cancel_key: bytes
    state: str = "idle"
    query: str = ""
    session: Session | None = None
    backend_start: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)


class SessionRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[int, Entry] = {}
        # Backend "pids" are unique per server process; they start above the real pid range
        # of this process so they do not collide with the server's own pid in logs.
        self._pids = itertools.count(os.getpid() * 10 % 2_000_000_000 + 1)

    def new_pid(self) -> int:
        with self._lock:
            while True:
                pid = next(self._pids) % 2_147_483_647 or 1
                if pid not in self._entries:
                    return pid

    @staticmethod
    def new_cancel_key(minor: int = 0) -> bytes:
        """Random bytes, as PostgreSQL 18's cancel keys: 4 for a protocol 3.0 or 3.1 session, 32 for 3.2."""
        return secrets.token_bytes(MAX_CANCEL_KEY_LENGTH if minor >= 2 else 4)

    def add(self, entry: Entry) -> None:
        with self._lock:
            self._entries[entry.info.pid] = entry

    def remove(self, pid: int) -> None:
        with self._lock:
            self._entries.pop(pid, None)

    def get(self, pid: int) -> Entry | None:
        with self._lock:
            return self._entries.get(pid)

    def sessions(self) -> list[Entry]:
        with self._lock:
            return list(self._entries.values())

    def count(self) -> int:
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
