"""Issue 5 acceptance: what a client was told is committed survives `kill -9` of `pgtls serve` (embedded
DuckDB backend) and a restart; what was not committed is gone."""

from __future__ import annotations

import signal

import psycopg

from tests.pgtlsserver import tls_server


def _dsn(s, certs, **kw):
    return s.dsn(host="localhost", hostaddr="127.0.0.1", sslmode="verify-full",
                 sslrootcert=certs.path("root_ca.crt"), **kw)  # fmt: skip


def test_kill_9_keeps_committed_and_drops_uncommitted(pgtls_factory, certs):
    s = tls_server(certs, pgtls_factory(), backend="duckdb")
    with psycopg.connect(_dsn(s, certs), autocommit=True) as c:
        c.execute("CREATE TABLE kept (id int PRIMARY KEY, t text, ts timestamptz)")
        c.execute("INSERT INTO kept VALUES (1, 'autocommit', '2024-01-02 03:04:05+00')")
        with c.transaction():
            c.execute("INSERT INTO kept VALUES (2, 'explicit txn', NULL)")
            c.execute("UPDATE kept SET t = 'updated' WHERE id = 1")
        c.execute("CREATE TABLE made_in_txn_then_rolled_back (a int)")
        c.execute("DROP TABLE made_in_txn_then_rolled_back")

    open_txn = psycopg.connect(_dsn(s, certs))  # left open across the kill: never committed
    open_txn.execute("INSERT INTO kept VALUES (3, 'uncommitted', NULL)")
    open_txn.execute("CREATE TABLE never_committed (a int)")
    rolled = psycopg.connect(_dsn(s, certs))
    rolled.execute("INSERT INTO kept VALUES (4, 'rolled back', NULL)")
    rolled.rollback()
    rolled.close()

    assert s.proc is not None
    s.proc.send_signal(signal.SIGKILL)
    assert s.proc.wait(10) == -signal.SIGKILL
    try:
        open_txn.close()
    except psycopg.Error:
        pass

    s.start()
    with psycopg.connect(_dsn(s, certs)) as c:
        assert c.execute("SELECT id, t, ts::text FROM kept ORDER BY id").fetchall() == [
            (1, "updated", "2024-01-02 03:04:05+00"), (2, "explicit txn", None)]  # fmt: skip
        assert c.execute("SELECT count(*) FROM pg_tables WHERE tablename = 'never_committed'").fetchone() == (
            0,
        )
        c.rollback()
        # ... and the restarted server takes new writes that in turn survive a second kill.
        c.execute("INSERT INTO kept VALUES (5, 'after restart', NULL)")
        c.commit()
    s.proc.send_signal(signal.SIGKILL)
    s.proc.wait(10)
    s.start()
    with psycopg.connect(_dsn(s, certs)) as c:
        assert [r[0] for r in c.execute("SELECT id FROM kept ORDER BY id")] == [1, 2, 5]
