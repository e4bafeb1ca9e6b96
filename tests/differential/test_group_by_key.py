"""Grouping by a primary key and selecting the table's other columns (PostgreSQL's functional
dependency, which Django's annotate() relies on): the same rows, or the same error (SQLSTATE and message,
but for the listed differences), as PostgreSQL 15."""

from __future__ import annotations

from pathlib import Path

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from pgtls.backends.embedded.rewrite import groupby
from tests.pgwire_util import assert_same_as_postgres

SETUP = [
    "CREATE TABLE a (id int PRIMARY KEY, name text, x int)",
    "CREATE TABLE b (id int PRIMARY KEY, a_id int, v int)",
    "CREATE TABLE c (k1 int, k2 int, name text, PRIMARY KEY (k1, k2))",
    "CREATE TABLE nk (id int, name text)",
    "INSERT INTO a VALUES (1, 'x', 10), (2, 'y', 20), (3, 'z', 30)",
    "INSERT INTO b VALUES (1, 1, 5), (2, 1, 6), (3, 2, 7)",
    "INSERT INTO c VALUES (1, 1, 'p'), (1, 2, 'q')",
    "INSERT INTO nk VALUES (1, 'n')",
]
QUERIES = [
    # Django's annotate(n=Count(...)).order_by("-n", "name").values_list("name", "n")
    'SELECT "a"."name" AS "name", COUNT("b"."id") AS "n" FROM "a" LEFT OUTER JOIN "b" ON ("a"."id" = "b"."a_id") '
    'GROUP BY "a"."id" ORDER BY 2 DESC, 1 ASC',
    "SELECT t.name, t.x, sum(b.v) FROM a AS t JOIN b ON b.a_id = t.id GROUP BY t.id ORDER BY t.name",
    "SELECT a.id, a.name, count(*) FROM a GROUP BY a.id ORDER BY a.x",
    "SELECT c.name, count(*) FROM c GROUP BY c.k1, c.k2 ORDER BY 1",
    "SELECT c.name, count(*) FROM c GROUP BY c.k1 ORDER BY 1",  # half a key: 42803 in both
    "SELECT nk.name, count(*) FROM nk GROUP BY nk.id",  # no key: 42803 in both
    "SELECT a.name, count(*) FROM a GROUP BY a.id HAVING count(*) > 0 ORDER BY a.name LIMIT 2",
    "SELECT name, count(*) FROM a GROUP BY id ORDER BY 1",
    "SELECT a.name, b.v FROM a JOIN b ON b.a_id = a.id GROUP BY a.id, b.id ORDER BY 1, 2",
    "SELECT count(*) AS n, a.name FROM a GROUP BY a.id ORDER BY n, a.name",  # n: an output column
    "SELECT a.nosuch FROM a GROUP BY a.id",  # 42703 in both
]


# The same SQLSTATE, a different message: sql -> why.
MESSAGE_DIFFERENCES = {
    "SELECT c.name, count(*) FROM c GROUP BY c.k1 ORDER BY 1": "DuckDB's binder words 42803 itself "
        "('column \"name\" must appear ... or must be part of an aggregate function.', unqualified)",
    "SELECT nk.name, count(*) FROM nk GROUP BY nk.id": "DuckDB's binder words 42803 itself (as above)",
    "SELECT a.nosuch FROM a GROUP BY a.id": "DuckDB's binder words 42703 itself "
        "('column \"nosuch\" of relation \"a\" does not exist'; PostgreSQL: 'column a.nosuch does not exist')",
}  # fmt: skip


def test_group_by_key_as_postgres(tmp_path: Path) -> None:
    assert_same_as_postgres(tmp_path, SETUP, QUERIES, message_differences=MESSAGE_DIFFERENCES)


_CUR = duckdb.connect()
_CUR.execute("CREATE TABLE a (id int PRIMARY KEY, name text)")


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(["SELECT", "a.name", "a.id", "name", ",", "FROM", "a", "AS", "t", "GROUP", "BY",
                                 "ORDER", "(", ")", "count(*)", "HAVING", "UNION", "JOIN", "b", "ON", "=", ";",
                                 "DISTINCT", "t.name", "1"]), max_size=16).map(" ".join))  # fmt: skip
def test_rewrite_never_raises(sql: str) -> None:
    out = groupby.rewrite(_CUR, sql)
    assert out.startswith(sql[: len(sql.rstrip(" ;"))].split(" GROUP BY ")[0])
