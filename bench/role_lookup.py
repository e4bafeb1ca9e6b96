"""What fetching the role from pg_authid on every login costs (no cache, so no secret outlives ALTER ROLE).

Starts a pgtls server with its managed PostgreSQL, opens pgtls's own kind of privileged connection to the
cluster's socket, and runs the relay's role query (pgtls/backends/relay/roles.py, as a prepared statement,
as the relay does) N times one after the other, then N times with 8 in flight (logins arriving together
are pipelined on one connection).  Reports wall time per lookup and the cluster's CPU per lookup.

    .venv/bin/python bench/role_lookup.py [-n 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._servers import tree_cpu_seconds  # noqa: E402
from pgtls.backends.relay.cluster import socket_dir_of  # noqa: E402
from pgtls.backends.relay.roles import ROLE_QUERY, role_view  # noqa: E402
from pgtls.backends.relay.upstream import connect_unix  # noqa: E402
from tests.pgtlsserver import PgtlsServer  # noqa: E402


async def run(sock: Path, n: int, inflight: int) -> tuple[float, float]:
    conn = await connect_unix(sock, {"user": "postgres", "database": "postgres", "application_name": "pgtls"})
    try:
        await conn.execute_prepared("pgtls_role", ROLE_QUERY, ["alice"])  # prepare outside the timing
        t0 = time.perf_counter()
        done = 0
        while done < n:
            batch = [conn.execute_prepared("pgtls_role", ROLE_QUERY, ["alice"]) for _ in range(inflight)]
            for r in await asyncio.gather(*batch):
                assert role_view("alice", r.rows).role is not None
            done += inflight
        return time.perf_counter() - t0, done
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("-n", type=int, default=5000)
    args = p.parse_args(argv)
    s = PgtlsServer().init()
    s.create_role("alice", password="secret")
    s.create_role("staff", options="NOLOGIN")
    s.sql("GRANT staff TO alice")
    s.start()
    out: dict[str, object] = {}
    try:
        pm = int((s.datadir / "cluster" / "postmaster.pid").read_text().split()[0])
        sock = socket_dir_of(s.datadir) / ".s.PGSQL.5432"
        for inflight in (1, 8):
            cpu0 = tree_cpu_seconds(pm)
            wall, n = asyncio.run(run(sock, args.n, inflight))
            cpu = tree_cpu_seconds(pm) - cpu0
            out[f"inflight_{inflight}"] = {
                "lookups": n,
                "wall_us_per_lookup": round(wall / n * 1e6, 1),
                "postgres_cpu_us_per_lookup": round(cpu / n * 1e6, 1),
            }
            print(
                f"{inflight} in flight: {wall / n * 1e6:.1f} µs per lookup (wall), "
                f"PostgreSQL CPU {cpu / n * 1e6:.1f} µs per lookup, {n} lookups"
            )
    finally:
        s.cleanup()
    Path(__file__).with_name("results").mkdir(exist_ok=True)
    Path(__file__).with_name("results").joinpath("role_lookup.json").write_text(
        json.dumps(out, indent=1) + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
