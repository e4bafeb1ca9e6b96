"""Backend gaps found by the client scenario tests, each checked against PostgreSQL 15's output."""

from __future__ import annotations

import struct
from decimal import Decimal

import pytest

from pgtls.backends.embedded.pgtypes import encode, literals, params
from tests.pgwire_util import errors, fe, rows, tags

# (expression, PostgreSQL 15's text output)
VALUES = [
    ("3.4028235e38::float4", "3.4028235e+38"),
    ("-3.4028235e38::float4", "-3.4028235e+38"),
    ("'-1 years -2 mons +3 days -04:05:06'::interval", "-1 years -2 mons +3 days -04:05:06"),
    ("'+1 day'::interval", "1 day"),
    ("ARRAY[[1,2],[3,4]]::int4[]", "{{1,2},{3,4}}"),
    ("'{1,-2147483648,NULL}'::int4[]", "{1,-2147483648,NULL}"),
    ("'{{1,2},{3,4}}'::int4[]", "{{1,2},{3,4}}"),
    ("'{}'::int4[]", "{}"),
    ('\'{"a b",NULL,"","NULL","x\\"y"}\'::text[]', '{"a b",NULL,"","NULL","x\\"y"}'),
    ("'{\"\\\\x00ff\",NULL}'::bytea[]", '{"\\\\x00ff",NULL}'),
    ("'{\"1 year\",-00:00:01}'::interval[]", '{"1 year",-00:00:01}'),
    ("'ab'::char(5)", "ab   "),
    ("'abcde'::char(5)", "abcde"),
    ('\'{"b": 2,  "a": 1}\'::jsonb', '{"a": 1, "b": 2}'),
    ('\'{"aa": 1, "b": [1.50, {"y": null, "x": true}], "b": 3}\'::jsonb', '{"b": 3, "aa": 1}'),
    ("1.50::numeric", "1.50"),
    ("'1.50'::numeric", "1.50"),
    ("123456789012345678901234567890::numeric", "123456789012345678901234567890"),
    ("'123456789012345678901234567890'::numeric", "123456789012345678901234567890"),
    ("0.1234::float8::numeric", "0.1234"),
    ("CAST(7 AS numeric)", "7"),
    ("'{1.50,NULL}'::numeric(38,10)[]", "{1.5000000000,NULL}"),
]


@pytest.mark.parametrize(("expr", "text"), VALUES)
def test_values_as_postgres(db, expr, text):
    msgs = db.query(f"SELECT {expr}")
    assert not errors(msgs), errors(msgs)
    assert rows(msgs) == [[text]]


def test_unconstrained_numeric_column(db):
    db.query("CREATE TABLE n (id int, v numeric, w numeric(12,2), a numeric[])")
    msgs = db.query(
        "INSERT INTO n VALUES (1, 123456789012345678901234567890, 1.5, ARRAY[1.5, 2]), "
        "(2, '-1.25', 0, NULL), (3, 0, NULL, NULL)"
    )
    assert tags(msgs) == ["INSERT 0 3"], errors(msgs)
    assert db.rows("SELECT v, w, a FROM n ORDER BY id") == [
        ["123456789012345678901234567890", "1.50", "{1.5,2}"],
        ["-1.25", "0.00", None],
        ["0", None, None],
    ]
    assert db.value("SELECT sum(v) FROM n WHERE id > 1") == "-1.25"
    desc = db.query("SELECT v FROM n")[0]["columns"][0]
    assert (desc["oid"], desc["typmod"]) == (1700, -1)


def test_rewrite_leaves_names_alone():
    assert literals.rewrite_literals("SELECT numeric FROM t") == "SELECT numeric FROM t"
    assert literals.rewrite_literals("SELECT x AS numeric FROM t") == "SELECT x AS numeric FROM t"
    assert literals.rewrite_literals("CREATE TABLE t (numeric int)") == "CREATE TABLE t (numeric int)"
    assert literals.rewrite_literals("SELECT E'{1}'::int[]") == "SELECT E'{1}'::int[]"


def test_jsonb_text():
    assert literals.jsonb_text('{"b": 2,  "a": 1}') == '{"a": 1, "b": 2}'
    assert literals.jsonb_text('[1, "x", {"k": null}]') == '[1, "x", {"k": null}]'
    assert literals.jsonb_text('{"a":"\\u00fc\\n","a":1e2,"c":-0}') == '{"a": 100, "c": 0}'
    assert literals.jsonb_text('"\\u00fc\\t"') == '"\u00fc\\t"'


# --- binary parameters over the whole range -------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "1234567890123456789012.12345678",
        "-0.00000001",
        "0",
        "0.00",
        "1.50",
        "99999999999999999999999999999.99999999",
        "-12345678901234567890.1234567890",
        "123456789012345678901234567890",
        "-0.000000000000000000000000000001",
    ],
)
def test_numeric_binary_roundtrip(text):
    d = Decimal(text)
    assert format(params.decode_binary(1700, encode.numeric_send(d)), "f") == format(d, "f")


