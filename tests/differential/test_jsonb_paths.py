"""jsonb's path operators #> and #>> (DuckDB's parser has neither), as JSON Pointer lookups: the same
values and column names as PostgreSQL 15, array indexes and object keys told apart as PostgreSQL does."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pgtls.backends.embedded.jsonb.paths import path_edits
from pgtls.backends.embedded.sql.lexer import tokens
from tests.pgwire_util import assert_same_as_postgres

SETUP = [
    "CREATE TABLE j (id int, d jsonb)",
    """INSERT INTO j VALUES (1, '{"a": {"b": [10, "x", {"c": 1}]}, "0": "zero", "s/l": 1, "t~": 2}'),
       (2, '[5, 6]'), (3, NULL)""",
]
QUERIES = [
    "SELECT id, d #> '{a,b}', d #>> '{a,b,1}', d #> '{a,b,2,c}', d #>> '{0}', d #> '{}', d #>> '{s/l}', "
    "d #>> '{t~}', d #> '{1}', d #> '{nosuch}' FROM j ORDER BY id",
    "SELECT id, d -> 'a' #>> '{b,0}', d #> '{a}' -> 'b' FROM j ORDER BY id",
    "SELECT id FROM j WHERE d #>> '{a,b,1}' = 'x'",
    "SELECT d #> ARRAY['a','b'] FROM j WHERE id = 1",
    "SELECT d #> '{a,NULL}' FROM j WHERE id = 1",
    """SELECT '[1,[2,3]]'::jsonb #>> '{1,0}', '{"a":{"b":1}}'::jsonb #> '{a}' #> '{b}'""",
]


def test_path_operators_as_postgres(tmp_path: Path) -> None:
    assert_same_as_postgres(tmp_path, SETUP, QUERIES, ("json", "jsonb"))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(["d", "#", ">", "-", "'{a,b}'", "'{a'", "'a'", "ARRAY", "[", "]", "(", ")",
                                 "::", "jsonb", "x", ".", "=", "1"]), max_size=14).map("".join))  # fmt: skip
def test_path_rewrite_never_raises(sql: str) -> None:
    for start, end, _text in path_edits(sql, tokens(sql)):
        assert 0 <= start < end <= len(sql)
