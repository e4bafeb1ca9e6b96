"""PGTLS_EVENT_LOOP: the server runs on uvloop by default (asyncio's own loop with PGTLS_EVENT_LOOP=asyncio),
relays as on asyncio's loop, and refuses a value it does not know."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

from tests.pgtlsserver import PgtlsServer, tls_server


def test_uvloop_relays_tls_sessions(pgtls_factory, certs, monkeypatch):
    pytest.importorskip("uvloop")  # in the test extra: installed by make test
    monkeypatch.setenv("PGTLS_EVENT_LOOP", "uvloop")
    s: PgtlsServer = tls_server(certs, pgtls_factory())
    pid = s.proc.pid
    maps = open(f"/proc/{pid}/maps").read()
    assert "uvloop" in maps, "the server did not load uvloop"
    with psycopg.connect(s.dsn(sslmode="require"), autocommit=True) as c:
        assert c.info.pgconn.ssl_in_use
        c.execute("CREATE TABLE t (i int)")
        with c.cursor().copy("COPY t FROM STDIN") as cp:
            for i in range(1000):
                cp.write_row((i,))
        assert c.execute("SELECT sum(i) FROM t").fetchone() == (499500,)
        c.execute("LISTEN ch")
        c.execute("NOTIFY ch, 'x'")
        assert [n.payload for n in c.notifies(timeout=2, stop_after=1)] == ["x"]


def test_uvloop_is_the_default_and_asyncio_the_off_switch(pgtls_factory, certs, monkeypatch):
    pytest.importorskip("uvloop")
    monkeypatch.delenv("PGTLS_EVENT_LOOP", raising=False)
    s: PgtlsServer = tls_server(certs, pgtls_factory())
    assert "uvloop" in open(f"/proc/{s.proc.pid}/maps").read(), "the default is uvloop when installed"
    monkeypatch.setenv("PGTLS_EVENT_LOOP", "asyncio")
    a: PgtlsServer = tls_server(certs, pgtls_factory())
    assert "uvloop" not in open(f"/proc/{a.proc.pid}/maps").read()
    with psycopg.connect(a.dsn(sslmode="require"), autocommit=True) as c:
        assert c.execute("SELECT 1").fetchone() == (1,)


def test_unknown_event_loop_is_refused(pgtls_factory, monkeypatch):
    s: PgtlsServer = pgtls_factory().init()
    monkeypatch.setenv("PGTLS_EVENT_LOOP", "trio")
    r = subprocess.run(
        [sys.executable, "-m", "pgtls", "serve", "-D", str(s.datadir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode != 0 and "PGTLS_EVENT_LOOP must be asyncio or uvloop, not 'trio'" in r.stderr


def test_a_lone_handshake_stays_on_the_loop_and_a_crowded_one_goes_to_a_thread(pgtls_factory, certs):
    """The TLS handshake's public-key step goes to a worker thread only when another connection shares the
    loop (it must not wait behind the signature); a lone connection's handshake runs on the loop, saving the
    hand-off.  The worker pool starts its first thread at its first task, so the process's thread count
    shows which happened."""
    s: PgtlsServer = tls_server(certs, pgtls_factory())
    assert s.proc is not None
    tasks = f"/proc/{s.proc.pid}/task"
    before = len(os.listdir(tasks))
    for _ in range(3):
        with psycopg.connect(s.dsn(sslmode="require")) as c:
            assert c.execute("SELECT 1").fetchone() == (1,)
    assert len(os.listdir(tasks)) == before, "a lone client's handshake went to a worker thread"
    with psycopg.connect(s.dsn(sslmode="require")) as held, psycopg.connect(s.dsn(sslmode="require")) as c:
        assert c.execute("SELECT 1").fetchone() == held.execute("SELECT 1").fetchone()
    assert len(os.listdir(tasks)) > before, "a handshake beside another connection ran on the loop"
