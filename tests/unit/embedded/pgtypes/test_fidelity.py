"""Result types and texts as PostgreSQL 15 reports them: generate_series, jsonb (columns told apart from json
columns, normalised output), int4 string/array functions and numeric typmods (the same cases run against a
real PostgreSQL in tests/differential/test_embedded_fidelity_vs_pg.py)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pgtls.backends.base import SessionInfo
from pgtls.backends.embedded import EmbeddedBackend, create_database
from pgtls.backends.embedded.pgtypes import encode, params
from pgtls.backends.embedded.pgtypes.typemap import JSONB_MARK
from pgtls.backends.embedded.rewrite.pipeline import rewrite
from tests.pgwire_util import (
    BackendMessage,
    FakeSettings,
    SessionDriver,
    SimpleRegistry,
    errors,
    fe,
    rows,
    tags,
)

INT4, INT8, NUMERIC, TIMESTAMPTZ, JSON, JSONB, JSONB_ARRAY = 23, 20, 1700, 1184, 114, 3802, 3807


def described(msgs: list[BackendMessage]) -> list[tuple[str, int]]:
    t = [m for m in msgs if m.kind == "T"]
    return [(c["name"], c["oid"]) for c in t[0]["columns"]] if t else []


def result(db: SessionDriver, sql: str) -> tuple[list[tuple[str, int]], list[list[str | None]]]:
    msgs = db.query(sql)
    assert not errors(msgs), errors(msgs)
    return described(msgs), rows(msgs)


# --- generate_series ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "cols", "values"),
    [
        ("SELECT * FROM generate_series(1, 3)", [("generate_series", INT4)], [["1"], ["2"], ["3"]]),
        ("SELECT generate_series(1, 3)", [("generate_series", INT4)], [["1"], ["2"], ["3"]]),
        ("SELECT * FROM generate_series(1, 7, 3)", [("generate_series", INT4)], [["1"], ["4"], ["7"]]),
        ("SELECT * FROM generate_series(1::int8, 2)", [("generate_series", INT8)], [["1"], ["2"]]),
        ("SELECT * FROM generate_series(3000000000, 3000000001)", [("generate_series", INT8)],
         [["3000000000"], ["3000000001"]]),
        ("SELECT generate_series(1.5, 3)", [("generate_series", NUMERIC)], [["1.5"], ["2.5"]]),
        ("SELECT * FROM generate_series('2024-01-01'::date, '2024-01-02'::date, '1 day')",
         [("generate_series", TIMESTAMPTZ)], [["2024-01-01 00:00:00+00"], ["2024-01-02 00:00:00+00"]]),
        ("SELECT * FROM generate_series(1, 2) g", [("g", INT4)], [["1"], ["2"]]),
        ("SELECT g FROM generate_series(1, 2) AS g", [("g", INT4)], [["1"], ["2"]]),
        ("SELECT i FROM generate_series(0, 999) g(i) WHERE i < 2", [("i", INT4)], [["0"], ["1"]]),
        ("SELECT generate_series(1, 2) g", [("g", INT4)], [["1"], ["2"]]),
    ],
)  # fmt: skip
def test_generate_series(db, sql, cols, values):
    assert result(db, sql) == (cols, values)


def test_generate_series_with_ordinality(db):
    """DuckDB ignores WITH ORDINALITY after a table macro, so such a call goes to DuckDB's own function."""
    cols, values = result(db, "SELECT * FROM generate_series(1, 2) WITH ORDINALITY AS t(x, n)")
    assert ([n for n, _ in cols], values) == (["x", "n"], [["1", "1"], ["2", "2"]])


def test_generate_series_errors(db):
    assert db.error("SELECT * FROM generate_series(1.0, 3, 0)")["M"] == "step size cannot equal zero"


@pytest.mark.parametrize(
    ("sql", "out"),
    [
        ("SELECT * FROM generate_series(1,3) g", "SELECT * FROM generate_series(1,3) g(g)"),
        ("SELECT g FROM generate_series(1,3) AS g WHERE g > 1", "SELECT g FROM generate_series(1,3) AS g(g) WHERE g > 1"),
        ("SELECT * FROM generate_series(1,3) g(i)", "SELECT * FROM generate_series(1,3) g(i)"),
        ("SELECT generate_series(1,3) g", "SELECT generate_series(1,3) g"),
        ("SELECT * FROM t, generate_series(1, t.n) s JOIN u ON true",
         "SELECT * FROM t, generate_series(1, t.n) s(s) JOIN u ON true"),
        ("SELECT * FROM generate_series(1,3) WHERE true", "SELECT * FROM generate_series(1,3) WHERE true"),
        ("SELECT (SELECT max(x) FROM generate_series(1,3) x)", "SELECT (SELECT max(x) FROM generate_series(1,3) x(x))"),
        ("SELECT * FROM pg_catalog.generate_series(1,3) \"G\"", "SELECT * FROM generate_series(1,3) \"G\"(\"G\")"),
        ("SELECT 'generate_series(1,2) g'", "SELECT 'generate_series(1,2) g'"),
    ],
)  # fmt: skip
def test_generate_series_alias_rewrite(sql, out):
    assert rewrite(sql) == out


