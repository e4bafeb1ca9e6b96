"""Transaction pooling at scale: 10,000 concurrent TLS clients on at most 50 PostgreSQL backends.

    .venv/bin/python bench/txn_scale.py [--clients 10000] [--pool 50] [--hold 30] [--servers pgtls,pgbouncer]

For pgtls (pool_mode = transaction, its managed PostgreSQL 18) and PgBouncer (pool_mode = transaction,
client TLS required, in front of the same PostgreSQL 18 run directly), one after the other in the same run:

1. ``--clients`` TLS sessions are opened (SSLRequest, TLS 1.3, trust login), at most ``--concurrency``
   handshakes at a time, by client processes of this script (a minimal protocol client on asyncio);
2. every client then holds its session for ``--hold`` seconds and, at random moments about every
   ``--every`` seconds, runs one transaction (``BEGIN; SELECT ...; COMMIT`` in one Query), timing it from
   sending to ReadyForQuery;
3. the proxy's resident memory is read before the clients connect and while they are all connected, and
   the PostgreSQL backends serving them are counted (``pg_stat_activity``) during the hold.

Reported per server: connect time, failed logins, transactions and their errors, latency percentiles
(p50, p90, p99, max), the proxy's memory per client (KB: the growth divided by the clients), and the peak
number of backends.  The descriptor limit is raised for the clients and the proxies.  Results go to
bench/results/txn-scale.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import resource
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._servers import (  # noqa: E402
    PgBouncer,
    pgbouncer_binary,
    run_cleanup,
    start_pgtls,
    start_postgres,
)
from tests import certset, scaleclient  # noqa: E402

TRANSACTION = "BEGIN; SELECT count(*) FROM pg_class WHERE relpages >= 0; COMMIT"


async def _client(
    port: int,
    ctx: ssl.SSLContext,
    gate: asyncio.Semaphore,
    connected: asyncio.Event,
    start_txns: asyncio.Event,
    stats: dict[str, Any],
    hold: float,
    every: float,
) -> None:
    try:
        async with gate:
            reader, writer = await scaleclient.login(port, ctx)
        stats["connected"] += 1
        if stats["connected"] == stats["want"]:
            connected.set()
    except Exception as e:  # noqa: BLE001 - counted, the run goes on
        stats["login_errors"] += 1
        stats.setdefault("login_error_samples", []).append(repr(e)[:200])
        if stats["connected"] + stats["login_errors"] == stats["want"]:
            connected.set()
        return
    await start_txns.wait()
    deadline = time.monotonic() + hold
    q = scaleclient.query(TRANSACTION)
    try:
        await asyncio.sleep(random.uniform(0, every))
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            writer.write(q)
            ok = await scaleclient.read_to_ready(reader)
            stats["latencies"].append(time.perf_counter() - t0)
            if not ok:
                stats["txn_errors"] += 1
            await asyncio.sleep(random.uniform(0.5 * every, 1.5 * every))
        writer.write(scaleclient.TERMINATE)
        writer.close()
    except Exception as e:  # noqa: BLE001
        stats["txn_errors"] += 1
        stats.setdefault("txn_error_samples", []).append(repr(e)[:200])


def _client_process(
    port: int,
    n: int,
    concurrency: int,
    hold: float,
    every: float,
    rootcert: str,
    ready_q: Any,
    go: Any,
    out_q: Any,
) -> None:
    resource.setrlimit(
        resource.RLIMIT_NOFILE, (min(n + 1000, resource.getrlimit(resource.RLIMIT_NOFILE)[1]),) * 2
    )
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    async def main() -> dict[str, Any]:
        ctx = ssl.create_default_context(cafile=rootcert)
        stats: dict[str, Any] = {
            "want": n,
            "connected": 0,
            "login_errors": 0,
            "txn_errors": 0,
            "latencies": [],
        }
        gate = asyncio.Semaphore(concurrency)
        connected, start_txns = asyncio.Event(), asyncio.Event()
        t0 = time.monotonic()
        tasks = [
            asyncio.ensure_future(_client(port, ctx, gate, connected, start_txns, stats, hold, every))
            for _ in range(n)
        ]
        await connected.wait()
        ready_q.put(
            (
                stats["connected"],
                stats["login_errors"],
                time.monotonic() - t0,
                stats.get("login_error_samples", [])[:3],
            )
        )
        await asyncio.get_running_loop().run_in_executor(None, go.wait)
        start_txns.set()
        await asyncio.gather(*tasks)
        return stats

    stats = asyncio.run(main())
    out_q.put({k: v for k, v in stats.items() if k != "want"})


def rss_kb(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def proxy_pids(root: int, name: str) -> list[int]:
    """The proxy's own processes: pgtls's supervisor and workers (not the managed PostgreSQL), or PgBouncer."""
    if name != "pgtls":
        return [root]
    out = [root]
    try:
        for child in Path(f"/proc/{root}/task/{root}/children").read_text().split():
            if b"pgtls.server.worker" in Path(f"/proc/{child}/cmdline").read_bytes():
                out.append(int(child))
    except FileNotFoundError:
        pass
    return out


def percentile(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def run_one(
    name: str,
    port: int,
    pids: Callable[[], list[int]],
    count_backends: Callable[[], int],
    args: argparse.Namespace,
    rootcert: str,
) -> dict[str, Any]:
    time.sleep(1)
    before = rss_kb(pids())
    procs = max(1, args.client_procs)
    ctx = multiprocessing.get_context("fork")
    ready_q, out_q, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    share = [args.clients // procs + (1 if i < args.clients % procs else 0) for i in range(procs)]
    workers = [
        ctx.Process(
            target=_client_process,
            args=(
                port,
                k,
                max(1, args.concurrency // procs),
                args.hold,
                args.every,
                rootcert,
                ready_q,
                go,
                out_q,
            ),
        )
        for k in share
    ]
    t0 = time.monotonic()
    for w in workers:
        w.start()
    connected = errors = 0
    samples: list[str] = []
    for _ in workers:
        c, e, _took, s = ready_q.get(timeout=args.hold + 600)
        connected += c
        errors += e
        samples += s
    connect_s = time.monotonic() - t0
    time.sleep(2)
    during = rss_kb(pids())
    peak = 0
    stop = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, count_backends())
            time.sleep(0.5)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    go.set()
    results = [out_q.get(timeout=args.hold + 600) for _ in workers]
    for w in workers:
        w.join(60)
    stop.set()
    watcher.join()
    lat = [x for r in results for x in r["latencies"]]
    row = {
        "server": name,
        "clients": args.clients,
        "connected": connected,
        "login_errors": errors,
        "login_error_samples": samples[:3],
        "connect_s": round(connect_s, 2),
        "rss_before_kb": before,
        "rss_connected_kb": during,
        "kb_per_client": round((during - before) / max(1, connected), 1),
        "transactions": len(lat),
        "txn_errors": sum(r["txn_errors"] for r in results),
        "txn_error_samples": [s for r in results for s in r.get("txn_error_samples", [])][:3],
        "latency_ms": {
            k: round(percentile(lat, p) * 1000, 2)
            for k, p in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))
        },
        "peak_backends": peak,
    }
    print(json.dumps(row), flush=True)
    return row


def backends_of(port_or_sock: tuple[str, int], user_app: str = "") -> Callable[[], int]:
    host, port = port_or_sock

    def count() -> int:
        sql = (
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
            f"AND pid <> pg_backend_pid() {user_app}"
        )
        r = subprocess.run(
            ["psql", "-XAtq", "-h", host, "-p", str(port), "-U", "postgres", "-d", "postgres", "-c", sql],
            capture_output=True,
            text=True,
            env={**os.environ, "PGSSLMODE": "disable"},
        )
        try:
            return int(r.stdout.strip())
        except ValueError:
            return 0

    return count


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=10000)
    ap.add_argument("--pool", type=int, default=50, help="server connections (pgtls: per worker / workers)")
    ap.add_argument("--hold", type=float, default=30.0)
    ap.add_argument("--every", type=float, default=10.0, help="seconds between one client's transactions")
    ap.add_argument("--concurrency", type=int, default=200, help="TLS handshakes in flight")
    ap.add_argument("--client-procs", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1, help="pgtls worker processes")
    ap.add_argument("--servers", default="pgtls,pgbouncer")
    ap.add_argument("--json", default=str(Path(__file__).parent / "results" / "txn-scale.json"))
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.clients + 2000)), hard))
    rows: list[dict[str, Any]] = []
    cleanup: list[Callable[[], None]] = []
    tmp = Path(tempfile.mkdtemp(prefix="pgtls-txnscale-"))
    try:
        certs = certset.build(tmp / "certs")
        for p in (tmp / "certs").rglob("*"):
            p.chmod(0o755 if p.is_dir() else 0o644)
        rootcert = certs.path("root_ca.crt")
        servers = args.servers.split(",")
        if "pgtls" in servers:
            per_worker = max(1, args.pool // max(1, args.workers))
            s = start_pgtls(
                certs,
                cleanup,
                pool_mode="transaction",
                default_pool_size=str(per_worker),
                max_connections=str(args.clients + 100),
                workers=str(args.workers),
                query_wait_timeout="60",
                cluster_conf={"max_connections": str(args.pool + 30)},
            )
            assert s.proc is not None
            sock = (str(s.datadir / "cluster-socket"), 5432)
            rows.append(
                run_one(
                    "pgtls",
                    s.port,
                    lambda: proxy_pids(s.proc.pid, "pgtls"),  # type: ignore[union-attr]
                    backends_of(sock, "AND application_name <> 'pgtls'"),
                    args,
                    rootcert,
                )
            )
            s.cleanup()
        if "pgbouncer" in servers and pgbouncer_binary():
            pg = start_postgres(certs, cleanup)
            with open(pg.datadir / "postgresql.conf", "a") as f:
                f.write(f"max_connections = {args.pool + 30}\n")
            pg.stop()
            pg.start()
            b = PgBouncer(
                upstream_sockdir=pg.sockdir,
                upstream_port=pg.port,
                cert=certs.path("server-chain.crt"),
                key=certs.path("server.key"),
                pool_size=args.pool,
                settings={
                    "pool_mode": "transaction",
                    "max_client_conn": str(args.clients + 100),
                    "query_wait_timeout": "60",
                },
            )
            cleanup.append(b.cleanup)
            b.start()
            assert b.proc is not None
            rows.append(
                run_one(
                    "pgbouncer",
                    b.port,
                    lambda: [b.proc.pid],  # type: ignore[union-attr]
                    backends_of((str(pg.sockdir), pg.port)),
                    args,
                    rootcert,
                )
            )
    finally:
        run_cleanup(cleanup)
    by = {r["server"]: r for r in rows}
    if "pgtls" in by and "pgbouncer" in by:
        a, b2 = by["pgtls"], by["pgbouncer"]
        print(f"memory per client: pgtls {a['kb_per_client']} KB, PgBouncer {b2['kb_per_client']} KB")
        print(
            f"latency p50/p99 ms: pgtls {a['latency_ms']['p50']}/{a['latency_ms']['p99']}, "
            f"PgBouncer {b2['latency_ms']['p50']}/{b2['latency_ms']['p99']}"
        )
    Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
