"""Transaction pooling (pool_mode = transaction): a server connection per transaction, not per client.

Real clients over TLS (verify-full) through pgtls with a pool far smaller than the number of clients;
the scenario of every client compared with the same PostgreSQL 18 run directly; pgbench's acceptance
runs; one test per row of the session-state table (docs/relay.md, "Transaction pooling").
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import re
import resource
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests import scaleclient
from tests.clients import pydrivers
from tests.clients.harness import (
    HBA,
    PG_SETTINGS,
    PairedReports,
    Reports,
    client_missing,
    start_managed_pg,
)
from tests.clients.scenario import CHECKS_EXPECTED
from tests.pgtlsserver import PgtlsServer
from tests.pgwire_util import decode, rows
from tests.relay.util import wait_for

POOL = 3  # server connections per (role, database): far fewer than the clients below
PGBENCH_CLIENTS = 1000
PGBENCH_POOL = 20
PREPARED_AGAIN = "prepared its statements on them "  # pgtls's debug line when a client leaves


def txn_server(certs: Any, **conf: str) -> PgtlsServer:
    s = PgtlsServer().init()
    s.copy_in(certs.path("server-chain.crt"), "server.crt", 0o644)
    s.copy_in(certs.path("server.key"), "server.key", 0o600)
    s.copy_in(certs.path("root+client_ca.crt"), "root+client_ca.crt", 0o644)
    s.write("pg_hba.conf", HBA)
    settings = {
        "ssl": "on",
        "ssl_ca_file": "root+client_ca.crt",
        "pool_mode": "transaction",
        "default_pool_size": str(POOL),
        "query_wait_timeout": "2",
        **conf,
    }
    s.conf(**settings)
    with open(s.datadir / "cluster" / "postgresql.conf", "a") as f:
        f.write(PG_SETTINGS)
    s.create_role("alice")
    s.create_role("ssltestuser")
    s.sql("CREATE TABLE t (a int); GRANT ALL ON t TO alice, ssltestuser")
    s.start()
    return s


@pytest.fixture(scope="module")
def server(certs) -> Iterator[PgtlsServer]:
    s = txn_server(certs)
    yield s
    print(s.full_log()[-4000:])
    s.cleanup()


def conn(
    s: PgtlsServer, keys: Path, user: str = "alice", cert: bool = False, **kw: Any
) -> psycopg.Connection:
    extra: dict[str, Any] = (
        {"sslcert": str(keys / "client.crt"), "sslkey": str(keys / "client.key")} if cert else {}
    )
    return psycopg.connect(
        host="localhost",
        port=s.port,
        user=user,
        dbname="postgres",
        autocommit=True,
        sslmode="verify-full",
        sslrootcert=str(keys / "root_ca.crt"),
        connect_timeout=10,
        **extra,
        **kw,
    )


def backends(s: PgtlsServer, user: str = "alice", application: str | None = None) -> int:
    """The cluster's backends for ``user`` (and ``application_name``), seen directly."""
    app = f" AND application_name = '{application}'" if application else ""
    return int(s.sql(f"SELECT count(*) FROM pg_stat_activity WHERE usename = '{user}'{app}")[0][0])


def pid(c: psycopg.Connection) -> int:
    return int(c.execute("SELECT pg_backend_pid()").fetchone()[0])


# ---------------------------------------------------------------- the basic contract


def test_many_clients_few_servers(server, keys):
    clients = [conn(server, keys) for _ in range(4 * POOL)]
    try:
        pids = {pid(c) for c in clients for _ in range(2)}
        assert len(pids) <= POOL
        assert backends(server) <= POOL
    finally:
        for c in clients:
            c.close()


