"""The client's TLS identity inside the relayed session: sslinfo's functions and pgtls.client_identity.

PostgreSQL behind pgtls sees a Unix socket; what a session reads must be the TLS facts of the client
that holds it at that moment (pooled sessions change hands), and a non-superuser must not be able to
forge them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from cryptography import x509

from tests.pgtlsserver import PgtlsServer

HBA = """\
local all all trust
hostssl all all 127.0.0.1/32 trust
host all all 127.0.0.1/32 trust
"""

IDENTITY = (
    "SELECT ssl_is_used(), ssl_version(), ssl_cipher(), ssl_client_cert_present(), ssl_client_serial(), "
    "ssl_client_dn(), ssl_issuer_dn(), pg_backend_pid()"
)


@pytest.fixture(scope="module")
def server(certs) -> Iterator[PgtlsServer]:
    s = PgtlsServer().init()
    s.copy_in(certs.path("server-chain.crt"), "server.crt", 0o644)
    s.copy_in(certs.path("server.key"), "server.key", 0o600)
    s.copy_in(certs.path("root+client_ca.crt"), "root+client_ca.crt", 0o644)
    s.conf(ssl="on", ssl_ca_file="root+client_ca.crt", default_pool_size="1")
    s.write("pg_hba.conf", HBA)
    s.create_role("ssltestuser", options="LOGIN CREATEDB")
    s.create_role("mallory")
    s.sql("GRANT CREATE ON DATABASE postgres TO mallory")
    s.start()
    yield s
    print(s.full_log()[-4000:])
    s.cleanup()


def connect(
    server: PgtlsServer,
    keys: Path,
    user: str = "ssltestuser",
    cert: str | None = "client",
    sslmode: str = "verify-full",
) -> psycopg.Connection:
    kw: dict[str, object] = {"sslrootcert": str(keys / "root_ca.crt")} if sslmode != "disable" else {}
    if cert is not None:
        kw.update(sslcert=str(keys / f"{cert}.crt"), sslkey=str(keys / f"{cert}.key"))
    return psycopg.connect(
        host="localhost" if sslmode == "verify-full" else "127.0.0.1",
        port=server.port,
        user=user,
        dbname="postgres",
        sslmode=sslmode,
        autocommit=True,
        **kw,
    )


def slash(name: x509.Name) -> str:
    return "".join(f"/{a.rfc4514_attribute_name}={a.value}" for a in reversed(list(name)))


def test_client_reads_its_own_certificate(server, keys, certs):
    cert = x509.load_pem_x509_certificate(Path(certs.path("client.crt")).read_bytes())
    with connect(server, keys) as c:
        used, version, cipher, present, serial, dn, issuer, _ = c.execute(IDENTITY).fetchone()
    assert used is True and present is True
    assert version == "TLSv1.3" and cipher in (
        "TLS_AES_256_GCM_SHA384",
        "TLS_CHACHA20_POLY1305_SHA256",
        "TLS_AES_128_GCM_SHA256",
    )
    assert int(serial) == cert.serial_number
    assert dn == slash(cert.subject) == "/CN=ssltestuser"
    assert issuer == slash(cert.issuer)


def test_view_matches_functions(server, keys):
    with connect(server, keys) as c:
        row = c.execute(
            "SELECT ssl, version, client_cert_present, client_dn, host(client_addr), client_port "
            "FROM pgtls.client_identity"
        ).fetchone()
        assert row[0] is True and row[2] is True and row[3] == "/CN=ssltestuser"
        assert row[4] == "127.0.0.1" and isinstance(row[5], int)
        assert c.execute("SELECT count(*) FROM pgtls.client_identity").fetchone() == (1,)


def test_tls_without_certificate_and_plain(server, keys):
    with connect(server, keys, cert=None) as c:
        row = c.execute(IDENTITY).fetchone()
        assert (
            row[:2] == (True, "TLSv1.3")
            and row[2].startswith("TLS_")
            and row[3:7] == (False, None, None, None)
        )
    with connect(server, keys, cert=None, sslmode="disable") as c:
        assert c.execute(IDENTITY).fetchone()[:7] == (False, None, None, False, None, None, None)


def test_pooled_session_shows_the_client_holding_it(server, keys):
    """default_pool_size=1: both clients get the same upstream backend, each sees only its own facts."""
    with connect(server, keys) as a:
        pid_a, dn_a = a.execute("SELECT pg_backend_pid(), ssl_client_dn()").fetchone()
    assert dn_a == "/CN=ssltestuser"
    with connect(server, keys, cert=None) as b:
        pid_b, used, dn_b = b.execute("SELECT pg_backend_pid(), ssl_is_used(), ssl_client_dn()").fetchone()
    assert pid_b == pid_a  # the same PostgreSQL backend, reused
    assert used is True and dn_b is None
    with connect(server, keys, cert=None, sslmode="disable") as c:
        assert c.execute("SELECT pg_backend_pid(), ssl_is_used()").fetchone() == (pid_a, False)


@pytest.mark.parametrize(
    "attempt, sqlstate",
    [
        ("UPDATE pgtls.identity_rows SET client_dn = '/CN=admin'", "42501"),
        (
            "INSERT INTO pgtls.identity_rows (pid, ssl, client_cert_present, client_dn) "
            "VALUES (pg_backend_pid(), true, true, '/CN=admin')",
            "42501",
        ),
        ("DELETE FROM pgtls.identity_rows", "42501"),
        ("SELECT * FROM pgtls.identity_rows", "42501"),
        (
            "CREATE OR REPLACE FUNCTION pg_catalog.ssl_client_dn() RETURNS text LANGUAGE sql AS $$SELECT '/CN=admin'$$",
            "42501",
        ),
        (
            "CREATE OR REPLACE FUNCTION pgtls.own_identity() RETURNS SETOF pgtls.identity_rows LANGUAGE sql "
            "AS $$SELECT 1, true, null, null, null, true, '/CN=admin', null, null, null, null$$",
            "42501",
        ),
        ("ALTER TABLE pgtls.identity_rows DISABLE ROW LEVEL SECURITY", "42501"),
        ("CREATE TABLE pgtls.x (a int)", "42501"),
    ],
)
def test_a_non_superuser_cannot_forge(server, keys, attempt, sqlstate):
    with connect(server, keys, user="mallory", cert=None) as c:
        before = c.execute(IDENTITY).fetchone()
        with pytest.raises(psycopg.Error) as ei:
            c.execute(attempt)
        assert ei.value.sqlstate == sqlstate, ei.value
        assert c.execute(IDENTITY).fetchone() == before


def test_settings_do_not_change_what_is_read(server, keys):
    with connect(server, keys, user="mallory", cert=None) as c:
        before = c.execute(IDENTITY).fetchone()
        for stmt in (
            "SET pgtls.client_dn = '/CN=admin'",
            "SET search_path = pgtls, public",
            "SET application_name = 'ssl'",
            "SET SESSION AUTHORIZATION DEFAULT",
        ):
            c.execute(stmt)
            assert c.execute(IDENTITY).fetchone() == before, stmt
        # A same-named function in a schema the user owns only shadows the unqualified name if the
        # search_path puts it before pg_catalog; the qualified name is always pgtls's.
        c.execute("CREATE SCHEMA IF NOT EXISTS m AUTHORIZATION mallory")
        c.execute(
            "CREATE OR REPLACE FUNCTION m.ssl_client_dn() RETURNS text LANGUAGE sql AS $$SELECT '/CN=admin'$$"
        )
        c.execute("SET search_path = m")
        assert c.execute("SELECT ssl_client_dn()").fetchone() == (None,)  # pg_catalog first, implicitly
        c.execute("SET search_path = m, pg_catalog")
        assert c.execute("SELECT pg_catalog.ssl_client_dn()").fetchone() == (None,)


def test_identity_in_a_new_database(server, keys):
    """CREATE DATABASE through pgtls, then a login there: the functions are there and right."""
    with connect(server, keys) as c:
        c.execute("CREATE DATABASE fresh TEMPLATE template0")
    with psycopg.connect(
        host="localhost",
        port=server.port,
        user="ssltestuser",
        dbname="fresh",
        sslmode="verify-full",
        sslrootcert=str(keys / "root_ca.crt"),
        sslcert=str(keys / "client.crt"),
        sslkey=str(keys / "client.key"),
    ) as c:
        assert c.execute("SELECT ssl_client_dn(), ssl_is_used()").fetchone() == ("/CN=ssltestuser", True)


def test_row_level_security_by_certificate(server, keys):
    """The point of it all: a policy keyed by the client certificate's DN."""
    server.sql(
        "CREATE TABLE docs (owner_dn text, body text); "
        "INSERT INTO docs VALUES ('/CN=ssltestuser', 'mine'), ('/CN=anotheruser', 'theirs'); "
        "ALTER TABLE docs ENABLE ROW LEVEL SECURITY; "
        "CREATE POLICY by_cert ON docs USING (owner_dn = pg_catalog.ssl_client_dn()); "
        "GRANT SELECT ON docs TO ssltestuser, mallory"
    )
    with connect(server, keys) as c:
        assert c.execute("SELECT body FROM docs").fetchall() == [("mine",)]
    with connect(server, keys, user="mallory", cert=None) as c:
        c.execute("SET pgtls.client_dn = '/CN=ssltestuser'")
        assert c.execute("SELECT body FROM docs").fetchall() == []
