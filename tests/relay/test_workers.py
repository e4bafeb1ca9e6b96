"""Worker processes on one port (``workers = 2``, issue 14 item 1): both workers serve the port, a killed
worker is restarted while the other's clients go on unharmed, a cancel that lands on the other worker still
cancels, SIGHUP reaches every worker with Table 19.2's rule (each keeps its old TLS configuration when the
new one fails, and the supervisor says so), max_connections counts the sessions of every worker, DROP
DATABASE works while another worker has idle pooled sessions in it, and a fast stop ends every session with
PostgreSQL's FATAL.

A session's worker is visible to a client: worker ``n`` hands out backend pids ``p`` with ``p % 2 == n``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from tests.pgtlsserver import PgtlsServer, tls_server

WORKERS = 2


@pytest.fixture(scope="module")
def server(certs) -> Iterator[PgtlsServer]:
    s = tls_server(
        certs,
        PgtlsServer(),
        start=False,
        workers=str(WORKERS),
        log_min_messages="debug1",
        max_connections="12",
        superuser_reserved_connections="0",
    )
    s.start()
    yield s
    print(s.full_log()[-8000:])
    s.cleanup()


def connect(s: PgtlsServer, **kw: object) -> psycopg.Connection:
    return psycopg.connect(s.dsn(sslmode="require", connect_timeout=10, **kw), autocommit=True)


def on_worker(s: PgtlsServer, n: int, tries: int = 60, **kw: object) -> psycopg.Connection:
    """A session the kernel gave to worker ``n`` (connect until one lands there)."""
    for _ in range(tries):
        c = connect(s, **kw)
        if c.info.backend_pid % WORKERS == n:
            return c
        c.close()
    raise AssertionError(f"no connection reached worker {n} in {tries} tries")


def worker_pids(s: PgtlsServer) -> dict[int, int]:
    """Worker number -> OS pid, from the supervisor's log (the latest start of each)."""
    out: dict[int, int] = {}
    for m in re.finditer(r"worker process (\d+) \(PID (\d+)\) started", s.log()):
        out[int(m.group(1))] = int(m.group(2))
    return out


def wait_for(cond, timeout: float = 15.0) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_both_workers_serve_one_port(server):
    assert f"started {WORKERS} worker processes" in server.log()
    assert len(set(worker_pids(server).values())) == WORKERS
    seen = set()
    for _ in range(40):
        with connect(server) as c:
            seen.add(c.info.backend_pid % WORKERS)
            assert c.execute("SELECT 1").fetchone() == (1,)
        if len(seen) == WORKERS:
            break
    assert seen == set(range(WORKERS))


def test_a_killed_worker_is_restarted_and_the_other_serves_on(server):
    steady, doomed = on_worker(server, 0), on_worker(server, 1)
    errors: list[BaseException] = []
    done = threading.Event()
    count = [0]

    def load() -> None:  # a client of worker 0 keeps querying throughout
        try:
            while not done.is_set():
                assert steady.execute("SELECT count(*) FROM generate_series(1, 100)").fetchone() == (100,)
                count[0] += 1
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    t = threading.Thread(target=load)
    t.start()
    try:
        time.sleep(0.3)
        victim = worker_pids(server)[1]
        before = server.log().count("is serving again")
        os.kill(victim, signal.SIGKILL)
        with pytest.raises(psycopg.OperationalError):
            doomed.execute("SELECT 1")
        assert wait_for(lambda: server.log().count("is serving again") > before), server.log()[-3000:]
        assert f"worker process 1 (PID {victim}) exited with exit code -9" in server.log()
        assert worker_pids(server)[1] != victim
        again = on_worker(server, 1)  # the restarted worker takes new clients
        assert again.execute("SELECT current_user").fetchone() == ("postgres",)
        again.close()
        time.sleep(0.3)
    finally:
        done.set()
        t.join()
        steady.close()
        doomed.close()
    assert not errors, errors
    assert count[0] > 10


