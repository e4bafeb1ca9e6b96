"""Soak: many TLS connect/disconnect cycles; pgtls's descriptors and memory before and after.

    .venv/bin/python bench/soak.py [--cycles 100000] [--backend postgresql|duckdb] [--workers N]

Each cycle is one `pgbench -C` transaction (TCP connect, SSLRequest, TLS 1.3 handshake, trust login,
SELECT 1, disconnect), 4 clients at once.  After a warm-up of 1,000 cycles (pools and caches reach their
working size) the pgtls process's open descriptors and resident memory are read, then again after the run
(once its connections have ended).  For the managed PostgreSQL, the cluster's client backends are counted
too.  With ``--workers N`` (N > 1, the relay) descriptors and memory are read for the supervisor and each
worker process.  Results go to bench/results/soak-<backend>[-workers<N>].json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import certset, soakload  # noqa: E402
from tests.pgtlsserver import PgtlsServer  # noqa: E402


def cycles(port: int, n: int, home: Path, script: Path) -> tuple[int, int, float]:
    t0 = time.monotonic()
    r = soakload.pgbench_connects(
        port, script, ["-t", str(max(1, n // 4))], {"HOME": str(home), "PATH": "/usr/bin:/bin"}
    )
    took = time.monotonic() - t0
    counts = soakload.processed(r.stdout)
    if counts is None:
        raise SystemExit(r.stdout + r.stderr)
    return *counts, took


def pgtls_processes(pid: int) -> dict[str, int]:
    """The server process and its worker processes (children running pgtls.server.worker), by name."""
    out = {"server": pid}
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        cmd = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        if b"pgtls.server.worker" in cmd:
            out[f"worker {child}"] = int(child)
    return out


def reading(pid: int, s: PgtlsServer) -> dict[str, object]:
    procs = pgtls_processes(pid)
    return {
        "fds": {n: soakload.fd_count(p) for n, p in procs.items()},
        "rss_kb": {n: soakload.rss_kb(p) for n, p in procs.items()},
        "cluster_client_backends": backends(s),
    }


def backends(s: PgtlsServer) -> int | None:
    return soakload.client_backends(s) if s.backend == "postgresql" else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--cycles", type=int, default=100_000)
    p.add_argument("--backend", choices=("postgresql", "duckdb"), default="postgresql")
    p.add_argument("--workers", type=int, default=1, help="pgtls's workers setting (1: one process)")
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="pgtls-soak-"))
    certs = certset.build(tmp / "certs")
    home = tmp / "home"
    home.mkdir()
    script = soakload.select1_script(tmp)
    s = soakload.soak_server(certs, PgtlsServer(), args.backend, workers=str(args.workers))
    try:
        assert s.proc is not None
        pid = s.proc.pid
        cycles(s.port, 1000, home, script)
        time.sleep(2)
        before = reading(pid, s)
        done, failed, took = cycles(s.port, args.cycles, home, script)
        time.sleep(3)
        after = reading(pid, s)
        out = {
            "backend": args.backend,
            "workers": args.workers,
            "cycles": done,
            "failed": failed,
            "seconds": round(took, 1),
            "conn_per_s": round(done / took, 1),
            "before": before,
            "after": after,
        }
        print(json.dumps(out, indent=1))
        Path(__file__).with_name("results").mkdir(exist_ok=True)
        Path(__file__).with_name("results").joinpath(
            f"soak-{args.backend}{'' if args.workers == 1 else f'-workers{args.workers}'}.json"
        ).write_text(json.dumps(out, indent=1) + "\n")
    finally:
        s.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
