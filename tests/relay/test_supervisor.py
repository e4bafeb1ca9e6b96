"""The managed PostgreSQL as a supervised child: private socket only, restarts, reload, stop modes; each
with one pgtls process and with two worker processes (the supervisor then owns the cluster and tells the
workers when it restarts)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from tests.pgtlsserver import PgtlsServer
from tests.relay.util import wait_for


def postmaster_pid(s: PgtlsServer) -> int:
    return int((s.datadir / "cluster" / "postmaster.pid").read_text().splitlines()[0])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


def conn(s: PgtlsServer, **kw: object) -> psycopg.Connection:
    return psycopg.connect(
        host="127.0.0.1",
        port=s.port,
        user="postgres",
        dbname="postgres",
        autocommit=True,
        connect_timeout=10,
        **kw,
    )


def _start(pgtls_factory, workers: int) -> PgtlsServer:
    s = pgtls_factory().init()
    s.conf(workers=str(workers))
    s.start()
    return s


@pytest.fixture
def one_process(pgtls_factory) -> PgtlsServer:
    return _start(pgtls_factory, 1)


@pytest.fixture(params=[1, 2], ids=["one-process", "two-workers"])
def server(pgtls_factory, request) -> PgtlsServer:
    """For what the supervisor of worker processes does differently: the cluster's restarts, reload, stop."""
    return _start(pgtls_factory, request.param)


def test_cluster_has_no_tcp_port_and_a_private_socket(one_process):
    server = one_process
    pid = postmaster_pid(server)
    lines = (server.datadir / "cluster" / "postmaster.pid").read_text().splitlines()
    assert lines[5].strip() == ""  # listen_addresses: none
    sockdir = Path(lines[4])
    assert (sockdir.stat().st_mode & 0o777) == 0o700
    assert (sockdir / ".s.PGSQL.5432").exists()
    # No TCP socket in LISTEN state belongs to the postmaster.
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd)
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            assert not (cols[3] == "0A" and cols[9] in inodes), f"postmaster listens on TCP: {line}"
    with conn(server) as c:
        assert c.execute("SHOW listen_addresses").fetchone() == ("",)
        assert (
            c.execute("SELECT setting FROM pg_settings WHERE name = 'hba_file'")
            .fetchone()[0]
            .endswith("cluster/pg_hba.conf")
        )


def test_kill_9_under_load_restarts_and_keeps_commits(server):
    with conn(server) as c:
        c.execute("CREATE TABLE kept (i int)")
        c.execute("INSERT INTO kept SELECT generate_series(1, 1000)")
    stop = threading.Event()
    errors: list[str] = []

    def load() -> None:
        while not stop.is_set():
            try:
                with conn(server) as c:
                    while not stop.is_set():
                        c.execute("SELECT count(*) FROM kept")
            except psycopg.Error as e:
                errors.append(str(e).strip())
                time.sleep(0.05)

    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    old = postmaster_pid(server)
    os.kill(old, signal.SIGKILL)
    t0 = time.monotonic()
    assert wait_for(lambda: "exited with exit code -9; restarting it" in server.log(), timeout=10)
    assert wait_for(lambda: "the managed PostgreSQL is running again" in server.log(), timeout=30), (
        server.log()
    )
    with conn(server) as c:
        assert c.execute("SELECT count(*) FROM kept").fetchone() == (1000,)
    assert time.monotonic() - t0 < 30
    stop.set()
    for t in threads:
        t.join(10)
    assert errors, "the clients saw nothing of the crash"
    expected = (
        "terminating connection",
        "the database system is",
        "the PostgreSQL server behind pgtls",
        "server closed the connection",
        "consuming input failed",
        "connection",
    )
    assert all(any(x in e for x in expected) for e in errors), errors
    assert postmaster_pid(server) != old


def test_57p03_while_the_cluster_is_down(server):
    # Stop the postmaster (not pgtls): until the supervisor has it back, logins get 57P03.
    os.kill(postmaster_pid(server), signal.SIGKILL)
    saw = None
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and saw is None:
        try:
            conn(server).close()
        except psycopg.OperationalError as e:
            if "the database system is" in str(e):
                saw = str(e)
        time.sleep(0.02)
    assert saw is not None and ("starting up" in saw or "not yet accepting" in saw or "recovery" in saw), saw
    assert wait_for(lambda: "the managed PostgreSQL is running again" in server.log(), timeout=30)
    conn(server).close()


