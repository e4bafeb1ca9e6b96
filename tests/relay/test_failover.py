"""A primary and two streaming standbys (PostgreSQL 15, pg_basebackup, TLS on each) behind pgtls: `app` routes
to the primary, `app_ro` to a standby; the primary stops, a standby is promoted, and within 10 s a new login
to `app` can write."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator

import psycopg
import pytest

from tests import prereq
from tests.pgserver import (
    PG_BIN,
    RealPostgres,
    _demote,
    free_port,
    give_to_server_user,
    have_postgres,
    shared_tmpdir,
)
from tests.pgtlsserver import PgtlsServer, tls_server

HBA = """\
local all all trust
local replication all trust
host replication all 127.0.0.1/32 trust
hostssl all pgtls_auth 127.0.0.1/32 scram-sha-256
hostssl all all 127.0.0.1/32 trust
"""


def standby_of(primary: RealPostgres) -> RealPostgres:
    sb = RealPostgres()
    sb.sockdir.mkdir(exist_ok=True)
    give_to_server_user(sb.base)
    subprocess.run(
        [
            str(PG_BIN / "pg_basebackup"),
            "-D",
            str(sb.datadir),
            "-h",
            str(primary.sockdir),
            "-p",
            str(primary.port),
            "-U",
            "postgres",
            "-R",
            "-X",
            "stream",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        preexec_fn=_demote,
        timeout=120,
    )
    with open(sb.datadir / "postgresql.conf", "a") as f:
        f.write(f"\nport = {sb.port}\nunix_socket_directories = '{sb.sockdir}'\n")
    sb.start()
    return sb


@pytest.fixture
def cluster(certs) -> Iterator[list[RealPostgres]]:
    if not have_postgres():
        prereq.missing("PostgreSQL 15 server binaries are not installed")
    primary = RealPostgres().init()
    primary.copy_in(certs.path("server-chain.crt"), "server.crt", 0o644)
    primary.copy_in(certs.path("server.key"), "server.key", 0o600)
    primary.write("pg_hba.conf", HBA)
    with open(primary.datadir / "postgresql.conf", "a") as f:
        f.write("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nwal_level = replica\n")
    nodes = [primary]
    try:
        primary.start()
        with psycopg.connect(
            host=str(primary.sockdir), port=primary.port, user="postgres", dbname="postgres", autocommit=True
        ) as c:
            c.execute("CREATE ROLE pgtls_auth LOGIN SUPERUSER PASSWORD 'auth-secret'")
            c.execute("CREATE ROLE app LOGIN")
            c.execute("CREATE TABLE t (i int)")
            c.execute("GRANT ALL ON t TO app")
        nodes += [standby_of(primary), standby_of(primary)]
        yield nodes
    finally:
        for n in nodes:
            n.cleanup()


def route(nodes: list[RealPostgres], certs, attrs: str, pgpass: str) -> str:
    ports = ",".join(str(n.port) for n in nodes)
    hosts = ",".join("localhost" for _ in nodes)
    addrs = ",".join("127.0.0.1" for _ in nodes)
    return (
        f"host={hosts} hostaddr={addrs} port={ports} dbname=postgres sslmode=verify-full "
        f"sslrootcert={certs.path('root_ca.crt')} target_session_attrs={attrs} connect_timeout=2 "
        f"auth_user=pgtls_auth passfile={pgpass}"
    )


def login(s: PgtlsServer, db: str) -> psycopg.Connection:
    return psycopg.connect(
        host="127.0.0.1",
        port=s.port,
        user="app",
        dbname=db,
        sslmode="require",
        autocommit=True,
        connect_timeout=5,
    )


def test_primary_and_standbys_then_promotion(cluster, certs, pgtls_factory):
    primary, sb1, sb2 = cluster
    d = shared_tmpdir("pgtls-pgpass-")
    try:
        pgpass = d / "pgpass"
        pgpass.write_text("*:*:*:pgtls_auth:auth-secret\n")
        pgpass.chmod(0o600)
        s = tls_server(certs, pgtls_factory(), hba="hostssl all all 127.0.0.1/32 trust\n", start=False)
        s.write(
            "pgtls_databases.conf",
            f"app = {route(cluster, certs, 'read-write', str(pgpass))}\n"
            f"app_ro = {route(cluster, certs, 'standby', str(pgpass))}\n",
        )
        s.start()
        with login(s, "app") as c:
            assert c.execute("SELECT pg_is_in_recovery(), inet_server_port()").fetchone() == (
                False,
                primary.port,
            )
            c.execute("INSERT INTO t VALUES (1)")
        with login(s, "app_ro") as c:
            in_recovery, port = c.execute("SELECT pg_is_in_recovery(), inet_server_port()").fetchone()
            assert in_recovery and port in (sb1.port, sb2.port)
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                c.execute("INSERT INTO t VALUES (2)")

        primary.stop()
        with psycopg.connect(
            host=str(sb1.sockdir), port=sb1.port, user="postgres", dbname="postgres", autocommit=True
        ) as c:
            assert c.execute("SELECT pg_promote(true, 30)").fetchone() == (True,)
        started = time.monotonic()
        wrote = None
        while time.monotonic() - started < 10:
            try:
                with login(s, "app") as c:
                    c.execute("INSERT INTO t VALUES (3)")
                    wrote = c.execute("SELECT inet_server_port(), count(*) FROM t").fetchone()
                    break
            except psycopg.OperationalError:
                time.sleep(0.2)
        assert wrote == (sb1.port, 2), s.log()[-3000:]
        # app_ro still finds a standby (the other one, or none if it follows the old primary's timeline only):
        # the route with no eligible host refuses with a clear FATAL naming each host.
        try:
            with login(s, "app_ro") as c:
                assert c.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        except psycopg.OperationalError as e:
            assert "server is not in hot standby mode" in str(e) or "Connection refused" in str(e)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_no_eligible_host_refuses_clearly(cluster, certs, pgtls_factory):
    """A primary-only route over a dead port and a standby: a FATAL naming each host and why."""
    d = shared_tmpdir("pgtls-pgpass-")
    try:
        pgpass = d / "pgpass"
        pgpass.write_text("*:*:*:pgtls_auth:auth-secret\n")
        pgpass.chmod(0o600)
        dead = free_port()
        s = tls_server(certs, pgtls_factory(), hba="hostssl all all 127.0.0.1/32 trust\n", start=False)
        line = route(cluster[1:], certs, "primary", str(pgpass)).replace(
            f"port={cluster[1].port},", f"port={dead},"
        )
        s.write("pgtls_databases.conf", f"app = {line}\n")
        s.start()
        with pytest.raises(psycopg.OperationalError) as e:
            login(s, "app")
        text = str(e.value)
        assert f"port {dead} failed: Connection refused" in text, text
        assert f"port {cluster[2].port} failed: server is in hot standby mode" in text, text
    finally:
        shutil.rmtree(d, ignore_errors=True)
