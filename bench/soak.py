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
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import certset  # noqa: E402
from tests.pgtlsserver import PgtlsServer  # noqa: E402


def fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cycles(port: int, n: int, home: Path, script: Path) -> tuple[int, int, float]:
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
    t0 = time.monotonic()
    r = subprocess.run(
        [
            "pgbench",
            "-n",
            "-C",
            "-c",
            "4",
            "-j",
            "2",
            "-t",
            str(max(1, n // 4)),
            "-f",
            str(script),
            f"host=127.0.0.1 port={port} user=postgres dbname=postgres sslmode=require",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    took = time.monotonic() - t0
    done = re.search(r"actually processed: (\d+)", r.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", r.stdout)
    if done is None:
        raise SystemExit(r.stdout + r.stderr)
    return int(done.group(1)), int(failed.group(1)) if failed else 0, took


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
        "fds": {n: fds(p) for n, p in procs.items()},
        "rss_kb": {n: rss_kb(p) for n, p in procs.items()},
        "cluster_client_backends": backends(s),
    }


def backends(s: PgtlsServer) -> int | None:
    if s.backend != "postgresql":
        return None
    rows = s.sql(
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
        "AND pid <> pg_backend_pid()"
    )
    return int(rows[0][0] or 0)


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
    script = tmp / "select1.sql"
    script.write_text("SELECT 1;\n")
    s = PgtlsServer().init(backend=args.backend)
    s.copy_in(certs.path("server-chain.crt"), "server.crt", 0o644)
    s.copy_in(certs.path("server.key"), "server.key", 0o600)
    s.write("pg_hba.conf", "local all all trust\nhostssl all all 127.0.0.1/32 trust\n")
    s.conf(ssl="on", log_connections="off", workers=str(args.workers))
    s.start()
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
