"""Micro-benchmark: CPU of one point lookup through an embedded session vs the same query on DuckDB.

    .venv/bin/python bench/select_path.py [-n 3000] [--rows 100000]

Runs in process (no network, no TLS): the session's ``handle()`` of a simple Query message (SQL scan,
rewrite, DuckDB, result encoding into protocol bytes) against ``cursor.execute`` + ``fetchmany`` of the
same statement on the session's own DuckDB cursor, and ``SELECT 1`` on that cursor; then the same for an
UPDATE of one row by key (no fast path: the SQL reading, the rewrite steps and statement hooks, DuckDB).
The difference is what pgtls's session layer costs per query; the server adds TLS and the thread hand-offs
on top.
CPU is process time (DuckDB's worker threads included).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from session_open import Registry, Settings  # noqa: E402

from pgtls.backends.base import SessionInfo  # noqa: E402
from pgtls.backends.embedded import EmbeddedBackend, create_database  # noqa: E402


def per_query_us(fn: Callable[[int], object], n: int, rows: int) -> float:
    keys = [random.randint(1, rows) for _ in range(n)]
    t0 = time.process_time()
    for k in keys:
        fn(k)
    return (time.process_time() - t0) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=3000)
    ap.add_argument("--rows", type=int, default=100_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        data = Path(d)
        create_database(data, "postgres")
        be = EmbeddedBackend(data, Settings())
        info = SessionInfo(
            pid=1, user="postgres", database="postgres", client_addr="127.0.0.1", client_port=1
        )
        s = be.open_session(info, Registry())
        sink: list[bytes] = []

        def query(sql: str) -> None:
            s.handle(b"Q", sql.encode() + b"\0", sink.append)
            sink.clear()

        query("CREATE TABLE accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84))")
        query(f"INSERT INTO accounts SELECT i, 1, 0, repeat('x', 84) FROM range(1, {args.rows} + 1) g(i)")
        cur = s.cur
        sql = "SELECT abalance FROM accounts WHERE aid = {}"
        update = "UPDATE accounts SET abalance = abalance + 1 WHERE aid = {}"
        results = {
            "session.handle (pgtls)": per_query_us(lambda k: query(sql.format(k)), args.n, args.rows),
            # a write: no point-lookup fast path; the SQL reading, rewrite steps and hooks, then DuckDB
            "session.handle UPDATE": per_query_us(lambda k: query(update.format(k)), args.n, args.rows),
            "duckdb UPDATE": per_query_us(lambda k: cur.execute(update.format(k)), args.n, args.rows),
            "duckdb execute+fetch": per_query_us(
                lambda k: (cur.execute(sql.format(k)), cur.fetchmany(1000)), args.n, args.rows
            ),
            "duckdb SELECT 1": per_query_us(
                lambda k: (cur.execute("SELECT 1"), cur.fetchmany(1000)), args.n, args.rows
            ),
        }
        s.close()
        be.close()
    for name, us in results.items():
        print(f"{name:26} {us:8.1f} us CPU/query")
    print(
        f"{'pgtls session layer':26} {results['session.handle (pgtls)'] - results['duckdb execute+fetch']:8.1f} us"
    )
    print(f"{'... for the UPDATE':26} {results['session.handle UPDATE'] - results['duckdb UPDATE']:8.1f} us")


if __name__ == "__main__":
    main()
