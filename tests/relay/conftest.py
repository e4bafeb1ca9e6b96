"""Fixtures of the relay tests. ``upstream``: a PostgreSQL 15 with its own TLS as a network upstream, with
roles for every authentication method, the certificate set's server chain, and client certificates accepted
for ``ssltestuser``."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tests import prereq
from tests.pgserver import RealPostgres, have_postgres

HBA = """\
local all all trust
hostssl all scramu 127.0.0.1/32 scram-sha-256
hostssl all md5u 127.0.0.1/32 md5
hostssl all pwu 127.0.0.1/32 password
hostssl all tru 127.0.0.1/32 trust
host all plainu 127.0.0.1/32 trust
hostssl all ssltestuser 127.0.0.1/32 cert
hostssl all all 127.0.0.1/32 scram-sha-256
"""

ROLES = [
    "CREATE ROLE scramu LOGIN PASSWORD 'scram-secret'",
    "SET password_encryption = 'md5'",
    "CREATE ROLE md5u LOGIN PASSWORD 'md5-secret'",
    "RESET password_encryption",
    "CREATE ROLE pwu LOGIN PASSWORD 'clear-secret'",
    "CREATE ROLE tru LOGIN",
    "CREATE ROLE plainu LOGIN",
    "CREATE ROLE ssltestuser LOGIN",
    "CREATE ROLE pgtls_auth LOGIN SUPERUSER PASSWORD 'auth-secret'",
    "CREATE ROLE alice LOGIN PASSWORD 'alice-secret'",
]


@pytest.fixture(scope="module")
def upstream(certs) -> Iterator[RealPostgres]:
    if not have_postgres():
        prereq.missing("PostgreSQL 15 server binaries are not installed")
    pg = RealPostgres().init()
    pg.copy_in(certs.path("server-chain.crt"), "server.crt", 0o644)
    pg.copy_in(certs.path("server.key"), "server.key", 0o600)
    pg.copy_in(certs.path("root+client_ca.crt"), "ca.crt", 0o644)
    pg.write("pg_hba.conf", HBA)
    with open(pg.datadir / "postgresql.conf", "a") as f:
        f.write(
            "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nssl_ca_file = 'ca.crt'\n"
            "log_min_messages = debug1\n"
        )
    try:
        pg.start()
        with psycopg.connect(
            host=str(pg.sockdir), port=pg.port, user="postgres", dbname="postgres", autocommit=True
        ) as c:
            for sql in ROLES:
                c.execute(sql)
        yield pg
    finally:
        pg.cleanup()
