"""jsonb's modification operators and functions (jsonb/edit.py): ``-`` (key, keys, array element), ``#-``,
jsonb_set, jsonb_set_lax, jsonb_insert, jsonb_pretty, jsonb_strip_nulls and json_strip_nulls -- the same
values, result text, column names, NULLs and errors (SQLSTATE and message) as PostgreSQL 15."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pgtls.backends.embedded.jsonb import edit as jsonb_edit
from pgtls.backends.embedded.jsonb import jsonfuncs
from pgtls.backends.embedded.jsonb import operators as jsonb
from pgtls.backends.embedded.jsonb.functions import function_edits
from pgtls.backends.embedded.pgtypes.encode import jsonb_text
from pgtls.backends.embedded.rewrite.pipeline import rewrite
from pgtls.backends.embedded.sql.lexer import tokens
from tests.pgwire_util import SessionDriver, errors, fe, postgres_and_session, rows

SETUP = [
    "CREATE TABLE j (id int, d jsonb, t text, n int, p text[])",
    """INSERT INTO j VALUES
       (1, '{"a": 1, "b": [1, "a", {"c": null}], "c": {"d": null, "e": "x"}, "n": null}', 'a', 0, ARRAY['b', '1']),
       (2, '["a", 1, "b", ["a"], null]', 'b', -1, ARRAY['0']),
       (3, '{}', 'z', 5, '{}'::text[]),
       (4, NULL, NULL, NULL, NULL)""",
    "CREATE TABLE k (id int, v json)",
    """INSERT INTO k VALUES (1, '{"a" : null, "b": [null, {"c": null, "d": 1.50e2}], "b": "\\u00e9"}'),
       (2, '[1, null]'), (3, NULL)""",
]

# Operands the query text shows to be jsonb: the rewrite of every statement (rewrite/pipeline.py) handles them.
QUERIES = [
    # jsonb - text, - text[], - int
    """SELECT '{"a":1,"b":2}'::jsonb - 'a', '["a","b",1,["a"]]'::jsonb - 'a', '{"a":1}'::jsonb - '{a}', """
    """'{"a":1}'::jsonb - 'z', '[]'::jsonb - 'a', '{}'::jsonb - 'a'""",
    """SELECT '{"a":1,"b":2,"c":3}'::jsonb - '{a,b}'::text[], '{"a":1,"b":2}'::jsonb - ARRAY['a', NULL], """
    """'["a","b"]'::jsonb - ARRAY['b'], '{"a":1}'::jsonb - ARRAY[]::text[]""",
    "SELECT '[1,2,3]'::jsonb - 1, '[1,2,3]'::jsonb - -1, '[1,2,3]'::jsonb - 5, '[1,2,3]'::jsonb - -5, "
    "'[1,2,3]'::jsonb - 0, '[]'::jsonb - 0, '[1,2,3]'::jsonb - -3",
    """SELECT '{"a":1}'::jsonb - NULL, '{"a":1}'::jsonb - NULL::int, NULL::jsonb - 'a', NULL::jsonb - 1""",
    """SELECT '{"a":1,"b":2}'::jsonb - 'a' - 'b', ('{"a":1,"b":2}'::jsonb - 'a') - 'x'""",
    """SELECT CAST('{"a":1,"b":2}' AS jsonb) - 'b' AS x""",
    # jsonb #- text[]
    """SELECT '{"a":{"b":[1,2]}}'::jsonb #- '{a,b,0}', '{"a":{"b":[1,2]}}'::jsonb #- '{a,b,-1}', """
    """'{"a":1}'::jsonb #- '{}', '{"a":1}'::jsonb #- '{a,b}', '[1,[2,3]]'::jsonb #- '{1,5}', """
    """'[1,[2,3]]'::jsonb #- '{1,-1}', '[1]'::jsonb #- '{-5}', '{}'::jsonb #- '{NULL}'""",
    """SELECT '{"a":{"b":1}}'::jsonb #- ARRAY['a','b'], '{"a":{"b":1}}'::jsonb #- '{a}'::text[]""",
    """SELECT '{"a":1,"b":{"c":2}}'::jsonb #- '{a}' -> 'b', '{"a":{"b":1,"c":2}}'::jsonb -> 'a' #- '{b}'""",
    """SELECT '{"a":1,"b":{"c":2}}'::jsonb #- '{a}' #- '{b,c}', '{"a":{"b":[1,2]}}'::jsonb #> '{a}' #- '{b,0}'""",
    """SELECT '{"a":{"b":[1,2]}}'::jsonb #- '{a,b}' #> '{a}', NULL::jsonb #- '{a}', '{"a":1}'::jsonb #- NULL""",
    # jsonb_set, jsonb_insert, jsonb_set_lax
    """SELECT jsonb_set('{"a":1}', '{b}', '2'), jsonb_set('{"a":1}', '{b}', '2', false), """
    """jsonb_set('[1,2]', '{5}', '"x"'), jsonb_set('[1,2]', '{-5}', '"x"'), jsonb_set('[1,2]', '{-1}', '9')""",
    """SELECT jsonb_set('{"a":1}', '{a,b}', '2'), jsonb_set('{}', '{a}', '2', false), jsonb_set('{}', '{a}', '2'), """
    """jsonb_set('{"a":1}', '{}', '2'), jsonb_set('[]', '{0}', '2'), jsonb_set('[1]', '{ 1}', '1'), """
    """jsonb_set('[1]', '{+0}', '7'), jsonb_set('{"a":"x"}', '{a,b}', '1')""",
    """SELECT jsonb_set('{"a":1}', NULL, '2'), jsonb_set(NULL, '{a}', '2'), jsonb_set('{"a":1}', '{a}', NULL), """
    """jsonb_set('{"a":1}', '{a}', '2', NULL)""",
    """SELECT jsonb_set('{"a":[1,2,3]}', '{a,1}', '{"x":1}') #> '{a}', """
    """jsonb_set('{"a":{"b":1}}'::jsonb, ARRAY['a','c'], to_jsonb('t'::text)), """
    """jsonb_set(jsonb_set('{}', '{a}', '[]'), '{a,0}', jsonb_build_object('k', 'v'))""",
    """SELECT jsonb_insert('{"a":[1,2]}', '{a,1}', '9'), jsonb_insert('{"a":[1,2]}', '{a,1}', '9', true), """
    """jsonb_insert('{"a":1}', '{b}', '9'), jsonb_insert('{"a":[1,2]}', '{a,-1}', '9'), """
    """jsonb_insert('{"a":[1,2]}', '{a,-9}', '9'), jsonb_insert('{"a":[1,2]}', '{a,9}', '9', true), """
    """jsonb_insert('{"a":[]}', '{a,5}', '9'), jsonb_insert('[1]', '{0,a}', '1'), jsonb_insert('{}', '{a}', '2'), """
    """jsonb_insert('[]', '{-1}', '2'), jsonb_insert('{"a":1}', '{}', '2')""",
    """SELECT jsonb_set_lax('{"a":1}', '{a}', NULL), jsonb_set_lax('{"a":1}', '{a}', NULL, true, 'delete_key'), """
    """jsonb_set_lax('{"a":1}', '{a}', NULL, true, 'return_target'), jsonb_set_lax('{"a":1}', '{b}', '3', false), """
    """jsonb_set_lax('{"a":1}', '{a}', '3', NULL), jsonb_set_lax(NULL, '{a}', '3'), """
    """jsonb_set_lax('{"a":1}', '{a}', '[3]', true, 'bogus')""",
    # jsonb_pretty, jsonb_strip_nulls, json_strip_nulls
    """SELECT jsonb_pretty('{"a":1,"b":[1,2,{"c":null}],"d":{},"e":[],"long key":{"é":"x\\ty"}}')""",
    """SELECT jsonb_pretty('5'), jsonb_pretty('"x"'), jsonb_pretty('[]'), jsonb_pretty('{}'), jsonb_pretty('[[]]'), """
    """jsonb_pretty('{"a":{}}'), jsonb_pretty('[{"b":1.0e1,"a":[null]}]'), jsonb_pretty(NULL)""",
    """SELECT jsonb_strip_nulls('{"a":null,"b":[null,{"c":null,"d":1}]}'), jsonb_strip_nulls('null'), """
    """jsonb_strip_nulls('[null]'), jsonb_strip_nulls(NULL), jsonb_strip_nulls('{"a":{"b":null}}') ? 'a'""",
    """SELECT json_strip_nulls('{"a":null, "b" : [null, {"c":null,"d":1.50e2}], "b":"\\u00e9\\n"}'), """
    """json_strip_nulls('null'), json_strip_nulls(' 5 '), json_strip_nulls('{"a": null}'), json_strip_nulls(NULL)""",
    # on columns: the functions by name, and #- (always jsonb)
    "SELECT id, jsonb_set(d, '{z}', '0'), jsonb_pretty(d), jsonb_strip_nulls(d) FROM j WHERE id <> 2 ORDER BY id",
    "SELECT id, jsonb_set(d, p, to_jsonb(t)), jsonb_insert(d, p, to_jsonb(n), true) FROM j WHERE id <> 1 "
    "ORDER BY id",
    "SELECT id, jsonb_set(d, ARRAY['b', n::text], '\"z\"', false) FROM j WHERE id = 1",
    "SELECT id, d #- p, jsonb_typeof(d) FROM j ORDER BY id",
    "SELECT id, json_strip_nulls(v) FROM k ORDER BY id",
    "SELECT id, jsonb_set(d, '{a}', '2') AS s, pg_catalog.jsonb_pretty(d) FROM j WHERE id = 1",
    "UPDATE j SET d = jsonb_set(d, '{c,e}', '\"y\"') WHERE id = 1 RETURNING id, d",
    "SELECT d FROM j WHERE id = 1",
    # errors PostgreSQL raises with SQLSTATE 22023 (pgtls too; messages compared below)
    """SELECT '{"a":1}'::jsonb - 1""",
    "SELECT '5'::jsonb - 'a'",
    "SELECT '5'::jsonb - 1",
    """SELECT '"a"'::jsonb - ARRAY['a']""",
    "SELECT '5'::jsonb #- '{a}'",
    "SELECT jsonb_set('5', '{a}', '2')",
    "SELECT jsonb_insert('null', '{a}', '2')",
    """SELECT jsonb_insert('{"a":1}', '{a}', '9')""",
    """SELECT jsonb_set_lax('{"a":1}', '{a}', NULL, true, 'bogus')""",
    """SELECT jsonb_set_lax('{"a":1}', '{a}', '3', true, NULL)""",
    # operators PostgreSQL does not have: 42883 in both
    """SELECT '{"a":1}'::jsonb - 1.5""",
    """SELECT '{"a":1}'::jsonb - 1::bigint""",
]

