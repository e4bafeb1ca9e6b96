"""Type OIDs and text/binary output of the embedded backend, checked against PostgreSQL 15's output."""

from __future__ import annotations

import datetime as dt
import struct
import uuid
from decimal import Decimal

import duckdb
import pytest

from pgtls.backends.embedded.engine import execute
from pgtls.backends.embedded.pgtypes import encode, params
from pgtls.backends.embedded.pgtypes import typemap as T
from tests.pgwire_util import fe, rows

# (expression, PostgreSQL's text output, type oid) -- outputs copied from a real PostgreSQL 15 (TimeZone UTC)
CASES = [
    ("true", "t", 16),
    ("1::int2", "1", 21),
    ("2::int4", "2", 23),
    ("3::int8", "3", 20),
    ("1.5::float4", "1.5", 700),
    ("1e6::float4", "1e+06", 700),
    ("3.14159::float4", "3.14159", 700),
    ("0.1::float8", "0.1", 701),
    ("1e20::float8", "1e+20", 701),
    ("1e15::float8", "1e+15", 701),
    ("123456789012345::float8", "123456789012345", 701),
    ("1e-5::float8", "1e-05", 701),
    ("'NaN'::float8", "NaN", 701),
    ("'-Infinity'::float8", "-Infinity", 701),
    ("1.50::numeric(10,2)", "1.50", 1700),
    ("'abc'::text", "abc", 25),
    ("'\\x0102ff'::bytea", "\\x0102ff", 17),
    ("'2024-01-02'::date", "2024-01-02", 1082),
    ("'03:04:05.123'::time", "03:04:05.123", 1083),
    ("'03:04:05+05:30'::timetz", "03:04:05+05:30", 1266),
    ("'2024-01-02 03:04:05.123'::timestamp", "2024-01-02 03:04:05.123", 1114),
    ("'2024-01-02 03:04:05.123+00'::timestamptz", "2024-01-02 03:04:05.123+00", 1184),
    ("interval '1 year 2 months 3 days 04:05:06.789'", "1 year 2 mons 3 days 04:05:06.789", 1186),
    ("interval '-1 month -2 days -00:00:01'", "-1 mons -2 days -00:00:01", 1186),
    ("interval '0 seconds'", "00:00:00", 1186),
    ("interval '25 hours'", "25:00:00", 1186),
    ("'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", 2950),
    ("'{\"a\": 1}'::json", '{"a": 1}', 114),
    ("ARRAY[1,2,NULL]", "{1,2,NULL}", 1007),
    (
        "ARRAY['a b', NULL, '', 'NULL', 'x\"y', 'back\\slash']",
        '{"a b",NULL,"","NULL","x\\"y","back\\\\slash"}',
        1009,
    ),
    ("ARRAY[[1,2],[3,4]]", "{{1,2},{3,4}}", 1007),
    ("ARRAY[true,false]", "{t,f}", 1000),
    ("'infinity'::date", "infinity", 1082),
    ("'-infinity'::timestamp", "-infinity", 1114),
    ("'infinity'::timestamptz", "infinity", 1184),
    ("'9999-12-31'::date", "9999-12-31", 1082),
    ("'0044-03-15 (BC)'::date", "0044-03-15 BC", 1082),
    ("'0044-03-15 (BC) 10:00:00.5'::timestamp", "0044-03-15 10:00:00.5 BC", 1114),
    ("'0044-03-15 (BC) 10:00:00+00'::timestamptz", "0044-03-15 10:00:00+00 BC", 1184),
    ("'20000-01-01'::date", "20000-01-01", 1082),
    ("'294000-01-01 00:00:00'::timestamp", "294000-01-01 00:00:00", 1114),
    ("ARRAY['infinity'::date, '0044-03-15 (BC)', NULL]", '{infinity,"0044-03-15 BC",NULL}', 1182),
]


@pytest.mark.parametrize(("expr", "text", "oid"), CASES)
def test_text_output(db, expr, text, oid):
    msgs = db.query(f"SELECT {expr}")
    assert msgs[0].kind == "T", msgs
    assert msgs[0]["columns"][0]["oid"] == oid
    assert rows(msgs) == [[text]]