def test_a_transaction_keeps_its_server(server, keys):
    a, others = conn(server, keys), [conn(server, keys) for _ in range(POOL)]
    try:
        with a.transaction():
            first = pid(a)
            a.execute("INSERT INTO t VALUES (1)")
            done: list[int] = []
            # the others run while a's transaction is open: at most POOL - 1 servers are left for them
            th = threading.Thread(target=lambda: done.extend(pid(o) for o in others))
            th.start()
            th.join(10)
            assert not th.is_alive()
            assert first not in done
            assert pid(a) == first
            assert a.execute("SELECT count(*) FROM t WHERE a = 1").fetchone() == (1,)
        # a failed transaction keeps its server until ROLLBACK
        a.execute("BEGIN")
        failed_on = pid(a)
        with pytest.raises(psycopg.errors.DivisionByZero):
            a.execute("SELECT 1/0")
        for o in others:
            assert pid(o) != failed_on
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            a.execute("SELECT 1")
        a.execute("ROLLBACK")
    finally:
        for c in [a, *others]:
            c.close()


def test_client_leaving_inside_a_transaction_rolls_back(server, keys):
    a = conn(server, keys)
    a.execute("BEGIN")
    held = pid(a)
    a.execute("INSERT INTO t VALUES (99)")
    a.close()
    assert wait_for(lambda: not server.sql(f"SELECT 1 FROM pg_stat_activity WHERE pid = {held}"))
    with conn(server, keys) as b:
        assert b.execute("SELECT count(*) FROM t WHERE a = 99").fetchone() == (0,)


def test_cancel_reaches_the_server_of_the_running_query(server, keys):
    with conn(server, keys) as a:
        threading.Timer(0.5, a.cancel).start()
        with pytest.raises(psycopg.errors.QueryCanceled):
            a.execute("SELECT pg_sleep(10)")
        assert a.execute("SELECT 1").fetchone() == (1,)


def test_pool_full_waits_then_53300(server, keys):
    holders = [conn(server, keys) for _ in range(POOL)]
    for h in holders:
        h.execute("BEGIN")
        h.execute("SELECT 1")
    try:
        with conn(server, keys) as late:
            t0 = time.monotonic()
            with pytest.raises(psycopg.OperationalError, match="sorry, too many clients already"):
                late.execute("SELECT 1")
            assert 1.5 < time.monotonic() - t0 < 10
    finally:
        for h in holders:
            h.close()


# ---------------------------------------------------------------- named prepared statements


FOLLOW_ROUNDS = 30


def test_prepared_statements_follow_the_client(server, keys):
    """psycopg with prepare_threshold=0 names every statement; other clients' open transactions hold the
    server a client used last, so its next statements run on another one."""
    clients = [conn(server, keys, prepare_threshold=0) for _ in range(2)]
    blockers = [conn(server, keys) for _ in range(POOL - 1)]
    try:
        seen: set[int] = set()
        for r in range(FOLLOW_ROUNDS):
            for i, c in enumerate(clients):
                row = c.execute("SELECT %s::int * 2, pg_backend_pid()", [r * 10 + i]).fetchone()
                assert row[0] == 2 * (r * 10 + i)
                seen.add(row[1])
            if len(seen) == POOL:
                break
            # A blocker's open transaction holds a server (usually the warmest idle one, the last one used,
            # though not always when a release and the blocker's BEGIN cross); taking turns until the clients
            # have run on every server.
            b = blockers[r % len(blockers)]
            if b.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS:
                b.execute("COMMIT")
            else:
                b.execute("BEGIN")
                b.execute("SELECT 1")
        assert len(seen) == POOL, seen
        with clients[0].transaction():
            got = clients[0].execute("SELECT name FROM pg_prepared_statements").fetchall()
        # the server-side names are pgtls's, one per statement text
        assert got and all(re.fullmatch(r"pgtls_[0-9a-f]{20}", n) for (n,) in got), got
    finally:
        for c in [*clients, *blockers]:
            c.close()


def test_prepared_statement_errors_as_in_postgresql(server, keys):
    with conn(server, keys, prepare_threshold=0) as c:
        with pytest.raises(psycopg.errors.UndefinedTable):
            c.execute("SELECT * FROM no_such_table")
        with pytest.raises(psycopg.errors.SyntaxError):
            c.execute("SELEC 1")
        assert c.execute("SELECT %s::text", ["ok"]).fetchone() == ("ok",)


