"""jsonb construction and inspection functions DuckDB has under other names (jsonb_build_object,
jsonb_agg, to_jsonb, jsonb_typeof, ...): the same text as PostgreSQL 15, NULL for aggregates over no rows."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pgtls.backends.embedded.jsonb.functions import function_edits
from pgtls.backends.embedded.sql.lexer import tokens
from tests.pgwire_util import assert_same_as_postgres

SETUP = [
    "CREATE TABLE j (id int, d jsonb, t text)",
    """INSERT INTO j VALUES (1, '{"a": 1, "b": [1, 2], "c": {"d": "x"}, "e": null, "f": true, "g": "s"}', 'p'),
       (2, '{"a": 2}', 'q'), (3, NULL, NULL)""",
]
QUERIES = [
    "SELECT jsonb_build_object('a', 1, 'b', 'x', 'c', NULL, 'd', true)",
    "SELECT jsonb_build_array(1, 'a', NULL, 2.5)",
    "SELECT to_jsonb(1), to_jsonb('x'::text), to_jsonb(NULL::text)",
    "SELECT jsonb_agg(id ORDER BY id DESC) FROM j",
    "SELECT jsonb_agg(t ORDER BY id) FILTER (WHERE id < 3) FROM j",
    "SELECT jsonb_agg(id) FROM j WHERE false",
    "SELECT json_agg(id) FROM j WHERE false",
    "SELECT jsonb_object_agg(t, id) FROM j WHERE t IS NOT NULL",
    "SELECT jsonb_object_agg(t, id) FROM j WHERE false",
    "SELECT jsonb_build_object('n', count(*), 'ids', jsonb_agg(id ORDER BY id)) FROM j",
    "SELECT id, jsonb_typeof(d -> 'a'), jsonb_typeof(d -> 'b'), jsonb_typeof(d -> 'c'), jsonb_typeof(d -> 'e'), "
    "jsonb_typeof(d -> 'f'), jsonb_typeof(d -> 'g'), jsonb_typeof(d) FROM j ORDER BY id",
    "SELECT jsonb_array_length(d -> 'b') FROM j WHERE id = 1",
    "SELECT id, jsonb_agg(t) OVER (ORDER BY id) FROM j ORDER BY id",
]


def test_jsonb_functions_as_postgres(tmp_path: Path) -> None:
    assert_same_as_postgres(tmp_path, SETUP, QUERIES, ("json", "jsonb", "bool"))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["jsonb_agg", "json_agg", "jsonb_build_object", "to_jsonb", "(", ")", "x", ",",
                                 "FILTER", "OVER", "w", "ORDER", "BY", "1", "'a'", "."]), max_size=14).map(" ".join))  # fmt: skip
def test_function_rewrite_never_raises(sql: str) -> None:
    for start, end, _text in function_edits(sql, tokens(sql)):
        assert 0 <= start < end <= len(sql)
