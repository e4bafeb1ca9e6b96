"""pg_cancel_backend() from SQL: PostgreSQL's pg_signal_backend rules, and a real cancel of a running query."""

from __future__ import annotations

import threading
import time

import pytest

from pgtls.backends.embedded.features.cancel import match_cancel


@pytest.mark.parametrize(
    "sql,expected",
    [
        ("SELECT pg_cancel_backend(123)", (123, "pg_cancel_backend")),
        ("select pg_catalog.pg_cancel_backend(42) as ok;", (42, "ok")),
        ("SELECT pg_cancel_backend(CAST('7' AS INTEGER))", (7, "pg_cancel_backend")),
        ("SELECT pg_cancel_backend(99::int4)", (99, "pg_cancel_backend")),
        ("SELECT pg_cancel_backend(pid) FROM pg_stat_activity", None),
        ("SELECT 1, pg_cancel_backend(1)", None),
    ],
)
def test_match_cancel(sql, expected):
    assert match_cancel(sql) == expected


def test_cancel_running_query_from_another_session(pgtls_factory):
    import psycopg

    s = pgtls_factory().init(backend="duckdb")
    s.start()
    victim = psycopg.connect(s.dsn(), autocommit=True)
    killer = psycopg.connect(s.dsn(), autocommit=True)
    pid = victim.execute("SELECT pg_backend_pid()").fetchone()[0]
    outcome: list[str] = []

    def run() -> None:
        try:
            victim.execute("SELECT count(*) FROM range(10000000000) a")
            outcome.append("finished")
        except psycopg.Error as e:
            outcome.append(e.sqlstate or "")

    th = threading.Thread(target=run)
    th.start()
    time.sleep(0.5)
    assert killer.execute("SELECT pg_cancel_backend(%s)", (pid,)).fetchone() == (True,)
    th.join(20)
    assert outcome == ["57014"]
    assert victim.execute("SELECT 1").fetchone() == (1,)
    # an unknown pid: a WARNING and false, as PostgreSQL
    notices: list[str] = []
    killer.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
    assert killer.execute("SELECT pg_cancel_backend(1)").fetchone() == (False,)
    assert notices == ["PID 1 is not a PostgreSQL backend process"]
    victim.close()
    killer.close()


def test_non_superuser_may_not_cancel_others(pgtls_factory):
    import psycopg

    from pgtls.auth.roles import RoleStore

    s = pgtls_factory().init(backend="duckdb")
    RoleStore(s.datadir).create("plain", login=True)
    s.start()
    with psycopg.connect(s.dsn()) as su, psycopg.connect(s.dsn(user="plain")) as plain:
        su_pid = su.execute("SELECT pg_backend_pid()").fetchone()[0]
        with pytest.raises(
            psycopg.errors.InsufficientPrivilege, match="must be a superuser to cancel superuser query"
        ):
            plain.execute("SELECT pg_cancel_backend(%s)", (su_pid,))
