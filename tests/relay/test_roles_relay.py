"""Roles and passwords live in the managed PostgreSQL: pgtls authenticates against its pg_authid, per login.

Each scenario runs the same SQL and the same logins against pgtls (relay) and against the same
PostgreSQL run directly, both with the same pg_hba.conf rules, and compares the outcome: the SQLSTATE
and message the client sees, and the server log's DETAIL where PostgreSQL gives one.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Iterator

import asyncpg
import psycopg
import pytest

from tests.pgserver import RealPostgres, managed_pg_bin
from tests.pgtlsserver import PgtlsServer
from tests.rawclient import Raw, parse_messages

HBA = """\
local all all trust
host all postgres 127.0.0.1/32 trust
host samerole all 127.0.0.1/32 trust
host all +staff 127.0.0.1/32 trust
host all md5user 127.0.0.1/32 md5
host all all 127.0.0.1/32 scram-sha-256
"""


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[PgtlsServer, RealPostgres]]:
    pg = RealPostgres(bindir=managed_pg_bin())
    ours = PgtlsServer()
    try:
        pg.init()
        pg.write("pg_hba.conf", HBA)
        pg.start()
        ours.init()
        ours.write("pg_hba.conf", HBA)
        ours.start()
        yield ours, pg
    finally:
        print(f"--- pgtls log ---\n{ours.full_log()[-5000:]}")
        ours.cleanup()
        pg.cleanup()


def admin(port: int, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres", autocommit=True) as c:
        cur = c.execute(sql)
        return cur.fetchall() if cur.description else []


def both(pair: tuple[PgtlsServer, RealPostgres], sql: str) -> None:
    """Run ``sql`` through pgtls and directly (roles are cluster-wide: each side has its own cluster)."""
    for port in (pair[0].port, pair[1].port):
        admin(port, sql)


def login(
    port: int, user: str, password: str | None = None, dbname: str = "postgres"
) -> tuple[str, str] | None:
    """None on success, else (SQLSTATE, message) of the server's FATAL (asyncpg reports both)."""

    async def go() -> None:
        c = await asyncpg.connect(
            host="127.0.0.1",
            port=port,
            user=user,
            password=password or "",
            database=dbname,
            ssl=False,
            timeout=10,
        )
        try:
            await c.fetchval("select 1")
        finally:
            await c.close()

    try:
        asyncio.run(go())
        return None
    except asyncpg.PostgresError as e:
        return e.sqlstate, str(e)


def same(
    pair: tuple[PgtlsServer, RealPostgres], user: str, password: str | None = None, dbname: str = "postgres"
) -> tuple[str, str] | None:
    ours = login(pair[0].port, user, password, dbname)
    theirs = login(pair[1].port, user, password, dbname)
    assert ours == theirs, f"pgtls: {ours}  PostgreSQL: {theirs}"
    return ours


def test_alter_role_password_old_fails_at_once(pair):
    both(pair, "CREATE ROLE alice LOGIN PASSWORD 'old'")
    assert same(pair, "alice", "old") is None
    both(pair, "ALTER ROLE alice PASSWORD 'new'")
    assert same(pair, "alice", "old") == ("28P01", 'password authentication failed for user "alice"')
    assert same(pair, "alice", "new") is None


def test_md5_secret_from_sql_works(pair):
    both(pair, "SET password_encryption = 'md5'; CREATE ROLE md5user LOGIN PASSWORD 'pw5'")
    assert same(pair, "md5user", "pw5") is None
    assert same(pair, "md5user", "nope") == ("28P01", 'password authentication failed for user "md5user"')


def test_drop_role_gets_mock_exchange_and_postgres_failure(pair):
    both(pair, "CREATE ROLE dropme LOGIN PASSWORD 'pw'")
    assert same(pair, "dropme", "pw") is None
    both(pair, "DROP ROLE dropme")
    assert same(pair, "dropme", "pw") == ("28P01", 'password authentication failed for user "dropme"')
    # The exchange for an unknown role is a (mock) SCRAM one, as PostgreSQL's: AuthenticationSASL first.
    for port in (pair[0].port, pair[1].port):
        r = Raw(port)
        body = struct.pack("!i", 196608) + b"user\0dropme\0database\0postgres\0\0"
        r.send(struct.pack("!i", len(body) + 4) + body)
        head = r.recv_exact(5)
        kind, payload = parse_messages(head + r.recv_exact(struct.unpack("!i", head[1:])[0] - 4))[0]
        assert kind == b"R" and struct.unpack("!i", payload[:4])[0] == 10, (port, kind, payload)
        assert b"SCRAM-SHA-256\0" in payload
        r.close()
    deadline = time.monotonic() + 5
    while 'Role "dropme" does not exist.' not in pair[0].full_log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert 'Role "dropme" does not exist.' in pair[0].full_log()


def test_nologin_role(pair):
    both(pair, "CREATE ROLE nolog NOLOGIN PASSWORD 'pw'")
    assert same(pair, "nolog", "pw") == ("28000", 'role "nolog" is not permitted to log in')


def test_expired_password(pair):
    both(pair, "CREATE ROLE expired LOGIN PASSWORD 'pw' VALID UNTIL '2001-01-01'")
    assert same(pair, "expired", "pw") == ("28P01", 'password authentication failed for user "expired"')
    both(pair, "ALTER ROLE expired VALID UNTIL 'infinity'")
    assert same(pair, "expired", "pw") is None


def test_connection_limit(pair):
    both(pair, "CREATE ROLE limited LOGIN PASSWORD 'pw' CONNECTION LIMIT 1")
    held = [
        psycopg.connect(host="127.0.0.1", port=p.port, user="limited", password="pw", dbname="postgres")
        for p in pair
    ]
    try:
        assert same(pair, "limited", "pw") == ("53300", 'too many connections for role "limited"')
    finally:
        for c in held:
            c.close()
    # A closed connection leaves asynchronously (in PostgreSQL too: the backend exits after the client
    # closed); wait until both have noticed, then the login succeeds on both.
    deadline = time.monotonic() + 5
    while login(pair[0].port, "limited", "pw") is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert same(pair, "limited", "pw") is None


def test_group_membership_and_samerole_from_sql(pair):
    both(pair, "CREATE ROLE staff NOLOGIN; CREATE ROLE carol LOGIN; CREATE ROLE dave LOGIN")
    assert same(pair, "carol", "wrong") == ("28P01", 'password authentication failed for user "carol"')
    both(pair, "GRANT staff TO carol")
    assert same(pair, "carol") is None  # +staff: trust
    both(pair, "REVOKE staff FROM carol")
    # back to the scram line (a wrong password)
    assert same(pair, "carol", "wrong") == ("28P01", 'password authentication failed for user "carol"')
    both(pair, "CREATE DATABASE dave_db")
    both(pair, "CREATE ROLE dave_db NOLOGIN; GRANT dave_db TO dave")
    assert same(pair, "dave", dbname="dave_db") is None  # samerole


def test_unknown_role(pair):
    assert same(pair, "nobody", "pw") == ("28P01", 'password authentication failed for user "nobody"')


def test_no_secret_cache_across_logins(pair):
    """A secret fetched for one login is never reused: rotate between two logins of the same client."""
    ours, _ = pair
    admin(ours.port, "CREATE ROLE rotor LOGIN PASSWORD 'a'")
    for i in range(5):
        assert login(ours.port, "rotor", "a" if i % 2 == 0 else "b") is None
        admin(ours.port, f"ALTER ROLE rotor PASSWORD '{'b' if i % 2 == 0 else 'a'}'")
        assert login(ours.port, "rotor", "a" if i % 2 == 0 else "b") is not None
