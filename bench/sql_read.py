"""Micro-benchmark: CPU per query string of splitting it into statements and classifying each one.

    .venv/bin/python bench/sql_read.py [-n 20000]

*old*: the embedded backend's own lexer (``sql/lexer.py`` ``split_with_offsets``, then ``words`` and the
first-words ``classify``).  *new*: PostgreSQL's parser through pglast (``sql/reader.py``, falling back to
the lexer), then the classifier the session uses now.  *cold* gives every iteration a different text (a
different literal: nothing cached, as pgbench's simple protocol sends it); *warm* repeats one text (the
reader's cache).  CPU is process time, per query string.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from pgtls.backends.embedded.sql import kinds, lexer, reader

STATEMENTS: dict[str, str] = {
    "pgbench select": "SELECT abalance FROM pgbench_accounts WHERE aid = {n}",
    "insert": "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 2, {n}, 5, now())",
    "begin": "BEGIN /* {n} */",
    "multi": "BEGIN; UPDATE pgbench_accounts SET abalance = abalance + 5 WHERE aid = {n}; "
    "SELECT abalance FROM pgbench_accounts WHERE aid = {n}; COMMIT",
    "long ddl": "CREATE TABLE IF NOT EXISTS t{n} ("
    + ", ".join(f"c{i} integer NOT NULL DEFAULT {i} CHECK (c{i} >= 0)" for i in range(40))
    + ", PRIMARY KEY (c0, c1), UNIQUE (c2))",
}


def old_way(sql: str) -> list[kinds.Kind]:
    return [kinds.classify(s, lexer.words(s, 4)) for _, s in lexer.split_with_offsets(sql)]


def new_way(sql: str) -> list[kinds.Kind]:
    return [kinds.kind_of(s, lexer.words(s, 4)) for _, s in reader.split_with_offsets(sql)]


def per_call_us(fn: Callable[[str], object], texts: list[str]) -> float:
    t0 = time.process_time()
    for t in texts:
        fn(t)
    return (time.process_time() - t0) / len(texts) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=20000)
    args = ap.parse_args()
    print(f"{'statement':16s} {'old cold':>9s} {'new cold':>9s} {'old warm':>9s} {'new warm':>9s}  (us CPU)")
    for name, shape in STATEMENTS.items():
        cold = [shape.format(n=k) for k in range(args.n)]
        warm = [shape.format(n=1)] * args.n
        assert old_way(cold[0]) == new_way(cold[0]), name
        figures = [per_call_us(f, texts) for texts in (cold, warm) for f in (old_way, new_way)]
        print(f"{name:16s} " + " ".join(f"{x:9.2f}" for x in figures))


if __name__ == "__main__":
    main()
