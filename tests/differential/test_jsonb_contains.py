"""jsonb @> and <@ with PostgreSQL's containment (DuckDB's json_contains searches every depth): the same
results and column names as PostgreSQL 15; the array operators stay DuckDB's."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pgtls.backends.embedded import jsonb
from tests.pgwire_util import assert_same_as_postgres

CASES = [
    ('{"a":1,"b":2}', '{"a":1}'), ('{"a":{"b":1}}', '{"b":1}'), ('{"a":{"b":1,"c":2}}', '{"a":{"b":1}}'),
    ("[1,2,3]", "[3,1]"), ("[1,2,3]", "1"), ("[[1,2]]", "[1]"), ("[[1,2]]", "[[1]]"), ('{"a":[1,2]}', '{"a":[2]}'),
    ('"x"', '"x"'), ('[{"a":1,"b":2}]', '[{"a":1}]'), ('{"a":1}', "{}"), ("[]", "[]"), ("[1]", "[]"),
    ("[1.0]", "[1]"), ("[true]", "[1]"), ('{"a":null}', '{"a":null}'), ("1", "[1]"), ('{"a":1}', "[]"),
    ('{"a":"1"}', '{"a":1}'), ("[1,[2]]", "[2]"),
]  # fmt: skip
SETUP = ["CREATE TABLE j (id int, d jsonb)"] + [f"INSERT INTO j VALUES ({i}, '{h}')" for i, (h, _n) in enumerate(CASES)]
QUERIES = [f"SELECT '{h}'::jsonb @> '{n}'::jsonb, '{n}'::jsonb <@ '{h}'::jsonb" for h, n in CASES] + [
    """SELECT id FROM j WHERE d @> '{"a": 1}' ORDER BY id""",
    "SELECT id FROM j WHERE '[1]' <@ d ORDER BY id",
    "SELECT id, d @> NULL FROM j WHERE id < 2 ORDER BY id",
    "SELECT ARRAY[1,2] @> ARRAY[1], ARRAY[1] <@ ARRAY[1,2]",
    """SELECT id, d @> '{"a": 1}', d || '{"z": 0}' FROM j WHERE id < 3 ORDER BY id""",  # both in one statement
    """SELECT id FROM j WHERE d || '{"z": 0}' @> '{"z": 0, "a": 1}' ORDER BY id""",
]


def test_containment_as_postgres(tmp_path: Path) -> None:
    assert_same_as_postgres(tmp_path, SETUP, QUERIES, ("bool", "jsonb"))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.sampled_from(["a", "b", ""]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(JSON, JSON)
def test_containment_properties(x: object, y: object) -> None:
    a, b = json.dumps(x), json.dumps(y)
    assert jsonb.contains_text(a, a) is True  # every jsonb value contains itself
    assert jsonb.contains_text(a, b) in (True, False)