# Errors whose SQLSTATE is not 22023 in PostgreSQL: pgtls raises them with PostgreSQL's message through
# DuckDB's error(), and engine/errormap.py gives them PostgreSQL's SQLSTATE.
OTHER_STATES = [
    """SELECT '{"a":{"b":[1,2]}}'::jsonb #- '{a,b,x}'""",  # 22P02
    """SELECT '{"a":{"b":[1,2]}}'::jsonb #- '{a,NULL}'""",  # 22004
    "SELECT '[1,2]'::jsonb #- '{NULL}'",
    """SELECT jsonb_set('{"a":[1]}', '{a,x}', '2')""",
    """SELECT jsonb_set('{"a":1}', '{NULL}', '2')""",
    "SELECT jsonb_set('[1]', '{99999999999}', '1')",
    """SELECT jsonb_set('{"a":1}', '{{a},{b}}', '2')""",  # 2202E
    """SELECT '{"a":1}'::jsonb - '{{a},{b}}'::text[]""",
    """SELECT jsonb_set_lax('{"a":1}', '{a}', NULL, true, 'raise_exception')""",  # 22004
]

# A jsonb column as the left operand of - (and #- in a statement that names nothing json): the session passes
# such statements to jsonb.operators (jsonb.with_operators).
COLUMN_QUERIES = [
    "SELECT id, d - 'a', d - ARRAY['a', 'b'], j.d #- '{b}' FROM j WHERE id <> 2 ORDER BY id",
    "SELECT id, d - n, d - t FROM j WHERE id IN (2, 4) ORDER BY id",
    "SELECT id, d #- p FROM j ORDER BY id",
    """SELECT id, d - 'a' || '{"z": 1}' FROM j WHERE id = 1""",
    "UPDATE j SET d = d - 'n' #- '{c,d}' WHERE id = 1 RETURNING d",
    "SELECT id, d - 1 FROM j WHERE id = 1",  # 22023: cannot delete from object using integer index
]


