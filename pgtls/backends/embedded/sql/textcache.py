"""A bounded cache keyed by query text, for what is derived from a text alone (its statements, its tokens).

Least recently used entries go first; safe to share between the sessions' threads.  The caller decides what
is worth keeping (a text too long, a result too big) before :meth:`TextCache.put`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")


class TextCache(Generic[V]):
    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[str, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, text: str) -> V | None:
        with self._lock:
            hit = self._entries.get(text)
            if hit is not None:
                self._entries.move_to_end(text)
            return hit

    def put(self, text: str, value: V) -> None:
        with self._lock:
            self._entries[text] = value
            self._entries.move_to_end(text)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def __contains__(self, text: str) -> bool:
        with self._lock:
            return text in self._entries

    def __len__(self) -> int:
        return len(self._entries)
