"""Session pooling: upstream sessions kept per (role, database), reset between clients, never leaked."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from tests.pgtlsserver import PgtlsServer
from tests.relay.util import query_message, raw_login, read_to_eof, read_to_ready, wait_for


def make_server(**conf: str) -> PgtlsServer:
    s = PgtlsServer().init()
    s.conf(**conf)
    s.create_role("alice")
    s.create_role("bob")
    s.sql("CREATE TABLE t (a int); GRANT ALL ON t TO alice, bob")
    s.start()
    return s


@pytest.fixture(scope="module")
def server() -> Iterator[PgtlsServer]:
    s = make_server()
    yield s
    print(s.full_log()[-4000:])
    s.cleanup()


def conn(s: PgtlsServer, user: str = "alice", **kw: object) -> psycopg.Connection:
    return psycopg.connect(
        host="127.0.0.1", port=s.port, user=user, dbname="postgres", autocommit=True, connect_timeout=10, **kw
    )


def backend_pid(s: PgtlsServer, user: str = "alice", **kw: object) -> int:
    with conn(s, user, **kw) as c:
        return int(c.execute("select pg_backend_pid()").fetchone()[0])


def client_backends(s: PgtlsServer) -> list[tuple[int, str, str]]:
    """The cluster's client backends other than pgtls's own connections, seen directly."""
    rows = s.sql(
        "SELECT pid, usename, state FROM pg_stat_activity WHERE backend_type = 'client backend' "
        "AND pid <> pg_backend_pid() AND application_name <> 'pgtls' ORDER BY pid"
    )
    return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]


def pooled_after_reset(s: PgtlsServer, pid: int) -> bool:
    """The backend ``pid`` has run the reset query and is idle (seen directly on the cluster)."""
    rows = s.sql(f"SELECT state, query FROM pg_stat_activity WHERE pid = {int(pid)}")
    return bool(rows) and rows[0][0] == "idle" and rows[0][1] == "DISCARD ALL"


def pooled_pid(s: PgtlsServer, user: str = "alice") -> int:
    """A login's upstream backend, once it is back in the pool for the next client."""
    pid = backend_pid(s, user)
    assert wait_for(lambda: pooled_after_reset(s, pid))
    time.sleep(0.1)
    return pid


def test_reused_per_role_and_database(server):
    first = pooled_pid(server)
    assert pooled_pid(server) == first
    other = pooled_pid(server, "bob")
    assert other != first
    assert backend_pid(server) == first


def test_session_state_is_reset_between_clients(server):
    with conn(server) as a:
        pid = a.execute("select pg_backend_pid()").fetchone()[0]
        a.execute("SET work_mem = '1234kB'")
        a.execute("CREATE TEMP TABLE scratch (x int)")
        a.execute("PREPARE p AS SELECT 1")
        a.execute("LISTEN chan")
        a.execute("SELECT pg_advisory_lock(42)")
        a.execute("SET DateStyle = 'German'")
        assert a.info.parameter_status("DateStyle") == "German, DMY"
    # The reset runs after the client has gone; the next client reuses the session once it is pooled.
    assert wait_for(lambda: pooled_after_reset(server, pid))
    time.sleep(0.3)
    with conn(server) as b:
        assert b.execute("select pg_backend_pid()").fetchone()[0] == pid
        assert b.execute("SHOW work_mem").fetchone() == ("4MB",)
        assert b.execute("SELECT to_regclass('scratch')").fetchone() == (None,)
        assert b.execute("SELECT count(*) FROM pg_prepared_statements").fetchone() == (0,)
        assert b.execute("SELECT count(*) FROM pg_listening_channels()").fetchone() == (0,)
        assert b.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone() == (0,)
        # The ParameterStatus the new client got says what the session really has.
        assert b.info.parameter_status("DateStyle") == "ISO, MDY"
        assert b.execute("SHOW DateStyle").fetchone() == ("ISO, MDY",)


def test_startup_parameters_reach_the_session(server):
    with conn(server, application_name="myapp", options="-c search_path=pg_catalog -c work_mem=2MB") as c:
        assert c.execute("SHOW search_path").fetchone() == ("pg_catalog",)
        assert c.execute("SHOW work_mem").fetchone() == ("2MB",)
        assert c.execute(
            "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()"
        ).fetchone() == ("myapp",)
        assert c.info.parameter_status("application_name") == "myapp"
    with pytest.raises(psycopg.OperationalError, match='unrecognized configuration parameter "no_such"'):
        conn(server, options="-c no_such=1")
    assert backend_pid(server)  # the session that refused it is fine for the next client


def test_client_leaving_inside_a_transaction_rolls_back_and_closes(server):
    a = conn(server)
    pid = a.execute("select pg_backend_pid()").fetchone()[0]
    a.execute("BEGIN")
    a.execute("INSERT INTO t VALUES (1)")
    a.close()  # not psycopg's context manager: it would COMMIT
    assert wait_for(lambda: pid not in [b[0] for b in client_backends(server)])
    assert backend_pid(server) != pid
    with conn(server) as b:
        assert b.execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_client_leaving_a_failed_transaction_closes(server):
    a = conn(server)
    pid = a.execute("select pg_backend_pid()").fetchone()[0]
    a.execute("BEGIN")
    with pytest.raises(psycopg.errors.DivisionByZero):
        a.execute("SELECT 1/0")
    a.close()
    assert wait_for(lambda: pid not in [b[0] for b in client_backends(server)])


