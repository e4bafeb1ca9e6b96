"""jsonb's key-exists operators ? ?| ?& (Django's has_key, has_any_keys, has_keys), which DuckDB's
parser does not have: the same results as PostgreSQL 15, with literals and with parameters."""

from __future__ import annotations

from pathlib import Path

import psycopg
from hypothesis import given, settings
from hypothesis import strategies as st

from pgtls.backends.embedded.jsonb.exists import exists_edits
from pgtls.backends.embedded.sql.lexer import tokens
from tests.pgwire_util import error_outcome, errors, fe, postgres_and_session, rows

SETUP = [
    "CREATE TABLE j (id int, d jsonb)",
    """INSERT INTO j VALUES (1, '{"a": 1, "b": null}'), (2, '["a", 1, "c"]'), (3, '"a"'), (4, '1'), (5, NULL),
       (6, '{"x": {"a": 1}}'), (7, '{}'), (8, '[]')""",
]
QUERIES = [
    "SELECT id, d ? 'a', d ? 'b', d ? 'z', d ?| ARRAY['z','c'], d ?& ARRAY['a','b'], d ?& ARRAY[]::text[] "
    "FROM j ORDER BY id",
    "SELECT id FROM j WHERE d ? 'a' ORDER BY id",
    "SELECT id FROM j WHERE NOT d ? 'a' AND d IS NOT NULL ORDER BY id",
    "SELECT id FROM j WHERE (d -> 'x') ? 'a' ORDER BY id",
    "SELECT id FROM j WHERE j.d ?| '{a,c}' ORDER BY id",
    "SELECT id FROM j WHERE d ?& '{a,b}' ORDER BY id",
    """SELECT '{"a":1}'::jsonb ? 'a', '["a"]'::jsonb ? 'a', NULL::jsonb ? 'a', '{"a":1}'::jsonb ? NULL""",
    "SELECT id, coalesce(d, '{}') ? 'a' FROM j ORDER BY id",
]


def _ours(d, sql: str) -> object:
    msgs = d.query(sql)
    errs = errors(msgs)
    if errs:
        return error_outcome(errs[0]["C"], errs[0]["M"])
    return [c["name"] for m in msgs if m.kind == "T" for c in m["columns"]], rows(msgs)


def _theirs(conn: psycopg.Connection, sql: str, args: tuple[object, ...] = ()) -> object:
    try:
        cur = conn.execute(sql, args)
    except psycopg.Error as e:
        return error_outcome(e.sqlstate or "", e.diag.message_primary or "")
    return ([c.name for c in cur.description or []],
            [[None if v is None else {True: "t", False: "f"}.get(v, str(v)) if isinstance(v, bool) else str(v)
              for v in r] for r in cur.fetchall()])  # fmt: skip


def test_exists_operators_as_postgres(tmp_path: Path) -> None:
    with postgres_and_session(tmp_path, SETUP) as (conn, d):
        for sql in QUERIES:
            assert _ours(d, sql) == _theirs(conn, sql), sql
        # Bound parameters, as Django sends them (extended protocol, text parameters).
        for sql, arg in (("SELECT id FROM j WHERE d ? $1 ORDER BY id", "a"),
                         ("SELECT id FROM j WHERE d ?| $1 ORDER BY id", "{z,c}")):  # fmt: skip
            got = d.send(fe.parse(sql), fe.bind([arg]), fe.execute(), fe.sync())
            assert not errors(got), errors(got)
            pg_arg = arg.strip("{}").split(",") if "|" in sql else arg  # psycopg sends a list as text[]
            assert rows(got) == _theirs(conn, sql.replace("$1", "%s"), (pg_arg,))[1], sql


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(["d", "?", "|", "&", "'a'", "$1", "(", ")", "[", "]", "ARRAY", "::", "jsonb",
                                 "text", ".", ",", "x", "WHERE", " "]), max_size=12).map(" ".join))  # fmt: skip
def test_exists_rewrite_never_raises(sql: str) -> None:
    for start, end, text in exists_edits(sql, tokens(sql)):
        assert 0 <= start < end <= len(sql)
        assert text.startswith("pgtls_jsonb_exists")
