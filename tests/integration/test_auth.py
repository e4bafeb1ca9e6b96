"""Authentication end to end with real clients: asyncpg and pg8000 with scram-sha-256, md5 and password
(over TLS and not), asyncpg and psycopg with client certificates under ``cert``, ``clientname=DN`` with a
pg_ident map, a reload with a broken pg_hba.conf, and no secret in any log line.

Every server of this file registers its log; ``test_zz_no_secret_in_any_log`` (last in the file) greps
them all, plus the logs of any other pgtls test server still on disk, for the passwords used, the
stored verifiers (pg_authid.json) and the body lines of every key file of the certificate set.
"""

from __future__ import annotations

import asyncio
import glob
import shutil
import ssl
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pg8000.native
import psycopg
import pytest

from tests.pgserver import shared_tmpdir
from tests.pgtlsserver import PgtlsServer
from tests.secretleaks import find_leaks, secrets_of

SCRAM_USER, MD5_USER = "scramuser", "md5user"
PASSWORDS = {SCRAM_USER: "Auth-scram-pw-51e2", MD5_USER: "Auth-md5-pw-0a7c"}
DN = "CN=ssltestuser-dn,OU=Testing,OU=Engineering,O=PGDG"

HBA = """\
local all all trust
host scramdb all 127.0.0.1/32 scram-sha-256
host md5db all 127.0.0.1/32 md5
host passworddb all 127.0.0.1/32 password
hostssl certdb all 127.0.0.1/32 cert
hostssl certdndb all 127.0.0.1/32 cert clientname=DN map=dnmap
hostssl certdnexact all 127.0.0.1/32 cert clientname=DN map=dnexact
"""
IDENT = f"""\
dnmap "/^CN=(.*)-dn,OU=Testing,OU=Engineering,O=PGDG$" \\1
dnexact "{DN}" ssltestuser
"""
DATABASES = ("scramdb", "md5db", "passworddb", "certdb", "certdndb", "certdnexact")

# Every server log this file produced, read before its directory is removed: {name: text}.
LOGS: dict[str, str] = {}
# Every stored secret this file made (pg_authid.json), for the final grep.
SECRETS: set[str] = set()


def _remember_secrets(s: PgtlsServer) -> None:
    """The secrets the managed cluster stores (pg_authid.rolpassword), to look for in the logs."""
    SECRETS.update(
        r[0] for r in s.sql("SELECT rolpassword FROM pg_authid WHERE rolpassword IS NOT NULL") if r[0]
    )


@pytest.fixture(scope="module")
def server(certs) -> Iterator[PgtlsServer]:
    s = PgtlsServer().init()
    s.copy_in(certs.path("server-chain.crt"), "server.crt", 0o644)
    s.copy_in(certs.path("server.key"), "server.key", 0o600)
    s.copy_in(certs.path("root+client_ca.crt"), "root+client_ca.crt", 0o644)
    s.copy_in(certs.path("root+client.crl"), "root+client.crl", 0o644)
    s.conf(ssl="on", ssl_ca_file="root+client_ca.crt", ssl_crl_file="root+client.crl")
    s.write("pg_hba.conf", HBA)
    s.write("pg_ident.conf", IDENT)
    s.create_role(SCRAM_USER, password=PASSWORDS[SCRAM_USER])
    s.create_role(MD5_USER, password=PASSWORDS[MD5_USER], password_encryption="md5")
    for name in ("ssltestuser", "anotheruser"):
        s.create_role(name)
    for db in DATABASES:
        s.sql(f'CREATE DATABASE "{db}"')
    s.start()
    _remember_secrets(s)
    yield s
    LOGS["main"] = s.full_log()
    s.cleanup()


@pytest.fixture(scope="module")
def keys(certs) -> Iterator[Path]:
    """Client keys copied 0600 (libpq and OpenSSL clients want private keys private)."""
    d = shared_tmpdir("pgtls-auth-keys-")
    for name in ("client.crt", "client.key", "client-dn.crt", "client-dn.key"):
        shutil.copy(certs.path(name), d / name)
        (d / name).chmod(0o600)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _client_ctx(keys: Path | None = None, cert: str = "client") -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if keys is not None:
        ctx.load_cert_chain(str(keys / f"{cert}.crt"), str(keys / f"{cert}.key"))
    return ctx


# --- passwords: asyncpg and pg8000 --------------------------------------------------------------------------