def test_binary_infinite_dates_and_timestamps(db):
    db.query("CREATE TABLE d (a date, b timestamp, c timestamptz)")
    ninf32, inf64, ninf64 = (
        struct.pack("!i", -(1 << 31)),
        struct.pack("!q", (1 << 63) - 1),
        struct.pack("!q", -(1 << 63)),
    )
    msgs = db.send(
        fe.parse("INSERT INTO d VALUES ($1, $2, $3)", oids=[1082, 1114, 1184]),
        fe.bind(params=[ninf32, inf64, ninf64], param_formats=[1]),
        fe.execute(),
        fe.sync(),
    )
    assert not errors(msgs), errors(msgs)
    assert db.rows("SELECT a::text, b::text, c::text FROM d") == [["-infinity", "infinity", "-infinity"]]
    # 0001-01-01 and 9999-12-31 23:59:59.999999 as plain values
    day1 = struct.pack("!i", -730119)
    msgs = db.send(
        fe.parse("SELECT $1::date::text", oids=[1082]),
        fe.bind(params=[day1], param_formats=[1]),
        fe.execute(),
        fe.sync(),
    )
    assert rows(msgs) == [["0001-01-01"]]


def test_numeric_38_binary_parameter(db):
    v = Decimal("1234567890123456789012.12345678")
    msgs = db.send(
        fe.parse("SELECT CAST($1 AS numeric(38,8))::text", oids=[1700]),
        fe.bind(params=[encode.numeric_send(v)], param_formats=[1]),
        fe.execute(),
        fe.sync(),
    )
    assert not errors(msgs), errors(msgs)
    assert rows(msgs) == [[str(v)]]


# --- COPY as pg8000 sends it ----------------------------------------------------------------------


def test_sync_during_copy_in_is_ignored(db):
    """pg8000: Parse/Bind/Execute, Sync, then CopyData, CopyDone, Sync -> one ReadyForQuery (postgres.c)."""
    db.query("CREATE TABLE t (a int)")
    msgs = db.send(fe.parse("COPY t FROM STDIN"), fe.bind(), fe.execute(), fe.sync())
    assert [m.kind for m in msgs] == ["1", "2", "G"]
    msgs = db.send(fe.copy_data("7\n"), fe.copy_done(), fe.sync())
    assert [m.kind for m in msgs] == ["C", "Z"]
    assert db.rows("SELECT a FROM t") == [["7"]]


def test_sql_prepare_with_types(db):
    assert tags(db.query("PREPARE scen_p(int8, text) AS SELECT $1 * 2, $2 || '!'")) == ["PREPARE"]
    assert db.rows("EXECUTE scen_p(1, 'a')") == [["2", "a!"]]
    assert db.rows("EXECUTE scen_p(7, 'g')") == [["14", "g!"]]
    assert tags(db.query("DEALLOCATE scen_p")) == ["DEALLOCATE"]
    db.query("CREATE TABLE pt (a int, b numeric)")
    db.query("PREPARE ins (int, numeric) AS INSERT INTO pt VALUES ($1, $2)")
    db.query("EXECUTE ins(1, 2.5)")
    assert db.rows("SELECT a, b FROM pt") == [["1", "2.5"]]


def _binary_copy(rows: list[tuple[bytes | None, ...]]) -> bytes:
    out = [b"PGCOPY\n\xff\r\n\x00", struct.pack("!iI", 0, 0)]
    for row in rows:
        out.append(struct.pack("!h", len(row)))
        for v in row:
            out.append(struct.pack("!i", -1) if v is None else struct.pack("!i", len(v)) + v)
    out.append(struct.pack("!h", -1))
    return b"".join(out)


def test_copy_in_binary(db):
    """COPY FROM STDIN (FORMAT binary), as asyncpg's copy_records_to_table sends it."""
    db.query("CREATE TABLE cb (a int, b text, c numeric(38,8), d date, e bytea, f float8)")
    msgs = db.query("COPY cb (a, b, c, d, e, f) FROM STDIN (FORMAT binary)")
    assert [m.kind for m in msgs] == ["G"], errors(msgs)
    data = _binary_copy([
        (struct.pack("!i", 1), "tab\there ü".encode(), encode.numeric_send(Decimal("-0.00000001")),
         struct.pack("!i", -730119), b"\x00\xff", struct.pack("!d", 0.1)),
        (struct.pack("!i", 2), None, None, None, None, None),
    ])  # fmt: skip
    msgs = db.send(fe.copy_data(data[:7]), fe.copy_data(data[7:30]), fe.copy_data(data[30:]), fe.copy_done())
    assert tags(msgs) == ["COPY 2"], errors(msgs)
    assert db.rows("SELECT a, b, c, d, e, f FROM cb ORDER BY a") == [
        ["1", "tab\there ü", "-0.00000001", "0001-01-01", "\\x00ff", "0.1"],
        ["2", None, None, None, None, None],
    ]


def test_copy_in_binary_bad_signature(db):
    db.query("CREATE TABLE cb (a int)")
    db.query("COPY cb FROM STDIN (FORMAT binary)")
    msgs = db.send(fe.copy_data(b"not a copy file at all"), fe.copy_done())
    assert errors(msgs)[0]["C"] == "22P04"


def test_copy_out_binary(db):
    msgs = db.query("COPY (SELECT 1::int4 AS a, NULL::text AS b) TO STDOUT (FORMAT binary)")
    data = b"".join(m.body for m in msgs if m.kind == "d")
    expected = _binary_copy([(struct.pack("!i", 1), None)])
    assert data == expected
    assert tags(msgs) == ["COPY 1"]