def test_max_prepared_statements_bounds_each_server(certs, keys):
    s = txn_server(certs, max_prepared_statements="3", default_pool_size="1")
    try:
        with conn(s, keys, prepare_threshold=0) as c:
            for i in range(10):
                assert c.execute(f"SELECT %s::int + {i}", [1]).fetchone() == (1 + i,)
            with c.transaction():
                assert c.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0] <= 3
            for i in range(10):  # evicted ones are prepared again on use
                assert c.execute(f"SELECT %s::int + {i}", [2]).fetchone() == (2 + i,)
    finally:
        s.cleanup()


# ---------------------------------------------------------------- the session-state table

STATE = [
    ("set", "SET work_mem = '1234kB'", "SHOW work_mem", "1234kB", "4MB"),
    ("set_config", "SELECT set_config('work_mem', '2345kB', false)", "SHOW work_mem", "2345kB", "4MB"),
    ("listen", "LISTEN chan", "SELECT count(*)::text FROM pg_listening_channels()", "1", "0"),
    (
        "advisory_lock",
        "SELECT pg_advisory_lock(42)",
        "SELECT count(*)::text FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
        "1",
        "0",
    ),
    (
        "hold_cursor",
        "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
        "SELECT count(*)::text FROM pg_cursors WHERE name = 'c'",
        "1",
        "0",
    ),
    (
        "temp_table",
        "CREATE TEMP TABLE scratch (x int)",
        "SELECT coalesce(to_regclass('scratch')::text, '-')",
        "scratch",
        "-",
    ),
    (
        "prepare",
        "PREPARE p AS SELECT 1",
        "SELECT count(*)::text FROM pg_prepared_statements WHERE name = 'p'",
        "1",
        "0",
    ),
]


@pytest.fixture(scope="module")
def single(certs) -> Iterator[PgtlsServer]:
    """One server connection per (role, database): a pinned client holds it."""
    s = txn_server(certs, default_pool_size="1", query_wait_timeout="1")
    yield s
    print(s.full_log()[-3000:])
    s.cleanup()


@pytest.mark.parametrize("name,statement,probe,kept,fresh", STATE, ids=[x[0] for x in STATE])
def test_session_state_pins_the_client(single, keys, name, statement, probe, kept, fresh):
    """The state survives the client's later transactions (its server is its own until it leaves), another
    client waits for that server meanwhile, and the next client finds the state reset."""
    a = conn(single, keys)
    try:
        a.execute(statement)
        assert a.execute(probe).fetchone()[0] == kept
        with conn(single, keys) as b, pytest.raises(psycopg.OperationalError, match="too many clients"):
            b.execute("SELECT 1")
        assert a.execute(probe).fetchone()[0] == kept
    finally:
        a.close()
    with conn(single, keys) as c:
        assert wait_for(lambda: c.execute(probe).fetchone()[0] == fresh, timeout=5)


RELEASES = [
    ("set", "SET work_mem = '1234kB'", "RESET ALL"),
    ("set_config", "SELECT set_config('work_mem', '2345kB', false)", "RESET ALL"),
    ("listen", "LISTEN chan", "UNLISTEN *"),
    ("advisory_lock", "SELECT pg_advisory_lock(42)", "SELECT pg_advisory_unlock_all()"),
    ("hold_cursor", "DECLARE c CURSOR WITH HOLD FOR SELECT 1", "CLOSE ALL"),
    ("temp_table", "CREATE TEMP TABLE scratch (x int)", "DISCARD TEMP"),
    ("prepare", "PREPARE p AS SELECT 1", "DEALLOCATE ALL"),
    ("discard_all", "LISTEN chan; SET work_mem = '1234kB'; CREATE TEMP TABLE scratch (x int)", "DISCARD ALL"),
    (
        "asyncpg_reset",
        "LISTEN chan; SELECT pg_advisory_lock(1); SET work_mem = '1234kB'",
        "SELECT pg_advisory_unlock_all();\nCLOSE ALL;\nUNLISTEN *;\nRESET ALL;",
    ),
]


