#!/usr/bin/env python3
"""Full TLS connection rate: pgtls vs PostgreSQL 15 vs PgBouncer, same machine, same client, one run.

Each "transaction" is a whole connection: TCP connect, SSLRequest, TLS handshake, startup and
authentication (trust for all three servers), ``SELECT 1``, disconnect -- ``pgbench -C -n`` with
PGSSLMODE=require and a one-line script.  For every server it reports connections per second (pgbench's
tps, which with -C counts connections) and the server's CPU milliseconds per connection, read from the
kernel's accounting of the server process tree (/proc/<pid>/stat utime+stime+cutime+cstime of the server
process and all its descendants, before and after the measured run).  All three servers use the same
ECDSA P-256 certificate chain (tests/certset.py).  PgBouncer pools (session mode) to the PostgreSQL 15
server of the same run over its Unix socket; the upstream PostgreSQL's CPU during the PgBouncer run is
reported separately.

    .venv/bin/python bench/connect_rate.py [-T 10] [-c 4] [-j 2] [--servers pgtls,postgres,pgbouncer]
    .venv/bin/python bench/connect_rate.py --profile      # pgtls only, under a per-thread CPU profiler

Results: a table on stdout and bench/results/connect_rate.json (the profile: bench/results/pgtls-connect.prof).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pstats
import re
import resource
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _servers import ROOT, BenchPgtls, PgBouncer, live_children, tree_cpu_seconds  # noqa: E402

from tests import certset  # noqa: E402
from tests.pgserver import PG_BIN, RealPostgres, have_postgres, shared_tmpdir  # noqa: E402

RESULTS = ROOT / "bench" / "results"
HBA = "local all all trust\nhost all all 127.0.0.1/32 trust\n"
CERT, KEY = "server-chain.crt", "server.key"  # ECDSA P-256 leaf + intermediate CA
ALL_SERVERS = ("pgtls", "postgres", "pgbouncer")


def pgbench_binary() -> str:
    cand = PG_BIN / "pgbench"
    if cand.exists():
        return str(cand)
    found = shutil.which("pgbench")
    if not found:
        raise SystemExit("pgbench not found (make bench installs it: scripts/install-system-deps.sh --bench)")
    return found


def client_env(home: Path) -> dict[str, str]:
    """A clean libpq environment: no inherited PG* settings, an empty HOME (so no ~/.postgresql
    client certificate or root.crt changes what sslmode=require does)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(HOME=str(home), PGSSLMODE="require", PGCONNECT_TIMEOUT="10", PGAPPNAME="pgbench")
    return env