@pytest.mark.parametrize("protocol", ["3.0", "3.2"])
def test_a_cancel_landing_on_the_other_worker_cancels(server, protocol):
    """libpq's own cancel (a new connection, which the kernel gives to either worker), repeated until
    some landed on the other worker; every one must cancel.  With protocol 3.2 (libpq 18) the key is 32
    bytes long and is passed on whole."""
    forwarded = 0
    with connect(server, max_protocol_version=protocol) as c:
        assert c.pgconn.full_protocol_version == (30002 if protocol == "3.2" else 30000)
        owner = c.info.backend_pid % WORKERS
        for _ in range(16):
            before = server.log().count("passing the cancel request")
            threading.Timer(0.25, c.cancel_safe).start()
            started = time.monotonic()
            with pytest.raises(psycopg.errors.QueryCanceled):
                c.execute("SELECT pg_sleep(20)")
            assert time.monotonic() - started < 10
            if wait_for(lambda b=before: server.log().count("passing the cancel request") > b, 0.5):
                forwarded += 1
                break
    assert forwarded >= 1, "no cancel landed on the other worker in 16 tries"
    assert re.search(rf"passing the cancel request for process \d+ to worker {owner}", server.log())


def test_max_connections_counts_every_worker(server):
    held = []
    try:
        for _ in range(12):
            held.append(connect(server))
        assert {c.info.backend_pid % WORKERS for c in held} == set(range(WORKERS))
        for _ in range(4):  # whichever worker the kernel picks refuses
            with pytest.raises(psycopg.OperationalError, match="sorry, too many clients already"):
                connect(server)
    finally:
        for c in held:
            c.close()
    assert wait_for(lambda: _can_connect(server), 5)


def _can_connect(s: PgtlsServer) -> bool:
    try:
        connect(s).close()
        return True
    except psycopg.OperationalError:
        return False


def test_drop_database_while_the_other_worker_pools_a_session_in_it(server):
    with connect(server) as admin:
        admin.execute("CREATE DATABASE scratch_w")
    for n in range(WORKERS):  # an idle pooled session in scratch_w on each worker
        on_worker(server, n, dbname="scratch_w").close()
    with connect(server) as admin:
        admin.execute("DROP DATABASE scratch_w")  # PostgreSQL waits up to 5 s for other sessions to leave
        assert admin.execute("SELECT count(*) FROM pg_database WHERE datname = 'scratch_w'").fetchone() == (
            0,
        )


def test_sighup_reaches_every_worker(server, certs):
    good = (server.datadir / "server.crt").read_bytes()
    try:
        (server.datadir / "server.crt").write_text("not a certificate\n")
        before = server.log().count("kept its old configuration for: SSL configuration")
        server.reload()
        assert wait_for(
            lambda: (
                server.log().count("kept its old configuration for: SSL configuration") >= before + WORKERS
            )
        ), server.log()[-3000:]
        for _ in range(10):  # every worker still serves TLS with the old certificate
            with connect(server) as c:
                assert c.pgconn.ssl_in_use
    finally:
        (server.datadir / "server.crt").write_bytes(good)
    before = server.log().count("reloaded its configuration")
    hba = (server.datadir / "pg_hba.conf").read_text()
    try:
        (server.datadir / "pg_hba.conf").write_text(
            "hostssl all all 127.0.0.1/32 reject\nlocal all all trust\n"
        )
        server.reload()
        assert wait_for(lambda: server.log().count("reloaded its configuration") >= before + WORKERS)
        for _ in range(10):  # the new hba rules hold on every worker
            with pytest.raises(psycopg.OperationalError, match="rejects connection"):
                connect(server)
    finally:
        (server.datadir / "pg_hba.conf").write_text(hba)
        server.reload()
        assert wait_for(lambda: _can_connect(server))


