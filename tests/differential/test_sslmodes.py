"""Every sslmode against ssl=on and ssl=off, with psql (libpq 15) and psycopg (its bundled libpq),
against a real PostgreSQL 15 and against pgtls with the same certificates: same outcome, same
encryption, same client-side error text."""

from __future__ import annotations

import re

import psycopg
import pytest

from tests import prereq
from tests.conftest import run_psql

pytestmark = pytest.mark.pg

SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
HBA = "local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n"


def _normalize(text: str, port: int) -> str:
    text = text.replace(str(port), "PORT")
    text = re.sub(r"\[\d+\]", "[PID]", text)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def _setup(server, certs, ssl: bool) -> None:
    server.copy_in(certs.path("server-chain.crt"), "server.crt", 0o644)
    server.copy_in(certs.path("server.key"), "server.key", 0o600)
    server.write("pg_hba.conf", HBA)
    conf = f"\nssl = {'on' if ssl else 'off'}\n"
    with open(server.datadir / "postgresql.conf", "a") as f:
        f.write(conf)


@pytest.fixture(scope="module")
def servers(certs, tmp_path_factory):
    from tests.pgserver import RealPostgres, have_postgres
    from tests.pgtlsserver import PgtlsServer

    if not have_postgres():
        prereq.missing("PostgreSQL 15 server binaries are not installed")
    made = []
    out = {}
    for ssl in (True, False):
        pg = RealPostgres().init()
        _setup(pg, certs, ssl)
        pg.start()
        ours = PgtlsServer().init()
        _setup(ours, certs, ssl)
        ours.start()
        made += [pg, ours]
        out[ssl] = (pg, ours)
    yield out
    for s in made:
        s.cleanup()


def _psql(server, certs, home, sslmode: str, host: str = "localhost"):
    conninfo = (
        f"host={host} hostaddr=127.0.0.1 port={server.port} user=postgres dbname=postgres "
        f"sslmode={sslmode} sslrootcert={certs.path('root_ca.crt')}"
    )
    r = run_psql(conninfo, r"\conninfo", home=home)
    encrypted = "SSL connection" in r.stdout
    return r.returncode, encrypted, _normalize(r.stderr, server.port)


@pytest.mark.parametrize("ssl", [True, False], ids=["ssl=on", "ssl=off"])
@pytest.mark.parametrize("sslmode", SSLMODES)
def test_psql_sslmode_matches_postgres(servers, certs, client_home, ssl, sslmode):
    pg, ours = servers[ssl]
    expected = _psql(pg, certs, client_home, sslmode)
    got = _psql(ours, certs, client_home, sslmode)
    assert got == expected


@pytest.mark.parametrize("sslmode", ["verify-full"])
def test_verify_full_wrong_name_fails_like_postgres(servers, certs, client_home, sslmode):
    pg, ours = servers[True]
    expected = _psql(pg, certs, client_home, sslmode, host="wronghost.test")
    got = _psql(ours, certs, client_home, sslmode, host="wronghost.test")
    assert expected[0] != 0 and "does not match host name" in expected[2]
    assert got == expected


def _psycopg(server, certs, sslmode: str):
    try:
        with psycopg.connect(
            host="localhost",
            hostaddr="127.0.0.1",
            port=server.port,
            user="postgres",
            dbname="postgres",
            sslmode=sslmode,
            sslrootcert=certs.path("root_ca.crt"),
            connect_timeout=10,
        ) as conn:
            return True, conn.pgconn.ssl_in_use, ""
    except psycopg.OperationalError as e:
        return False, None, _normalize(str(e), server.port)


@pytest.mark.parametrize("ssl", [True, False], ids=["ssl=on", "ssl=off"])
@pytest.mark.parametrize("sslmode", SSLMODES)
def test_psycopg_sslmode_matches_postgres(servers, certs, ssl, sslmode):
    pg, ours = servers[ssl]
    assert _psycopg(ours, certs, sslmode) == _psycopg(pg, certs, sslmode)