def _outcome(msgs: list[Any]) -> tuple[object, ...]:
    errs = errors(msgs)
    if errs:
        return errs[0]["C"], errs[0]["M"]
    return [c["name"] for m in msgs if m.kind == "T" for c in m["columns"]], rows(msgs)


def _pg(conn: psycopg.Connection, sql: str, args: tuple[object, ...] = ()) -> tuple[object, ...]:
    try:
        cur = conn.execute(sql, args)
    except psycopg.Error as e:
        return e.sqlstate or "", e.diag.message_primary
    return ([c.name for c in cur.description or []],
            [[None if v is None else {True: "t", False: "f"}.get(v, str(v)) if isinstance(v, bool) else str(v)
              for v in r] for r in cur.fetchall()])  # fmt: skip


def _same(ours: tuple[object, ...], theirs: tuple[object, ...]) -> bool:
    if ours[0] == "42883" and theirs[0] == "42883":
        return True  # both lack the operator (DuckDB words it its own way)
    return ours == theirs


def _session(tmp_path: Path) -> Any:
    return postgres_and_session(tmp_path, SETUP)


def _text_loaders(conn: psycopg.Connection) -> None:
    from psycopg.types.string import TextLoader

    for name in ("json", "jsonb"):
        conn.adapters.register_loader(name, TextLoader)