PASSWORD_CASES = [
    # (database, user, method the server must have used: logged in "connection authenticated")
    ("scramdb", SCRAM_USER, "scram-sha-256"),
    ("md5db", MD5_USER, "md5"),
    ("md5db", SCRAM_USER, "md5"),  # md5 line, SCRAM secret: the exchange is SCRAM (CheckPWChallengeAuth)
    ("passworddb", SCRAM_USER, "password"),
    ("passworddb", MD5_USER, "password"),
]


async def _asyncpg_query(
    port: int, user: str, db: str, password: str | None, ctx: ssl.SSLContext | bool
) -> object:
    conn = await asyncpg.connect(
        host="127.0.0.1", port=port, user=user, database=db, password=password, ssl=ctx, timeout=15
    )
    try:
        return await conn.fetchval("select current_user")
    finally:
        await conn.close()


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "notls"])
@pytest.mark.parametrize("db,user,method", PASSWORD_CASES, ids=[f"{d}-{u}" for d, u, _ in PASSWORD_CASES])
def test_asyncpg_password_methods(server, db, user, method, tls):
    ctx = _client_ctx() if tls else False
    assert asyncio.run(_asyncpg_query(server.port, user, db, PASSWORDS[user], ctx)) == user
    assert f'connection authenticated: identity="{user}" method={method}' in server.log()
    with pytest.raises(
        asyncpg.InvalidPasswordError, match=f'password authentication failed for user "{user}"'
    ):
        asyncio.run(_asyncpg_query(server.port, user, db, "wrong-" + PASSWORDS[user], ctx))


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "notls"])
@pytest.mark.parametrize("db,user,method", PASSWORD_CASES, ids=[f"{d}-{u}" for d, u, _ in PASSWORD_CASES])
def test_pg8000_password_methods(server, db, user, method, tls):
    ctx = _client_ctx() if tls else None
    conn = pg8000.native.Connection(
        user,
        host="127.0.0.1",
        port=server.port,
        database=db,
        password=PASSWORDS[user],
        ssl_context=ctx,
        timeout=15,
    )
    try:
        assert conn.run("select current_user") == [[user]]
    finally:
        conn.close()
    assert f'connection authenticated: identity="{user}" method={method}' in server.log()
    with pytest.raises(pg8000.exceptions.DatabaseError) as ei:
        pg8000.native.Connection(
            user,
            host="127.0.0.1",
            port=server.port,
            database=db,
            password="wrong-" + PASSWORDS[user],
            ssl_context=ctx,
            timeout=15,
        )
    err = ei.value.args[0]
    assert err["C"] == "28P01" and err["M"] == f'password authentication failed for user "{user}"'


# --- client certificates under cert ---------------------------------------------------------------------


def test_asyncpg_client_certificate(server, keys):
    assert (
        asyncio.run(_asyncpg_query(server.port, "ssltestuser", "certdb", None, _client_ctx(keys)))
        == "ssltestuser"
    )
    assert 'connection authenticated: identity="CN=ssltestuser" method=cert' in server.log()


def test_asyncpg_client_certificate_wrong_user(server, keys):
    with pytest.raises(
        asyncpg.InvalidAuthorizationSpecificationError,
        match='certificate authentication failed for user "anotheruser"',
    ):
        asyncio.run(_asyncpg_query(server.port, "anotheruser", "certdb", None, _client_ctx(keys)))
    log = server.log()
    assert (
        'connection authenticated: identity="CN=ssltestuser" method=cert' in log
    )  # logged before the name check
    assert "provided user name (anotheruser) and authenticated user name (ssltestuser) do not match" in log


def test_asyncpg_without_certificate_refused(server):
    with pytest.raises(
        asyncpg.InvalidAuthorizationSpecificationError, match="connection requires a valid client certificate"
    ):
        asyncio.run(_asyncpg_query(server.port, "ssltestuser", "certdb", None, _client_ctx()))


def _psycopg_cert(
    server: PgtlsServer, keys: Path, user: str, db: str, cert: str = "client"
) -> psycopg.Connection:
    return psycopg.connect(
        server.dsn(
            user=user,
            dbname=db,
            sslmode="require",
            sslrootcert="invalid",
            sslcert=keys / f"{cert}.crt",
            sslkey=keys / f"{cert}.key",
            connect_timeout=15,
        )
    )


def test_psycopg_client_certificate(server, keys):
    with _psycopg_cert(server, keys, "ssltestuser", "certdb") as c:
        assert c.pgconn.ssl_in_use
        assert c.execute("select current_user").fetchone() == ("ssltestuser",)
    with pytest.raises(
        psycopg.OperationalError, match='certificate authentication failed for user "anotheruser"'
    ):
        _psycopg_cert(server, keys, "anotheruser", "certdb")


