"""Advisory locks (pg_advisory_lock and its family) on the embedded backend against PostgreSQL 15: the same
two-session scripts step by step, waits that end by unlock, cancel, statement_timeout and deadlock, and
asyncpg's pool, whose connection reset calls pg_advisory_unlock_all()."""

from __future__ import annotations

import asyncio
import threading
import time

import asyncpg
import psycopg
import pytest

from tests.pgserver import RealPostgres
from tests.pgtlsserver import PgtlsServer
from tests.pgwire_util import assert_same_outcome, check_message_differences, error_outcome

pytestmark = pytest.mark.pg

SCRIPTS: dict[str, list[tuple[str, str]]] = {
    "exclusive_and_try": [
        ("A", "SELECT pg_advisory_lock(1)"),
        ("B", "SELECT pg_try_advisory_lock(1)"),
        ("A", "SELECT pg_advisory_unlock(1)"),
        ("B", "SELECT pg_try_advisory_lock(1)"),
        ("B", "SELECT pg_advisory_unlock(1)"),
        ("B", "SELECT pg_advisory_unlock(1)"),  # not held: WARNING and false
        ("B", "SELECT pg_advisory_unlock_shared(1)"),
    ],
    "shared_and_key_spaces": [
        ("A", "SELECT pg_advisory_lock_shared(2)"),
        ("B", "SELECT pg_try_advisory_lock_shared(2)"),
        ("B", "SELECT pg_try_advisory_lock(2)"),
        ("A", "SELECT pg_advisory_lock(0, 5)"),
        ("B", "SELECT pg_try_advisory_lock(5)"),  # one bigint and two ints are separate key spaces
        ("B", "SELECT pg_try_advisory_lock(0, 5)"),
        ("A", "SELECT pg_advisory_unlock_all()"),
        ("B", "SELECT pg_try_advisory_lock(0, 5), pg_try_advisory_lock(2)"),  # not a plain call: refused
        ("B", "SELECT pg_try_advisory_lock(2)"),
    ],
    "reentrant": [
        ("A", "SELECT pg_advisory_lock(3)"),
        ("A", "SELECT pg_advisory_lock(3)"),
        ("A", "SELECT pg_advisory_unlock(3)"),
        ("B", "SELECT pg_try_advisory_lock(3)"),
        ("A", "SELECT pg_advisory_unlock(3)"),
        ("B", "SELECT pg_try_advisory_lock(3) AS got"),
    ],
    "transaction_level": [
        ("A", "BEGIN"),
        ("A", "SELECT pg_advisory_xact_lock(4)"),
        ("A", "SELECT pg_try_advisory_xact_lock_shared(40)"),
        ("B", "SELECT pg_try_advisory_lock(4)"),
        ("A", "SELECT pg_advisory_unlock(4)"),  # xact locks cannot be unlocked: WARNING, false
        ("A", "COMMIT"),
        ("B", "SELECT pg_try_advisory_lock(4)"),
        ("A", "SELECT pg_try_advisory_xact_lock(4)"),
        ("A", "SELECT pg_try_advisory_xact_lock(41)"),  # outside a block: released at once
        ("B", "SELECT pg_try_advisory_lock(41)"),
    ],
    "arguments": [
        ("A", "SELECT pg_advisory_lock(NULL)"),
        ("A", "SELECT pg_try_advisory_lock(-9223372036854775808)"),
        ("A", "SELECT pg_try_advisory_lock(10 * 10 + 1)"),
        ("B", "SELECT pg_try_advisory_lock(101)"),
        ("A", "SELECT pg_try_advisory_lock(CAST('7' AS bigint))"),
        ("A", "SELECT pg_advisory_lock(1, 2, 3)"),
        ("A", "SELECT pg_catalog.pg_advisory_unlock_all()"),
    ],
}


def outcome(conn: psycopg.Connection, sql: str) -> tuple[object, ...]:
    res = conn.pgconn.exec_(sql.encode())
    notices = [n for n in getattr(conn, "_test_notices", [])]
    conn._test_notices = []  # type: ignore[attr-defined]
    state = res.error_field(psycopg.pq.DiagnosticField.SQLSTATE)
    if state:
        message = (res.error_field(psycopg.pq.DiagnosticField.MESSAGE_PRIMARY) or b"").decode()
        return (*error_outcome(state.decode(), message), notices)
    values = [[None if res.get_value(r, c) is None else res.get_value(r, c).decode() for c in range(res.nfields)]
              for r in range(res.ntuples)]  # fmt: skip
    cols = [(res.fname(c).decode(), res.ftype(c)) for c in range(res.nfields)]
    return ("ok", (res.command_status or b"").decode(), cols, values, notices)


def _connect(port: int) -> psycopg.Connection:
    conn = psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres", autocommit=True)
    conn._test_notices = []  # type: ignore[attr-defined]
    conn.add_notice_handler(lambda d: conn._test_notices.append((d.severity, d.message_primary)))  # type: ignore
    return conn


@pytest.fixture(scope="module")
def servers(pg_and_pgtls: tuple[RealPostgres, PgtlsServer]) -> tuple[RealPostgres, PgtlsServer]:
    return pg_and_pgtls


def _run(port: int, script: list[tuple[str, str]]) -> list[tuple[object, ...]]:
    conns = {"A": _connect(port), "B": _connect(port)}
    try:
        return [outcome(conns[who], sql) for who, sql in script]
    finally:
        for c in conns.values():
            c.close()


# Errors with PostgreSQL's SQLSTATE and notices but another message: statement -> why.
MESSAGE_DIFFERENCES = {
    "SELECT pg_advisory_lock(1, 2, 3)": "42883 names the argument types as pgtls types the literals: "
    "'function pg_advisory_lock(bigint, bigint, bigint) does not exist'; "
    "PostgreSQL: '(integer, integer, integer)'",
}


