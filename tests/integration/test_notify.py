"""LISTEN / NOTIFY / pg_notify() on the embedded backend, with real clients on a real pgtls server, and the
visible parts (psql's output, errors) compared with PostgreSQL 15."""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections.abc import Iterator

import asyncpg
import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pgtls.backends.embedded.features import notify
from pgtls.backends.embedded.sql.lexer import words
from pgtls.errors import PgError
from tests.pgserver import PG_BIN
from tests.pgtlsserver import PgtlsServer


@pytest.fixture(scope="module")
def server() -> Iterator[PgtlsServer]:
    s = PgtlsServer().init(backend="duckdb")
    try:
        s.start()
        with psycopg.connect(s.dsn(), autocommit=True) as c:
            c.execute("CREATE DATABASE other")
        yield s
    finally:
        print(f"--- pgtls server log ---\n{s.full_log()[-4000:]}")
        s.cleanup()


def _connect(s: PgtlsServer, **kw: object) -> psycopg.Connection:
    return psycopg.connect(s.dsn(**kw), autocommit=True)


def _received(conn: psycopg.Connection, timeout: float = 0.5) -> list[tuple[str, str, int]]:
    """Notifications that arrive within ``timeout`` seconds while ``conn`` is idle."""
    return [(n.channel, n.payload, n.pid) for n in conn.notifies(timeout=timeout)]


def test_notify_reaches_listeners_of_the_same_database_only(server):
    with _connect(server) as a, _connect(server) as b, _connect(server, dbname="other") as c:
        a.execute("LISTEN jobs")
        c.execute("LISTEN jobs")
        b.execute("NOTIFY jobs, 'hello'")
        got = _received(a, 2.0)
        assert got[:1] == [("jobs", "hello", b.info.backend_pid)]
        assert _received(c) == []
        b.execute("SELECT pg_notify('jobs', 'two')")
        b.execute("NOTIFY other_channel, 'x'")
        assert _received(a, 2.0)[:1] == [("jobs", "two", b.info.backend_pid)]
        a.execute("UNLISTEN *")
        b.execute("NOTIFY jobs, 'after unlisten'")
        assert _received(a) == []


def test_notify_is_sent_at_commit_once_per_payload(server):
    with _connect(server) as a, _connect(server) as b:
        a.execute("LISTEN q")
        b.execute("BEGIN")
        b.execute("NOTIFY q, 'x'")
        b.execute("NOTIFY q, 'x'")
        b.execute("NOTIFY q, 'y'")
        assert _received(a) == []  # nothing before COMMIT
        b.execute("COMMIT")
        assert [p for _, p, _ in _received(a, 1.0)] == ["x", "y"]
        b.execute("BEGIN")
        b.execute("NOTIFY q, 'rolled back'")
        b.execute("ROLLBACK")
        assert _received(a) == []


def test_listener_in_a_transaction_block_gets_it_after_its_commit(server):
    with _connect(server) as a, _connect(server) as b:
        a.execute("LISTEN later")
        a.execute("BEGIN")
        b.execute("NOTIFY later, 'held'")
        a.execute("SELECT 1")
        assert [n.payload for n in a.notifies(timeout=0.3)] == []
        a.execute("COMMIT")  # delivered before this COMMIT's ReadyForQuery
        assert [n.payload for n in a.notifies(timeout=1.0)] == ["held"]


def test_listen_in_a_rolled_back_block_never_happened(server):
    with _connect(server) as a, _connect(server) as b:
        a.execute("BEGIN")
        a.execute("LISTEN ghost")
        a.execute("ROLLBACK")
        b.execute("NOTIFY ghost")
        assert _received(a) == []


def test_rollback_to_savepoint_takes_back_later_notifies(server):
    with _connect(server) as a, _connect(server) as b:
        a.execute("LISTEN sp")
        b.execute("BEGIN")
        b.execute("NOTIFY sp, 'kept'")
        b.execute("SAVEPOINT s")
        b.execute("NOTIFY sp, 'taken back'")
        b.execute("ROLLBACK TO SAVEPOINT s")
        b.execute("COMMIT")
        assert [p for _, p, _ in _received(a, 1.0)] == ["kept"]


def test_a_session_hears_its_own_notify(server):
    with _connect(server) as a:
        a.execute("LISTEN self")
        a.execute("NOTIFY self, 'me'")
        assert _received(a, 1.0) == [("self", "me", a.info.backend_pid)]


