"""Micro-benchmark: CPU per query string of reading SQL text, three ways.

    .venv/bin/python bench/sql_read.py [-n 20000]

1. *split + classify*: *old* is the embedded backend's hand-written lexer (``sql/lexer.py``
   ``approximate_tokens``: the statements between top-level semicolons, the first words and the
   first-words ``classify``); *new* is PostgreSQL's parser through pglast (``sql/reader.py``), then the
   classifier the session uses (``kind_of``, from the parse node).
2. *tokens*: *old* is ``approximate_tokens``, *new* is ``lexer.tokens``: PostgreSQL's scanner through pglast
   (with its per-text cache when warm).
3. *shape key*: what keying a cache on the statement's shape would cost before any look-up: pglast's
   ``fingerprint`` (*old* column) against the parse the reader does anyway (``parse_sql_json``, *new*).

*cold* gives every iteration a different text (a different literal: nothing cached, as pgbench's simple
protocol sends it); *warm* repeats one text (the caches).  CPU is process time, per query string.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable

from pglast.parser import fingerprint, parse_sql_json

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


def _approximate_words(sql: str) -> list[str]:
    return [
        t.text.upper() if t.kind == "word" else t.text
        for t in itertools.islice(lexer.approximate_tokens(sql), 4)
    ]


def _approximate_split(sql: str) -> list[str]:
    out, start = [], 0
    for t in lexer.approximate_tokens(sql):
        if t.kind == "op" and t.text == ";":
            out.append(sql[start : t.start])
            start = t.end
    out.append(sql[start:])
    return [s for s in out if s.strip()]


def old_way(sql: str) -> list[kinds.Kind]:
    return [kinds.classify(s, _approximate_words(s)) for s in _approximate_split(sql)]


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
    ways: dict[str, tuple[Callable[[str], object], Callable[[str], object]]] = {
        "split + classify": (old_way, new_way),
        "tokens": (lambda s: list(lexer.approximate_tokens(s)), lexer.tokens),
        "shape key": (fingerprint, parse_sql_json),
    }
    for title, (old, new) in ways.items():
        print(f"{title:16s} {'old cold':>9s} {'new cold':>9s} {'old warm':>9s} {'new warm':>9s}  (us CPU)")
        for name, shape in STATEMENTS.items():
            cold = [shape.format(n=k) for k in range(args.n)]
            warm = [shape.format(n=1)] * args.n
            if title == "split + classify":
                assert old(cold[0]) == new(cold[0]), name
            if title == "shape key" and ";" in shape:
                continue  # the reader keys single statements
            figures = [per_call_us(f, texts) for texts in (cold, warm) for f in (old, new)]
            print(f"{name:16s} " + " ".join(f"{x:9.2f}" for x in figures))


if __name__ == "__main__":
    main()
