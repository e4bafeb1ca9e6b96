"""The login's thread hand-off (pgtls.server.offload): results and exceptions come back on the loop, threads
start only when needed and never beyond the limit, a caller that stopped waiting is not answered, close ends
the threads."""

from __future__ import annotations

import asyncio
import ssl
import threading
import time

import pytest

from pgtls.server.offload import Offload


def test_result_and_exception_come_back_on_the_loop() -> None:
    pool = Offload(2, "t-offload")

    async def main() -> None:
        loop_thread = threading.get_ident()
        ran_in: list[int] = []

        def work(x: int) -> int:
            ran_in.append(threading.get_ident())
            return x * 2

        assert await pool.run(work, 21) == 42
        assert ran_in and ran_in[0] != loop_thread

        def fail() -> None:
            raise ssl.SSLWantReadError("more data")

        with pytest.raises(ssl.SSLWantReadError):
            await pool.run(fail)

    asyncio.run(main())
    pool.close()


def test_threads_start_on_demand_up_to_the_limit() -> None:
    pool = Offload(3, "t-offload")
    assert pool.thread_count() == 0  # nothing started before the first piece of work

    async def main() -> None:
        for _ in range(5):  # one after the other: the idle thread takes each
            await pool.run(time.sleep, 0)
        assert pool.thread_count() == 1
        gate = threading.Event()
        busy = [pool.run(gate.wait, 5) for _ in range(6)]  # more than the limit at once
        await asyncio.sleep(0.05)
        assert pool.thread_count() == 3
        gate.set()
        assert await asyncio.gather(*busy) == [True] * 6  # the queued ones ran when a thread came free

    asyncio.run(main())
    assert pool.thread_count() == 3
    pool.close()


def test_a_caller_that_stopped_waiting_is_not_answered() -> None:
    pool = Offload(1, "t-offload")

    async def main() -> None:
        gate = threading.Event()
        fut = pool.run(gate.wait, 5)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(fut, 0.05)  # cancels the future, as authentication_timeout does
        gate.set()
        assert await pool.run(lambda: "next") == "next"  # the thread went on; the late answer was dropped
        assert fut.cancelled()

    asyncio.run(main())
    pool.close()


def test_close_ends_the_threads_and_refuses_new_work() -> None:
    pool = Offload(2, "t-offload-close")

    async def main() -> None:
        gate = threading.Event()
        both = [pool.run(gate.wait, 5) for _ in range(2)]
        await asyncio.sleep(0.05)
        gate.set()
        await asyncio.gather(*both)

    asyncio.run(main())
    assert pool.thread_count() == 2
    pool.close()
    deadline = time.monotonic() + 5
    while any(t.name.startswith("t-offload-close") for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the pool's threads did not end after close"
        time.sleep(0.01)

    async def late() -> None:
        with pytest.raises(RuntimeError):
            pool.run(time.sleep, 0)

    asyncio.run(late())