@pytest.mark.parametrize("name,statement,release", RELEASES, ids=[x[0] for x in RELEASES])
def test_releasing_the_state_unpins(single, keys, name, statement, release):
    """Once the client ends the state that pinned it (outside a transaction block, without an error), its
    server connection goes back to the pool between transactions again."""
    with conn(single, keys) as a, conn(single, keys) as b:
        a.execute(statement)
        a.execute(release)
        assert b.execute("SELECT 1").fetchone() == (1,)


def test_a_release_that_may_be_rolled_back_keeps_the_pin(single, keys):
    with conn(single, keys) as a:
        a.execute("LISTEN chan")
        a.execute("BEGIN")
        a.execute("UNLISTEN *")
        a.execute("ROLLBACK")  # PostgreSQL: still listening
        assert a.execute("SELECT count(*) FROM pg_listening_channels()").fetchone() == (1,)
        with pytest.raises(psycopg.errors.DivisionByZero):
            a.execute("UNLISTEN *; SELECT 1/0")  # one implicit transaction: the UNLISTEN is rolled back too
        assert a.execute("SELECT count(*) FROM pg_listening_channels()").fetchone() == (1,)
        with conn(single, keys) as b, pytest.raises(psycopg.OperationalError, match="too many clients"):
            b.execute("SELECT 1")


@pytest.mark.parametrize(
    "statement",
    [
        "SET LOCAL work_mem = '1234kB'",
        "SELECT set_config('work_mem', '1234kB', true)",
        "SELECT pg_advisory_xact_lock(7)",
        "DECLARE c CURSOR FOR SELECT 1",
    ],
    ids=["set_local", "set_config_local", "xact_lock", "cursor"],
)
def test_transaction_scoped_state_does_not_pin(single, keys, statement):
    a, b = conn(single, keys), conn(single, keys)
    try:
        with a.transaction():
            a.execute(statement)
        assert b.execute("SELECT 1").fetchone() == (1,)  # the one server went back after a's transaction
        assert a.execute("SHOW work_mem").fetchone() == ("4MB",)
    finally:
        a.close()
        b.close()


def test_discard_all_forgets_prepared_statements(single, keys):
    with conn(single, keys, prepare_threshold=0) as a:
        assert a.execute("SELECT %s::int", [1]).fetchone() == (1,)
        a.execute("DISCARD ALL")
        assert a.execute("SELECT %s::int", [2]).fetchone() == (2,)


# ---------------------------------------------------------------- the identity of the holder


def test_identity_is_the_holders(single, keys):
    """One server connection, two clients taking turns: each transaction sees its own client's TLS facts."""
    with conn(single, keys, user="ssltestuser", cert=True) as a, conn(single, keys, user="ssltestuser") as b:
        for _ in range(3):
            pa, dn_a = a.execute("SELECT pg_backend_pid(), ssl_client_dn()").fetchone()
            pb, dn_b, present = b.execute(
                "SELECT pg_backend_pid(), ssl_client_dn(), ssl_client_cert_present()"
            ).fetchone()
            assert pa == pb  # the same PostgreSQL backend
            assert dn_a == "/CN=ssltestuser" and dn_b is None and present is False


# ---------------------------------------------------------------- real clients' scenarios


@pytest.fixture(scope="module")
def paired(certs, client_home) -> Iterator[PairedReports]:
    pg = start_managed_pg()
    s: PgtlsServer | None = None
    try:
        s = PgtlsServer().init()
        s.copy_in(certs.path("server-chain.crt"), "server.crt", 0o644)
        s.copy_in(certs.path("server.key"), "server.key", 0o600)
        s.write("pg_hba.conf", HBA)
        s.conf(
            ssl="on",
            pool_mode="transaction",
            default_pool_size="4",
            server_round_robin="on",
            log_min_messages="debug1",
        )
        with open(s.datadir / "cluster" / "postgresql.conf", "a") as f:
            f.write(PG_SETTINGS)
        s.start()
        ours = Reports(pydrivers.Target(s.port, certs.path("root_ca.crt"), client_home), "tx")
        theirs = Reports(pydrivers.Target(pg.port, None, client_home), "tx")
        paired = PairedReports(ours, theirs)
        paired.server = s  # type: ignore[attr-defined]
        yield paired
    finally:
        if s is not None:
            print(f"--- pgtls server log ---\n{s.full_log()[-4000:]}")
            s.cleanup()
        pg.cleanup()