# --- clientname=DN with map= ------------------------------------------------------------------------------


@pytest.mark.parametrize("db,mapname", [("certdndb", "dnmap"), ("certdnexact", "dnexact")])
def test_clientname_dn_with_map(server, keys, db, mapname):
    with _psycopg_cert(server, keys, "ssltestuser", db, cert="client-dn") as c:
        assert c.execute("select current_user").fetchone() == ("ssltestuser",)
    assert f'connection authenticated: identity="{DN}" method=cert' in server.log()
    with pytest.raises(
        psycopg.OperationalError, match='certificate authentication failed for user "anotheruser"'
    ):
        _psycopg_cert(server, keys, "anotheruser", db, cert="client-dn")
    assert f'no match in usermap "{mapname}" for user "anotheruser" authenticated as "{DN}"' in server.log()
    # a certificate whose DN the map does not know (CN=ssltestuser) is refused for ssltestuser too
    with pytest.raises(
        psycopg.OperationalError, match='certificate authentication failed for user "ssltestuser"'
    ):
        _psycopg_cert(server, keys, "ssltestuser", db, cert="client")
    assert (
        f'no match in usermap "{mapname}" for user "ssltestuser" authenticated as "CN=ssltestuser"'
        in server.log()
    )


# --- reload with a broken pg_hba.conf ----------------------------------------------------------------------


@pytest.fixture
def reload_server() -> Iterator[PgtlsServer]:
    s = PgtlsServer().init()
    s.write("pg_hba.conf", "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n")
    s.create_role(SCRAM_USER, password=PASSWORDS[SCRAM_USER])
    s.start()
    _remember_secrets(s)
    yield s
    LOGS["reload"] = s.full_log()
    s.cleanup()


def _scram_connect(s: PgtlsServer) -> tuple[str]:
    with psycopg.connect(s.dsn(user=SCRAM_USER, password=PASSWORDS[SCRAM_USER], connect_timeout=15)) as c:
        return c.execute("select current_user").fetchone()  # type: ignore[return-value]


def test_reload_with_broken_hba_keeps_old_rules(reload_server):
    s = reload_server
    assert _scram_connect(s) == (SCRAM_USER,)
    # Were this file loaded, line 1 would reject everyone; line 3 is what makes it unloadable.
    s.write(
        "pg_hba.conf",
        "host all all 127.0.0.1/32 reject\nlocal all all trust\nhost all all 127.0.0.1/32 bogusmethod\n",
    )
    s.reload()
    log = s.log()
    assert 'invalid authentication method "bogusmethod"' in log
    assert f'line 3 of configuration file "{s.datadir / "pg_hba.conf"}"' in log
    assert "pg_hba.conf was not reloaded" in log
    assert _scram_connect(s) == (SCRAM_USER,)  # the old rules still apply
    # a cert line on a non-hostssl row is also a load error (and names its line)
    s.write("pg_hba.conf", "host all all 127.0.0.1/32 reject\nhost all all 127.0.0.1/32 cert\n")
    s.reload()
    log = s.log()
    assert "cert authentication is only supported on hostssl connections" in log
    assert f'line 2 of configuration file "{s.datadir / "pg_hba.conf"}"' in log
    assert _scram_connect(s) == (SCRAM_USER,)
    # a good file is then taken
    s.write("pg_hba.conf", "local all all trust\nhost all all 127.0.0.1/32 reject\n")
    s.reload()
    with pytest.raises(psycopg.OperationalError, match="pg_hba.conf rejects connection"):
        _scram_connect(s)


# --- no secret in any log ---------------------------------------------------------------------------------


def test_zz_no_secret_in_any_log(server, certs):
    """Runs last in this file: every log of this file, and any other pgtls test log still on disk."""
    LOGS["main"] = server.full_log()
    assert "reload" in LOGS and "main" in LOGS
    others = {}
    for log_path in glob.glob("/tmp/pgtls-srv-*/server.log"):
        try:
            others[log_path] = Path(log_path).read_text(errors="replace")
            if (Path(log_path).parent / "data" / "global" / "pg_authid.json").exists():
                SECRETS.update(secrets_of(Path(log_path).parent / "data"))
        except (OSError, ValueError, KeyError):
            pass  # a server being torn down by another test
    assert len(SECRETS) >= 3  # the grep had stored secrets to look for
    leaks = find_leaks({**LOGS, **others}, set(PASSWORDS.values()), SECRETS, certs)
    assert not leaks, "\n".join(leaks)
