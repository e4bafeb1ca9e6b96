"""pgtls relaying to a network PostgreSQL (the ``upstream`` setting and pgtls_databases.conf) with TLS on both
legs: roles read upstream as the route's auth_user, SCRAM pass-through (no password stored for the client's
role), channel binding on both legs, a client certificate for the upstream, cancel over TLS, routes reloaded
with Table 19.2's rule."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.pgserver import RealPostgres
from tests.pgtlsserver import PgtlsServer, tls_server
from tests.relay.recorder import Recorder

PGTLS_HBA = """\
local all all trust
hostssl certdb ssltestuser 127.0.0.1/32 trust
hostssl all all 127.0.0.1/32 scram-sha-256
"""


def conninfo(pg: RealPostgres, certs, port: int | None = None, **kw: str) -> str:
    params = {
        "host": "localhost",
        "hostaddr": "127.0.0.1",
        "port": str(port or pg.port),
        "sslmode": "verify-full",
        "sslrootcert": certs.path("root_ca.crt"),
        "auth_user": "pgtls_auth",
        **kw,
    }
    return " ".join(f"{k}={v}" for k, v in params.items())


@pytest.fixture(scope="module")
def relay(upstream, certs, tmp_path_factory) -> Iterator[tuple[PgtlsServer, Recorder, Path]]:
    d = tmp_path_factory.mktemp("pgpass")
    rec = Recorder(upstream.port, d / "firsts")
    pgpass = d / "pgpass"
    pgpass.write_text("*:*:*:pgtls_auth:auth-secret\n")
    pgpass.chmod(0o600)
    key = d / "client.key"  # libpq's rule: a client key readable by others is refused
    key.write_bytes(Path(certs.path("client.key")).read_bytes())
    key.chmod(0o600)
    s = tls_server(
        certs,
        PgtlsServer(),
        hba=PGTLS_HBA,
        start=False,
        upstream=conninfo(upstream, certs, rec.port, passfile=str(pgpass), channel_binding="require"),
        query_wait_timeout="2",
    )
    s.write(
        "pgtls_databases.conf",
        "\n".join(
            [
                "; the certdb route logs in upstream with a client certificate",
                f"certdb = {conninfo(upstream, certs, dbname='postgres', sslcert=certs.path('client.crt'), sslkey=str(key), passfile=str(pgpass))}",
                f"small = {conninfo(upstream, certs, dbname='postgres', passfile=str(pgpass), pool_size='1')}",
                f"smalltx = {conninfo(upstream, certs, dbname='postgres', passfile=str(pgpass), pool_size='1', pool_mode='transaction')}",
                f"* = {conninfo(upstream, certs, rec.port, passfile=str(pgpass), channel_binding='require')}",
            ]
        )
        + "\n",
    )
    s.start()
    yield s, rec, pgpass
    print(s.full_log()[-5000:])
    s.cleanup()
    rec.close()


def client(
    s: PgtlsServer,
    certs,
    user: str = "alice",
    password: str = "alice-secret",
    db: str = "postgres",
    **kw: object,
) -> psycopg.Connection:
    return psycopg.connect(
        host="localhost",
        hostaddr="127.0.0.1",
        port=s.port,
        user=user,
        password=password,
        dbname=db,
        sslmode="verify-full",
        sslrootcert=certs.path("root_ca.crt"),
        autocommit=True,
        connect_timeout=10,
        **kw,
    )


def test_scram_pass_through_with_channel_binding_on_both_legs(relay, certs, upstream):
    s, _, pgpass = relay
    with client(s, certs, channel_binding="require") as c:
        assert c.pgconn.used_password
        who, ssl_used = c.execute(
            "SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        ).fetchone()
        assert (who, ssl_used) == ("alice", True)  # the upstream's own view: alice, over TLS
        pid = c.execute("SELECT pg_backend_pid()").fetchone()[0]
        with psycopg.connect(
            host=str(upstream.sockdir), port=upstream.port, user="postgres", dbname="postgres"
        ) as d:
            row = d.execute(
                "SELECT usename, client_addr::text FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).fetchone()
        assert row == ("alice", "127.0.0.1/32")
    # The upstream leg used SCRAM-SHA-256-PLUS: the route demands channel_binding=require, and alice's
    # password is stored nowhere pgtls keeps files.
    assert "alice-secret" not in pgpass.read_text()
    for f in s.datadir.rglob("*"):
        if f.is_file() and f.stat().st_size < 50_000_000:
            assert b"alice-secret" not in f.read_bytes(), f


def test_wrong_password_refused_by_pgtls_against_the_upstream_verifier(relay, certs):
    s, _, _ = relay
    with pytest.raises(psycopg.OperationalError, match='password authentication failed for user "alice"'):
        client(s, certs, password="wrong")


def test_password_change_upstream_counts_at_once(relay, certs, upstream):
    s, _, _ = relay
    admin = psycopg.connect(
        host=str(upstream.sockdir), port=upstream.port, user="postgres", dbname="postgres", autocommit=True
    )
    try:
        admin.execute("ALTER ROLE alice PASSWORD 'changed'")
        with pytest.raises(psycopg.OperationalError):
            client(s, certs)
        with client(s, certs, password="changed") as c:
            assert c.execute("SELECT current_user").fetchone() == ("alice",)
    finally:
        admin.execute("ALTER ROLE alice PASSWORD 'alice-secret'")
        admin.close()


def test_client_certificate_for_the_upstream(relay, certs):
    s, _, _ = relay
    with psycopg.connect(
        host="localhost",
        hostaddr="127.0.0.1",
        port=s.port,
        user="ssltestuser",
        dbname="certdb",
        sslmode="verify-full",
        sslrootcert=certs.path("root_ca.crt"),
    ) as c:
        who, dn = c.execute(
            "SELECT current_user, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        ).fetchone()
    assert (who, dn) == ("ssltestuser", "/CN=ssltestuser")


def test_cancel_reaches_the_upstream_over_tls(relay, certs):
    s, rec, _ = relay
    before = len(rec.firsts)
    with client(s, certs) as c:
        threading.Timer(0.7, c.cancel).start()
        with pytest.raises(psycopg.errors.QueryCanceled):
            c.execute("SELECT pg_sleep(20)")
    new = rec.firsts[before:]
    ssl_request = (8).to_bytes(4, "big") + (80877103).to_bytes(4, "big")
    assert new and all(f == ssl_request for f in new), (
        new
    )  # the cancel's connection began with SSLRequest too


def test_route_typo_on_reload_keeps_the_old_routes(relay, certs, upstream):
    s, _, _ = relay
    routes = s.datadir / "pgtls_databases.conf"
    good = routes.read_text()
    try:
        routes.write_text(good + "broken = hots=localhost\n")
        s.reload()
        deadline = time.monotonic() + 10
        while "pgtls_databases.conf was not reloaded" not in s.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        log = s.log()
        assert 'invalid route "broken = hots=localhost": invalid connection option "hots"' in log
        assert (
            f'line {len(good.splitlines()) + 1} of configuration file "{routes}"' in log
            and "pgtls_databases.conf was not reloaded" in log
        )
        with client(s, certs) as c:
            assert c.execute("SELECT 1").fetchone() == (1,)
    finally:
        routes.write_text(good)
        s.reload()
        time.sleep(0.5)


def test_a_routes_pool_size(relay, certs):
    """pool_size=1 on the route: a second client of the same role waits, then gets PostgreSQL's 53300."""
    s, _, _ = relay
    with client(s, certs, db="small") as first:
        first.execute("SELECT 1")
        started = time.monotonic()
        with pytest.raises(psycopg.OperationalError, match="sorry, too many clients already"):
            client(s, certs, db="small")
        assert time.monotonic() - started >= 1.5  # query_wait_timeout = 2 s
    with client(s, certs, db="small") as again:  # the slot is free again
        assert again.execute("SELECT current_database()").fetchone() == ("postgres",)


