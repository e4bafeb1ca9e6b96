"""The set-returning JSON functions (json[b]_object_keys, json[b]_each[_text], json[b]_array_elements[_text])
as catalog macros, in a FROM clause (also lateral) and in a select list: the same as PostgreSQL 15."""

from __future__ import annotations

from pathlib import Path

from tests.pgwire_util import assert_same_as_postgres

SETUP = [
    "CREATE TABLE j (id int, d jsonb)",
    """INSERT INTO j VALUES (1, '{"a": 1, "b/c": "x", "s~": null}'), (2, '{}'), (3, '[1, "two", null, true]')""",
]
QUERIES = [
    "SELECT jsonb_object_keys(d) FROM j WHERE id = 1 ORDER BY 1",
    """SELECT * FROM jsonb_object_keys('{"x":1,"y":2}') ORDER BY 1""",
    "SELECT k FROM j, json_object_keys(j.d::json) AS k WHERE id = 1 ORDER BY k",
    "SELECT j.id, e.key, e.value FROM j, jsonb_each(j.d) e WHERE j.id < 3 ORDER BY 1, 2",
    """SELECT key, value FROM jsonb_each_text('{"a":1,"b":"x","c":null}') ORDER BY key""",
    "SELECT value FROM jsonb_array_elements('[1,2]')",
    "SELECT jsonb_array_elements_text(d) FROM j WHERE id = 3",
    "SELECT x FROM j, jsonb_array_elements(j.d) AS x WHERE id = 3",
]


def test_json_set_functions_as_postgres(tmp_path: Path) -> None:
    assert_same_as_postgres(tmp_path, SETUP, QUERIES, ("json", "jsonb"))
