"""The embedded backend against a real PostgreSQL 15 for everyday result types: generate_series, jsonb
(columns, casts, expressions; text and binary format) and ~40 common expressions tools send.  Each case
compares the command tag, the RowDescription type OIDs and column names, and the values; or, for an error,
the SQLSTATE and the message."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tests.pgwire_util import (
    BackendMessage,
    SessionDriver,
    assert_same_outcome,
    error_outcome,
    errors,
    fe,
    postgres_and_session,
    tags,
)

pytestmark = pytest.mark.pg

SETUP = [
    "CREATE TABLE fj (id int PRIMARY KEY, j jsonb, k json)",
    """INSERT INTO fj VALUES (1, '{"b":1, "a":2}', '{"b":1, "a":2}')""",
    """INSERT INTO fj VALUES (2, '{"a":1, "a":2, "aa": [1, 2.50, 1e3, 1.0, -0, "x\\u00e9"], "b": {"z": null, "y": true}}',
       '{"a":1, "a":2}')""",
    """INSERT INTO fj VALUES (3, '{}', '[]'), (4, '[]', '{}'), (5, '"str"', '1'), (6, '1.0', 'null'), (7, 'null', '"x"')""",
    """INSERT INTO fj VALUES (8, '{"é": 1, "z": 2, "ab": 3, "\\u00e9": 4, "tab\\t": "a\\nb", "q\\"": "\\\\"}', NULL)""",
    """INSERT INTO fj VALUES (9, '[1e3, 1E-2, 0.00001, 123456789012345678901234567890, -1.5e+2, 1.0e2, -0.0, 1e-7]',
       NULL)""",
    """INSERT INTO fj VALUES (10, '{"bb": [], "a": {}, "ccc": "\\u0001\\u001f", "c": "😀"}', NULL)""",
    "CREATE TABLE fj_copy AS SELECT * FROM fj",
    "CREATE TABLE fj_renamed (i, x, y) AS SELECT id, j, k FROM fj",
    "ALTER TABLE fj_copy ADD COLUMN extra jsonb",
    """UPDATE fj_copy SET extra = '{"y": 1, "x": [2, 1]}' WHERE id = 1""",
    "CREATE TABLE fn (a int, n numeric(10,2))",
    "INSERT INTO fn VALUES (1, 1.50), (2, 2.25)",
]

GENERATE_SERIES = [
    "SELECT * FROM generate_series(1, 3)",
    "SELECT generate_series(1, 3)",
    "SELECT * FROM generate_series(1, 10, 3)",
    "SELECT * FROM generate_series(10, 1, -3)",
    "SELECT * FROM generate_series(3000000000, 3000000002)",
    "SELECT * FROM generate_series(1::int8, 3)",
    "SELECT generate_series(1::int8, 3)",
    "SELECT * FROM generate_series(1.5, 3)",
    "SELECT generate_series(1.5, 3)",
    "SELECT * FROM generate_series(1.0, 3, 0)",
    "SELECT * FROM generate_series(3, 1)",
    "SELECT * FROM generate_series(1, NULL)",
    "SELECT * FROM generate_series('2024-01-01'::date, '2024-01-03'::date, '1 day')",
    "SELECT generate_series('2024-01-01'::date, '2024-01-02'::date, '12 hours')",
    "SELECT * FROM generate_series('2024-01-01'::timestamp, '2024-01-03', '1 day')",
    "SELECT * FROM generate_series('2024-01-01 00:00+00'::timestamptz, '2024-01-02 00:00+00', '6 hours')",
    "SELECT * FROM generate_series(1, 3) g",
    "SELECT g FROM generate_series(1, 3) AS g WHERE g > 1",
    "SELECT g.g FROM generate_series(1, 3) g",
    "SELECT * FROM generate_series(1, 3) AS g(i)",
    "SELECT x, y FROM generate_series(1, 2) x, generate_series(1, 2) y ORDER BY 1, 2",
    "SELECT generate_series(1, 3) AS n",
    "SELECT generate_series(1, 2), generate_series(1, 3)",
    "SELECT count(*) FROM generate_series(1, 1000)",
    "SELECT a, s FROM fn, generate_series(1, fn.a) s ORDER BY 1, 2",
    "SELECT x FROM (SELECT generate_series(1, 3) AS x) s WHERE x > 1",
]

JSONB = [
    "SELECT id, j, k FROM fj ORDER BY id",
    "SELECT * FROM fj ORDER BY id",
    "SELECT j AS doc FROM fj WHERE id = 1",
    "SELECT fj.j FROM fj WHERE id = 2",
    "SELECT j -> 'b' FROM fj WHERE id = 2",
    "SELECT coalesce(j, '{}') FROM fj WHERE id = 1",
    "SELECT x.j FROM (SELECT j FROM fj WHERE id = 1) x",
    "WITH c AS (SELECT j FROM fj WHERE id = 8) SELECT * FROM c",
    """SELECT '{"b":1, "a":2, "a": [1.50, 1e2]}'::jsonb""",
    """SELECT '{"b":1, "a":2}'::jsonb AS d, '{"b":1, "a":2}'::json AS e""",
    """SELECT CAST('{"b":1, "a":2}' AS jsonb)""",
    """SELECT ARRAY['{"b":1,"a":2}'::jsonb, '[]'::jsonb]""",
    """SELECT '{"{\\"b\\": 2, \\"a\\": 1}",NULL}'::jsonb[]""",
    """SELECT '{"a": 1}'::jsonb = '{"a":1}'::jsonb""",
    "SELECT id FROM fj WHERE j ->> 'b' = '1'",
    "SELECT * FROM fj_copy ORDER BY id",
    "SELECT x, y FROM fj_renamed ORDER BY i",
    """UPDATE fj_copy SET j = '{"z": 1, "y": 2}' WHERE id = 3 RETURNING j, k""",
    """INSERT INTO fj_copy VALUES (11, '{"n": 1, "m": 2}', '{"n": 1, "m": 2}', NULL) RETURNING *""",
]

# Everyday expressions of tools and applications (result types PostgreSQL 15 reports).
EVERYDAY = [
    "SELECT 1::int4 + 1, 1 + 1, 1::int2 + 1::int2, 10 / 3, 10 % 3, -7 / 2",
    "SELECT 1.5 + 1, 2 ^ 10, 1.50::numeric(10,2), 12.5::numeric(5,1) * 2",
    "SELECT now()::date = current_date, current_date > '2000-01-01'",
    "SELECT count(*), min(i), max(i), count(DISTINCT i) FROM generate_series(1, 10) g(i)",
    "SELECT sum(i::int8) FROM generate_series(1, 10) g(i)",
    "SELECT sum(1.5), avg(1.5::float8)",
    "SELECT n, n * 2, round(n, 1), sum(n) OVER () FROM fn ORDER BY a",
    "SELECT length('abc'), upper('abc'), lower('ABC'), char_length('héllo'), octet_length('héllo')",
    "SELECT 'a' || 'b', concat('a', 1, NULL), md5('abc')",
    "SELECT substring('hello' from 2 for 3), position('l' in 'hello'), strpos('hello', 'l')",
    "SELECT trim('  x  '), replace('abc', 'b', 'X'), split_part('a,b,c', ',', 2), left('abc', 2), right('abc', 2)",
    "SELECT lpad('x', 3, '0'), repeat('ab', 2), reverse('abc')",
    "SELECT coalesce(NULL, 1), nullif(1, 1), greatest(1, 2, 3), least(1.5, 2)",
    "SELECT abs(-5), round(2.567, 2), ceil(1.2), floor(1.8), round(2.5), trunc(2.7)",
    "SELECT power(2, 3), sqrt(16), mod(7, 3)",
    "SELECT 1 = 1, 1 <> 2, NULL IS NULL, 'abc' LIKE 'a%', 'abc' ~ '^a', exists(SELECT 1), 1 IN (1, 2)",
    "SELECT CASE WHEN 1 > 0 THEN 'pos' ELSE 'neg' END",
    "SELECT date_trunc('month', timestamp '2024-03-05 10:11:12'), date '2024-03-05' + 1",
    "SELECT timestamp '2024-03-05 10:00' - timestamp '2024-03-04 09:00'",
    "SELECT array_length(ARRAY[1,2,3], 1), cardinality(ARRAY[1,2]), '{1,2}'::int4[]",
    "SELECT string_agg(x, ',') FROM (VALUES ('a'), ('b')) v(x)",
    "SELECT array_agg(x) FROM (VALUES (1), (2)) v(x)",
    "SELECT '1'::int + 1, '1.5'::numeric * 2",
    "SELECT row_number() OVER () FROM generate_series(1, 2)",
    "SELECT bool_and(true), bool_or(false)",
    "SELECT length(j::text) > 0 FROM fj WHERE id = 1",
    # column names of casts (FigureColname: a column's or function's name, else the type's)
    "SELECT to_timestamp(0)::date, (1 + 2)::text, 1::int::text, 1.5::real, 1.5::double precision, 1::integer",
    "SELECT 1::smallint, 2::bigint, true::boolean, NULL::int, pg_typeof(1)::text, length('x')::text",
    "SELECT ARRAY[1]::int8[], '{1}'::text[], '{{a,b}}'::text[], '1 day'::interval, 1::numeric(10,2)",
    "SELECT array(SELECT generate_series(1, 3))",
    # shortest float digits where the shortest candidate lies exactly half-way to a neighbour: ryu, as
    # PostgreSQL has it, prints one digit more (Python's repr would not)
    "SELECT 5.604165699371008e+23::float8, 1e15::float8, 123456789012345678::float8, -1e-5::float8",
    "SELECT 113615355904::float4, 458905616384::float4, 202077792::float4, 104611264::float4, 1e6::float4",
]

# Result columns in binary format too (jsonb: a version byte, then the text).
BINARY = [
    "SELECT id, j, k FROM fj ORDER BY id",
    """SELECT '{"b":1, "a":2}'::jsonb, ARRAY['{"b":1,"a":2}'::jsonb, '[]'::jsonb]""",
    "SELECT * FROM generate_series(1, 3)",
    "SELECT generate_series(1.5, 3)",
    "SELECT length('abc'), position('b' in 'abc'), 1.5 + 1",
]


def pg_outcome(conn: psycopg.Connection, sql: str) -> tuple[object, ...]:
    res = conn.pgconn.exec_(sql.encode())
    state = res.error_field(psycopg.pq.DiagnosticField.SQLSTATE)
    if state:
        return error_outcome(
            state.decode(), (res.error_field(psycopg.pq.DiagnosticField.MESSAGE_PRIMARY) or b"").decode()
        )
    values = [[None if res.get_value(r, c) is None else res.get_value(r, c).decode() for c in range(res.nfields)]
              for r in range(res.ntuples)]  # fmt: skip
    cols = [(res.fname(c).decode(), res.ftype(c), res.fmod(c)) for c in range(res.nfields)]
    return ("ok", (res.command_status or b"").decode(), cols, values)


def _described(msgs: list[BackendMessage]) -> list[tuple[str, int, int]]:
    t = [m for m in msgs if m.kind == "T"]
    return [(c["name"], c["oid"], c["typmod"]) for c in t[0]["columns"]] if t else []


def our_outcome(d: SessionDriver, sql: str) -> tuple[object, ...]:
    msgs = d.query(sql)
    errs = errors(msgs)
    if errs:
        return error_outcome(errs[0]["C"], errs[0]["M"])
    values = [[None if v is None else v.decode() for v in m["values"]] for m in msgs if m.kind == "D"]
    return ("ok", tags(msgs)[0], _described(msgs), values)


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[psycopg.Connection, SessionDriver]]:
    with postgres_and_session(tmp_path_factory.mktemp("fidelity"), ["SET TimeZone = 'UTC'", *SETUP]) as pair:
        yield pair


@pytest.mark.parametrize("sql", GENERATE_SERIES + JSONB + EVERYDAY)
def test_same_text_outcome(both: tuple[psycopg.Connection, SessionDriver], sql: str) -> None:
    conn, d = both
    assert_same_outcome(
        our_outcome(d, sql), pg_outcome(conn, sql), sql
    )  # errors: the same SQLSTATE and message


@pytest.mark.parametrize("sql", BINARY)
def test_same_binary_outcome(both: tuple[psycopg.Connection, SessionDriver], sql: str) -> None:
    conn, d = both
    res = conn.pgconn.exec_params(sql.encode(), [], result_format=1)
    theirs = ([(res.fname(c).decode(), res.ftype(c), res.fmod(c)) for c in range(res.nfields)],
              [[res.get_value(r, c) for c in range(res.nfields)] for r in range(res.ntuples)])  # fmt: skip
    msgs = d.send(fe.parse(sql), fe.bind(result_formats=[1]), fe.describe("P"), fe.execute(), fe.sync())
    assert not errors(msgs)
    ours = (_described(msgs), [list(m["values"]) for m in msgs if m.kind == "D"])
    assert ours == theirs


def test_jsonb_text_parameter_into_column(both: tuple[psycopg.Connection, SessionDriver]) -> None:
    """A document bound as a text parameter (unknown type) into a jsonb column comes back normalised."""
    conn, d = both
    doc = '{"zz": [1.50, 1e3, {"b": null, "a": "\\u00fc"}], "a": true, "a": false}'
    sql = "INSERT INTO fj VALUES ($1, $2, NULL) RETURNING j"
    res = conn.pgconn.exec_params(sql.encode(), [b"100", doc.encode()])
    theirs = [res.ftype(0), res.get_value(0, 0)]
    msgs = d.send(fe.parse(sql), fe.bind(["100", doc]), fe.describe("P"), fe.execute(), fe.sync())
    assert not errors(msgs)
    assert [_described(msgs)[0][1], next(m["values"][0] for m in msgs if m.kind == "D")] == theirs
    sql = "SELECT j FROM fj WHERE id = $1"
    res = conn.pgconn.exec_params(sql.encode(), [b"100"], result_format=1)
    msgs = d.send(fe.parse(sql), fe.bind(["100"], result_formats=[1]), fe.execute(), fe.sync())
    assert next(m["values"][0] for m in msgs if m.kind == "D") == res.get_value(0, 0)


def test_generate_series_parameter_is_int4(both: tuple[psycopg.Connection, SessionDriver]) -> None:
    conn, d = both
    sql = "SELECT * FROM generate_series(1, $1)"
    conn.pgconn.prepare(b"gs", sql.encode())
    desc = conn.pgconn.describe_prepared(b"gs")
    msgs = d.send(fe.parse(sql), fe.describe("S"), fe.sync())
    ours = [m for m in msgs if m.kind == "t"][0]["oids"]
    assert ours == [desc.param_type(0)] == [23]
    assert _described(msgs)[0][1] == desc.ftype(0) == 23