def test_asyncpg_listener_and_pg_notify_with_parameters(server):
    async def run() -> list[tuple[str, str]]:
        got: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        a = await asyncpg.connect(
            host="127.0.0.1", port=server.port, user="postgres", database="postgres", ssl=False
        )
        b = await asyncpg.connect(
            host="127.0.0.1", port=server.port, user="postgres", database="postgres", ssl=False
        )
        try:
            await a.add_listener("events", lambda _c, _pid, ch, payload: got.put_nowait((ch, payload)))
            await b.execute("SELECT pg_notify($1, $2)", "events", "from asyncpg")
            assert await b.fetchval("SELECT pg_notify($1, $2)", "events", "second") is None  # void
            return [await asyncio.wait_for(got.get(), 5), await asyncio.wait_for(got.get(), 5)]
        finally:
            await a.close()
            await b.close()

    assert asyncio.run(run()) == [("events", "from asyncpg"), ("events", "second")]


# --- compared with PostgreSQL 15 ----------------------------------------------------------------

PSQL_SCRIPT = """\
LISTEN chan;
NOTIFY chan, 'hi there';
SELECT pg_notify('chan', 'via function');
NOTIFY "Chan";
LISTEN "Chan";
NOTIFY "Chan", 'quoted';
UNLISTEN chan;
NOTIFY chan, 'not heard';
SELECT pg_notify('', 'x');
NOTIFY chan, 123;
BEGIN;
NOTIFY "Chan", 'in block';
SELECT 1;
COMMIT;
"""


def _psql(port: int, script: str) -> str:
    p = subprocess.run([str(PG_BIN / "psql"), "-X", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                        "-d", "postgres"], input=script, capture_output=True, text=True, timeout=60)  # fmt: skip
    return re.sub(r"PID \d+", "PID n", p.stdout + p.stderr)


def test_psql_shows_the_same_as_postgres(server, realpg):
    want = _psql(realpg.port, PSQL_SCRIPT)
    assert 'Asynchronous notification "chan" with payload "hi there" received' in want
    assert _psql(server.port, PSQL_SCRIPT) == want


def test_errors_match_postgres(server, realpg):
    statements = [
        "NOTIFY",
        "LISTEN",
        "NOTIFY c, 'x' extra",
        "SELECT pg_notify('', 'x')",
        "SELECT pg_notify('" + "c" * 64 + "', 'x')",
        "NOTIFY c, '" + "x" * 8000 + "'",
        "NOTIFY c, '" + "x" * 7999 + "'",
    ]

    def outcomes(port: int) -> list[tuple[str, str]]:
        out = []
        with psycopg.connect(
            f"host=127.0.0.1 port={port} user=postgres dbname=postgres", autocommit=True
        ) as c:
            for sql in statements:
                res = c.pgconn.exec_(sql.encode())
                state = res.error_field(psycopg.pq.DiagnosticField.SQLSTATE) or b""
                msg = res.error_field(psycopg.pq.DiagnosticField.MESSAGE_PRIMARY) or res.command_status or b""
                out.append((state.decode(), msg.decode()))
        return out

    want = outcomes(realpg.port)
    assert [s for s, _ in want] == ["42601", "42601", "42601", "22023", "22023", "22023", ""]
    assert outcomes(server.port) == want


# --- the statement parsers, with malformed input ------------------------------------------------


_PIECES = st.sampled_from(["LISTEN", "UNLISTEN", "NOTIFY", "SELECT pg_notify(", " ", ",", "'", "''", '"', "*", ";",
                           "x", "Chan", "NULL", "::text", ")", "CAST(", " AS ", "$1", "--", "é", "\\"])  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, min_size=1, max_size=12).map("".join))
def test_parsers_take_any_text(sql):
    if (words(sql, 1) or [""])[0] in ("LISTEN", "UNLISTEN", "NOTIFY"):  # what the session sends here
        try:
            command, channel, payload = notify.parse_listen(sql)
        except PgError as e:
            assert e.sqlstate == "42601" and e.position is not None
        else:
            assert command in ("LISTEN", "UNLISTEN", "NOTIFY") and isinstance(payload, str)
            assert channel is not None or command == "UNLISTEN"
    call = notify.match_pg_notify(sql)
    assert call is None or all(isinstance(x, str) for x in call)