def test_client_vanishing_mid_query_leaks_nothing(server):
    """A client that drops its socket while a query runs: the upstream session is closed, not pooled."""
    backend_pid(server)
    raw = raw_login(server.port, "alice")
    raw.sendall(query_message("SELECT pg_sleep(1)"))
    sleeping: list[int] = []

    def running() -> bool:  # the session this client uses (not assumed to be the one pooled before)
        rows = server.sql(
            "SELECT pid FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(1)' AND state = 'active'"
        )
        sleeping[:] = [int(r[0]) for r in rows]
        return len(sleeping) == 1

    assert wait_for(running, timeout=5)
    pid = sleeping[0]
    raw.close()
    assert wait_for(lambda: pid not in [b[0] for b in client_backends(server)], timeout=15)
    assert wait_for(lambda: all(b[2] == "idle" for b in client_backends(server)))


def test_terminate_is_not_forwarded(server):
    """A client's Terminate ends the client's session, not the pooled upstream one: the upstream backend
    that answered the client is still there (idle, pooled) afterwards."""
    raw = raw_login(server.port, "alice")
    # Query and Terminate in one packet, then EOF.
    raw.sendall(query_message("SELECT pg_backend_pid()") + b"X\0\0\0\x04")
    reply = b""
    while chunk := raw.recv(65536):
        reply += chunk
    raw.close()
    assert reply.startswith(b"T") and b"C\0\0\0\x0dSELECT 1\0" in reply and reply.endswith(b"Z\0\0\0\x05I")
    row = reply[reply.index(b"D\0") :]
    width = int.from_bytes(row[7:11], "big")
    pid = int(row[11 : 11 + width])
    assert wait_for(lambda: (pid, "alice", "idle") in client_backends(server))
    time.sleep(0.5)
    assert (pid, "alice", "idle") in client_backends(server)


def test_drop_database_with_idle_pooled_sessions(server):
    server.sql("CREATE DATABASE scratchdb")
    with psycopg.connect(host="127.0.0.1", port=server.port, user="alice", dbname="scratchdb") as c:
        c.execute("select 1")
    with psycopg.connect(
        host="127.0.0.1", port=server.port, user="postgres", dbname="postgres", autocommit=True
    ) as c:
        c.execute("DROP DATABASE scratchdb")
        assert c.execute("SELECT count(*) FROM pg_database WHERE datname = 'scratchdb'").fetchone() == (0,)


def test_full_pool_waits_then_53300():
    s = make_server(default_pool_size="1", query_wait_timeout="1")
    try:
        holder = conn(s)
        t0 = time.monotonic()
        with pytest.raises(psycopg.OperationalError, match="sorry, too many clients already"):
            conn(s)
        assert 0.9 <= time.monotonic() - t0 < 5
        # A waiter gets the session as soon as the holder leaves.
        threading.Timer(0.3, holder.close).start()
        with conn(s) as c:
            assert c.execute("select 1").fetchone() == (1,)
    finally:
        s.cleanup()


def test_idle_timeout_lifetime_and_min_pool_size():
    s = make_server(server_idle_timeout="1", min_pool_size="2")
    try:
        backend_pid(s)
        # min_pool_size opens a second idle session for the pool...
        assert wait_for(lambda: len([b for b in client_backends(s) if b[1] == "alice"]) == 2, timeout=5)
        # ...and idle ones older than server_idle_timeout are replaced, keeping the minimum.
        first = {b[0] for b in client_backends(s) if b[1] == "alice"}
        assert wait_for(
            lambda: first.isdisjoint({b[0] for b in client_backends(s) if b[1] == "alice"}), timeout=8
        )
        assert len([b for b in client_backends(s) if b[1] == "alice"]) == 2
    finally:
        s.cleanup()
    s = make_server(server_lifetime="4")
    try:
        started = time.monotonic()
        pid = pooled_pid(s)
        again = pooled_pid(s)
        if time.monotonic() - started < 3.5:  # on a loaded machine the two logins may outlast the lifetime
            assert again == pid
        time.sleep(4.3)
        assert backend_pid(s) != again
    finally:
        s.cleanup()


def test_reload_changes_pool_settings():
    s = make_server(default_pool_size="1", query_wait_timeout="1")
    try:
        holder = conn(s)
        with pytest.raises(psycopg.OperationalError):
            conn(s)
        s.conf(default_pool_size="2")
        s.reload()
        with conn(s) as c:
            assert c.execute("select 1").fetchone() == (1,)
        holder.close()
    finally:
        s.cleanup()


def test_terminated_upstream_gives_postgres_fatal_and_closes(server):
    """pg_terminate_backend on the upstream session: its client gets PostgreSQL's own FATAL, then EOF.

    Read with a raw socket: a libpq client that sends its next query after the server closed may get a TCP
    reset that discards the FATAL still unread (the same with PostgreSQL directly)."""
    raw = raw_login(server.port, "alice")
    raw.sendall(query_message("SELECT pg_backend_pid()"))
    reply = read_to_ready(raw)
    row = reply[reply.index(b"D\0") :]
    width = int.from_bytes(row[7:11], "big")
    pid = int(row[11 : 11 + width])
    server.sql(f"SELECT pg_terminate_backend({pid})")
    raw.settimeout(10)
    rest = read_to_eof(raw)
    raw.close()
    assert rest.startswith(b"E") and b"SFATAL\0" in rest and b"C57P01\0" in rest
    assert b"terminating connection due to administrator command" in rest
    assert backend_pid(server) != pid