def test_fast_stop_ends_sessions_on_every_worker(certs, pgtls_factory):
    s = tls_server(certs, pgtls_factory(), start=False, workers=str(WORKERS))
    s.start()
    clients = [on_worker(s, n) for n in range(WORKERS)]
    r = subprocess.run(
        [sys.executable, "-m", "pgtls", "stop", "-D", str(s.datadir), "-m", "fast"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    for c in clients:
        with pytest.raises(
            psycopg.OperationalError, match="terminating connection due to administrator command"
        ):
            c.execute("SELECT 1")
        c.close()
    assert wait_for(lambda: not s.running)
    assert "database system is shut down" in s.log()


def test_malformed_packets_on_a_cancel_socket_change_nothing(server):
    """A worker's cancel socket (in the 0700 run directory) takes one CancelRequest per connection: garbage,
    wrong lengths, a wrong code and a silent peer are dropped without an error line or a stall."""
    import socket as socketlib

    from pgtls.server.shared import cancel_socket, run_dir_of

    path = cancel_socket(run_dir_of(server.datadir), 0)
    assert (path.parent.stat().st_mode & 0o777) == 0o700
    with connect(server) as c:
        pid = c.info.backend_pid
        bad = [
            b"",
            b"\x00",
            b"garbage" * 100,
            (0x7FFFFFFF).to_bytes(4, "big") + b"x" * 64,
            (12).to_bytes(4, "big") + (80877102).to_bytes(4, "big") + pid.to_bytes(4, "big"),  # no key
            (16).to_bytes(4, "big") + (80877103).to_bytes(4, "big") + pid.to_bytes(4, "big") + b"kkkk",
            (16).to_bytes(4, "big") + (80877102).to_bytes(4, "big"),
        ]  # cut short
        for packet in bad:
            with socketlib.socket(socketlib.AF_UNIX) as s:
                s.settimeout(10)
                s.connect(str(path))
                s.sendall(packet)
                s.shutdown(socketlib.SHUT_WR)
                assert s.recv(100) == b""  # closed, nothing said
        assert c.execute("SELECT 1").fetchone() == (1,)
    log = server.log()
    assert "unexpected error" not in log and "Traceback" not in log


@pytest.mark.parametrize("workers", [1, 2])
def test_reload_during_start_up(certs, pgtls_factory, workers):
    """`pgtls reload` as soon as the pid file names the server, again and again while it starts (its
    cluster, its workers): the server starts, nothing dies of SIGHUP's default action, the reloads run."""
    from pgtls.server.pidfile import read_pid

    s = tls_server(certs, pgtls_factory(), start=False, workers=str(workers))
    stop = threading.Event()
    sent = [0]

    def storm() -> None:
        while not stop.is_set():
            pid = read_pid(s.datadir)
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGHUP)
                    sent[0] += 1
                except ProcessLookupError:
                    pass
            time.sleep(0.02)

    t = threading.Thread(target=storm)
    t.start()
    try:
        s.start()
        time.sleep(0.5)
    finally:
        stop.set()
        t.join()
    assert sent[0] > 5
    assert s.running
    assert "exited with exit code" not in s.log(), s.log()[-3000:]
    for _ in range(10):
        with connect(s) as c:
            assert c.execute("SELECT 1").fetchone() == (1,)
    assert wait_for(lambda: "received SIGHUP" in s.log(), 5)


@pytest.mark.parametrize(("workers", "reuse_port"), [(1, False), (2, False), (2, True)])
def test_a_port_held_by_another_server_refuses_the_start(certs, pgtls_factory, workers, reuse_port):
    """Another listener on the port (even one with SO_REUSEPORT, as a second pgtls with workers would
    have): the server does not silently share it, it refuses to start as PostgreSQL does, and stops the
    cluster it had started."""
    import socket as socketlib

    s = tls_server(certs, pgtls_factory(), start=False, workers=str(workers))
    other = socketlib.socket()
    try:
        other.setsockopt(socketlib.SOL_SOCKET, socketlib.SO_REUSEADDR, 1)
        if reuse_port:
            other.setsockopt(socketlib.SOL_SOCKET, socketlib.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", s.port))
        other.listen(1)
        assert s.start(check=False) is False
    finally:
        other.close()
    log = s.log()
    assert 'LOG:  could not bind IPv4 address "127.0.0.1": Address already in use' in log
    assert 'WARNING:  could not create listen socket for "127.0.0.1"' in log
    assert f"Is another postmaster already running on port {s.port}?" in log
    assert "FATAL:  could not create any TCP/IP sockets" in log
    assert "cluster: LOG:  database system is shut down" in log
