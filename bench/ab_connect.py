#!/usr/bin/env python3
"""Two pgtls trees side by side: which connects (or, with ``--select``, relays) faster, measured in pairs.

This host's speed drifts by up to 2x over minutes, so a before/after comparison of a small change only
holds when the two run in turns: both servers (one worker each, the same certificates) run at once and
short ``pgbench -n -C -c N -j N -T 3`` runs alternate between them (the order flips every round).  Printed:
conn/s and server CPU per connection (process tree: pgtls and its PostgreSQL) per run, and the paired
medians new/old.

    git worktree add /tmp/old HEAD~1     # or: mkdir /tmp/old && git archive REV | tar -x -C /tmp/old
    .venv/bin/python bench/ab_connect.py --old /tmp/old [--clients 2] [--rounds 10]
    .venv/bin/python bench/ab_connect.py --old /tmp/old --select simple --clients 8   # pgbench -S -c 8 -j 2

With ``--old-python`` / ``--new-python`` the two sides differ by the interpreter that runs pgtls instead
(or as well): the same tree under two CPython builds, each a venv with pgtls's dependencies installed:

    /usr/bin/python3.11 -m venv /tmp/venv-deb && /tmp/venv-deb/bin/pip install -e '.[test]'
    .venv/bin/python bench/ab_connect.py --new-python /tmp/venv-deb/bin/python --rounds 12

With ``--idle N`` the figure is memory instead: both servers in transaction mode (so an idle client holds
no PostgreSQL backend), and in each round N TLS clients (SSLRequest, TLS 1.3, trust login, a minimal
asyncio client: ``tests/scaleclient.py``) log in to one server and stay idle while its resident memory is
read; printed is the growth per client in KB (after a warm-up of a few clients), and the paired ratio.

    .venv/bin/python bench/ab_connect.py --old /tmp/old --idle 3000 --rounds 3 [--idle-query]

(``--idle-query``: each client runs one ``SELECT 1`` first, so it has taken a server and given it back.)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import ssl
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench._servers import (  # noqa: E402
    bench_workspace,
    pgbench_init,
    rss_mb,
    run_cleanup,
    run_pgbench,
    settle,
    start_pgtls,
    tree_cpu_seconds,
)
from tests import certset, scaleclient  # noqa: E402

IDLE_HANDSHAKES = 100  # --idle: TLS handshakes in flight at once
IDLE_SETTLE = 1.5  # --idle: seconds between the last login and reading the memory


def start_from(tree: Path, python: str, certs: Any, cleanup: list[Callable[[], None]], **conf: str) -> Any:
    """pgtls of ``tree`` run by ``python`` (``python -m pgtls`` puts the working directory first on the
    path)."""
    cwd, saved = os.getcwd(), os.environ.get("PYTHONPATH")
    os.chdir(tree)
    os.environ["PYTHONPATH"] = str(tree)
    try:
        return start_pgtls(certs, cleanup, workers="1", python=python, **conf)
    finally:
        os.chdir(cwd)
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved


async def _one_query(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(scaleclient.query("SELECT 1"))
    if not await scaleclient.read_to_ready(reader):
        raise RuntimeError("SELECT 1 failed")


async def _hold_idle(port: int, ctx: ssl.SSLContext, n: int, pid: int, query: bool) -> float:
    """Log ``n`` TLS clients in (each running one query first if ``query``), read pgtls's resident memory
    (MB) while they are idle, then let them go."""
    sessions = await scaleclient.login_many(port, ctx, n, IDLE_HANDSHAKES, then=_one_query if query else None)
    await asyncio.sleep(IDLE_SETTLE)
    mb = rss_mb(pid)
    scaleclient.terminate_all(sessions)
    await asyncio.sleep(0.5)
    return mb


def idle_kb_per_client(s: Any, ctx: ssl.SSLContext, n: int, query: bool) -> float:
    """pgtls's memory growth per idle TLS client (KB), after a few clients have warmed it up."""
    pid = s.proc.pid
    asyncio.run(_hold_idle(s.port, ctx, min(50, n), pid, query))
    time.sleep(1)
    before = rss_mb(pid)
    return (asyncio.run(_hold_idle(s.port, ctx, n, pid, query)) - before) * 1024 / n


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", type=Path, default=ROOT, help="the tree to compare with (default: this one)")
    ap.add_argument("--new", type=Path, default=ROOT, help="the tree under test (default: this one)")
    ap.add_argument("--old-python", default=sys.executable, help="the interpreter of the old side")
    ap.add_argument("--new-python", default=sys.executable, help="the interpreter of the new side")
    ap.add_argument("--clients", default="2", help="pgbench -c and -j (-j at most 2 with --select)")
    ap.add_argument(
        "--select",
        choices=("simple", "extended"),
        help="instead of connects: select-only transactions (pgbench -i -s 1 first; -S -M MODE)",
    )
    ap.add_argument(
        "--idle",
        type=int,
        metavar="N",
        help="instead of connects: memory per idle TLS client, N clients held (transaction mode)",
    )
    ap.add_argument(
        "--idle-query",
        action="store_true",
        help="with --idle: each client runs one SELECT 1 (takes and gives back a server) before idling",
    )
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args(argv)
    if args.old.resolve() == args.new.resolve() and args.old_python == args.new_python:
        ap.error("nothing to compare: give --old (another tree) or --old-python/--new-python")
    conf: dict[str, str] = {}
    if args.idle:
        conf = {"pool_mode": "transaction", "max_connections": str(args.idle + 100)}
        need = 2 * args.idle + 1000  # this process's client ends, and pgtls's (it inherits the limit)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), max(hard, need)))
    cleanup: list[Callable[[], None]] = []
    work, env, sql = bench_workspace("pgtls-ab-", cleanup)
    try:
        certs = certset.build(work / "certs")
        sides = {"old": (args.old.resolve(), args.old_python), "new": (args.new.resolve(), args.new_python)}
        if args.idle:
            # A fresh server per measurement: a process keeps the memory its last crowd freed and would
            # serve the next one from it.
            ctx = ssl.create_default_context(cafile=certs.path("root_ca.crt"))
            kb: dict[str, list[float]] = {name: [] for name in sides}
            for r in range(args.rounds):
                for name in ("old", "new") if r % 2 == 0 else ("new", "old"):
                    s = start_from(*sides[name], certs, cleanup, **conf)
                    try:
                        kb[name].append(idle_kb_per_client(s, ctx, args.idle, args.idle_query))
                    finally:
                        s.cleanup()
            for name, per in kb.items():
                print(
                    f"{name}: KB per idle client {[round(x, 2) for x in per]} median {statistics.median(per):.2f}"
                )
            ratio = [b / a for a, b in zip(kb["old"], kb["new"], strict=True)]
            print(f"paired new/old memory per idle client: median {statistics.median(ratio):.3f}")
            return 0
        servers = {name: start_from(*side, certs, cleanup, **conf) for name, side in sides.items()}
        res: dict[str, list[tuple[float, float]]] = {name: [] for name in servers}
        if args.select:
            for s in servers.values():
                pgbench_init(s.port, env)
            jobs = str(min(2, int(args.clients)))
            pgbench = ["-n", "-S", "-M", args.select, "-c", args.clients, "-j", jobs, "-T", "3"]
            unit, scale = "txn", 1e6  # CPU in us per transaction
        else:
            pgbench = ["-n", "-C", "-f", str(sql), "-c", args.clients, "-j", args.clients, "-T", "3"]
            unit, scale = "conn", 1e3  # CPU in ms per connection
        for r in range(args.rounds):
            order = list(servers.items())
            for name, s in order if r % 2 == 0 else reversed(order):
                settle([s.proc.pid])
                c0 = tree_cpu_seconds(s.proc.pid)
                out = run_pgbench(s.port, env, pgbench, 60)
                settle([s.proc.pid])
                c1 = tree_cpu_seconds(s.proc.pid)
                res[name].append((out["tps"], (c1 - c0) * scale / out["transactions"]))
        for name, rows in res.items():
            print(
                f"{name}: {unit}/s {[round(x[0]) for x in rows]} median {statistics.median(x[0] for x in rows):.0f}"
                f" | CPU {'us' if args.select else 'ms'}/{unit} {[round(x[1], 2) for x in rows]}"
                f" median {statistics.median(x[1] for x in rows):.3f}"
            )
        cpu = [b[1] / a[1] for a, b in zip(res["old"], res["new"], strict=True)]
        rate = [b[0] / a[0] for a, b in zip(res["old"], res["new"], strict=True)]
        print(
            f"paired new/old CPU per {unit}: median {statistics.median(cpu):.3f} {[round(x, 3) for x in cpu]}"
        )
        print(f"paired new/old {unit}/s: median {statistics.median(rate):.3f} {[round(x, 3) for x in rate]}")
    finally:
        run_cleanup(cleanup)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
