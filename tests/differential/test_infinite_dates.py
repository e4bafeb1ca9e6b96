"""Infinite, BC and far-future dates and timestamps against a real PostgreSQL 15: SELECT results in the
simple and extended protocol (text and binary), table columns, arrays, a result longer than the first
batch, portals, cursors, parameters (text and binary), COPY TO, and real clients (psycopg, asyncpg).

DuckDB's Python binding gives infinity as the largest/smallest Python value, which real values also are
(9999-12-31, 0001-01-01), and BC / years beyond 9999 as DuckDB's text ('0044-03-15 (BC)'); see
execute.py (DateProbe) and pgtypes/encode.py.  SQL literals here use the '(BC)' spelling, which both PostgreSQL
and DuckDB read; PostgreSQL's '0044-03-15 BC' in a cast is rewritten to it (literals.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from typing import Any

import asyncpg
import psycopg
import pytest
from psycopg.adapt import Loader
from psycopg.pq import Format

from tests.pgwire_util import (
    SessionDriver,
    assert_same_outcome,
    error_outcome,
    errors,
    fe,
    postgres_and_session,
    tags,
)

pytestmark = pytest.mark.pg

ZONES = ["UTC", "America/New_York", "Asia/Kolkata"]

# (k, date, timestamp, timestamptz) as SQL literals
ROWS = [
    (1, "'infinity'", "'infinity'", "'infinity'"),
    (2, "'-infinity'", "'-infinity'", "'-infinity'"),
    (3, "'0044-03-15 (BC)'", "'0044-03-15 (BC) 10:00:00.5'", "'0044-03-15 (BC) 10:00:00+00'"),
    (4, "'4713-01-01 (BC)'", "'4713-11-24 (BC) 00:00:00'", "'4713-11-24 (BC) 00:00:00+00'"),
    (5, "'20000-01-01'", "'294000-01-01 00:00:00'", "'20000-06-01 12:00:00+00'"),
    (6, "'9999-12-31'", "'9999-12-31 23:59:59.999999'", "'9999-12-31 23:59:59.999999+00'"),
    (7, "'0001-01-01'", "'0001-01-01 00:00:00'", "'0001-01-01 00:00:00+00'"),
    (8, "'2024-02-29'", "'2024-02-29 13:14:15.123456'", "'2024-02-29 13:14:15.5+00'"),
    (9, "NULL", "NULL", "NULL"),
]
ARRAY_ITEMS = "'infinity', '-infinity', '0044-03-15 (BC)', '20000-01-01', NULL, '9999-12-31', '2024-02-29'"
TS_ITEMS = "'infinity', '-infinity', '0044-03-15 (BC) 10:00:00', '20000-01-01 00:00:00', NULL, " \
           "'9999-12-31 23:59:59.999999', '0001-01-01 00:00:00'"  # fmt: skip
TZ_ITEMS = "'infinity', '-infinity', '0044-03-15 (BC) 10:00:00+00', '20000-06-01 12:00:00+00', NULL, " \
           "'9999-12-31 23:59:59.999999+00', '2024-02-29 13:14:15.5+00'"  # fmt: skip

SETUP = [
    "CREATE TABLE dt (k int PRIMARY KEY, d date, ts timestamp, tz timestamptz, da date[], tsa timestamp[], "
    "tza timestamptz[])",
    "INSERT INTO dt VALUES "
    + ", ".join(
        f"({k}, {d}::date, {ts}::timestamp, {tz}::timestamptz, ARRAY[{d}, '2024-01-01']::date[], "
        f"ARRAY[{ts}, NULL]::timestamp[], ARRAY[{tz}]::timestamptz[])"
        for k, d, ts, tz in ROWS
    ),
    # more rows than the first batch, an infinity after it and real extremes before it
    "CREATE TABLE many (k int PRIMARY KEY, d date, ts timestamp)",
    "INSERT INTO many SELECT i, CASE WHEN i = 2000 THEN 'infinity'::date WHEN i = 10 THEN '9999-12-31'::date "
    "ELSE date '2000-01-01' + i END, CASE WHEN i = 1500 THEN '-infinity'::timestamp WHEN i = 11 THEN "
    "'0001-01-01 00:00:00'::timestamp ELSE timestamp '2000-01-01' + i * interval '1 hour' END "
    "FROM generate_series(1, 2500) i",
    "CREATE TABLE pt (k int PRIMARY KEY, d date, ts timestamp, tz timestamptz)",
]

QUERIES = [
    "SELECT 'infinity'::date, '-infinity'::date, 'infinity'::timestamp, '-infinity'::timestamp, "
    "'infinity'::timestamptz, '-infinity'::timestamptz",
    "SELECT '9999-12-31'::date, '0001-01-01'::date, '9999-12-31 23:59:59.999999'::timestamp, "
    "'0001-01-01 00:00:00'::timestamp, '9999-12-31 23:59:59.999999+00'::timestamptz, "
    "'0001-01-01 00:00:00+00'::timestamptz",
    "SELECT '0044-03-15 (BC)'::date, '4713-01-01 (BC)'::date, '0001-12-31 (BC)'::date, "
    "'0044-03-15 (BC) 10:00:00.5'::timestamp, '4713-11-24 (BC) 00:00:00'::timestamp, "
    "'0044-03-15 (BC) 10:00:00+00'::timestamptz, '4713-11-24 (BC) 12:00:00+00'::timestamptz",
    "SELECT '20000-01-01'::date, '5874897-12-31'::date, '294000-01-01 00:00:00'::timestamp, "
    "'294247-01-10 04:00:54.775806'::timestamp, '20000-06-01 12:00:00+00'::timestamptz, "
    "'9999-12-31 23:00:00+00'::timestamptz, '0001-01-01 02:00:00+00'::timestamptz",
    "SELECT '2024-02-29'::date, '2024-02-29 13:14:15.123456'::timestamp, '2024-02-29 13:14:15.5+00'::timestamptz, "
    "NULL::date, NULL::timestamp, NULL::timestamptz",
    "SELECT d FROM (VALUES ('infinity'::date), ('9999-12-31'), ('0044-03-15 (BC)'), (NULL), ('2024-02-29')) v(d)",
    f"SELECT ARRAY[{ARRAY_ITEMS}]::date[], ARRAY[{TS_ITEMS}]::timestamp[], ARRAY[{TZ_ITEMS}]::timestamptz[]",
    "SELECT * FROM dt ORDER BY k",
    "SELECT k, d, ts, tz FROM dt WHERE k = 6",
    "SELECT k, d, ts, tz FROM dt WHERE k = 1",
    "SELECT k FROM dt ORDER BY d, k",
    "SELECT interval '1 day', d, ts, tz, da FROM dt ORDER BY k",
    "SELECT * FROM many ORDER BY k",
    "SELECT d, ts FROM many WHERE k IN (10, 11, 1500, 2000) ORDER BY k",
]

EXTRA = [
    # PostgreSQL's BC spelling in SQL text (literals.py turns it into DuckDB's '(BC)'):
    pytest.param(
        "SELECT '0044-03-15 BC'::date, '0044-03-15 10:00:00 BC'::timestamp, "
        "'0044-03-15 10:00:00+00 BC'::timestamptz"
    ),  # fmt: skip
    pytest.param(
        "SELECT '294276-12-31 23:59:59'::timestamp",
        marks=pytest.mark.xfail(
            strict=True,
            raises=AssertionError,
            reason="DuckDB's timestamps end at 294247-01-10 04:00:54.775806, PostgreSQL's at 294276-12-31",
        ),
    ),
]


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[psycopg.Connection, SessionDriver]]:
    with postgres_and_session(tmp_path_factory.mktemp("infdates"), SETUP) as pair:
        yield pair


def _zone(both: tuple[psycopg.Connection, SessionDriver], zone: str) -> None:
    conn, d = both
    conn.execute(f"SET TimeZone = '{zone}'")
    assert not errors(d.query(f"SET TimeZone = '{zone}'"))


def pg_result(conn: psycopg.Connection, sql: str, fmt: int | None, params: list[Any] | None = None,
              types: list[int] | None = None, pformats: list[int] | None = None) -> tuple[Any, Any]:  # fmt: skip
    """(oids, rows) from PostgreSQL: the simple protocol when ``fmt`` is None, else the extended one."""
    if fmt is None:
        res = conn.pgconn.exec_(sql.encode())
    else:
        vals = [None if p is None else p if isinstance(p, bytes) else str(p).encode() for p in params or []]
        res = conn.pgconn.exec_params(sql.encode(), vals, types, pformats, result_format=fmt)
    err = res.error_field(psycopg.pq.DiagnosticField.SQLSTATE)
    if err:
        return error_outcome(
            err.decode(), (res.error_field(psycopg.pq.DiagnosticField.MESSAGE_PRIMARY) or b"").decode()
        )
    values = [[res.get_value(r, c) for c in range(res.nfields)] for r in range(res.ntuples)]
    return ([res.ftype(c) for c in range(res.nfields)], values)


def our_result(d: SessionDriver, sql: str, fmt: int | None, params: list[Any] | None = None,
               types: list[int] | None = None, pformats: list[int] | None = None) -> tuple[Any, Any]:  # fmt: skip
    if fmt is None:
        msgs = d.query(sql)
    else:
        msgs = d.send(fe.parse(sql, oids=types or []),
                      fe.bind(params or [], param_formats=pformats or [], result_formats=[fmt]),
                      fe.describe("P"), fe.execute(), fe.sync())  # fmt: skip
    errs = errors(msgs)
    if errs:
        return error_outcome(errs[0]["C"], errs[0]["M"])
    t = [m for m in msgs if m.kind == "T"]
    return ([c["oid"] for c in t[0]["columns"]] if t else [], [m["values"] for m in msgs if m.kind == "D"])


def _same(both: tuple[psycopg.Connection, SessionDriver], sql: str, fmt: int | None, **kw: Any) -> None:
    conn, d = both
    want = pg_result(conn, sql, fmt, **kw)
    assert want[0] != "error", want
    assert our_result(d, sql, fmt, **kw) == want


@pytest.mark.parametrize("fmt", [None, 0, 1], ids=["simple", "text", "binary"])
@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("sql", QUERIES + EXTRA)
def test_select_matches_postgres(both, sql, zone, fmt):
    _zone(both, zone)
    _same(both, sql, fmt)


def test_portal_row_limit(both):
    """Rows handed out a few at a time (Execute with a row limit) are those PostgreSQL sends."""
    conn, d = both
    _zone(both, "America/New_York")
    sql = "SELECT k, d, ts, tz, da FROM dt ORDER BY k"
    got: list[list[bytes | None]] = []
    msgs = d.send(fe.parse(sql), fe.bind(result_formats=[1]), fe.execute(max_rows=2), fe.flush())
    while not tags(msgs):
        assert [m.kind for m in msgs][-1] == "s", msgs  # PortalSuspended
        got += [m["values"] for m in msgs if m.kind == "D"]
        msgs = d.send(fe.execute(max_rows=2), fe.flush())
    got += [m["values"] for m in msgs if m.kind == "D"]
    d.send(fe.sync())
    assert got == pg_result(conn, sql, 1)[1]


def test_cursor_fetch(both):
    conn, d = both
    _zone(both, "UTC")
    script = ["BEGIN", "DECLARE c CURSOR FOR SELECT k, d, ts FROM many ORDER BY k", "FETCH 9 FROM c",
              "FETCH 3 FROM c", "MOVE 1480 FROM c", "FETCH 20 FROM c", "FETCH ALL FROM c",
              "DECLARE s CURSOR FOR SELECT * FROM dt ORDER BY k", "FETCH 2 FROM s", "FETCH 3 FROM s",
              "FETCH ALL FROM s", "COMMIT"]  # fmt: skip
    for sql in script:
        _same(both, sql, None)


# --- parameters ---------------------------------------------------------------------------------------

DATE, TIMESTAMP, TIMESTAMPTZ = 1082, 1114, 1184
TEXT_PARAMS = [
    (DATE, "infinity"), (DATE, "-infinity"), (DATE, "0044-03-15 BC"), (DATE, "4713-01-01 BC"),
    (DATE, "20000-01-01"), (DATE, "9999-12-31"), (DATE, "2024-02-29"),
    (TIMESTAMP, "infinity"), (TIMESTAMP, "-infinity"), (TIMESTAMP, "0044-03-15 10:00:00.5 BC"),
    (TIMESTAMP, "294000-01-01 00:00:00"), (TIMESTAMP, "9999-12-31 23:59:59.999999"),
    (TIMESTAMPTZ, "infinity"), (TIMESTAMPTZ, "-infinity"), (TIMESTAMPTZ, "0044-03-15 10:00:00+00 BC"),
    (TIMESTAMPTZ, "20000-06-01 12:00:00+00"), (TIMESTAMPTZ, "2024-02-29 13:14:15.5+00"),
]  # fmt: skip
_CAST = {DATE: "date", TIMESTAMP: "timestamp", TIMESTAMPTZ: "timestamptz"}


@pytest.mark.parametrize("declared", [False, True], ids=["inferred", "declared"])
@pytest.mark.parametrize(("oid", "value"), TEXT_PARAMS)
def test_text_parameter(both, oid, value, declared):
    _zone(both, "America/New_York")
    sql = f"SELECT $1::{_CAST[oid]}"
    for fmt in (0, 1):
        _same(both, sql, fmt, params=[value], types=[oid] if declared else [0])


@pytest.mark.parametrize(("oid", "text"), [p for p in TEXT_PARAMS if p[1] != "9999-12-31 23:59:59.999999"])
def test_binary_parameter(both, oid, text):
    """The client sends PostgreSQL's binary form (taken from PostgreSQL itself): INT32/INT64 min and max
    for the infinities, days or microseconds from 2000-01-01 for the rest."""
    conn, _ = both
    _zone(both, "UTC")
    binary = pg_result(conn, f"SELECT $1::{_CAST[oid]}", 1, params=[text], types=[oid])[1][0][0]
    for fmt in (0, 1):
        _same(both, "SELECT $1", fmt, params=[binary], types=[oid], pformats=[1])


def test_parameters_stored_in_a_table(both):
    """Text and binary parameters of an INSERT (types inferred from the columns) store what PostgreSQL stores."""
    conn, d = both
    _zone(both, "UTC")
    sql = "INSERT INTO pt (k, d, ts, tz) VALUES ($1, $2, $3, $4)"
    texts = [["1", "infinity", "infinity", "infinity"], ["2", "-infinity", "-infinity", "-infinity"],
             ["3", "0044-03-15 BC", "0044-03-15 10:00:00 BC", "0044-03-15 10:00:00+00 BC"],
             ["4", "20000-01-01", "294000-01-01 00:00:00", "20000-06-01 12:00:00+00"],
             ["5", "9999-12-31", "9999-12-31 23:59:59.999999", "9999-12-31 23:59:59.999999+00"]]  # fmt: skip
    for k, row in enumerate(texts):
        assert pg_result(conn, sql, 0, params=row)[0] != "error"
        assert our_result(d, sql, 0, params=row)[0] != "error"
        # the same values again as binary parameters (as PostgreSQL sends them back)
        binary = pg_result(conn, "SELECT $1::date, $2::timestamp, $3::timestamptz", 1, params=row[1:])[1][0]
        params = [str(k + 11).encode(), *binary]
        kw = {"params": params, "types": [23, DATE, TIMESTAMP, TIMESTAMPTZ], "pformats": [0, 1, 1, 1]}
        assert pg_result(conn, sql, 0, **kw)[0] != "error"
        assert our_result(d, sql, 0, **kw)[0] != "error"
    for fmt in (None, 1):
        _same(both, "SELECT * FROM pt ORDER BY k", fmt)
    _same(
        both, "SELECT k FROM pt WHERE d = 'infinity' AND ts = 'infinity' AND tz = 'infinity' ORDER BY k", None
    )
    _same(
        both,
        "SELECT k FROM pt WHERE d = '-infinity' AND ts = '-infinity' AND tz = '-infinity' ORDER BY k",
        None,
    )


# --- COPY TO ------------------------------------------------------------------------------------------


def _pg_copy(conn: psycopg.Connection, sql: str) -> bytes:
    with conn.cursor() as cur, cur.copy(sql) as cp:
        return b"".join(bytes(b) for b in cp)


@pytest.mark.parametrize("zone", ["UTC", "America/New_York"])
@pytest.mark.parametrize(
    "how", ["", "WITH (FORMAT csv)", "WITH (FORMAT binary)"], ids=["text", "csv", "binary"]
)
@pytest.mark.parametrize(
    "source",
    ["(SELECT * FROM dt ORDER BY k)", "dt", "(SELECT k, da, tsa FROM dt ORDER BY k)"],
    ids=["query", "table", "arrays"],
)
def test_copy_to(both, source, how, zone):
    conn, d = both
    _zone(both, zone)
    sql = f"COPY {source} TO STDOUT {how}"
    msgs = d.query(sql)
    assert not errors(msgs), errors(msgs)
    assert b"".join(m["data"] for m in msgs if m.kind == "d") == _pg_copy(conn, sql)


# --- input PostgreSQL refuses ----------------------------------------------------------------------------

# Each must fail as on PostgreSQL 15, with its SQLSTATE and message; those pgtls gets wrong are strict xfails.
INVALID = [
    pytest.param("SELECT '5874898-01-01'::date", marks=pytest.mark.xfail(strict=True, raises=AssertionError,
                 reason="pgtls accepts a date past PostgreSQL's last (5874897-12-31); PostgreSQL: 22008 "
                        "'date out of range'")),
    pytest.param("SELECT '0000-01-01'::date", marks=pytest.mark.xfail(strict=True, raises=AssertionError,
                 reason="pgtls reads year 0 as 0001 BC; PostgreSQL: 22008 'date/time field value out of range'")),
    pytest.param("SELECT '2024-02-30'::date", marks=pytest.mark.xfail(strict=True, raises=AssertionError,
                 reason="pgtls: 22003 'date field value out of range' (DuckDB's); PostgreSQL: 22008 "
                        "'date/time field value out of range'")),
    pytest.param("SELECT 'notadate'::date", marks=pytest.mark.xfail(strict=True, raises=AssertionError,
                 reason="pgtls: 22P02 with DuckDB's 'invalid date field format'; PostgreSQL: 22007 'invalid "
                        "input syntax for type date'")),
    pytest.param("SELECT 'infinity'::timestamp - 'infinity'::timestamp", marks=pytest.mark.xfail(
                 strict=True, raises=AssertionError, reason="pgtls: 22023 'Cannot subtract infinite timestamps' "
                 "(DuckDB's); PostgreSQL: 22008 'cannot subtract infinite timestamps'")),
]  # fmt: skip


@pytest.mark.parametrize("sql", INVALID)
def test_invalid_input_fails_as_on_postgres(both, sql):
    conn, d = both
    _zone(both, "UTC")
    want = pg_result(conn, sql, None)
    assert want[0] == "error", want
    assert_same_outcome(our_result(d, sql, None), want, sql)


# --- what does not work ----------------------------------------------------------------------------------


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="DuckDB cannot re-run or wrap an INSERT ... RETURNING, so a returned "
                   "infinity is indistinguishable from 9999-12-31 (see execute.py)")  # fmt: skip
def test_returning_infinity(both):
    conn, d = both
    conn.execute("CREATE TEMP TABLE ret (d date)")
    assert not errors(d.query("CREATE TEMP TABLE ret (d date)"))
    _same(both, "INSERT INTO ret VALUES ('infinity'), ('9999-12-31') RETURNING d", None)


# --- real clients over TCP --------------------------------------------------------------------------------


class _Text(Loader):
    def load(self, data: Any) -> str:  # noqa: ANN401 - a buffer
        return bytes(data).decode()


class _Bytes(Loader):
    format = Format.BINARY

    def load(self, data: Any) -> bytes:  # noqa: ANN401 - a buffer
        return bytes(data)


CLIENT_SETUP = [
    "DROP TABLE IF EXISTS cdt",
    "CREATE TABLE cdt (k int PRIMARY KEY, d date, ts timestamp, tz timestamptz, da date[])",
    "INSERT INTO cdt VALUES " + ", ".join(
        f"({k}, {d}::date, {ts}::timestamp, {tz}::timestamptz, ARRAY[{d}]::date[])" for k, d, ts, tz in ROWS
    ),
]  # fmt: skip


@pytest.fixture(scope="module")
def servers(pg_and_pgtls: tuple[Any, Any]) -> tuple[int, int]:
    pg, ours = pg_and_pgtls
    ports = (pg.port, ours.port)
    for port in ports:
        with psycopg.connect(
            f"host=127.0.0.1 port={port} user=postgres dbname=postgres", autocommit=True
        ) as c:
            for sql in CLIENT_SETUP:
                c.execute(sql)
    return ports


def test_psycopg_values(servers):
    """psycopg's own loaders refuse infinity and BC dates; loaders that keep the wire form (text and
    binary) must see exactly what PostgreSQL sends, for literals, columns and text parameters."""

    def run(port: int) -> list[object]:
        out: list[object] = []
        with psycopg.connect(
            f"host=127.0.0.1 port={port} user=postgres dbname=postgres", autocommit=True
        ) as c:
            c.execute("SET TimeZone = 'America/New_York'")
            for oid in (DATE, TIMESTAMP, TIMESTAMPTZ, 1182):  # and date[]
                c.adapters.register_loader(oid, _Text)
                c.adapters.register_loader(oid, _Bytes)
            for binary in (False, True):
                with c.cursor(binary=binary) as cur:
                    out.append(cur.execute("SELECT * FROM cdt ORDER BY k").fetchall())
                    out.append(cur.execute("SELECT %s::date, %s::timestamp, %s::timestamptz",
                                           ["infinity", "0044-03-15 10:00:00 BC", "-infinity"]).fetchall())  # fmt: skip
        return out

    pg_port, our_port = servers
    assert run(our_port) == run(pg_port)


def test_asyncpg_infinity(servers):
    """asyncpg reads and sends infinity as date.max / datetime.max in binary; what it stores with them must
    be infinity, and a real 9999-12-31 must stay finite."""

    async def run(port: int) -> list[object]:
        conn = await asyncpg.connect(
            host="127.0.0.1", port=port, user="postgres", database="postgres", ssl=False
        )
        try:
            await conn.execute("DROP TABLE IF EXISTS apg")
            await conn.execute("CREATE TABLE apg (k int, d date, ts timestamp, tz timestamptz)")
            await conn.executemany("INSERT INTO apg VALUES ($1, $2, $3, $4)", [
                (1, dt.date.max, dt.datetime.max, dt.datetime.max.replace(tzinfo=dt.UTC)),
                (2, dt.date.min, dt.datetime.min, dt.datetime.min.replace(tzinfo=dt.UTC)),
                (3, dt.date(2024, 2, 29), dt.datetime(2024, 2, 29, 1, 2, 3), dt.datetime(2024, 2, 29, tzinfo=dt.UTC)),
            ])  # fmt: skip
            got: list[object] = [list(r) for r in await conn.fetch("SELECT * FROM apg ORDER BY k")]
            got += [list(r) for r in await conn.fetch(
                "SELECT k, isfinite(d), isfinite(ts), isfinite(tz), d = 'infinity'::date, ts = '-infinity'::timestamp "
                "FROM apg ORDER BY k")]  # fmt: skip
            got += [
                list(r)
                for r in await conn.fetch("SELECT k, d FROM cdt WHERE k IN (1, 2, 6, 7, 8) ORDER BY k")
            ]
            got.append(await conn.fetchval("SELECT isfinite($1::date)", dt.date.max))
            return got
        finally:
            await conn.close()

    pg_port, our_port = servers
    assert asyncio.run(run(our_port)) == asyncio.run(run(pg_port))
