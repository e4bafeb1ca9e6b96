"""The rewrites decided on PostgreSQL's parse tree (rewrite/tree.py) against PostgreSQL 15: the same rows,
column names and column types, however the query is spelled (aliases, case, comments, qualification).

These shapes come from client libraries' catalog introspection (asyncpg's type introspection aggregates
``atttypid``; SQLAlchemy's column reflection looks up a column's collation; Django's index introspection and
bulk_create zip arrays with a multi-argument ``unnest``); the rules recognise the node, not the text, so
each case here is written differently from the client's own query."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pgtls.backends.embedded.rewrite.tree import tree_edits
from pgtls.backends.embedded.sql.lexer import apply_edits
from tests.pgwire_util import errors, postgres_and_session, rows

SETUP = [
    "CREATE TABLE t (id int PRIMARY KEY, name text, n int)",
    "CREATE INDEX t_name_n ON t (name, n)",  # ascending: DuckDB drops DESC (docs/embedded.md)
    "CREATE TABLE o (id int, big bigint, yes boolean)",  # no text column: pgtls types text as varchar
]

REL = "(SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relname = 't')"
OIDS = "(SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relname = 'o')"
IDX = "(SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relname = 't_name_n')"

CASES = {
    "oid_aggregate": f"SELECT array_agg(a.atttypid ORDER BY a.attnum) AS types FROM pg_catalog.pg_attribute a "
    f"WHERE a.attrelid = {OIDS} AND a.attnum > 0",
    "oid_aggregate_spelled_otherwise": f"select ARRAY_AGG( att.atttypid /* type */ ) types from pg_attribute att "
    f"where att.attrelid = {OIDS} and att.attnum > 0",
    "collation_lookup": "SELECT a.attname, CASE WHEN a.attcollation <> 0 AND (SELECT ty.typcollation FROM "
    "pg_catalog.pg_type ty WHERE ty.oid = a.atttypid) <> a.attcollation THEN (SELECT json_build_object('name', "
    "co.collname, 'schema', ns.nspname) FROM pg_catalog.pg_collation co JOIN pg_catalog.pg_namespace ns ON "
    f"ns.oid = co.collnamespace WHERE co.oid = a.attcollation) END AS coll FROM pg_catalog.pg_attribute a "
    f"WHERE a.attrelid = {REL} AND a.attnum > 0 ORDER BY a.attnum",
    "unnest_with_ordinality": "SELECT * FROM unnest(ARRAY[1, 2, 3], ARRAY['a', 'b']) WITH ORDINALITY AS u(x, y, i)",
    "unnest_zipped": "SELECT y, x FROM unnest(ARRAY['a', 'b', 'c'], ARRAY[1, 2]) u(x, y) ORDER BY x",
    "unnest_index_keys": "SELECT k.key, k.option, k.arridx FROM pg_catalog.pg_index i, UNNEST(i.indkey, "
    f"i.indoption) WITH ORDINALITY AS k(key, option, arridx) WHERE i.indexrelid = {IDX} ORDER BY k.arridx",
}


def _outcome(msgs: list[Any]) -> object:
    errs = errors(msgs)
    if errs:
        return ("error", errs[0]["C"], errs[0]["M"])
    desc = next(m for m in msgs if m.kind == "T")
    return [(c["name"], c["oid"]) for c in desc["columns"]], rows(msgs)


# Column types that differ for reasons outside these rules (the case fails if they agree: the list cannot go stale).
TYPES_DIFFER = {
    "collation_lookup": "attname is name in PostgreSQL, text here (DuckDB's pg_attribute); the NULL is text, "
    "the subquery's json_build_object json",
}


def test_same_as_postgres(tmp_path: Path) -> None:
    differ = {}
    with postgres_and_session(tmp_path, SETUP) as (conn, d):
        for case, sql in CASES.items():
            ours = _outcome(d.query(sql))
            cur = conn.execute(sql)
            assert cur.description is not None
            theirs = (
                [(c.name, c.type_code) for c in cur.description],
                [[None if v is None else _text(v) for v in r] for r in cur.fetchall()],
            )
            if case in TYPES_DIFFER and isinstance(ours, tuple) and ours[0] != theirs[0]:
                names = ([n for n, _ in ours[0]], [n for n, _ in theirs[0]])
                ours, theirs = (names[0], ours[1]), (names[1], theirs[1])
            elif case in TYPES_DIFFER:
                differ[case] = ("types agree now: remove the case from TYPES_DIFFER", ours)
            if ours != theirs:
                differ[case] = (ours, theirs)
    assert not differ


def _text(v: object) -> str:
    """A psycopg value as PostgreSQL's text output."""
    if isinstance(v, list):
        return "{" + ",".join(str(x) for x in v) + "}"
    if isinstance(v, dict):
        import json

        return json.dumps(v)
    return str(v)


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_rule_is_needed(case: str) -> None:
    """Each case's text is rewritten by a tree rule (without it DuckDB refuses it or types it otherwise)."""
    assert tree_edits(CASES[case])


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT array_agg(a.attnum) FROM pg_attribute a",  # not an oid column
        "SELECT * FROM unnest(ARRAY[1, 2]) WITH ORDINALITY u(x, i)",  # one argument: DuckDB's own unnest
        "SELECT * FROM pg_catalog.unnest(ARRAY[1], ARRAY[2]) u",  # qualified: PostgreSQL does not expand it
        "SELECT (SELECT collname FROM pg_collation WHERE oid = 100)",  # not matched against attcollation
        "SELECT 'unnest(a, b) pg_collation array_agg(atttypid)'",
        "SELECT unnest(a, b) FROM",  # the parser refuses it
    ],
)
def test_rules_leave_other_statements_alone(sql: str) -> None:
    assert tree_edits(sql) == []


def test_a_string_that_looks_like_a_call_is_not_one() -> None:
    sql = "SELECT array_agg(atttypid), 'array_agg(atttypid)' FROM pg_attribute"
    assert apply_edits(sql, tree_edits(sql)) == (
        "SELECT array_agg(CAST(atttypid AS UINTEGER)), 'array_agg(atttypid)' FROM pg_attribute"
    )
