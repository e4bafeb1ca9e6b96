"""Issue 5 acceptance: every real client runs the shared scenario (tests/clients/scenario.json) against
`pgtls serve` over TLS with verify-full (the server's pg_hba.conf has only ``hostssl`` lines for TCP);
plus 100 concurrent sessions, a slow query that must not hold up another client's TLS handshake, and a
write conflict (40001).

Values: psql, psycopg (text and binary), asyncpg (binary codecs), pg8000, node-postgres and pgJDBC
(binary transfer) read back every type; psycopg and asyncpg also send what they read as parameters
again ("roundtrip").  Checks: transactions with rollback, an error and recovery, a cancelled long
query (57014), COPY in and out, prepared statements, server-side cursors, batches, LISTEN/NOTIFY.

Two backends:

* the relay (the default: pgtls in front of its managed PostgreSQL 18), every client, compared with the
  very same PostgreSQL 18 run directly: each client's report (values, errors, values sent back, checks)
  must be *identical* through pgtls and directly, and must match the expected texts of scenario.json.
  No xfail for pgtls here: only the bugs of a client itself, the same on any PostgreSQL.
* the embedded DuckDB backend, a smaller run (DUCKDB_CLIENTS) against the expected texts; where it still
  lacks something, that exact (client, item) is a strict xfail whose reason says what PostgreSQL gives and
  what pgtls gives.  tests/differential/test_client_values.py runs every client on it against PostgreSQL 15
  (with the same xfail tables, tests/clients/expectations.py).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import psycopg
import pytest

from tests.clients import pydrivers
from tests.clients.expectations import CHECK_XFAIL, CLIENT_BUGS, ROUNDTRIP_XFAIL, VALUE_XFAIL, xfail_marks
from tests.clients.harness import (
    PairedReports,
    Reports,
    client_missing,
    client_report,
    start_managed_pg,
    start_pgtls,
)
from tests.clients.scenario import BY_NAME, CHECK_NAMES, CHECKS_EXPECTED, TYPE_NAMES, compare_values
from tests.pgserver import RealPostgres
from tests.pgtlsserver import PgtlsServer

PY_PARAM_CLIENTS = ("psycopg-text", "psycopg-binary", "asyncpg")
DUCKDB_CLIENTS = ("psql", "psycopg-binary", "node-pg")
RELAY_POOL_SIZE = 20  # default_pool_size: upstream sessions per (role, database)

# (client, type name) that a client does not send back as parameters at all (tests/clients/pydrivers.py):
# left out of the roundtrip tests, which fail for any other type missing from a report's roundtrip.
NO_ROUNDTRIP = {
    (c, n) for c in ("psycopg-text", "psycopg-binary") for n in ("json_arr", "jsonb_arr")
}  # psycopg
# cannot dump a list of Json wrappers of lists (PostgreSQL refuses it too)


def _params(table: dict[tuple[str, str], str], clients: tuple[str, ...], names: list[str]) -> list[object]:
    return [pytest.param(c, n, id=f"{c}-{n}", marks=xfail_marks(table, c, n)) for c in clients for n in names]


def _ssl(certs):
    return pydrivers.Target(0, certs.path("root_ca.crt")).ssl_context()


# ---------------------------------------------------------------- servers


@dataclass
class Relay:
    server: PgtlsServer  # pgtls, relay backend, TLS and hostssl
    pg: RealPostgres  # the same PostgreSQL 18, run directly (no TLS: that build has no OpenSSL)
    reports: PairedReports


@dataclass
class Embedded:
    server: PgtlsServer  # pgtls, DuckDB backend, TLS and hostssl
    reports: Reports


@pytest.fixture(scope="module")
def relay(certs, client_home) -> Iterator[Relay]:
    pg = start_managed_pg()
    s: PgtlsServer | None = None
    try:
        s = start_pgtls(certs, backend="postgresql")
        ours = Reports(pydrivers.Target(s.port, certs.path("root_ca.crt"), client_home), "sc")
        theirs = Reports(pydrivers.Target(pg.port, None, client_home), "sc")
        yield Relay(s, pg, PairedReports(ours, theirs))
    finally:
        if s is not None:
            print(f"--- pgtls server log (relay) ---\n{s.full_log()[-4000:]}")
            s.cleanup()
        pg.cleanup()


@pytest.fixture(scope="module")
def embedded(certs, client_home) -> Iterator[Embedded]:
    s = start_pgtls(certs, backend="duckdb")
    try:
        yield Embedded(s, Reports(pydrivers.Target(s.port, certs.path("root_ca.crt"), client_home), "sc"))
    finally:
        print(f"--- pgtls server log (duckdb) ---\n{s.full_log()[-4000:]}")
        s.cleanup()


def _pair(relay: Relay, client: str) -> tuple[dict[str, Any], dict[str, Any]]:
    client_missing(client)
    return relay.reports.get(client)


# ---------------------------------------------------------------- the relay: exactly as PostgreSQL 18


@pytest.mark.parametrize("client,name", _params({}, pydrivers.CLIENTS, TYPE_NAMES))
def test_relay_same_values_as_postgres(relay, client, name):
    """Through pgtls and directly, the client reports exactly the same: values, errors, values sent back."""
    ours, theirs = _pair(relay, client)
    assert ours["errors"].get(name) == theirs["errors"].get(name)
    assert ours["values"].get(name) == theirs["values"].get(name)
    assert ours["roundtrip"].get(name) == theirs["roundtrip"].get(name), "values sent back as parameters"


@pytest.mark.parametrize("client,name", _params(CLIENT_BUGS, pydrivers.CLIENTS, TYPE_NAMES))
def test_relay_values(relay, client, name):
    rep, _ = _pair(relay, client)
    assert name not in rep["errors"], f"{client} {name}: {rep['errors'][name]}"
    problems = compare_values(BY_NAME[name], rep["values"].get(name), exact_json=client == "psql")
    assert not problems, f"{client} {name}: " + "; ".join(problems)


def _roundtrip_params(table: dict[tuple[str, str], str], clients: tuple[str, ...]) -> list[object]:
    return [pytest.param(c, n, id=f"{c}-{n}", marks=xfail_marks(table, c, n))
            for c in clients for n in TYPE_NAMES if (c, n) not in NO_ROUNDTRIP]  # fmt: skip


@pytest.mark.parametrize("client,name", _roundtrip_params({}, PY_PARAM_CLIENTS))
def test_relay_parameter_roundtrip(relay, client, name):
    rep, _ = _pair(relay, client)
    assert name in rep["roundtrip"], f"{client} did not send {name} back as a parameter"
    problems = compare_values(BY_NAME[name], rep["roundtrip"].get(name))
    assert not problems, f"{client} {name}: " + "; ".join(problems)


@pytest.mark.parametrize("client,name", _params({}, pydrivers.CLIENTS, CHECK_NAMES))
def test_relay_checks(relay, client, name):
    ours, theirs = _pair(relay, client)
    assert theirs["checks"].get(name) == CHECKS_EXPECTED[name], "PostgreSQL 18 itself"
    assert ours["checks"].get(name) == theirs["checks"][name]


# ---------------------------------------------------------------- the embedded DuckDB backend


@pytest.mark.parametrize("client,name", _params(VALUE_XFAIL, DUCKDB_CLIENTS, TYPE_NAMES))
def test_duckdb_values(embedded, client, name):
    rep = client_report(embedded.reports, client)
    assert name not in rep["errors"], f"{client} {name}: {rep['errors'][name]}"
    problems = compare_values(BY_NAME[name], rep["values"].get(name), exact_json=client == "psql")
    assert not problems, f"{client} {name}: " + "; ".join(problems)


@pytest.mark.parametrize(
    "client,name",
    _roundtrip_params(ROUNDTRIP_XFAIL, tuple(c for c in PY_PARAM_CLIENTS if c in DUCKDB_CLIENTS)),
)
def test_duckdb_parameter_roundtrip(embedded, client, name):
    rep = client_report(embedded.reports, client)
    assert name not in rep["errors"], f"no values to send back: {rep['errors'][name]}"
    assert name in rep["roundtrip"], f"{client} did not send {name} back as a parameter"
    problems = compare_values(BY_NAME[name], rep["roundtrip"].get(name))
    assert not problems, f"{client} {name}: " + "; ".join(problems)


@pytest.mark.parametrize("client,name", _params(CHECK_XFAIL, DUCKDB_CLIENTS, CHECK_NAMES))
def test_duckdb_checks(embedded, client, name):
    rep = client_report(embedded.reports, client)
    assert rep["checks"].get(name) == CHECKS_EXPECTED[name]


# ---------------------------------------------------------------- concurrency

BACKENDS = ("relay", "duckdb")


@pytest.fixture
def server(request, backend) -> PgtlsServer:
    return request.getfixturevalue("relay" if backend == "relay" else "embedded").server


@pytest.mark.parametrize("backend", BACKENDS)
def test_refuses_plain_tcp(server, backend):
    """TLS is the server's rule (hostssl), not only the client's sslmode: with either backend."""
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        psycopg.connect(server.dsn(sslmode="disable", connect_timeout=10))


@pytest.mark.parametrize("backend", BACKENDS)
def test_100_concurrent_sessions(server, backend, certs):
    ctx = _ssl(certs)

    async def session(i: int) -> tuple[int, int, int]:
        con = await asyncpg.connect(host="localhost", port=server.port, user="postgres", database="postgres",
                                    ssl=ctx, timeout=60)  # fmt: skip
        try:
            await con.execute(f"INSERT INTO hits VALUES ({i}, $1)", f"s{i}")
            n = await con.fetchval("SELECT count(*) FROM hits WHERE a <= $1", i)
            pid = await con.fetchval("SELECT pg_backend_pid()")
            return i, await con.fetchval("SELECT $1::int * 2", i), pid if n >= 1 else -1
        finally:
            await con.close()

    async def go() -> list[tuple[int, int, int]]:
        con = await asyncpg.connect(
            host="localhost", port=server.port, user="postgres", database="postgres", ssl=ctx
        )
        await con.execute("CREATE TABLE hits (a int PRIMARY KEY, b text)")
        await con.close()
        return await asyncio.gather(*(session(i) for i in range(100)))

    started = time.monotonic()
    results = asyncio.run(go())
    elapsed = time.monotonic() - started
    assert sorted(r[:2] for r in results) == [(i, 2 * i) for i in range(100)]
    pids = {r[2] for r in results}
    assert -1 not in pids
    if backend == "relay":  # session pooling: 100 clients share at most default_pool_size PostgreSQL sessions
        assert 1 <= len(pids) <= RELAY_POOL_SIZE, pids
    else:
        assert len(pids) == 100, "every session has its own backend pid"
    with psycopg.connect(server.dsn(sslmode="require")) as c:
        assert c.execute("SELECT count(*), sum(a) FROM hits").fetchone() == (100, sum(range(100)))
        c.execute("DROP TABLE hits")
    assert elapsed < 60


@pytest.mark.parametrize("backend", BACKENDS)
def test_slow_query_does_not_delay_tls_handshake(server, backend, certs):
    tg = pydrivers.Target(server.port, certs.path("root_ca.crt"))
    slow_done = threading.Event()
    slow: dict[str, float] = {}

    def run_slow() -> None:
        with psycopg.connect(tg.libpq(), autocommit=True) as c:
            c.execute("SET statement_timeout = '3s'")  # a query that would run for minutes, stopped after 3 s
            t0 = time.monotonic()
            with pytest.raises(psycopg.errors.QueryCanceled):
                c.execute(pydrivers.LONG_SQL)
            slow["secs"] = time.monotonic() - t0
        slow_done.set()

    th = threading.Thread(target=run_slow)
    th.start()
    time.sleep(1.0)  # the slow query is running on the server now
    times = []
    for _ in range(3):
        t0 = time.monotonic()
        with psycopg.connect(tg.libpq(connect_timeout=10)) as c:
            handshake = time.monotonic() - t0
            assert c.pgconn.ssl_in_use
            assert c.execute("SELECT 1").fetchone() == (1,)
        times.append(handshake)
    still_running = not slow_done.is_set()
    th.join(60)
    assert still_running, f"the slow query finished too soon to tell ({slow})"
    assert slow["secs"] > 2.0, slow
    assert max(times) < 1.0, f"TLS connects took {times} while a {slow['secs']:.1f}s query ran"


async def _write_conflict(kw: dict[str, Any], table: str, isolation: str | None) -> tuple[str, int]:
    """Two transactions update the same row; b's snapshot predates a's committed update."""
    a, b = await asyncpg.connect(**kw), await asyncpg.connect(**kw)
    try:
        await a.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, bal int)")
        await a.execute(f"INSERT INTO {table} VALUES (1, 100)")
        opts = {"isolation": isolation} if isolation else {}
        ta, tb = a.transaction(**opts), b.transaction(**opts)
        await ta.start()
        await tb.start()
        assert await b.fetchval(f"SELECT bal FROM {table} WHERE id = 1") == 100
        await a.execute(f"UPDATE {table} SET bal = bal + 10 WHERE id = 1")
        await ta.commit()
        try:
            await b.execute(f"UPDATE {table} SET bal = bal + 20 WHERE id = 1")
            await tb.commit()
            state = "committed"
        except asyncpg.PostgresError as e:
            state = e.sqlstate
            await tb.rollback()
        return state, await a.fetchval(f"SELECT bal FROM {table} WHERE id = 1")
    finally:
        await a.close()
        await b.close()


@pytest.mark.parametrize("isolation,expected", [("repeatable_read", ("40001", 110)),
                                                ("read_committed", ("committed", 130))])  # fmt: skip
def test_concurrent_update_same_row_relay_as_postgres(relay, certs, isolation, expected):
    """PostgreSQL's rules through the relay: 40001 under REPEATABLE READ; READ COMMITTED re-reads the row."""
    common = {"host": "localhost", "user": "postgres", "database": "postgres"}
    table = f"acct_{isolation}"
    ours = asyncio.run(
        _write_conflict({**common, "port": relay.server.port, "ssl": _ssl(certs)}, table, isolation)
    )
    theirs = asyncio.run(_write_conflict({**common, "port": relay.pg.port, "ssl": False}, table, isolation))
    assert theirs == expected, "PostgreSQL 18 itself"
    assert ours == theirs


def test_concurrent_update_same_row_gets_40001_duckdb(embedded, certs):
    kw = {"host": "localhost", "port": embedded.server.port, "user": "postgres", "database": "postgres",
          "ssl": _ssl(certs)}  # fmt: skip
    state, bal = asyncio.run(_write_conflict(kw, "acct", None))
    assert state == "40001"
    assert bal == 110, "a's update survives and b's is not applied on top of a stale read"
