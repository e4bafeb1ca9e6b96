#!/usr/bin/env python3
"""Does a select through pgtls cost PostgreSQL or pgbench more system calls or wake-ups than through
PgBouncer?  Per transaction of ``pgbench -S -c 8 -j 2`` over TLS, for each ``-M`` mode: the system calls
and context switches of the proxy process, of PostgreSQL's backends behind it, and of pgbench.

    .venv/bin/python bench/relay_syscalls.py [--rounds 2] [-T 4]

Counted with Linux perf's tracepoints (``perf stat -e raw_syscalls:sys_enter,...`` on the processes, for
``-T`` seconds in the middle of a longer pgbench run): no tracing of each call, so the processes run at
full speed.  pgtls runs one worker (one process to count).  Needs ``perf`` (Debian's linux-perf) and
tracepoint access (root).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench._servers import (  # noqa: E402
    bench_workspace,
    child_pids,
    pgbench_binary,
    pgbench_init,
    run_cleanup,
    start_pgbouncer,
    start_pgtls,
    start_postgres,
)
from tests import certset  # noqa: E402

EVENTS = {
    "raw_syscalls:sys_enter": "syscalls",
    "context-switches": "cs",
    "syscalls:sys_enter_recvfrom": "recvfrom",
    "syscalls:sys_enter_sendto": "sendto",
    "syscalls:sys_enter_read": "read",
    "syscalls:sys_enter_write": "write",
    "syscalls:sys_enter_epoll_wait": "epoll_wait",
    "syscalls:sys_enter_epoll_pwait": "epoll_pwait",
}


def perf_stat(pids: list[int], seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            "perf",
            "stat",
            "-x",
            ",",
            "-e",
            ",".join(EVENTS),
            "-p",
            ",".join(map(str, pids)),
            "sleep",
            str(seconds),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def counts(p: subprocess.Popen[str]) -> dict[str, int]:
    _, err = p.communicate()
    out: dict[str, int] = {}
    for line in err.splitlines():
        f = line.split(",")
        if len(f) > 2 and f[0].strip().isdigit() and f[2] in EVENTS:
            out[EVENTS[f[2]]] = int(f[0])
    return out


def fmt(c: dict[str, int], n: float) -> str:
    """Counts per transaction: all system calls (context switches) [recvfrom, sendto, read, write, epoll]."""
    per = {k: v / n for k, v in c.items()}
    io = [
        per.get("recvfrom", 0),
        per.get("sendto", 0),
        per.get("read", 0),
        per.get("write", 0),
        per.get("epoll_wait", 0) + per.get("epoll_pwait", 0),
    ]
    return f"{per.get('syscalls', 0):5.2f} ({per.get('cs', 0):4.2f}) [{', '.join(f'{x:.2f}' for x in io)}]"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("-T", type=int, default=4, help="seconds counted per run")
    args = ap.parse_args(argv)
    cleanup: list[Callable[[], None]] = []
    work, env, _ = bench_workspace("pgtls-syscalls-", cleanup)
    try:
        certs = certset.build(work / "certs")
        pgtls = start_pgtls(certs, cleanup, workers="1")
        pg = start_postgres(certs, cleanup)
        bouncer = start_pgbouncer(certs, pg, cleanup)
        assert pgtls.proc is not None and bouncer.proc is not None and pg.proc is not None
        for port in (pgtls.port, pg.port):
            pgbench_init(port, env)
        targets = {
            "pgtls": (pgtls.port, pgtls.proc.pid, pgtls.postmaster_pid()),
            "pgbouncer": (bouncer.port, bouncer.proc.pid, pg.proc.pid),
        }
        print("per transaction: syscalls (context switches) [recv, send, read, write, epoll]")
        for r in range(args.rounds):
            for mode in ("simple", "extended"):
                for name, (port, proxy, postmaster) in targets.items():
                    assert postmaster is not None
                    cmd = [pgbench_binary(), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-n", "-S"]
                    cmd += ["-c", "8", "-j", "2", "-M", mode, "postgres"]
                    subprocess.run([*cmd, "-T", "2"], env=env, check=True, capture_output=True)  # backends up
                    backends = child_pids(postmaster)
                    bench = subprocess.Popen(
                        [*cmd, "-T", str(args.T + 2)], env=env, stdout=subprocess.PIPE, text=True
                    )
                    time.sleep(1)
                    stats = [
                        perf_stat([proxy], args.T),
                        perf_stat(backends, args.T),
                        perf_stat([bench.pid], args.T),
                    ]
                    proxy_c, pg_c, bench_c = (counts(p) for p in stats)
                    out, _ = bench.communicate()
                    m = re.search(r"tps = ([\d.]+)", out)
                    if m is None:
                        raise RuntimeError(f"pgbench printed no tps:\n{out}")
                    tps = float(m.group(1))
                    n = tps * args.T

                    print(
                        f"round {r + 1} {mode:8} {name:9} {tps:8.0f} TPS | proxy {fmt(proxy_c, n)} | "
                        f"PostgreSQL {fmt(pg_c, n)} | pgbench {fmt(bench_c, n)}"
                    )
    finally:
        run_cleanup(cleanup)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