@pytest.mark.parametrize("client", ["psycopg-binary", "asyncpg", "node-pg", "pgjdbc"])
def test_client_scenario_as_on_postgresql(paired, client):
    """The whole scenario (values, parameters sent back, errors, prepared statements, cursors, COPY,
    LISTEN/NOTIFY, cancel) with the client's default prepared-statement behaviour: the same report through
    pgtls in transaction mode (each transaction on the idle server used least recently) as from PostgreSQL
    directly."""
    client_missing(client)
    ours, theirs = paired.get(client)
    assert theirs["checks"] == {k: v for k, v in CHECKS_EXPECTED.items() if k in theirs["checks"]}
    for part in ("errors", "values", "roundtrip", "checks"):
        assert ours[part] == theirs[part], part
    if client == "asyncpg":  # its type introspection: set_config('jit', 'off', false) outside a transaction
        assert wait_for(
            lambda: "pinned to its server connection in transaction mode: SET" in paired.server.log()
        )


def test_asyncpg_statements_follow_the_client(paired):
    """asyncpg's statement cache (named statements, Parse + Describe, then Bind) on rotating servers."""
    server = paired.server
    before = server.log().count(PREPARED_AGAIN)

    async def run() -> list[object]:
        import asyncpg

        cons = [
            await asyncpg.connect(
                host="127.0.0.1", port=server.port, user="postgres", database="postgres", ssl="require"
            )
            for _ in range(3)
        ]
        out: list[object] = []
        for r in range(4):
            holder = cons[r % len(cons)]
            async with holder.transaction():  # holds a server: the others run on the rest of the pool
                await holder.fetchval("SELECT 1")
                for i, c in enumerate(cons):  # each client its own statement texts: nobody else prepares them
                    if c is not holder:
                        out.append(await c.fetchval(f"SELECT $1::int * 2 + {i} - {i}", r))
                        out.append(
                            await c.fetchrow(
                                f"SELECT $1::text || 'x' AS t, $2::bigint + {i} - {i} AS b", str(r), r
                            )
                        )
        for c in cons:
            await c.close()
        return out

    out = asyncio.run(run())
    assert out[:2] == [0, ("0x", 0)] and out[-2:] == [6, ("3x", 3)] and len(out) == 16
    assert wait_for(lambda: server.log().count(PREPARED_AGAIN) >= before + 3)
    lines = [x.split("\n", 1)[0] for x in server.log().split(PREPARED_AGAIN)[before + 1 :]]
    assert sum(int(x.split(" times", 1)[0]) for x in lines) > 0 and not any("pinned" in x for x in lines), (
        lines
    )


# ---------------------------------------------------------------- pgbench: the acceptance


def _more_descriptors() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))


def test_pgbench_1000_clients_on_20_servers(certs, keys):
    """pgbench -c 1000, with and without -C, -M extended and -M prepared, over verify-full in transaction
    mode: no failed transaction, and never more PostgreSQL backends than the pool allows."""
    s = txn_server(
        certs,
        default_pool_size=str(PGBENCH_POOL),
        max_connections=str(PGBENCH_CLIENTS + 50),
        query_wait_timeout="60",
    )
    peak = 0
    stop = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, backends(s, "postgres", "pgbench"))
            time.sleep(0.2)

    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(PGSSLMODE="verify-full", PGSSLROOTCERT=str(keys / "root_ca.crt"), PGCONNECT_TIMEOUT="30")
        dsn = f"host=localhost port={s.port} user=postgres dbname=postgres"
        r = subprocess.run(["pgbench", "-i", "-q", dsn], capture_output=True, text=True, timeout=120, env=env)
        assert r.returncode == 0, r.stderr
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        for mode in ("extended", "prepared"):
            for connect in ([], ["-C"]):
                cmd = [
                    "pgbench",
                    "-n",
                    "-c",
                    str(PGBENCH_CLIENTS),
                    "-j",
                    "2",
                    "-t",
                    "1",
                    "-M",
                    mode,
                    *connect,
                    dsn,
                ]
                r = subprocess.run(
                    cmd, capture_output=True, text=True, timeout=300, env=env, preexec_fn=_more_descriptors
                )
                assert r.returncode == 0, (cmd, r.stdout[-2000:], r.stderr[-2000:])
                want = PGBENCH_CLIENTS
                assert f"number of transactions actually processed: {want}/{want}" in r.stdout, r.stdout
                assert "number of failed transactions: 0 (0.000%)" in r.stdout, r.stdout
        stop.set()
        watcher.join()
        assert 0 < peak <= PGBENCH_POOL
    finally:
        stop.set()
        print(s.full_log()[-3000:])
        s.cleanup()


