#!/usr/bin/env python3
"""What one hand-off of a login step to a thread and back costs: ``loop.run_in_executor`` with a
``ThreadPoolExecutor`` against pgtls's ``Offload`` (pgtls/server/offload.py), on the event loop pgtls runs on
(uvloop unless ``PGTLS_EVENT_LOOP=asyncio``).

    .venv/bin/python bench/handoff.py [-n 20000] [--rounds 3]

Each round awaits ``n`` hand-offs of a function that does nothing, one after the other (the thread sleeps
between them, as in a login), and prints the process CPU and wall time per hand-off for each way.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pgtls.server.eventloop import run_event_loop  # noqa: E402
from pgtls.server.offload import Offload  # noqa: E402


def _nothing() -> int:
    return 1


async def _executor(n: int) -> None:
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=4) as ex:
        for _ in range(n):
            await loop.run_in_executor(ex, _nothing)


async def _offload(n: int) -> None:
    pool = Offload(4, "bench-offload")
    try:
        for _ in range(n):
            await pool.run(_nothing)
    finally:
        pool.close()


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    for r in range(args.rounds):
        for name, fn in (("ThreadPoolExecutor", _executor), ("Offload", _offload)):
            c0, t0 = time.process_time(), time.perf_counter()
            run_event_loop(fn(args.n))
            cpu, wall = time.process_time() - c0, time.perf_counter() - t0
            print(
                f"round {r + 1} {name:18} CPU {cpu / args.n * 1e6:6.1f} us/hand-off  "
                f"wall {wall / args.n * 1e6:6.1f} us/hand-off"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