def test_binary_output_matches_postgres(db):
    exprs = "1::int2, 2::int4, 3::int8, 1.5::float4, 0.1::float8, 1.50::numeric(10,2), '2024-01-02'::date, " \
            "'2024-01-02 03:04:05.123+00'::timestamptz, interval '1 year 2 months 3 days 04:05:06.789', " \
            "ARRAY[1,2,NULL]"  # fmt: skip
    msgs = db.send(fe.parse(f"SELECT {exprs}"), fe.bind(result_formats=[1]), fe.execute(), fe.sync())
    values = [m for m in msgs if m.kind == "D"][0]["values"]
    assert values == [
        b"\x00\x01",
        b"\x00\x00\x00\x02",
        struct.pack("!q", 3),
        struct.pack("!f", 1.5),
        struct.pack("!d", 0.1),
        bytes.fromhex("000200000000000200011388"),
        struct.pack("!i", 8767),
        struct.pack(
            "!q",
            (dt.datetime(2024, 1, 2, 3, 4, 5, 123000) - dt.datetime(2000, 1, 1))
            // dt.timedelta(microseconds=1),
        ),
        struct.pack("!qii", 14706789000, 3, 14),
        struct.pack("!iiiii", 1, 1, 23, 3, 1)
        + struct.pack("!ii", 4, 1)
        + struct.pack("!ii", 4, 2)
        + b"\xff" * 4,
    ]


# PostgreSQL 15.18's binary output for these numerics (``SELECT '<text>'::numeric`` with result format 1,
# captured with psycopg's pgconn.exec_params): ndigits, weight, sign, dscale, base-10000 digits.
PG_NUMERIC_BINARY = [
    ("0", "0000000000000000"),
    ("1.50", "000200000000000200011388"),
    ("-123456789.000123", "0005000240000006000109291a85000108fc"),
    ("10000", "00010001000000000001"),
    ("0.0001", "0001ffff000000040001"),
    ("99999999999999999999.5", "0006000400000001270f270f270f270f270f1388"),
]


@pytest.mark.parametrize(("text", "pg_hex"), PG_NUMERIC_BINARY)
def test_numeric_binary_as_postgres(text, pg_hex):
    """pgtls's numeric encoder gives PostgreSQL's bytes, and its parameter decoder reads them back."""
    pg = bytes.fromhex(pg_hex)
    assert encode.numeric_send(Decimal(text)) == pg
    decoded = params.decode_binary(T.NUMERIC.oid, pg)
    assert decoded == Decimal(text) and str(decoded) == text


# PostgreSQL 15.18's binary form of each value (captured as above, TimeZone UTC): what a client sends as a
# binary parameter and gets back in a binary result column.
PG_BINARY_VALUES = [
    (T.INT4.oid, 42, "0000002a"),
    (T.INT8.oid, -(2**40), "ffffff0000000000"),
    (T.FLOAT8.oid, 2.5, "4004000000000000"),
    (T.BOOL.oid, True, "01"),
    (T.DATE.oid, dt.date(2024, 1, 2), "0000223f"),
    (T.TIMESTAMP.oid, dt.datetime(2024, 1, 2, 3, 4, 5, 6), "0002b0ec8515f346"),
    (T.TIMESTAMPTZ.oid, dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "0002b0ec8515f340"),
    (T.UUID.oid, uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), "a0eebc999c0b4ef8bb6d6bb9bd380a11"),
    (T.BYTEA.oid, b"\x00\xff", "00ff"),
    (T.TEXT.oid, "héllo", "68c3a96c6c6f"),
]


@pytest.mark.parametrize(("oid", "value", "pg_hex"), PG_BINARY_VALUES)
def test_binary_params_as_postgres(db, oid, value, pg_hex):
    """PostgreSQL's bytes in as a binary parameter come back as the same bytes and type; pgtls's encoder for
    the Python value gives those bytes too."""
    pg = bytes.fromhex(pg_hex)
    assert encode.binary_encoder(T.BY_OID[oid], dt.UTC)(value) == pg
    msgs = db.send(
        fe.parse("SELECT $1", oids=[oid]),
        fe.bind([pg], param_formats=[1], result_formats=[1]),
        fe.describe("P"),
        fe.execute(),
        fe.sync(),
    )
    assert [m for m in msgs if m.kind == "T"][0]["columns"][0]["oid"] == oid
    assert [m for m in msgs if m.kind == "D"][0]["values"] == [pg]