# ---------------------------------------------------------------- many idle TLS clients

IDLE_CLIENTS = 1000
MAX_KB_PER_IDLE_CLIENT = 100  # measured about 30 (bench/txn_scale.py: 29.3 KB with 10,000 clients)


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


async def _idle_clients(port: int, n: int, rootcert: str, hold: Any) -> int:
    """Open ``n`` TLS sessions (SSLRequest, trust login), call ``hold()`` while all are open, run one
    query on each, close them; the number that worked end to end."""
    ctx = ssl.create_default_context(cafile=rootcert)
    sessions = await scaleclient.login_many(port, ctx, n, 100, user="alice")
    await asyncio.get_running_loop().run_in_executor(None, hold)
    ok = 0
    for reader, writer in sessions:
        writer.write(scaleclient.query("SELECT 1"))
        ok += (await scaleclient.messages_to_ready(reader))[-1] == ("Z", b"I")
    scaleclient.terminate_all(sessions)
    return ok


def _memory_per_client(
    certs: Any, keys: Path, n: int, clients: Callable[[int, str, Callable[[], None]], Any]
) -> tuple[float, int, Any]:
    """A transaction-mode pgtls; ``clients(port, rootcert, hold)`` brings ``n`` clients and calls ``hold()``
    while they are all idle.  Returns pgtls's memory growth per client (KB), the PostgreSQL backends seen
    during ``hold()``, and what ``clients`` returned."""
    _more_descriptors()
    s = txn_server(certs, max_connections=str(n + 50))
    try:
        assert s.proc is not None
        pid = s.proc.pid
        with conn(s, keys) as c:  # warm: the pool's first session and its ParameterStatus
            c.execute("SELECT 1")
        time.sleep(0.5)
        before = _rss_kb(pid)
        seen: dict[str, int] = {}

        def hold() -> None:
            time.sleep(1)
            seen["rss"] = _rss_kb(pid)
            seen["backends"] = backends(s)

        got = asyncio.run(clients(s.port, str(keys / "root_ca.crt"), hold))
        return (seen["rss"] - before) / n, seen["backends"], got
    finally:
        s.cleanup()


def test_thousands_of_idle_tls_clients_cost_little(certs, keys):
    """1,000 TLS clients logged in and idle in transaction mode: pgtls's memory grows by a bounded amount per
    client and no PostgreSQL backend is held for them; each then runs a query."""
    per_client, held, ok = _memory_per_client(
        certs, keys, IDLE_CLIENTS, lambda port, root, hold: _idle_clients(port, IDLE_CLIENTS, root, hold)
    )
    assert ok == IDLE_CLIENTS
    print(f"pgtls: {per_client:.1f} KB per idle TLS client, {held} backends")
    assert per_client < MAX_KB_PER_IDLE_CLIENT
    assert held <= 1


LARGE_IO_CLIENTS = 200
LARGE_IO_UPLOAD = 300_000  # bytes of the query each client sends
LARGE_IO_REPLY = 1_000_000  # bytes of the value each client gets back
# Measured 2026-12-07 with this test: 71.5 KB per idle client (of which ~28 KB any idle client costs, the
# rest the TLS engine's pieces and the allocator's leftovers); 420.7 KB before TLS_PIECE, when every client
# kept memory BIOs the size of its largest read and reply.  The query sent with the login: 82-85 KB, 250.7
# before the handshake and the reads during login fed the TLS engine in pieces too.
MAX_KB_PER_CLIENT_AFTER_LARGE_IO = 150