def test_jsonb_edit_as_postgres(tmp_path: Path) -> None:
    with _session(tmp_path) as (conn, d):
        _text_loaders(conn)
        for sql in QUERIES:
            assert _same(_outcome(d.query(sql)), _pg(conn, sql)), sql
        for sql in OTHER_STATES:
            ours, theirs = _outcome(d.query(sql)), _pg(conn, sql)
            assert theirs[0] != "22023" and _same(ours, theirs), (sql, ours, theirs)
        # result types: jsonb (3802), text (25), json (114)
        msgs = d.query("""SELECT '{}'::jsonb - 'a', jsonb_set('{}', '{a}', '1'), jsonb_pretty('{}'), """
                       """json_strip_nulls('{}'), '{}'::jsonb #- '{a}'""")  # fmt: skip
        assert [c["oid"] for m in msgs if m.kind == "T" for c in m["columns"]] == [3802, 3802, 25, 114, 3802]
        # bound parameters (extended protocol, text parameters as psycopg sends them)
        for sql, args in (("SELECT jsonb_set(d, $1, $2) FROM j WHERE id = 1", ("{c,e}", '"w"')),
                          ("SELECT jsonb_insert(d, $1, $2, true) FROM j WHERE id = 2", ("{1}", "[0]")),
                          ("SELECT '[1,2,3]'::jsonb - $1::int", ("1",))):  # fmt: skip
            got = d.send(fe.parse(sql), fe.bind(list(args)), fe.execute(), fe.sync())
            assert not errors(got), errors(got)
            assert rows(got) == _pg(conn, sql.replace("$1", "%s").replace("$2", "%s"), args)[1], sql


