"""jsonb @> and <@ with PostgreSQL's containment (DuckDB's json_contains searches every depth): the same
results and column names as PostgreSQL 15, for fixed cases through a session and for random documents
(hypothesis) against PostgreSQL's own @>; the array operators stay DuckDB's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pgtls.backends.embedded.jsonb.containment import contains_text
from tests.pgwire_util import assert_same_as_postgres

CASES = [
    ('{"a":1,"b":2}', '{"a":1}'), ('{"a":{"b":1}}', '{"b":1}'), ('{"a":{"b":1,"c":2}}', '{"a":{"b":1}}'),
    ("[1,2,3]", "[3,1]"), ("[1,2,3]", "1"), ("[[1,2]]", "[1]"), ("[[1,2]]", "[[1]]"), ('{"a":[1,2]}', '{"a":[2]}'),
    ('"x"', '"x"'), ('[{"a":1,"b":2}]', '[{"a":1}]'), ('{"a":1}', "{}"), ("[]", "[]"), ("[1]", "[]"),
    ("[1.0]", "[1]"), ("[true]", "[1]"), ('{"a":null}', '{"a":null}'), ("1", "[1]"), ('{"a":1}', "[]"),
    ('{"a":"1"}', '{"a":1}'), ("[1,[2]]", "[2]"),
]  # fmt: skip
SETUP = ["CREATE TABLE j (id int, d jsonb)"] + [
    f"INSERT INTO j VALUES ({i}, '{h}')" for i, (h, _n) in enumerate(CASES)
]
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
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.sampled_from([1.0, 2.5, -0.0, 1e3, "a", "b", "", "1", "é"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3)
    ),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def pg(realpg) -> Iterator[psycopg.Connection]:
    with psycopg.connect(
        f"host=127.0.0.1 port={realpg.port} user=postgres dbname=postgres", autocommit=True
    ) as c:
        yield c


def _derive(data: st.DataObject, v: object, depth: int = 0) -> object:
    """Something close to a part of ``v``: keys and elements left out, values derived the same way, and
    now and then the confusions containment must tell apart (a value one level deeper or shallower, a
    scalar wrapped in an array, a number as a string or a boolean)."""
    how = data.draw(
        st.sampled_from(["part", "part", "part", "unwrap", "wrap", "retype"]), label=f"how{depth}"
    )
    if how == "wrap":
        return [v]
    if how == "unwrap" and isinstance(v, list | dict) and v:
        inner = list(v.values()) if isinstance(v, dict) else v
        return _derive(data, data.draw(st.sampled_from(inner)), depth + 1)
    if how == "retype" and not isinstance(v, list | dict):
        return data.draw(st.sampled_from([str(v), json.dumps(v), True, 1, 1.0, None, [v], {"a": v}]))
    if isinstance(v, dict):
        keys = data.draw(st.lists(st.sampled_from(sorted(v)), unique=True), label=f"keys{depth}") if v else []
        return {k: _derive(data, v[k], depth + 1) for k in keys}
    if isinstance(v, list):
        picks = data.draw(st.lists(st.sampled_from(v), max_size=3), label=f"elems{depth}") if v else []
        return [_derive(data, e, depth + 1) for e in picks]
    return v


@settings(max_examples=300, deadline=None)
@given(JSON, JSON, st.data())
def test_containment_matches_postgres(pg, x: object, y: object, data: st.DataObject) -> None:
    """Random documents, and parts of them with the usual confusions (_derive): pgtls's @> (and so <@)
    gives what PostgreSQL 15's gives."""
    a, b, part = json.dumps(x), json.dumps(y), json.dumps(_derive(data, x))
    pairs = [(a, b), (a, a), (a, part), (part, a)]
    theirs = pg.execute(
        "SELECT array_agg(h::jsonb @> n::jsonb ORDER BY i) FROM unnest(%s::text[], %s::text[]) "
        "WITH ORDINALITY AS t(h, n, i)",
        [[p[0] for p in pairs], [p[1] for p in pairs]],
    ).fetchone()[0]
    ours = [contains_text(h, n) for h, n in pairs]
    assert ours == theirs, list(zip(pairs, ours, theirs, strict=True))
    assert theirs[1] is True  # every jsonb value contains itself
