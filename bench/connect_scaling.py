#!/usr/bin/env python3
"""Is the TLS connect rate bound by CPU or by latency?  pgtls (one worker) and PgBouncer, ``pgbench -C``
at growing client counts, with the machine's idle cores during each run.

``pgbench -C`` opens each connection synchronously in its thread, so when cores stay idle its rate is
threads / per-connection time (latency), not cores / CPU per connection.

    .venv/bin/python bench/connect_scaling.py [-T 4]

Prints one line per server and client count: conn/s, the server's CPU per connection (its process tree),
pgbench's CPU per connection, and the machine's idle cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench._servers import (  # noqa: E402
    bench_workspace,
    run_cleanup,
    run_pgbench,
    start_pgbouncer,
    start_pgtls,
    start_postgres,
    tree_cpu_seconds,
)
from tests import certset  # noqa: E402

STEPS = (("1", "1"), ("2", "2"), ("4", "2"), ("8", "2"))


def idle_cores_seconds() -> float:
    fields = open("/proc/stat").readline().split()
    return int(fields[4]) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-T", type=int, default=4, help="seconds per run")
    args = ap.parse_args(argv)
    cleanup: list[Callable[[], None]] = []
    work, env, sql = bench_workspace("pgtls-scaling-", cleanup)
    try:
        certs = certset.build(work / "certs")
        pgtls = start_pgtls(certs, cleanup, workers="1")
        pg = start_postgres(certs, cleanup)
        bouncer = start_pgbouncer(certs, pg, cleanup)
        assert pgtls.proc is not None and bouncer.proc is not None
        targets = {"pgtls": (pgtls.port, pgtls.proc.pid), "pgbouncer": (bouncer.port, bouncer.proc.pid)}
        for clients, threads in STEPS:
            for name, (port, pid) in targets.items():
                i0, c0, t0 = idle_cores_seconds(), tree_cpu_seconds(pid), time.monotonic()
                out = run_pgbench(
                    port,
                    env,
                    ["-n", "-C", "-f", str(sql), "-c", clients, "-j", threads, "-T", str(args.T)],
                    120,
                )
                i1, c1, t1 = idle_cores_seconds(), tree_cpu_seconds(pid), time.monotonic()
                n = out["transactions"]
                print(
                    f"-c {clients} -j {threads} {name:9s} {out['tps']:6.0f} conn/s  "
                    f"server {(c1 - c0) * 1000 / n:.2f} ms/conn  pgbench {out['client_cpu_s'] * 1000 / n:.2f} ms/conn  "
                    f"idle {(i1 - i0) / (t1 - t0):.2f} cores  "
                    f"per-connection time {int(threads) * 1000 / out['tps']:.2f} ms per pgbench thread",
                    flush=True,
                )
    finally:
        run_cleanup(cleanup)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