def test_jsonb_column_minus_as_postgres(tmp_path: Path) -> None:
    with _session(tmp_path) as (conn, d):
        _text_loaders(conn)
        for sql in COLUMN_QUERIES:
            assert _same(_outcome(d.query(sql)), _pg(conn, sql)), sql
        # Describe of the statement (before Bind) types the result as the execution does: jsonb
        for sql in ("SELECT d - 'a' FROM j WHERE id = $1", "SELECT d #- '{b}' FROM j WHERE id = $1"):
            got = d.send(fe.parse(sql), fe.describe("S"), fe.sync())
            assert not errors(got), (sql, errors(got))
            assert [c["oid"] for m in got if m.kind == "T" for c in m["columns"]] == [3802], sql


def _run_operators(d: SessionDriver, sql: str) -> list[list[str | None]]:
    """``sql`` rewritten as the session would with the hook (rewrite, then jsonb.operators), run on its cursor
    (values printed as jsonb_out would)."""
    cur = d.session.cur
    got = cur.execute(jsonb.operators(cur, rewrite(sql))).fetchall()
    return [[None if v is None else jsonb_text(str(v)) for v in r] for r in got]


def test_jsonb_column_minus_rewrite(tmp_path: Path) -> None:
    """jsonb.operators' part for - and #- on jsonb columns, on the session's cursor: PostgreSQL's values (a
    column of another type keeps its minus)."""
    with _session(tmp_path) as (conn, d):
        _text_loaders(conn)
        for sql in COLUMN_QUERIES[:4]:
            assert _run_operators(d, sql) == _pg(conn, sql)[1], sql
        d.query("CREATE TABLE o (id int, d int)")
        assert (
            jsonb.operators(d.session.cur, "SELECT d - 1, o.d - n FROM o, j")
            == "SELECT d - 1, o.d - n FROM o, j"
        )


def test_edit_functions_directly() -> None:
    assert (
        jsonfuncs.jsonb_pretty('{"b": [], "a": {"c": 1}}')
        == '{\n    "a": {\n        "c": 1\n    },\n    "b": [\n    ]\n}'
    )
    assert jsonfuncs.json_strip_nulls('{"a": {}, "b": [], "c": {"d": null}}') == '{"a":{},"b":[],"c":{}}'
    assert jsonfuncs.jsonb_minus('{"a": 1}', '"a"') == "{}"
    with pytest.raises(jsonfuncs.JsonbError, match="cannot delete from scalar"):
        jsonfuncs.jsonb_minus("1", "1")
    assert jsonfuncs.jsonb_set('{"a": [1, 2]}', '["a", "-1"]', '"x"', True) == '{"a": [1, "x"]}'
    assert jsonfuncs.jsonb_delete_path('{"a": [1, 2]}', '"{a,0}"') == '{"a": [2]}'


_PIECES = [
    "d",
    "-",
    "#",
    ">",
    "'{a,b}'",
    "'a'",
    "1",
    "(",
    ")",
    "::",
    "jsonb",
    "jsonb_set",
    "jsonb_insert",
    ",",
    "ARRAY",
    "[",
    "]",
    "|",
    "x",
    ".",
    "'{}'",
    "CAST",
    "AS",
    "json_strip_nulls",
    "=",
    "SELECT",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=16).map(" ".join),
       st.lists(st.sampled_from(_PIECES), max_size=16).map("".join))  # fmt: skip
def test_edit_rewrite_never_raises_or_corrupts(spaced: str, packed: str) -> None:
    for sql in (spaced, packed):
        for start, end, _text in function_edits(sql, tokens(sql)):
            assert 0 <= start < end <= len(sql)
        for out in (jsonb_edit.call_text(sql), jsonb_edit.operator_text(sql, lambda: {"d", "x"})):
            if out is None:
                continue
            # every literal of the input is still there, in order (operands are moved, never rewritten)
            it = iter(t.text for t in tokens(out) if t.kind == "string")
            assert all(
                any(s == o for o in it) for s in (t.text for t in tokens(sql) if t.kind == "string")
            ), out