def run_pgbench(port: int, args: argparse.Namespace, env: dict[str, str], script: Path,
                duration: float) -> dict[str, Any]:
    cmd = [pgbench_binary(), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-n", "-C",
           "-f", str(script), "-T", str(int(duration)), "-c", str(args.clients), "-j", str(args.jobs),
           "postgres"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=duration + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = r.stdout + r.stderr
    if r.returncode != 0:
        raise RuntimeError(f"pgbench failed ({r.returncode}):\n{out[-3000:]}")

    def grab(pattern: str, cast: Callable[[str], Any] = float) -> Any:
        m = re.search(pattern, out)
        return cast(m.group(1)) if m else None

    res = {
        "tps": grab(r"tps = ([\d.]+)"),
        "transactions": grab(r"number of transactions actually processed: (\d+)", int),
        "failed": grab(r"number of failed transactions: (\d+)", int) or 0,
        "latency_ms": grab(r"latency average = ([\d.]+) ms"),
        "connection_ms": grab(r"average connection time = ([\d.]+) ms"),
        "client_cpu_s": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        "command": " ".join(cmd),
    }
    if not res["tps"] or not res["transactions"]:
        raise RuntimeError(f"could not parse pgbench output:\n{out[-3000:]}")
    return res


def tls_probe(port: int) -> dict[str, Any]:
    """One SSLRequest + handshake with Python's ssl: what protocol/cipher/certificate the server offers."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(struct.pack("!ii", 8, 80877103))
        if raw.recv(1) != b"S":
            return {"error": "SSLRequest refused"}
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with ctx.wrap_socket(raw, server_hostname="localhost") as t:
            der = t.getpeercert(binary_form=True) or b""
            import hashlib

            return {"protocol": t.version(), "cipher": (t.cipher() or ("?",))[0],
                    "leaf_sha256": hashlib.sha256(der).hexdigest()[:16]}


def settle(pid: int, baseline_children: int | None, timeout: float = 5.0) -> None:
    """Wait until connection processes/backends from the previous run are gone (so their CPU has been
    reaped into cutime/cstime) -- for a single-process server this returns at once."""
    time.sleep(0.3)
    if baseline_children is None:
        return
    deadline = time.monotonic() + timeout
    while live_children(pid) > baseline_children and time.monotonic() < deadline:
        time.sleep(0.05)


def measure(name: str, pid: int, port: int, args: argparse.Namespace, env: dict[str, str], script: Path,
            *, forking: bool, upstream_pid: int | None = None,
            before_measure: Callable[[], None] | None = None) -> dict[str, Any]:
    print(f"[{name}] port {port}: {tls_probe(port)}", flush=True)
    base_children = live_children(pid) if forking else None
    if args.warmup > 0:
        run_pgbench(port, args, env, script, args.warmup)
        settle(pid, base_children)
    if before_measure is not None:
        before_measure()
    cpu0 = tree_cpu_seconds(pid)
    up0 = tree_cpu_seconds(upstream_pid) if upstream_pid else None
    res = run_pgbench(port, args, env, script, args.duration)
    settle(pid, base_children)
    cpu = tree_cpu_seconds(pid) - cpu0
    n = res["transactions"]
    out = {
        "server": name,
        "conn_per_s": res["tps"],
        "connections": n,
        "failed": res["failed"],
        "server_cpu_s": round(cpu, 3),
        "cpu_ms_per_conn": 1000.0 * cpu / n,
        "client_cpu_ms_per_conn": 1000.0 * res["client_cpu_s"] / n,
        "avg_connection_ms": res["connection_ms"],
        "latency_ms": res["latency_ms"],
        "tls": tls_probe(port),
        "pgbench": res["command"],
    }
    if upstream_pid:
        up = tree_cpu_seconds(upstream_pid) - up0  # type: ignore[operator]
        out["upstream_postgres_cpu_ms_per_conn"] = 1000.0 * up / n
    print(f"[{name}] {out['conn_per_s']:.1f} conn/s, {out['cpu_ms_per_conn']:.2f} ms server CPU/conn "
          f"({n} connections, {out['failed']} failed)", flush=True)
    return out


# --- servers ------------------------------------------------------------------------------------


def start_postgres(certs: certset.CertSet, cleanup: list[Callable[[], None]]) -> RealPostgres:
    pg = RealPostgres()
    cleanup.append(pg.cleanup)
    pg.init()
    pg.copy_in(certs.path(CERT), "server.crt", 0o644)
    pg.copy_in(certs.path(KEY), "server.key", 0o600)
    pg.write("pg_hba.conf", HBA)
    with open(pg.datadir / "postgresql.conf", "a") as f:  # later lines win over RealPostgres.init's
        f.write("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"
                "log_connections = off\nlog_disconnections = off\nmax_connections = 100\n")
    pg.start()
    return pg


def start_pgtls(certs: certset.CertSet, cleanup: list[Callable[[], None]],
                profile_out: Path | None = None) -> BenchPgtls:
    s = BenchPgtls(profile_out)
    cleanup.append(s.cleanup)
    s.init()
    s.copy_in(certs.path(CERT), "server.crt", 0o644)
    s.copy_in(certs.path(KEY), "server.key", 0o600)
    s.write("pg_hba.conf", HBA)
    s.conf(ssl="on", log_connections="off", log_disconnections="off")
    s.start()
    return s


def start_pgbouncer(certs: certset.CertSet, pg: RealPostgres, cleanup: list[Callable[[], None]]) -> PgBouncer:
    b = PgBouncer(upstream_sockdir=pg.sockdir, upstream_port=pg.port, cert=certs.path(CERT), key=certs.path(KEY))
    cleanup.append(b.cleanup)
    b.start()
    return b


# --- report -------------------------------------------------------------------------------------


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a and b else "-"


def print_table(rows: list[dict[str, Any]]) -> None:
    by = {r["server"]: r for r in rows}
    pg, pgb = by.get("postgres"), by.get("pgbouncer")
    head = (f"{'server':<10} {'conn/s':>8} {'vs PG':>7} {'vs PgB':>7} {'CPU ms/conn':>12} {'vs PG':>7} "
            f"{'vs PgB':>7} {'conns':>7} {'client ms/conn':>15}")
    print()
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['server']:<10} {r['conn_per_s']:>8.1f} "
              f"{ratio(r['conn_per_s'], pg and pg['conn_per_s']):>7} "
              f"{ratio(r['conn_per_s'], pgb and pgb['conn_per_s']):>7} "
              f"{r['cpu_ms_per_conn']:>12.2f} "
              f"{ratio(r['cpu_ms_per_conn'], pg and pg['cpu_ms_per_conn']):>7} "
              f"{ratio(r['cpu_ms_per_conn'], pgb and pgb['cpu_ms_per_conn']):>7} "
              f"{r['connections']:>7} {r['client_cpu_ms_per_conn']:>15.2f}")
    if pgb and "upstream_postgres_cpu_ms_per_conn" in pgb:
        print(f"(pgbouncer's upstream PostgreSQL used a further {pgb['upstream_postgres_cpu_ms_per_conn']:.2f} "
              "ms CPU/conn on pooled backends)")
    print("ratios: conn/s higher is better; CPU ms/conn lower is better")


def print_profile(prof: Path, connections: int, top: int, process_cpu_s: float) -> dict[str, Any]:
    st = pstats.Stats(str(prof))
    total = sum(v[2] for v in st.stats.values())  # type: ignore[attr-defined]
    threads = json.loads(Path(str(prof) + ".threads.json").read_text())
    print(f"\npgtls profile: {connections} connections; process CPU {process_cpu_s:.2f} s "
          f"({1000 * process_cpu_s / connections:.2f} ms/conn under the profiler); Python-profiled CPU {total:.2f} s")
    print("CPU by thread group: " + ", ".join(
        f"{k} {v:.2f} s ({100 * v / total:.0f}%)" for k, v in
        sorted(threads["cpu_seconds_by_thread_group"].items(), key=lambda kv: -kv[1]) if total))

    def fname(func: tuple[str, int, str]) -> str:
        file, line, name = func
        if file == "~":
            return name
        p = file
        for marker in ("/pgtls/", "/lib/python3"):
            if marker in p:
                p = p[p.index(marker) + 1 :]
                break
        return f"{p}:{line}({name})"

    tops: dict[str, list[dict[str, Any]]] = {}
    for key, idx, label in (("tottime", 2, "own (tottime)"), ("cumtime", 3, "cumulative")):
        items = sorted(st.stats.items(), key=lambda kv: -kv[1][idx])[:top]  # type: ignore[attr-defined]
        print(f"\ntop {top} by {label} CPU; ms/conn and % of profiled CPU")
        print(f"{'ms/conn':>8} {'%':>6} {'own ms/c':>8} {'calls/conn':>10}  function")
        rows = []
        for func, (_cc, nc, tt, ct, _callers) in items:
            v = tt if idx == 2 else ct
            rows.append({"function": fname(func), "ms_per_conn": 1000 * v / connections,
                         "share": v / total if total else 0.0, "own_ms_per_conn": 1000 * tt / connections,
                         "calls_per_conn": nc / connections})
            print(f"{1000 * v / connections:>8.3f} {100 * v / total:>5.1f}% {1000 * tt / connections:>8.3f} "
                  f"{nc / connections:>10.1f}  {fname(func)}")
        tops[key] = rows
    return {"profiled_cpu_s": total, "threads": threads, "top": tops}


# --- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-T", "--duration", type=int, default=10, help="seconds per measured run (default 10)")
    ap.add_argument("-c", "--clients", type=int, default=4, help="pgbench clients (default 4)")
    ap.add_argument("-j", "--jobs", type=int, default=2, help="pgbench threads (default 2)")
    ap.add_argument("--warmup", type=int, default=2, help="unmeasured seconds before each run (default 2; 0: none)")
    ap.add_argument("--servers", default=",".join(ALL_SERVERS),
                    help="comma-separated subset of pgtls,postgres,pgbouncer (default all)")
    ap.add_argument("--json", type=Path, default=RESULTS / "connect_rate.json", help="where to write results")
    ap.add_argument("--profile", action="store_true",
                    help="run only pgtls, under a per-thread cProfile (CPU time); print the top functions")
    ap.add_argument("--profile-top", type=int, default=25)
    ap.add_argument("--profile-out", type=Path, default=RESULTS / "pgtls-connect.prof")
    args = ap.parse_args(argv)
    servers = ["pgtls"] if args.profile else [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = set(servers) - set(ALL_SERVERS)
    if unknown:
        ap.error(f"unknown server(s): {', '.join(sorted(unknown))}")
    if ("postgres" in servers or "pgbouncer" in servers) and not have_postgres():
        raise SystemExit(f"PostgreSQL 15 not found under {PG_BIN} (scripts/install-system-deps.sh)")
    pgbench_binary()

    # SIGTERM/SIGHUP -> SystemExit, so the finally below stops every server.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))

    cleanup: list[Callable[[], None]] = []
    work = shared_tmpdir("pgtls-bench-")
    cleanup.append(lambda: shutil.rmtree(work, ignore_errors=True))
    home = Path(tempfile.mkdtemp(prefix="home-", dir=work))
    script = work / "select1.sql"
    script.write_text("SELECT 1;\n")
    env = client_env(home)
    rows: list[dict[str, Any]] = []
    extra: dict[str, Any] = {}
    t0 = time.monotonic()
    load_before = os.getloadavg()
    if load_before[0] > (os.cpu_count() or 1):
        print(f"note: load average {load_before[0]:.1f} on {os.cpu_count()} CPUs -- conn/s will be depressed by "
              "other work; CPU ms/conn is less affected", flush=True)
    try:
        certs = certset.build(work / "certs")
        pg = None
        if "postgres" in servers or "pgbouncer" in servers:
            pg = start_postgres(certs, cleanup)
        if "postgres" in servers:
            assert pg is not None and pg.proc is not None
            try:
                rows.append(measure("postgres", pg.proc.pid, pg.port, args, env, script, forking=True))
            except Exception:
                print(f"--- postgres server log (tail) ---\n{pg.log()[-4000:]}", file=sys.stderr)
                raise
        if "pgbouncer" in servers:
            assert pg is not None and pg.proc is not None
            b = start_pgbouncer(certs, pg, cleanup)
            assert b.proc is not None
            try:
                rows.append(measure("pgbouncer", b.proc.pid, b.port, args, env, script, forking=False,
                                    upstream_pid=pg.proc.pid))
            except Exception:
                print(f"--- pgbouncer log (tail) ---\n{b.log()[-4000:]}", file=sys.stderr)
                raise
            b.cleanup()
        if pg is not None:
            pg.cleanup()
        if "pgtls" in servers:
            if args.profile:
                args.profile_out.parent.mkdir(parents=True, exist_ok=True)
                args.profile_out.unlink(missing_ok=True)
            s = start_pgtls(certs, cleanup, args.profile_out.resolve() if args.profile else None)
            assert s.proc is not None
            try:
                row = measure("pgtls", s.proc.pid, s.port, args, env, script, forking=False,
                              before_measure=s.reset_profile if args.profile else None)
            except Exception:
                print(f"--- pgtls server log (tail) ---\n{s.full_log()[-4000:]}", file=sys.stderr)
                raise
            rows.append(row)
            s.stop()  # SIGINT: fast shutdown; the profiler writes its file on the way out
            if args.profile:
                if not args.profile_out.exists():
                    raise RuntimeError(f"no profile written:\n{s.full_log()[-3000:]}")
                extra["profile"] = print_profile(args.profile_out, row["connections"], args.profile_top,
                                                 row["server_cpu_s"])
                extra["profile"]["file"] = str(args.profile_out)
                print(f"\nprofile: {args.profile_out}  (python -m pstats {args.profile_out})")
    finally:
        for fn in reversed(cleanup):
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - keep stopping the others
                print(f"cleanup: {e}", file=sys.stderr)

    order = {n: i for i, n in enumerate(ALL_SERVERS)}
    rows.sort(key=lambda r: order[r["server"]])
    print_table(rows)
    result = {
        "benchmark": "connect_rate",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "loadavg_1m_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)]},
        "options": {"duration_s": args.duration, "clients": args.clients, "jobs": args.jobs,
                    "warmup_s": args.warmup, "sslmode": "require", "auth": "trust", "script": "SELECT 1;",
                    "certificate": "ECDSA P-256 leaf + intermediate (tests/certset.py server-chain.crt)",
                    "profiled": args.profile},
        "results": rows,
        "elapsed_s": round(time.monotonic() - t0, 1),
        **extra,
    }
    by = {r["server"]: r for r in rows}
    for r in rows:
        for ref in ("postgres", "pgbouncer"):
            if ref in by and r["server"] != ref:
                r[f"conn_per_s_vs_{ref}"] = r["conn_per_s"] / by[ref]["conn_per_s"]
                r[f"cpu_per_conn_vs_{ref}"] = r["cpu_ms_per_conn"] / by[ref]["cpu_ms_per_conn"]
    out = args.json
    if args.profile and out == RESULTS / "connect_rate.json":
        out = RESULTS / "connect_rate_profile.json"  # a profiled run does not overwrite the real figures
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
