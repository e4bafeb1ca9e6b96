"""Real clients (psql, psycopg text and binary, asyncpg, pg8000) against `pgtls serve` with the
embedded DuckDB backend, over TLS."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import threading
import time
import uuid
from decimal import Decimal

import asyncpg
import pg8000.native
import psycopg
import pytest

from tests.conftest import run_psql
from tests.pgtlsserver import tls_server

VALUES = (
    1, 2**40, 1.5, Decimal("3.25"), "héllo", b"\x00\x01", dt.date(2024, 1, 2), dt.datetime(2024, 1, 2, 3, 4, 5, 6),
    dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC), dt.timedelta(days=1, seconds=5),
    uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), [1, 2, None], True,
)  # fmt: skip
CREATE = ("CREATE TABLE ty (i int, b bigint, f float8, n numeric(10,2), t text, bt bytea, d date, ts timestamp, "
          "tz timestamptz, iv interval, u uuid, arr int[], bo bool)")  # fmt: skip


@pytest.fixture
def server(pgtls_factory, certs):
    return tls_server(certs, pgtls_factory(), backend="duckdb")


def dsn(server, certs, **kw):
    return server.dsn(sslmode="verify-ca", sslrootcert=certs.path("root_ca.crt"), **kw)


def ssl_ctx(certs) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=certs.path("root_ca.crt"))
    ctx.check_hostname = False
    return ctx


def test_psql(server, certs, client_home):
    conn = dsn(server, certs)
    r = run_psql(
        conn, "CREATE TABLE t (a int PRIMARY KEY, b text); INSERT INTO t VALUES (1, 'x')", home=client_home
    )
    assert r.ok, r.stderr
    r = run_psql(conn, "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()", home=client_home)
    assert r.stdout == "t|TLSv1.3"
    for meta in ("\\conninfo", "\\l", "\\dt", "\\d t", "\\dn", "\\du", "\\x", "\\df", "\\dv", "\\di"):
        r = run_psql(conn, meta, home=client_home)
        assert r.ok, (meta, r.stderr)
    assert "public|t|table" in run_psql(conn, "\\dt", home=client_home).stdout
    r = run_psql(conn, "SELECT 1/0", home=client_home)
    assert not r.ok and "division by zero" in r.stderr


def test_psql_copy_both_ways(server, certs, client_home, tmp_path):
    conn = dsn(server, certs)
    src = tmp_path / "in.csv"
    src.write_text('a,b\n1,one\n2,"two, too"\n')
    out = tmp_path / "out.txt"
    r = run_psql(conn, "CREATE TABLE c (a int, b text)", home=client_home)
    assert r.ok, r.stderr
    r = run_psql(conn, f"\\copy c FROM '{src}' WITH (FORMAT csv, HEADER)", home=client_home)
    assert r.ok and r.stdout == "COPY 2", r.stderr
    r = run_psql(conn, f"\\copy c TO '{out}'", home=client_home)
    assert r.ok, r.stderr
    assert out.read_text() == "1\tone\n2\ttwo, too\n"


@pytest.mark.parametrize("binary", [False, True])
def test_psycopg_types(server, certs, binary):
    with psycopg.connect(dsn(server, certs), autocommit=True) as c:
        c.execute(CREATE)
        cur = c.cursor(binary=binary)
        cur.execute("INSERT INTO ty VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", VALUES)
        assert cur.execute("SELECT * FROM ty").fetchone() == VALUES
        assert [d.type_code for d in cur.description] == [
            23,
            20,
            701,
            1700,
            25,
            17,
            1082,
            1114,
            1184,
            1186,
            2950,
            1007,
            16,
        ]


def test_psycopg_transactions_and_errors(server, certs):
    with psycopg.connect(dsn(server, certs)) as c:
        c.execute("CREATE TABLE t (a int PRIMARY KEY)")
        c.commit()
        with pytest.raises(psycopg.errors.UniqueViolation):
            c.execute("INSERT INTO t VALUES (1), (1)")
        c.rollback()
        with c.transaction():
            c.execute("INSERT INTO t VALUES (2)")
        assert c.execute("SELECT count(*) FROM t").fetchone() == (1,)
        c.commit()
        with pytest.raises(psycopg.errors.UndefinedTable):
            c.execute("SELECT * FROM nope")
        c.rollback()
        with pytest.raises(psycopg.errors.SyntaxError):
            c.execute("SELEC 1")


def test_psycopg_copy(server, certs):
    with psycopg.connect(dsn(server, certs), autocommit=True) as c:
        c.execute("CREATE TABLE big (a int, b text)")
        with c.cursor().copy("COPY big FROM STDIN") as cp:
            for i in range(5000):
                cp.write_row((i, f"row {i}"))
        assert c.execute("SELECT count(*), sum(a) FROM big").fetchone() == (5000, sum(range(5000)))
        with c.cursor().copy("COPY (SELECT * FROM big ORDER BY a LIMIT 2) TO STDOUT") as cp:
            assert list(cp.rows()) == [("0", "row 0"), ("1", "row 1")]


def test_cancel_with_psycopg(server, certs):
    with psycopg.connect(dsn(server, certs), autocommit=True) as c:
        threading.Timer(0.5, c.cancel).start()
        started = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled):
            c.execute("SELECT count(*) FROM range(100000000000) a")
        assert time.monotonic() - started < 10
        assert c.execute("SELECT 1").fetchone() == (1,)


def test_concurrent_updates_get_40001(server, certs):
    with psycopg.connect(dsn(server, certs), autocommit=True) as setup:
        setup.execute("CREATE TABLE acct (id int PRIMARY KEY, bal int)")
        setup.execute("INSERT INTO acct VALUES (1, 100)")
    a = psycopg.connect(dsn(server, certs))
    b = psycopg.connect(dsn(server, certs))
    try:
        a.execute("UPDATE acct SET bal = bal - 10 WHERE id = 1")
        with pytest.raises(psycopg.errors.SerializationFailure):
            b.execute("UPDATE acct SET bal = bal - 20 WHERE id = 1")
        a.commit()
        b.rollback()
        assert a.execute("SELECT bal FROM acct").fetchone() == (90,)
    finally:
        a.close()
        b.close()


def test_asyncpg(server, certs):
    async def go() -> None:
        con = await asyncpg.connect(host="127.0.0.1", port=server.port, user=server.superuser,
                                    database="postgres", ssl=ssl_ctx(certs))  # fmt: skip
        try:
            await con.execute(CREATE)
            await con.execute("INSERT INTO ty VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                              *VALUES)  # fmt: skip
            row = await con.fetchrow("SELECT * FROM ty WHERE i = $1", 1)
            assert tuple(row) == VALUES
            assert await con.fetchval("SELECT $1::int + 1", 41) == 42
            async with con.transaction():
                await con.execute("INSERT INTO ty (i) VALUES ($1)", 2)
            assert await con.fetchval("SELECT count(*) FROM ty") == 2
            with pytest.raises(asyncpg.UndefinedTableError):
                await con.fetch("SELECT * FROM nope")
        finally:
            await con.close()

    asyncio.run(go())


def test_pg8000(server, certs):
    con = pg8000.native.Connection(server.superuser, host="127.0.0.1", port=server.port, database="postgres",
                                   ssl_context=ssl_ctx(certs))  # fmt: skip
    try:
        con.run(CREATE)
        con.run("INSERT INTO ty (i, t, tz, n) VALUES (:i, :t, :tz, :n)", i=1, t="x",
                tz=dt.datetime(2024, 1, 2, tzinfo=dt.UTC), n=Decimal("1.25"))  # fmt: skip
        assert con.run("SELECT i, t, tz, n FROM ty") == [
            [1, "x", dt.datetime(2024, 1, 2, tzinfo=dt.UTC), Decimal("1.25")]
        ]
        assert con.run("SHOW TimeZone") == [["UTC"]]
    finally:
        con.close()


def test_psycopg_server_side_cursor(server, certs):
    with psycopg.connect(dsn(server, certs)) as c:
        with c.cursor(name="big") as cur:
            cur.itersize = 100
            cur.execute("SELECT i, i * 2 AS twice FROM range(1000) t(i)")
            assert [d.name for d in cur.description] == ["i", "twice"]
            assert sum(1 for _ in cur) == 1000
        c.commit()
        with c.cursor(name="held", withhold=True) as cur:
            cur.execute("SELECT 1 AS one")
            assert cur.fetchall() == [(1,)]


def test_statement_timeout_and_set(server, certs):
    with psycopg.connect(dsn(server, certs), autocommit=True) as c:
        c.execute("SET statement_timeout = '200ms'")
        with pytest.raises(psycopg.errors.QueryCanceled, match="statement timeout"):
            c.execute("SELECT count(*) FROM range(100000000000) a")
        c.execute("SET TimeZone = 'America/New_York'")
        assert c.info.parameter_status("TimeZone") == "America/New_York"
        assert c.execute("SELECT TIMESTAMPTZ '2024-01-02 03:04:05+00'::text").fetchone() == (
            "2024-01-01 22:04:05-05",
        )


ROLE_PASSWORD = "Sw0rdf1sh-over-SQL"


def test_psql_create_role_then_scram_login(pgtls_factory, certs, client_home):
    hba = ("local all all trust\nhostssl all postgres 127.0.0.1/32 trust\n"
           "hostssl all all 127.0.0.1/32 scram-sha-256\n")  # fmt: skip
    server = tls_server(certs, pgtls_factory(), start=False, backend="duckdb")
    server.write("pg_hba.conf", hba)
    server.start()
    su = dsn(server, certs)
    r = run_psql(su, f"CREATE ROLE app LOGIN PASSWORD '{ROLE_PASSWORD}'", home=client_home)
    assert r.ok and r.stdout == "CREATE ROLE", r.stderr
    r = run_psql(
        su, "SELECT rolname, rolcanlogin, rolsuper FROM pg_roles WHERE rolname = 'app'", home=client_home
    )
    assert r.stdout == "app|t|f"
    assert "app" in run_psql(su, "\\du", home=client_home).stdout
    r = run_psql(su, "SELECT type, user_name, auth_method FROM pg_hba_file_rules ORDER BY rule_number",
                 home=client_home)  # fmt: skip
    assert r.stdout.splitlines() == [
        "local|{all}|trust",
        "hostssl|{postgres}|trust",
        "hostssl|{all}|scram-sha-256",
    ]
    # the new role logs in with SCRAM at once (the server reads the same role store)
    app = dsn(server, certs, user="app")
    r = run_psql(app, "SELECT current_user, session_user, ssl_is_used()", home=client_home,
                 env={"PGPASSWORD": ROLE_PASSWORD})  # fmt: skip
    assert r.ok and r.stdout == "app|app|t", r.stderr
    r = run_psql(app, "SELECT 1", home=client_home, env={"PGPASSWORD": "wrong"})
    assert not r.ok and 'password authentication failed for user "app"' in r.stderr
    # a non-superuser changes their own password, and may not read pg_authid
    r = run_psql(app, "ALTER ROLE app PASSWORD 'second-Passw0rd'", home=client_home,
                 env={"PGPASSWORD": ROLE_PASSWORD})  # fmt: skip
    assert r.ok, r.stderr
    r = run_psql(app, "SELECT * FROM pg_authid", home=client_home, env={"PGPASSWORD": "second-Passw0rd"})
    assert not r.ok and "permission denied for table pg_authid" in r.stderr
    # a mistyped statement with a password: the error names no password
    r = run_psql(su, f"CREATE ROLE x PASWORD '{ROLE_PASSWORD}'", home=client_home)
    assert not r.ok and 'syntax error at or near "PASWORD"' in r.stderr
    server.stop()
    log = server.full_log()
    assert ROLE_PASSWORD not in log and "second-Passw0rd" not in log
    assert ROLE_PASSWORD not in (server.datadir / "global" / "pg_authid.json").read_text()
