#!/usr/bin/env python3
"""Embedded database throughput over TLS: pgtls vs PostgreSQL 15, same machine, same client, one run.

1. Select-only transactions per second on persistent connections: ``pgbench -S``-style point
   lookups (``SELECT abalance FROM accounts WHERE aid = :aid``) on a 1M-row table with a primary
   key, 8 clients, ``pgbench -n -M simple`` (``--modes simple,extended,prepared`` for the others), after
   a warm-up run of ``--warmup`` seconds on each server (PostgreSQL fills its buffer cache, pgtls
   builds its point-lookup index: see docs/embedded.md).
2. Bulk ``COPY big TO STDOUT`` of about 200 MB through psql (output to /dev/null), in MB/s: the median of
   ``--copy-runs`` runs (3), each server alike (one run varies by about 5%; every run is in the JSON).

Both servers: the same ECDSA P-256 certificate chain (tests/certset.py), ssl=on, trust over
hostssl, clients with sslmode=require.  PgBouncer (session pooling, client TLS with the same chain,
PostgreSQL over its Unix socket) is measured too, in front of the same PostgreSQL, when installed.  Prints ratios to PostgreSQL and writes
bench/results/query_rate.json.

    .venv/bin/python bench/query_rate.py [-T 10] [-c 8] [-j 2] [--rows 1000000] [--copy-mb 200] [--copy-runs 3] [--copy-only]
        [--modes simple,extended,prepared] [--warmup 5]

The pgtls server's resident memory after the runs is printed too (the index holds the table).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _servers import ROOT, BenchPgtls, PgBouncer, pgbouncer_binary  # noqa: E402

from tests import certset  # noqa: E402
from tests.pgserver import PG_BIN, RealPostgres, have_postgres, shared_tmpdir  # noqa: E402

RESULTS = ROOT / "bench" / "results"
HBA = "local all all trust\nhostssl all all 127.0.0.1/32 trust\n"
ROW_BYTES = 100  # approximate COPY text bytes per row of `big`


def _client_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(HOME=str(home), PGSSLMODE="require")
    return env


def _psql_cmd(port: int, sql: str) -> list[str]:
    """psql running one command as postgres on the loopback server at ``port``."""
    return ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
            "-d", "postgres", "-c", sql]  # fmt: skip


def _psql(
    port: int, sql: str, env: dict[str, str], *, out: int | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        _psql_cmd(port, sql),
        env=env,
        stdout=out if out is not None else subprocess.PIPE,
        stderr=subprocess.PIPE,
        check=True,
    )


def load(kind: str, port: int, env: dict[str, str], rows: int, big_rows: int) -> None:
    """``accounts`` (``rows`` rows; none with ``rows`` 0) and ``big`` (``big_rows`` rows) on one server."""
    series = f"generate_series(1, {rows}) AS g(i)" if kind == "postgres" else f"range(1, {rows} + 1) AS g(i)"
    big = (
        f"generate_series(1, {big_rows}) AS g(i)"
        if kind == "postgres"
        else f"range(1, {big_rows} + 1) AS g(i)"
    )
    filler = "repeat('x', 84)"
    _psql(port, "DROP TABLE IF EXISTS accounts; DROP TABLE IF EXISTS big", env)
    if rows:
        _psql(
            port, "CREATE TABLE accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84))", env
        )
        _psql(port, f"INSERT INTO accounts SELECT i, 1, 0, {filler} FROM {series}", env)
    _psql(port, f"CREATE TABLE big AS SELECT i, {filler} || CAST(i AS text) AS t FROM {big}", env)
    if kind == "postgres":
        for table in ("accounts", "big") if rows else ("big",):
            _psql(port, f"VACUUM ANALYZE {table}", env)  # VACUUM cannot run inside a multi-statement block


def pgbench(port: int, env: dict[str, str], script: Path, args: argparse.Namespace, mode: str,
            seconds: int | None = None) -> float:  # fmt: skip
    cmd = [
        str(PG_BIN / "pgbench"),
        "-n",
        "-M",
        mode,
        "-c",
        str(args.clients),
        "-j",
        str(args.jobs),
        "-T",
        str(seconds or args.time),
        "-f",
        str(script),
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-U",
        "postgres",
        "postgres",
    ]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"pgbench failed:\n{p.stdout}\n{p.stderr}")
    m = re.search(
        r"tps = ([\d.]+) \((?:without initial connection time|excluding connections establishing)\)", p.stdout
    )
    if not m:
        raise RuntimeError(f"no tps in pgbench output:\n{p.stdout}")
    return float(m.group(1))


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def copy_rate(port: int, env: dict[str, str]) -> tuple[float, int]:
    out = Path(os.devnull)
    with open(out, "wb") as sink:
        t0 = time.perf_counter()
        p = subprocess.Popen(
            _psql_cmd(port, "COPY big TO STDOUT"),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert p.stdout is not None
        total = 0
        while chunk := p.stdout.read(1 << 20):
            total += len(chunk)
            sink.write(chunk)
        p.wait()
        elapsed = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"COPY failed: {p.stderr.read().decode() if p.stderr else ''}")
    return total / elapsed / 1e6, total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-T", "--time", type=int, default=10)
    ap.add_argument("-c", "--clients", type=int, default=8)
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--copy-mb", type=int, default=200)
    ap.add_argument("--copy-runs", type=int, default=3, help="COPY runs per server; their median is reported")
    ap.add_argument("--no-pgbouncer", action="store_true", help="do not measure PgBouncer in front of PostgreSQL")
    ap.add_argument("--modes", default="simple", help="pgbench query modes, comma-separated (default simple)")
    ap.add_argument("--warmup", type=int, default=5, help="seconds of pgbench before measuring (default 5)")
    ap.add_argument(
        "--copy-only",
        action="store_true",
        help="only the COPY TO STDOUT part (no accounts table, no pgbench); results in query_rate_copy.json",
    )
    args = ap.parse_args(argv)
    if not have_postgres():
        raise SystemExit("PostgreSQL 15 is not installed (make bench installs it)")

    base = shared_tmpdir("pgtls-qbench-")
    cs = certset.build(base / "certs")
    home = base / "home"
    home.mkdir()
    env = _client_env(home)
    script = base / "select.sql"
    script.write_text(f"\\set aid random(1, {args.rows})\nSELECT abalance FROM accounts WHERE aid = :aid;\n")
    big_rows = args.copy_mb * 1_000_000 // ROW_BYTES
    modes = [] if args.copy_only else [m.strip() for m in args.modes.split(",") if m.strip()]
    accounts = 0 if args.copy_only else args.rows
    results: dict[str, dict[str, float]] = {}
    copy_runs: dict[str, list[float]] = {}
    servers = []
    bouncer: PgBouncer | None = None
    try:
        pg = RealPostgres().init()
        ours = BenchPgtls().init()
        servers = [("postgres", pg), ("pgtls", ours)]
        for _kind, s in servers:
            s.copy_in(cs.path("server-chain.crt"), "server.crt", 0o644)
            s.copy_in(cs.path("server.key"), "server.key", 0o600)
            s.write("pg_hba.conf", HBA)
            with open(s.datadir / "postgresql.conf", "a") as f:
                f.write("ssl = on\nlog_connections = off\n")
            s.start()
        for kind, s in servers:
            t0 = time.perf_counter()
            load(kind, s.port, env, accounts, big_rows)
            print(
                f"{kind}: loaded {accounts} accounts and {big_rows} rows for COPY in "
                f"{time.perf_counter() - t0:.1f}s",
                flush=True,
            )
        targets = [("postgres", pg.port)]
        if pgbouncer_binary() is not None and not args.no_pgbouncer:
            bouncer = PgBouncer(upstream_sockdir=pg.sockdir, upstream_port=pg.port,
                                cert=str(cs.path("server-chain.crt")), key=str(cs.path("server.key")))  # fmt: skip
            bouncer.start()
            targets.append(("pgbouncer", bouncer.port))
        else:
            print("pgbouncer is not installed (make bench installs it): PgBouncer not measured", flush=True)
        targets.append(("pgtls", ours.port))
        for kind, port in targets:
            r: dict[str, float] = {}
            if modes and args.warmup > 0:
                pgbench(port, env, script, args, modes[0], args.warmup)
            for mode in modes:
                r[f"tps_{mode}"] = pgbench(port, env, script, args, mode)
            runs = [copy_rate(port, env) for _ in range(max(1, args.copy_runs))]
            r["copy_mb_s"], r["copy_bytes"] = statistics.median(mb for mb, _ in runs), runs[0][1]
            copy_runs[kind] = [round(mb, 1) for mb, _ in runs]
            if kind == "pgtls" and ours.proc is not None:
                r["rss_mb"] = _rss_mb(ours.proc.pid)
            results[kind] = r
            print(kind, r, "COPY runs (MB/s):", copy_runs[kind], flush=True)
    finally:
        if bouncer is not None:
            bouncer.cleanup()
        for _kind, s in servers:
            s.cleanup()

    pg_r = results["postgres"]
    print()
    print(
        f"{'server':10} "
        + " ".join(f"{'tps ' + m:>14} {'vs PG':>6}" for m in modes)
        + f" {'COPY MB/s':>10} {'vs PG':>6}"
    )
    for kind, r in results.items():
        cells = " ".join(f"{r[f'tps_{m}']:14.1f} {r[f'tps_{m}'] / pg_r[f'tps_{m}']:5.2f}x" for m in modes)
        print(f"{kind:10} {cells} {r['copy_mb_s']:10.1f} {r['copy_mb_s'] / pg_r['copy_mb_s']:5.2f}x")
    if "pgbouncer" in results and "pgtls" in results:
        pb, ours_r = results["pgbouncer"], results["pgtls"]
        print("pgtls vs PgBouncer (in front of the same PostgreSQL): "
              + ", ".join(f"{k[4:] if k.startswith('tps_') else 'COPY'} {ours_r[k] / pb[k]:.2f}x"
                          for k in [*(f"tps_{m}" for m in modes), "copy_mb_s"]))  # fmt: skip
    if "rss_mb" in results.get("pgtls", {}):
        print(f"pgtls resident memory after the runs: {results['pgtls']['rss_mb']:.0f} MB")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / ("query_rate_copy.json" if args.copy_only else "query_rate.json")).write_text(
        json.dumps(
            {
                "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "machine": platform.machine(),
                "cpus": os.cpu_count(),
                "loadavg": os.getloadavg(),
                "args": vars(args),
                "results": results,
                "copy_runs_mb_s": copy_runs,
                "ratios": {
                    k: {m: v / pg_r[m] for m, v in r.items() if m in pg_r and pg_r[m]}
                    for k, r in results.items()
                },
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
