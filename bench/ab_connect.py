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
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench._servers import (  # noqa: E402
    bench_workspace,
    pgbench_init,
    run_cleanup,
    run_pgbench,
    settle,
    start_pgtls,
    tree_cpu_seconds,
)
from tests import certset  # noqa: E402


def start_from(tree: Path, python: str, certs: Any, cleanup: list[Callable[[], None]]) -> Any:
    """pgtls of ``tree`` run by ``python`` (``python -m pgtls`` puts the working directory first on the
    path)."""
    cwd, saved = os.getcwd(), os.environ.get("PYTHONPATH")
    os.chdir(tree)
    os.environ["PYTHONPATH"] = str(tree)
    try:
        return start_pgtls(certs, cleanup, workers="1", python=python)
    finally:
        os.chdir(cwd)
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved


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
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args(argv)
    if args.old.resolve() == args.new.resolve() and args.old_python == args.new_python:
        ap.error("nothing to compare: give --old (another tree) or --old-python/--new-python")
    cleanup: list[Callable[[], None]] = []
    work, env, sql = bench_workspace("pgtls-ab-", cleanup)
    try:
        certs = certset.build(work / "certs")
        servers = {
            name: start_from(tree.resolve(), python, certs, cleanup)
            for name, tree, python in (
                ("old", args.old, args.old_python),
                ("new", args.new, args.new_python),
            )
        }
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