def test_generate_series_parameters_are_int4():
    cur = duckdb.connect()
    assert params.infer_types(cur, "SELECT * FROM generate_series(1, $1)", []) == [INT4]
    assert params.infer_types(cur, "SELECT generate_series($1, $2, -1)", []) == [INT4, INT4]
    assert params.infer_types(cur, "SELECT * FROM generate_series(1, $1, 3000000000)", []) == [INT8]
    assert params.infer_types(cur, "SELECT * FROM generate_series(now(), $1, '1 day')", []) == [25]


# --- int4 functions, numeric typmods ---------------------------------------------------------------


def test_int4_functions(db):
    cols, values = result(db, "SELECT length('héllo'), char_length('ab'), octet_length('héllo'), "
                              "position('l' in 'hello'), strpos('hello', 'l'), array_length(ARRAY[1,2,3], 1), "
                              "cardinality(ARRAY[1,2]), length('\\x0102'::bytea)")  # fmt: skip
    assert [oid for _, oid in cols] == [INT4] * 8
    assert values == [["5", "2", "6", "3", "3", "3", "2", "2"]]
    assert [n for n, _ in cols] == ["length", "char_length", "octet_length", "position", "strpos", "array_length",
                                    "cardinality", "length"]  # fmt: skip


def test_numeric_typmod_only_for_columns_and_casts(db):
    db.query("CREATE TABLE nt (n numeric(10,2))")
    msgs = db.query("SELECT n, n * 2, 1.5 + 1, 1.50::numeric(10,2), round(n, 1) FROM nt")
    t = [m for m in msgs if m.kind == "T"][0]
    assert [c["typmod"] for c in t["columns"]] == [(10 << 16 | 2) + 4, -1, -1, (10 << 16 | 2) + 4, -1]


def test_column_names(db):
    assert described(db.query("SELECT CASE WHEN true THEN 1 END, trim(' x '), 'a' ~ 'a', '{1}'::int4[]")) == [
        ("case", INT4),
        ("btrim", 25),
        ("?column?", 16),
        ("int4", 1007),
    ]


# --- jsonb ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "out"),
    [
        ('{"b": 2,  "a": 1}', '{"a": 1, "b": 2}'),
        ('{"aa": 1, "b": 1, "a": 1, "a": 2}', '{"a": 2, "b": 1, "aa": 1}'),
        ("[1e3, 1E-2, 2.50, 1.0, -0, -0.0, -1.5e+2, 1.0e2, 1e-7]", "[1000, 0.01, 2.50, 1.0, 0, 0.0, -150, 100, 0.0000001]"),
        ('{"é": 1, "z": 2}', '{"z": 2, "é": 1}'),
        ('"tab\\t \\u00e9 \\u0001 \\" \\\\ \\/"', '"tab\\t é \\u0001 \\" \\\\ /"'),
        ("{}", "{}"),
        ("[]", "[]"),
        ("[[], {}, [{}]]", "[[], {}, [{}]]"),
        ("null", "null"),
        ("not json", "not json"),
        ("NaN", "NaN"),
        ("[" * 100000 + "]" * 100000, "[" * 100000 + "]" * 100000),
    ],
)  # fmt: skip
def test_jsonb_text(text, out):
    assert encode.jsonb_text(text) == out