def test_reload_reaches_the_cluster(server):
    with conn(server) as c:
        assert c.execute("SHOW work_mem").fetchone() == ("4MB",)
    with open(server.datadir / "cluster" / "postgresql.conf", "a") as f:
        f.write("work_mem = '7MB'\n")
    r = subprocess.run(
        [sys.executable, "-m", "pgtls", "reload", "-D", str(server.datadir)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: 'parameter "work_mem" changed to "7MB"' in server.log(), timeout=10)
    with conn(server) as c:
        assert c.execute("SHOW work_mem").fetchone() == ("7MB",)


@pytest.mark.parametrize("mode", ["smart", "fast", "immediate"])
def test_stop_modes_stop_the_cluster(server, mode):
    pm = postmaster_pid(server)
    held = conn(server)
    held.execute("SELECT 1")
    stopper = subprocess.Popen(
        [sys.executable, "-m", "pgtls", "stop", "-D", str(server.datadir), "-m", mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if mode == "smart":
        time.sleep(1.0)
        assert stopper.poll() is None and alive(pm)  # a smart shutdown waits for the client
        assert held.execute("SELECT 2").fetchone() == (2,)
        held.close()
    else:
        with pytest.raises(psycopg.OperationalError) as ei:
            for _ in range(50):
                held.execute("SELECT 1")
                time.sleep(0.1)
        if mode == "fast":
            assert "terminating connection due to administrator command" in str(ei.value)
    out, err = stopper.communicate(timeout=60)
    assert stopper.returncode == 0, out + err
    assert wait_for(lambda: not alive(pm), timeout=15)
    assert server.proc is not None and server.proc.wait(15) == 0
    server.proc = None


def test_pgtls_killed_takes_the_cluster_down_and_restart_works(server):
    pm = postmaster_pid(server)
    assert server.proc is not None
    server.proc.kill()
    server.proc.wait(10)
    server.proc = None
    assert wait_for(lambda: not alive(pm), timeout=20)  # parent-death signal: fast shutdown
    server.start()
    with conn(server) as c:
        assert c.execute("SELECT 1").fetchone() == (1,)


def test_cluster_that_cannot_start_refuses_to_start_pgtls(pgtls_factory):
    s = pgtls_factory().init()
    with open(s.datadir / "cluster" / "postgresql.conf", "a") as f:
        f.write("shared_buffers = 'lots'\n")
    assert s.start(check=False) is False
    log = s.log()
    assert 'invalid value for parameter "shared_buffers": "lots"' in log
    assert "FATAL:  the managed PostgreSQL did not start" in log


def test_kill_9_during_pgbench_loses_no_commit(one_process):
    """The acceptance's run: pgbench TPC-B through pgtls, kill -9 of the managed PostgreSQL; pgbench sees errors,
    pgtls restarts the cluster, a new login works within seconds, and every transaction pgbench counted as
    committed is there (one pgbench_history row each)."""
    server = one_process
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    dsn = f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres"
    r = subprocess.run(
        ["pgbench", "-i", "-s", "1", "-q", dsn], capture_output=True, text=True, timeout=120, env=env
    )
    assert r.returncode == 0, r.stderr
    bench = subprocess.Popen(
        ["pgbench", "-n", "-c", "2", "-j", "2", "-T", "6", dsn],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    time.sleep(1.5)
    os.kill(postmaster_pid(server), signal.SIGKILL)
    out, err = bench.communicate(timeout=60)
    assert bench.returncode != 0 and "aborted" in err, (out, err)
    t0 = time.monotonic()
    assert wait_for(lambda: "the managed PostgreSQL is running again" in server.log(), timeout=30)
    with conn(server) as c:
        history = c.execute("SELECT count(*) FROM pgbench_history").fetchone()[0]
    assert time.monotonic() - t0 < 30
    m = re.search(r"number of transactions actually processed: (\d+)", out)
    committed = int(m.group(1)) if m else 0
    assert committed > 0 and history >= committed, (committed, history, out)