async def _large_io_then_idle(port: int, n: int, rootcert: str, hold: Any) -> int:
    """``n`` TLS clients log in; one at a time (so no two large messages are in memory at once), each sends
    a large query and reads its large reply; ``hold()`` runs while all are idle; the number whose reply was
    right."""
    ctx = ssl.create_default_context(cafile=rootcert)
    one_at_a_time = asyncio.Lock()
    sql = f"SELECT length('{'y' * LARGE_IO_UPLOAD}'), repeat('x', {LARGE_IO_REPLY})"
    right = 0

    async def large_io(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal right
        async with one_at_a_time:
            writer.write(scaleclient.query(sql))
            got = rows([decode(kind, body) for kind, body in await scaleclient.messages_to_ready(reader)])
        right += got == [[str(LARGE_IO_UPLOAD), "x" * LARGE_IO_REPLY]]

    sessions = await scaleclient.login_many(port, ctx, n, 50, user="alice", then=large_io)
    await asyncio.get_running_loop().run_in_executor(None, hold)
    scaleclient.terminate_all(sessions)
    return right


async def _large_login_then_idle(port: int, n: int, rootcert: str, hold: Any) -> int:
    """``n`` TLS clients, one at a time (so the allocator's leftovers of many uploads at once do not count),
    send a large query with their startup packet and read its answer, then stay idle while ``hold()`` runs;
    the number whose answer was right."""
    ctx = ssl.create_default_context(cafile=rootcert)
    right = 0

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal right
        got = rows([decode(kind, body) for kind, body in await scaleclient.messages_to_ready(reader)])
        right += got == [[str(LARGE_IO_UPLOAD)]]

    query = scaleclient.query(f"SELECT length('{'y' * LARGE_IO_UPLOAD}')")
    sessions = await scaleclient.login_many(port, ctx, n, 1, user="alice", pipelined=query, then=answer)
    await asyncio.get_running_loop().run_in_executor(None, hold)
    scaleclient.terminate_all(sessions)
    return right


@pytest.mark.parametrize(
    "clients",
    [_large_io_then_idle, _large_login_then_idle],
    ids=["large_query_and_reply", "large_query_sent_with_the_login"],
)
def test_large_messages_leave_an_idle_client_small(certs, keys, clients):
    """Each of 200 TLS clients sends a 300 KB query (after its login, then reading a 1 MB reply; or together
    with its startup packet, so the bytes reach the TLS engine before the relay takes over), then stays
    idle: pgtls's memory per idle client stays bounded (the TLS engine takes plaintext and received bytes in
    pieces in the handshake, in every read and in the relay, so no client keeps a buffer the size of its
    largest message)."""
    per_client, _held, right = _memory_per_client(
        certs, keys, LARGE_IO_CLIENTS, lambda port, root, hold: clients(port, LARGE_IO_CLIENTS, root, hold)
    )
    assert right == LARGE_IO_CLIENTS
    print(f"pgtls: {per_client:.1f} KB per idle TLS client after {clients.__name__}")
    assert per_client < MAX_KB_PER_CLIENT_AFTER_LARGE_IO


def test_idle_client_during_a_cluster_restart_gets_57p03_not_a_hang(certs, keys):
    """kill -9 of the managed PostgreSQL while a transaction-mode client holds no server: its next query
    gets PostgreSQL's 57P03 FATAL (or, once the cluster is back, an answer), never a hang."""
    import signal

    s = txn_server(certs)
    try:
        c = conn(s, keys)
        assert c.execute("SELECT 1").fetchone() == (1,)
        pm = int((s.datadir / "cluster" / "postmaster.pid").read_text().splitlines()[0])
        os.kill(pm, signal.SIGKILL)
        assert wait_for(lambda: f"the managed PostgreSQL (PID {pm}) exited" in s.log(), timeout=10)
        t0 = time.monotonic()
        try:
            got = c.execute("SELECT 2").fetchone()
            assert got == (2,)  # the cluster was back already
        except psycopg.OperationalError as e:
            assert "the database system is starting up" in str(e) or "closed the connection" in str(e), str(e)
        assert time.monotonic() - t0 < 10
        c.close()
        assert wait_for(lambda: "the managed PostgreSQL is running again" in s.log(), timeout=30)
        with conn(s, keys) as again:
            assert again.execute("SELECT 3").fetchone() == (3,)
    finally:
        s.cleanup()


# ---------------------------------------------------------------- scale: ten thousand idle TLS clients

SCALE_CLIENTS = 10_000
IDLE_CLIENT_PROCS = 2  # client processes (each holds its share on its own event loop)
IDLE_HANDSHAKES = 100  # TLS handshakes in flight per client process
IDLE_POOL = 5
# About twice what bench/txn_scale.py measures for pgtls (29.3 KB per client; PgBouncer 15.5 KB).
IDLE_KB_PER_CLIENT = 64


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _pool_backends(s: PgtlsServer) -> int:
    """The cluster's backends serving clients (not pgtls's own admin sessions)."""
    return int(
        s.sql(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
            "AND application_name <> 'pgtls' AND pid <> pg_backend_pid()"
        )[0][0]
    )


def test_10000_idle_tls_clients_are_held_with_bounded_memory(certs):
    """Ten thousand TLS sessions (SSLRequest, TLS 1.3 verified against the root, trust login) held idle at
    once on one pgtls process in transaction mode: every one logged in, pgtls holds a descriptor for each,
    its memory grows by at most IDLE_KB_PER_CLIENT per client, the cluster sees no more than the pool; then
    every session still answers a query, and once they have all gone pgtls's descriptors are back."""
    need = SCALE_CLIENTS + 2000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), max(hard, need)))  # pgtls inherits it
    s = txn_server(
        certs,
        max_connections=str(SCALE_CLIENTS + 100),
        default_pool_size=str(IDLE_POOL),
        query_wait_timeout="60",
    )
    try:
        assert s.proc is not None
        pid = s.proc.pid
        rss_before, fds_before = _rss_kb(pid), _fds(pid)
        ctx = multiprocessing.get_context("spawn")
        logged_in, done, go = ctx.Queue(), ctx.Queue(), ctx.Event()
        share = SCALE_CLIENTS // IDLE_CLIENT_PROCS
        procs = [
            ctx.Process(
                target=scaleclient.hold,
                args=(s.port, share, str(certs.path("root_ca.crt")), IDLE_HANDSHAKES, logged_in, go, done),
            )
            for _ in range(IDLE_CLIENT_PROCS)
        ]
        for p in procs:
            p.start()
        try:
            logins = [logged_in.get(timeout=300) for _ in procs]
            assert sum(c for c, _, _ in logins) == SCALE_CLIENTS, logins
            time.sleep(1)  # let the last logins' transient buffers go
            held_fds = _fds(pid)
            assert held_fds >= fds_before + SCALE_CLIENTS, (fds_before, held_fds)
            kb = (_rss_kb(pid) - rss_before) / SCALE_CLIENTS
            print(f"pgtls holds {SCALE_CLIENTS} idle TLS clients at {kb:.1f} KB each")
            assert kb <= IDLE_KB_PER_CLIENT, kb
            assert _pool_backends(s) <= IDLE_POOL
            go.set()
            answers = [done.get(timeout=300) for _ in procs]
            assert sum(ok for ok, _ in answers) == SCALE_CLIENTS, answers
        finally:
            go.set()
            for p in procs:
                p.join(60)
                if p.is_alive():
                    p.kill()
                    p.join()
        # Every client's descriptor is closed: pgtls keeps its pooled sessions (at most IDLE_POOL, opened
        # when the clients' queries came) and its admin session's pair.
        assert wait_for(lambda: _fds(pid) <= fds_before + IDLE_POOL + 2, timeout=30), (fds_before, _fds(pid))
        problems = [line for line in s.log().splitlines() if "FATAL" in line or "ERROR" in line]
        assert not problems, problems[:5]
    finally:
        s.cleanup()
