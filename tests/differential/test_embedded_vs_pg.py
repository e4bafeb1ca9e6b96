"""The embedded backend against a real PostgreSQL: the same SQL must give the same text output,
type OIDs, command tags and SQLSTATEs (cases where DuckDB's semantics differ are in docs/embedded.md)."""

from __future__ import annotations

import psycopg
import pytest

from tests.pgwire_util import SessionDriver, errors, postgres_and_session, rows, tags

pytestmark = pytest.mark.pg

SETUP = [
    "CREATE TABLE t (a int PRIMARY KEY, b text NOT NULL, c numeric(10,2), d timestamptz)",
    "INSERT INTO t VALUES (1, 'one', 1.50, '2024-01-02 03:04:05+00'), (2, 'two', NULL, NULL)",
]

QUERIES = [
    "SELECT 1",
    "SELECT true, false, NULL",
    "SELECT 1::int2, 2::int4, 3::int8, 1.5::float4, 0.1::float8, 1e20::float8, 1e-5::float8",
    "SELECT 'NaN'::float8, 'Infinity'::float8, '-Infinity'::float4",
    "SELECT 1.50::numeric(10,2), 'abc'::text, '\\x0102ff'::bytea",
    "SELECT '2024-01-02'::date, '03:04:05.123'::time, '03:04:05+05:30'::timetz",
    "SELECT '2024-01-02 03:04:05.123'::timestamp, '2024-01-02 03:04:05.123+00'::timestamptz",
    "SELECT interval '1 year 2 months 3 days 04:05:06.789', interval '-1 month -2 days -00:00:01'",
    "SELECT interval '0 seconds', interval '25 hours'",
    "SELECT 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, '{\"a\": 1}'::json",
    "SELECT ARRAY[1,2,NULL], ARRAY[[1,2],[3,4]], ARRAY['a b', NULL, '', 'NULL', 'x\"y']",
    "SELECT 5 / 2, 7 % 3, 1 + 2",
    "SELECT * FROM t ORDER BY a",
    "SELECT a, b FROM t WHERE c IS NULL",
    "SELECT count(*) FROM t",
    "INSERT INTO t VALUES (3, 'three', 3, NULL)",
    "INSERT INTO t VALUES (4, 'four', 4, NULL), (5, 'five', 5, NULL) RETURNING a",
    "UPDATE t SET b = 'x' WHERE a > 2",
    "DELETE FROM t WHERE a = 5",
    "CREATE TABLE u (x int)",
    "CREATE VIEW v AS SELECT a FROM t",
    "DROP VIEW v",
    "SHOW DateStyle",
    "SHOW standard_conforming_strings",
    "SELECT current_setting('IntervalStyle')",
    "selec 1",
    "SELECT * FROM nope",
    "SELECT zz FROM t",
    "INSERT INTO t VALUES (1, 'dup', 0, NULL)",
    "INSERT INTO t (a) VALUES (9)",
    "SELECT 1/0",
    "SELECT 'x'::int",
    "SHOW no_such_setting",
]


def pg_outcome(conn: psycopg.Connection, sql: str) -> tuple[object, ...]:
    res = conn.pgconn.exec_(sql.encode())
    state = res.error_field(psycopg.pq.DiagnosticField.SQLSTATE)
    if state:
        msg = res.error_field(psycopg.pq.DiagnosticField.MESSAGE_PRIMARY)
        return ("error", state.decode(), msg.decode() if msg else None)
    values = [[None if res.get_value(r, c) is None else res.get_value(r, c).decode() for c in range(res.nfields)]
              for r in range(res.ntuples)]  # fmt: skip
    oids = [res.ftype(c) for c in range(res.nfields)]
    return ("ok", (res.command_status or b"").decode(), oids, values)


def our_outcome(d: SessionDriver, sql: str) -> tuple[object, ...]:
    msgs = d.query(sql)
    errs = errors(msgs)
    if errs:
        return ("error", errs[0]["C"], errs[0]["M"])
    t = [m for m in msgs if m.kind == "T"]
    oids = [c["oid"] for c in t[0]["columns"]] if t else []
    return ("ok", tags(msgs)[0], oids, rows(msgs))


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    with postgres_and_session(
        tmp_path_factory.mktemp("embedded"), SETUP, pg_only=["SET TimeZone = 'UTC'"]
    ) as pair:
        yield pair


@pytest.mark.parametrize("sql", QUERIES)
def test_same_outcome(both, sql):
    conn, d = both
    assert our_outcome(d, sql) == pg_outcome(conn, sql)
