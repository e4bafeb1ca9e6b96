"""A few threads for blocking steps of a login, answered on the event loop with one wake-up each way.

The TLS handshake's public-key step (so that a signature never stalls the other
connections of the loop) and the blocking pre-authentication work (PBKDF2, host-name
lookups) run here.  ``loop.run_in_executor`` with a ``ThreadPoolExecutor`` does the
same through a ``concurrent.futures.Future`` (a condition variable, a work item, a
second future chained back to the loop); on this 2-core machine that costs about
60% more CPU per hand-off than a queue item and a ``call_soon_threadsafe``
(``bench/handoff.py``: 79-89 vs 51-55 µs per hand-off, thread wake-ups included).

Threads start when work arrives and no thread is idle, up to ``max_threads``; work
beyond that waits in the queue.  A result that arrives after its caller stopped
waiting (authentication_timeout) is dropped.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_Item = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]


class Offload:
    def __init__(self, max_threads: int, name: str) -> None:
        self.max_threads = max_threads
        self.name = name
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._idle = 0  # threads waiting for work that no submission has claimed yet
        self._closed = False

    def run(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """``fn(*args)`` in a thread; the future (of the running loop) gets its result or exception."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self.name}: cannot run new work after close")
            if self._idle:
                self._idle -= 1
            elif len(self._threads) < self.max_threads:
                t = threading.Thread(target=self._work, name=f"{self.name}_{len(self._threads)}", daemon=True)
                self._threads.append(t)
                t.start()
        self._queue.put((loop, fut, fn, args))
        return fut

    def _work(self) -> None:
        get = self._queue.get
        while True:
            item = get()
            if item is None:
                return
            loop, fut, fn, args = item
            del item
            try:
                result, exc = fn(*args), None
            except BaseException as e:  # handed to the caller, as an executor does
                result, exc = None, e
            # Idle again before the answer wakes the loop: nothing of this thread's own bookkeeping then
            # competes with the loop for the interpreter.
            with self._lock:
                self._idle += 1
            try:
                loop.call_soon_threadsafe(_settle, fut, result, exc)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass
            del loop, fut, fn, args, result, exc  # hold nothing of a finished login while waiting

    def close(self) -> None:
        """No new work; the threads end once the queued work is done (they are daemons: exit never waits)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            n = len(self._threads)
        for _ in range(n):
            self._queue.put(None)

    def thread_count(self) -> int:
        return len(self._threads)


def _settle(fut: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if fut.done():  # the caller stopped waiting (cancelled)
        return
    if exc is None:
        fut.set_result(result)
    else:
        fut.set_exception(exc)
