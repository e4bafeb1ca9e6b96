#!/usr/bin/env python3
"""Checks that bench/compare.py's CPU accounting sees PostgreSQL work done behind pgtls and PgBouncer.

A known amount of backend CPU (a ``SELECT count(*) FROM generate_series(...)``, one backend, CPU-bound, so
its CPU time is close to the query's wall time) is run through each server; the server's process-tree CPU
must grow by about as much:

* ``pgtls``: through the relay, the upstream session stays pooled, so the backend's time is a *live*
  descendant's (pgtls -> postmaster -> backend);
* ``pgtls, session ended``: the same, then ``pg_terminate_backend`` of the session's own backend: the
  backend exits, the postmaster reaps it, and its time moves into the postmaster's cutime/cstime;
* ``postgres``: PostgreSQL direct, the backend exits at disconnect (postmaster's cutime/cstime);
* ``pgbouncer``: PgBouncer's tree plus its PostgreSQL's (the backend stays pooled).

    .venv/bin/python bench/check_accounting.py [--rows 30000000]

Prints the query's wall time, the tree's CPU growth and where in the tree it showed up (per root pid:
root_own, root_reaped_children = cutime+cstime, live_descendants_own, live_descendants_reaped_children), and
the growth over the query's wall time: about 1.0 on a quiet machine (one CPU-bound backend) when nothing is
missed.  (Each server runs its own execution of the query, so the growths differ by a few percent.)
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _servers import (  # noqa: E402
    ROOT,
    client_env,
    direct_pg_bindir,
    psql_cmd,
    read_tree,
    settle,
    start_pgbouncer,
    start_pgtls,
    start_postgres,
)

from tests import certset  # noqa: E402
from tests.pgserver import shared_tmpdir  # noqa: E402


def run(port: int, env: dict[str, str], sql: str) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(psql_cmd(port, sql), env=env, capture_output=True, text=True)
    if p.returncode != 0 and "terminating connection" not in p.stderr:
        raise RuntimeError(f"psql: {p.stderr}")
    return time.perf_counter() - t0


def check(name: str, port: int, roots: list[int], env: dict[str, str], sql: str) -> dict[str, object]:
    settle(roots)
    before = {r: read_tree(r) for r in roots}
    wall = run(port, env, sql)
    settle(roots)
    after = {r: read_tree(r) for r in roots}
    parts: dict[str, float] = {}
    for r in roots:
        for k, v in after[r].minus(before[r]).items():
            parts[f"{r}:{k}"] = round(v, 3)
    grown = sum(after[r].total - before[r].total for r in roots)
    row = {
        "server": name,
        "query_wall_s": round(wall, 3),
        "tree_cpu_growth_s": round(grown, 3),
        "growth_over_wall": round(grown / wall, 3),
        "where": {k: v for k, v in parts.items() if abs(v) >= 0.01},
    }
    print(
        f"{name:24} query {wall:6.2f} s wall, tree CPU +{grown:6.2f} s ({grown / wall:.2f} of the wall time)  "
        f"{row['where']}",
        flush=True,
    )
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=30_000_000)
    args = ap.parse_args()
    heavy = f"SELECT count(*) FROM generate_series(1, {args.rows})"
    cleanup = []
    work = shared_tmpdir("pgtls-acct-")
    cleanup.append(lambda: shutil.rmtree(work, ignore_errors=True))
    env = client_env(Path(tempfile.mkdtemp(prefix="home-", dir=work)))
    rows = []
    try:
        certs = certset.build(work / "certs")
        s = start_pgtls(certs, cleanup)
        pg = start_postgres(certs, cleanup, direct_pg_bindir()[0])
        b = start_pgbouncer(certs, pg, cleanup)
        assert s.proc is not None and pg.proc is not None and b.proc is not None
        run(s.port, env, "SELECT 1")  # a pooled session exists
        rows.append(check("pgtls (session pooled)", s.port, [s.proc.pid], env, heavy))
        rows.append(
            check(
                "pgtls (session ended)",
                s.port,
                [s.proc.pid],
                env,
                f"{heavy}; SELECT pg_terminate_backend(pg_backend_pid())",
            )
        )
        rows.append(check("postgres", pg.port, [pg.proc.pid], env, heavy))
        rows.append(check("pgbouncer + postgres", b.port, [b.proc.pid, pg.proc.pid], env, heavy))
    finally:
        for fn in reversed(cleanup):
            fn()
    ref = next(r["tree_cpu_growth_s"] for r in rows if r["server"] == "postgres")
    print(
        "tree CPU growth vs PostgreSQL direct's (the backend reaped by the postmaster): "
        + ", ".join(f"{r['server']} {r['tree_cpu_growth_s'] / ref:.2f}x" for r in rows)
    )
    for r in rows:
        r["vs_postgres_direct"] = round(r["tree_cpu_growth_s"] / ref, 3)
    out = ROOT / "bench" / "results" / "check_accounting.json"
    out.write_text(
        json.dumps({"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "query": heavy, "results": rows}, indent=2)
        + "\n"
    )
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