def test_message_differences_are_run() -> None:
    check_message_differences(MESSAGE_DIFFERENCES, [sql for script in SCRIPTS.values() for _, sql in script])


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_script_matches_postgres(servers, name):
    """Step by step: the same rows, notices, or error (SQLSTATE and message)."""
    pg, ours = servers
    script = SCRIPTS[name]
    want = _run(pg.port, script)
    got = _run(ours.port, script)
    for (_who, sql), w, g in zip(script, want, got, strict=True):
        if sql.startswith("SELECT pg_try_advisory_lock(0, 5), "):
            assert w[0] == "ok" and g[0] == "error", "pgtls refuses two advisory calls in one SELECT"
            continue
        assert_same_outcome(g, w, sql, MESSAGE_DIFFERENCES)


def _blocked_lock(port: int, sql: str, setup: str = "") -> tuple[threading.Thread, dict[str, object]]:
    result: dict[str, object] = {}

    def run() -> None:
        with _connect(port) as c:
            if setup:
                c.execute(setup)
            started = time.monotonic()
            result["outcome"] = outcome(c, sql)
            result["seconds"] = time.monotonic() - started

    t = threading.Thread(target=run)
    t.start()
    return t, result


@pytest.mark.parametrize("server", ["postgres", "pgtls"])
def test_waiter_gets_the_lock_when_it_is_released(servers, server):
    port = servers[0 if server == "postgres" else 1].port
    with _connect(port) as a:
        a.execute("SELECT pg_advisory_lock(8)")
        t, result = _blocked_lock(port, "SELECT pg_advisory_lock(8)")
        time.sleep(0.5)
        assert "outcome" not in result  # still waiting
        a.execute("SELECT pg_advisory_unlock(8)")
        t.join(5)
        assert not t.is_alive()
        assert result["outcome"][:2] == ("ok", "SELECT 1")


@pytest.mark.parametrize("server", ["postgres", "pgtls"])
def test_wait_ends_with_statement_timeout_and_with_cancel(servers, server):
    port = servers[0 if server == "postgres" else 1].port
    with _connect(port) as a:
        a.execute("SELECT pg_advisory_lock(9)")
        t, result = _blocked_lock(port, "SELECT pg_advisory_lock(9)", setup="SET statement_timeout = '300ms'")
        t.join(5)
        assert result["outcome"][:2] == ("error", "57014")
        with _connect(port) as b:
            holder: dict[str, object] = {}

            def wait() -> None:
                holder["outcome"] = outcome(b, "SELECT pg_advisory_lock(9)")

            w = threading.Thread(target=wait)
            w.start()
            time.sleep(0.5)
            b.cancel()
            w.join(5)
            assert holder["outcome"][:2] == ("error", "57014")
            assert outcome(b, "SELECT pg_try_advisory_lock(9)")[3] == [["f"]]  # the session goes on


@pytest.mark.parametrize("server", ["postgres", "pgtls"])
def test_deadlock_is_detected(servers, server):
    port = servers[0 if server == "postgres" else 1].port
    with _connect(port) as a, _connect(port) as b:
        a.execute("SELECT pg_advisory_lock(10)")
        b.execute("SELECT pg_advisory_lock(11)")
        done: dict[str, tuple[object, ...]] = {}

        def wait(name: str, conn: psycopg.Connection, key: int) -> None:
            done[name] = outcome(conn, f"SELECT pg_advisory_lock({key})")
            if done[name][0] == "error":  # the victim gives up its locks, so the other one gets through
                conn.execute("SELECT pg_advisory_unlock_all()")

        threads = [threading.Thread(target=wait, args=("a", a, 11))]
        threads[0].start()
        time.sleep(0.3)
        threads.append(threading.Thread(target=wait, args=("b", b, 10)))
        threads[1].start()
        for t in threads:
            t.join(10)
        assert sorted(str(o[1]) for o in done.values()) == ["40P01", "SELECT 1"]


@pytest.mark.parametrize("server", ["postgres", "pgtls"])
def test_locks_go_with_the_session(servers, server):
    port = servers[0 if server == "postgres" else 1].port
    with _connect(port) as a:
        a.execute("SELECT pg_advisory_lock(12)")
    deadline = time.monotonic() + 5
    with _connect(port) as b:
        while outcome(b, "SELECT pg_try_advisory_lock(12)")[3] != [["t"]]:
            assert time.monotonic() < deadline
            time.sleep(0.05)


@pytest.mark.parametrize("server", ["postgres", "pgtls"])
def test_asyncpg_pool_reset_and_listeners(servers, server):
    port = servers[0 if server == "postgres" else 1].port

    async def run() -> list[object]:
        pool = await asyncpg.create_pool(host="127.0.0.1", port=port, user="postgres", database="postgres",
                                         ssl=False, min_size=1, max_size=1)  # fmt: skip
        try:
            async with pool.acquire() as con:
                await con.execute("SELECT pg_advisory_lock(13)")
                await con.execute("SET application_name = 'dirty'")
            async with pool.acquire() as con:  # the same connection, after Connection.reset()
                app = await con.fetchval("SHOW application_name")
                other = await asyncpg.connect(host="127.0.0.1", port=port, user="postgres", database="postgres",
                                              ssl=False)  # fmt: skip
                try:
                    free = await other.fetchval("SELECT pg_try_advisory_lock(13)")
                finally:
                    await other.close()
            return [app, free]
        finally:
            await pool.close()

    assert asyncio.run(run()) == ["", True]
