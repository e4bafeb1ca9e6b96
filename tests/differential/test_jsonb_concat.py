"""jsonb || (objects merged, the right side winning; otherwise arrays joined), which DuckDB would run as
text concatenation: the same results and column names as PostgreSQL 15, and text || text untouched."""

from __future__ import annotations

from pathlib import Path

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from pgtls.backends.embedded.jsonb import operators as jsonb
from pgtls.backends.embedded.sql.lexer import tokens
from tests.pgwire_util import assert_same_as_postgres

SETUP = [
    "CREATE TABLE j (id int, d jsonb, t text)",
    """INSERT INTO j VALUES (1, '{"a": 1, "b": {"x": 1}}', 'p'), (2, '[1, 2]', 'q'), (3, '"s"', 'r'),
       (4, NULL, NULL)""",
    "CREATE TABLE o (id int, d text)",
    "INSERT INTO o VALUES (1, 'txt')",
]
QUERIES = [
    """SELECT id, d || '{"b": null, "c": 3}' FROM j ORDER BY id""",
    "SELECT id, d || '[3]' FROM j ORDER BY id",
    "SELECT id, j.d || '5' FROM j ORDER BY id",
    "SELECT t || 'x' || t FROM j ORDER BY id",
    """SELECT '{"a":1}'::jsonb || '{"a":2}'::jsonb""",
    """SELECT '[1]'::jsonb || '{"a":2}'::jsonb || '[3]'""",
    "SELECT jsonb_build_object('a', 1) || jsonb_build_object('b', 2)",
    "SELECT o.d || 'x' FROM o",  # a text column named like a jsonb one elsewhere: text
    "SELECT 'a' || 1",
    """UPDATE j SET d = d || '{"z": 0}' WHERE id = 1 RETURNING d""",
    "SELECT d FROM j WHERE id = 1",
]


def test_jsonb_concat_as_postgres(tmp_path: Path) -> None:
    assert_same_as_postgres(tmp_path, SETUP, QUERIES, ("json", "jsonb"))


_CUR = duckdb.connect()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["d", "|", "||", "'{}'", "::", "jsonb", "text", "(", ")", "CAST", "AS", "x",
                                 ".", ",", "SELECT", "1"]), max_size=14).map(" ".join))  # fmt: skip
def test_concat_rewrite_never_raises(sql: str) -> None:
    for start, end, text in jsonb.concat_edits(_CUR, sql, tokens(sql)):
        assert 0 <= start < end <= len(sql)
        assert text.startswith("CAST(pgtls_jsonb_concat(")