def test_jsonb_columns(db):
    db.query("CREATE TABLE j1 (id int, j jsonb, k json, a jsonb[])")
    assert tags(
        db.query("""INSERT INTO j1 VALUES (1, '{"b":1, "a":2}', '{"b":1, "a":2}', ARRAY['{"y":1,"x":2}'])""")
    ) == ["INSERT 0 1"]
    cols, values = result(db, "SELECT j, k, a, j AS doc, j -> 'a', '{\"b\":1, \"a\":2}'::json FROM j1")
    assert [oid for _, oid in cols] == [JSONB, JSON, JSONB_ARRAY, JSONB, JSONB, JSON]
    assert values == [['{"a": 2, "b": 1}', '{"b":1, "a":2}', '{"{\\"x\\": 2, \\"y\\": 1}"}', '{"a": 2, "b": 1}', "2",
                       '{"b":1, "a":2}']]  # fmt: skip
    cols, _ = result(db, "SELECT * FROM j1")
    assert [oid for _, oid in cols] == [INT4, JSONB, JSON, JSONB_ARRAY]
    msgs = db.send(fe.parse("SELECT j, k FROM j1"), fe.bind(result_formats=[1]), fe.execute(), fe.sync())
    assert [m["values"] for m in msgs if m.kind == "D"] == [[b'\x01{"a": 2, "b": 1}', b'{"b":1, "a":2}']]


def test_jsonb_copy_out(db):
    db.query("""CREATE TABLE jc (j jsonb); INSERT INTO jc VALUES ('{"b": 1,  "a": [1.50, 1e3]}')""")
    msgs = db.query("COPY jc TO STDOUT")
    assert [m["data"] for m in msgs if m.kind == "d"] == [b'{"a": [1.50, 1000], "b": 1}\n']


def test_jsonb_marks_follow_ddl(db):
    db.query("BEGIN")
    db.query("CREATE TABLE j2 (j jsonb)")
    db.query("""INSERT INTO j2 VALUES ('{"b": 1, "a": 2}')""")
    assert result(db, "SELECT j FROM j2") == ([("j", JSONB)], [['{"a": 2, "b": 1}']])  # before COMMIT too
    db.query("COMMIT")
    db.query("COMMENT ON COLUMN j2.j IS 'the document'")
    assert described(db.query("SELECT j FROM j2")) == [("j", JSONB)]
    assert db.value(
        "SELECT description FROM pg_description WHERE objsubid = 1 AND description IS NOT NULL"
    ) == ("the document")
    db.query("ALTER TABLE j2 RENAME COLUMN j TO d")
    assert described(db.query("SELECT d FROM j2")) == [("d", JSONB)]
    db.query("ALTER TABLE j2 ALTER COLUMN d TYPE json")
    assert described(db.query("SELECT d FROM j2")) == [("d", JSON)]
    db.query("ALTER TABLE j2 ADD COLUMN e jsonb")
    assert described(db.query("SELECT * FROM j2")) == [("d", JSON), ("e", JSONB)]
    db.query("DROP TABLE j2")
    db.query("CREATE TABLE j2 (e json)")
    assert described(db.query("SELECT e FROM j2")) == [("e", JSON)]
    db.query("CREATE TEMP TABLE j3 (j jsonb)")
    assert described(db.query("SELECT j FROM j3")) == [("j", JSONB)]


def test_create_table_as_keeps_jsonb(db):
    db.query("""CREATE TABLE j4 AS SELECT 1 AS id, '{"b": 1, "a": 2}'::jsonb AS j, '{}'::json AS k""")
    assert tags(db.query("CREATE TABLE IF NOT EXISTS j5 (x, y) AS SELECT j, k FROM j4")) == ["SELECT 1"]
    assert result(db, "SELECT * FROM j5") == ([("x", JSONB), ("y", JSON)], [['{"a": 2, "b": 1}', "{}"]])


def test_jsonb_marks_persist(tmp_path: Path):
    create_database(tmp_path, "postgres")
    for step in range(2):
        be = EmbeddedBackend(tmp_path, FakeSettings())
        d = SessionDriver(
            be.open_session(SessionInfo(1, "postgres", "postgres", None, None), SimpleRegistry())
        )
        try:
            if step == 0:
                assert not errors(
                    d.query(
                        """CREATE TABLE jp (j jsonb, k json); INSERT INTO jp VALUES ('{"b":1,"a":2}', '[]')"""
                    )
                )
            assert described(d.query("SELECT j, k FROM jp")) == [("j", JSONB), ("k", JSON)]
            # another session sees the marks too
            d2 = SessionDriver(
                be.open_session(SessionInfo(2, "postgres", "postgres", None, None), SimpleRegistry())
            )
            assert described(d2.query("SELECT * FROM jp")) == [("j", JSONB), ("k", JSON)]
            d2.session.close()
        finally:
            d.session.close()
            be.close()


def test_jsonb_mark_is_not_a_description(db):
    db.query("CREATE TABLE j6 (j jsonb)")
    assert db.rows("SELECT description FROM pg_description WHERE description IS NOT NULL") == []
    assert db.value(f"SELECT count(*) FROM duckdb_columns() WHERE comment = '{JSONB_MARK}'") == "1"
