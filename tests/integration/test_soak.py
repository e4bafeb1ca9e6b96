"""Soak and fault tests, bounded in count and time (bench/soak.py runs the long versions).

- many TLS connect/disconnect cycles: descriptors come back to where they were, memory stays flat;
- slowloris at the pre-authentication cap: refused at once beyond it, real clients log in once the
  holders time out;
- a reload storm (SIGHUP every 50 ms while the certificate, pg_hba.conf and pg_ident.conf change) under a
  pgbench connection load: no failed login, no dropped session.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import psycopg
import pytest

from tests.rawclient import Raw, first_error
from tests.soakload import (
    client_backends,
    fd_count,
    pgbench_connects,
    processed,
    rss_kb,
    select1_script,
    soak_server,
)

BACKENDS = ["postgresql", "duckdb"]


def pgbench_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["HOME"] = str(home)
    return env


def upstream_sessions(s, backend: str) -> int:  # noqa: ANN001
    """The relay's upstream sessions to its cluster (each one a descriptor of pgtls's), 0 for DuckDB."""
    return client_backends(s) if backend == "postgresql" else 0


def connect_cycles(port: int, home: Path, count: int, tmp: Path) -> tuple[int, int]:
    """``count`` TLS connections with pgbench -C (SELECT 1 each); (processed, failed)."""
    r = pgbench_connects(
        port, select1_script(tmp), ["-t", str(max(1, count // 4))], pgbench_env(home), timeout=600
    )
    counts = processed(r.stdout)
    assert counts, r.stdout + r.stderr
    return counts


@pytest.mark.parametrize("backend", BACKENDS)
def test_connect_cycles_leave_no_descriptor_and_flat_memory(
    pgtls_factory, certs, client_home, tmp_path, backend
):
    s = soak_server(certs, pgtls_factory(), backend)
    assert s.proc is not None
    pid = s.proc.pid
    # warm up: pools reach their working size (4 clients at once), caches, lazy imports
    connect_cycles(s.port, client_home, 1000, tmp_path)
    time.sleep(1)
    fds, rss, pooled = fd_count(pid), rss_kb(pid), upstream_sessions(s, backend)
    done, failed = connect_cycles(s.port, client_home, 2000, tmp_path)
    assert (done, failed) == (2000, 0)

    def leaked() -> (
        int
    ):  # descriptors beyond those of pooled upstream sessions (a pool may still grow by one)
        return (fd_count(pid) - upstream_sessions(s, backend)) - (fds - pooled)

    deadline = time.monotonic() + 10
    while leaked() > 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert leaked() <= 0, (fds, pooled, fd_count(pid), upstream_sessions(s, backend))
    grown = rss_kb(pid) - rss
    assert grown < 8 * 1024, f"RSS grew by {grown} kB over 2,000 connections"


@pytest.mark.parametrize("backend", BACKENDS)
def test_slowloris_at_the_cap_then_real_clients(pgtls_factory, backend):
    s = pgtls_factory().init(backend=backend)
    s.conf(max_connections="5", superuser_reserved_connections="0", authentication_timeout="2")
    s.start()
    holders = []
    for _ in range(10):  # the cap: 2 x max_connections
        r = Raw(s.port)
        r.send(b"\x00\x00")  # half a length word, then nothing
        holders.append(r)
    time.sleep(0.3)
    late = Raw(s.port)
    err = first_error(late.recv_all(timeout=3))
    assert err is not None and (err["C"], err["M"]) == ("53300", "sorry, too many clients already")
    late.close()
    # the holders are dropped at authentication_timeout; then a real client gets in
    assert all(r.closed_by_server(timeout=4) for r in holders)
    with psycopg.connect(s.dsn(connect_timeout=5)) as c:
        assert c.execute("select 1").fetchone() == (1,)


@pytest.mark.parametrize("backend", BACKENDS)
def test_reload_storm_under_load(pgtls_factory, certs, client_home, tmp_path, backend):
    """SIGHUP every 50 ms for 5 s while server.crt/key alternate between two certificates of the same CA, and
    pg_hba.conf and pg_ident.conf alternate between two equivalent versions: pgbench -C sees no failure, and
    a session opened before the storm is still there after it."""
    s = soak_server(certs, pgtls_factory(), backend)
    assert s.proc is not None
    held = psycopg.connect(s.dsn(sslmode="require"))
    held.execute("select 1")
    files = [
        (certs.path("server-chain.crt"), certs.path("server.key")),
        (certs.path("server2-chain.crt"), certs.path("server2.key")),
    ]
    hbas = [
        "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
        "# reloaded\nlocal all all trust\nhostssl all all 127.0.0.0/8 trust\n",
    ]
    idents = ["m a a\n", "# reloaded\nm b b\n"]
    stop = threading.Event()
    reloads = 0

    def storm() -> None:
        nonlocal reloads
        i = 0
        while not stop.is_set():
            crt, key = files[i % 2]
            for src, name, mode in ((crt, "server.crt", 0o644), (key, "server.key", 0o600)):
                tmp = s.datadir / f".{name}.new"
                shutil.copy(src, tmp)
                tmp.chmod(mode)
                os.replace(tmp, s.datadir / name)  # atomically, as an operator's tooling would
            for text, name in ((hbas[i % 2], "pg_hba.conf"), (idents[i % 2], "pg_ident.conf")):
                tmp = s.datadir / f".{name}.new"
                tmp.write_text(text)
                os.replace(tmp, s.datadir / name)
            os.kill(s.proc.pid, signal.SIGHUP)
            reloads += 1
            i += 1
            time.sleep(0.05)

    t = threading.Thread(target=storm)
    t.start()
    try:
        r = pgbench_connects(
            s.port, select1_script(tmp_path), ["-T", "5"], pgbench_env(client_home), timeout=120
        )
    finally:
        stop.set()
        t.join(10)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "number of failed transactions: 0 (0.000%)" in r.stdout, r.stdout
    done, _ = processed(r.stdout) or (0, 0)
    print(f"reload storm ({s.datadir}): {reloads} reloads, {done} TLS logins, 0 failed")
    assert done > 100 and reloads > 50
    assert held.execute("select 2").fetchone() == (2,)  # the session from before the storm is still there
    held.close()
    assert "was not reloaded" not in s.log()