def test_a_routes_pool_mode(relay, certs):
    """pool_size=1 and pool_mode=transaction on the route: two clients share its one upstream session, one
    transaction at a time (the other routes stay in session mode: see test_a_routes_pool_size)."""
    s, _, _ = relay
    with client(s, certs, db="smalltx") as a, client(s, certs, db="smalltx") as b:
        for _ in range(3):
            pa = a.execute("SELECT pg_backend_pid()").fetchone()[0]
            pb = b.execute("SELECT pg_backend_pid()").fetchone()[0]
            assert pa == pb


def test_unknown_database_without_a_fallback(upstream, certs, pgtls_factory):
    s = tls_server(certs, pgtls_factory(), hba="hostssl all all 127.0.0.1/32 trust\n", start=False)
    s.write("pgtls_databases.conf", f"app = {conninfo(upstream, certs, dbname='postgres')}\n")
    s.start()
    with pytest.raises(psycopg.OperationalError, match='database "nope" does not exist'):
        psycopg.connect(host="127.0.0.1", port=s.port, user="tru", dbname="nope", sslmode="require")


def test_bad_route_refuses_to_start(upstream, certs, pgtls_factory):
    s = tls_server(certs, pgtls_factory(), start=False)
    s.write("pgtls_databases.conf", "app = host=x sslmode=sometimes\n")
    assert not s.start(check=False)
    assert 'invalid sslmode value: "sometimes"' in s.full_log()


def test_a_released_upstream_session_is_reused(relay, certs):
    """Session pooling on a network upstream: the next login of the same role and database gets the session
    the last one released (same upstream backend), within server_lifetime."""
    s, _, _ = relay
    pids = []
    for _ in range(3):
        with client(s, certs, db="small") as c:
            pids.append(c.execute("SELECT pg_backend_pid()").fetchone()[0])
        time.sleep(0.2)  # the release runs after the client's Terminate
    assert len(set(pids)) == 1, pids