def test_text_array_param(db):
    msgs = db.send(fe.parse("SELECT $1", oids=[1007]), fe.bind(["{1,2,NULL}"]), fe.execute(), fe.sync())
    assert rows(msgs) == [["{1,2,NULL}"]]
    msgs = db.send(fe.parse("SELECT $1", oids=[1009]), fe.bind(['{"a,b",c}']), fe.execute(), fe.sync())
    assert rows(msgs) == [['{"a,b",c}']]


def test_float_format():
    assert encode.format_float(1e16) == "1e+16"
    assert encode.format_float(123456.0, single=True) == "123456"
    assert encode.format_float(1234567.0, single=True) == "1.234567e+06"
    assert encode.format_float(-0.0) == "-0"


def test_binary_infinity(db):
    """PostgreSQL's binary infinities: INT32 max/min days (date), INT64 max/min microseconds (timestamp[tz])."""
    exprs = "'infinity'::date, '-infinity'::date, 'infinity'::timestamp, '-infinity'::timestamp, " \
            "'infinity'::timestamptz, '-infinity'::timestamptz, '9999-12-31'::date"  # fmt: skip
    msgs = db.send(fe.parse(f"SELECT {exprs}"), fe.bind(result_formats=[1]), fe.execute(), fe.sync())
    values = [m for m in msgs if m.kind == "D"][0]["values"]
    i32, i64 = (1 << 31) - 1, (1 << 63) - 1
    assert values == [struct.pack("!i", i32), struct.pack("!i", -i32 - 1), struct.pack("!q", i64),
                      struct.pack("!q", -i64 - 1), struct.pack("!q", i64), struct.pack("!q", -i64 - 1),
                      struct.pack("!i", 2921939)]  # fmt: skip


def test_calendar_beyond_python():
    for y, m, d in [
        (2000, 1, 1),
        (1, 1, 1),
        (9999, 12, 31),
        (0, 2, 29),
        (-43, 3, 15),
        (-4712, 1, 1),
        (294276, 12, 31),
    ]:
        days = encode.days_from_civil(y, m, d)
        assert encode.civil_from_days(days) == (y, m, d)
        if 1 <= y <= 9999:
            assert days == (dt.date(y, m, d) - dt.date(2000, 1, 1)).days
    assert encode.duck_date_text(-43, 3, 15) == "0044-03-15 (BC)"
    assert params.decode_binary(
        T.DATE.oid, struct.pack("!i", encode.days_from_civil(-43, 3, 15))
    ) == params.DuckText("DATE", "0044-03-15 (BC)")
    assert params.duck_datetime_input("0044-03-15 10:00:00+00 BC") == "0044-03-15 (BC) 10:00:00+00"
    assert params.duck_datetime_input("2024-01-02 bc") == "2024-01-02 (BC)"
    assert params.duck_datetime_input("2024-01-02") == "2024-01-02"


def test_date_probe_reruns_only_when_needed():
    """Ordinary dates are used as DuckDB's binding gives them; a run again (columns as text) only for an
    extreme value or a result longer than the probe."""
    cur = duckdb.connect()

    def fetched(sql: str) -> tuple[list[tuple[object, ...]], bool]:
        res = execute.run(cur, sql, ["SELECT"])
        out = []
        while batch := res.fetch(100):  # as the session asks: a batch at a time
            out += batch
        return out, res.fetch.__self__.rerun  # type: ignore[attr-defined]

    assert fetched("SELECT DATE '2024-01-02' AS d, TIMESTAMP '2024-01-02 03:04:05' AS ts") == (
        [(dt.date(2024, 1, 2), dt.datetime(2024, 1, 2, 3, 4, 5))], False)  # fmt: skip
    assert fetched("SELECT DATE '9999-12-31' AS d") == ([("9999-12-31",)], True)
    assert fetched("SELECT 'infinity'::DATE AS d") == ([("infinity",)], True)
    assert fetched("SELECT ['-infinity'::TIMESTAMP] AS a") == ([(["-infinity"],)], True)
    many, rerun = fetched(
        f"SELECT DATE '2024-01-02' + i::INTEGER AS d FROM range({execute.PROBE_ROWS + 1}) t(i)"
    )
    assert rerun and len(many) == execute.PROBE_ROWS + 1 and many[0] == ("2024-01-02",)
    # a query that took long before its first row (a sort, an aggregate) is probed further before running again
    assert execute.DateProbe(cur, "", [], started=0.05).probe == 25_000
    assert execute.DateProbe(cur, "", [], started=10.0).probe == execute.PROBE_ROWS_MAX
