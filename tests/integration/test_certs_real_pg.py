"""Files made by `pgtls cert` work with the real tools: openssl, PostgreSQL 15 and psql,
and the same files in the same scenarios with pgtls's own server.

One PKI per module, made through the CLI: root -> intermediate -> server (chain
bundled), client certificates for alice (valid) and bob (revoked), a CRL file and
a hashed CRL directory.  The server then runs with them: verify-full works, the
`cert` method accepts alice, and bob is refused through ssl_crl_file and
through ssl_crl_dir.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgtls.certs.checkdir import run_check
from pgtls.certs.pemfiles import read_certs, read_crls
from pgtls.cli import main as pgtls_main
from tests import prereq
from tests.pgserver import RealPostgres, have_postgres, shared_tmpdir

PSQL = "/usr/bin/psql"
needs_openssl = pytest.mark.skipif(
    shutil.which("openssl") is None and not prereq.required(), reason="needs the openssl CLI"
)


def cli(*argv: object) -> None:
    assert pgtls_main([str(a) for a in argv]) == 0, argv


@pytest.fixture(scope="module")
def pki() -> Iterator[Path]:
    d = shared_tmpdir("pgtls-pki-")
    cli("cert", "ca", "--cn", "pgtls test root", "--out-dir", d)
    cli("cert", "intermediate", "--ca", d / "root", "--cn", "pgtls test intermediate", "--out-dir", d)
    cli(
        "cert",
        "server",
        "--ca",
        d / "intermediate",
        "--cn",
        "localhost",
        "--san",
        "DNS:localhost,IP:127.0.0.1",
        "--out-dir",
        d,
    )
    for user in ("alice", "bob"):
        cli("cert", "client", "--ca", d / "root", "--cn", user, "--out-dir", d, "--out", user)
    cli("cert", "revoke", "--ca", d / "root", d / "bob.crt")
    cli(
        "cert",
        "crl",
        "--ca",
        d / "root",
        "--ca",
        d / "intermediate",
        "--out-dir",
        d,
        "--out",
        "root+intermediate.crl",
        "--dir",
        d / "crldir",
    )
    yield d
    shutil.rmtree(d, ignore_errors=True)


@needs_openssl
def test_openssl_verifies_the_chain(pki: Path) -> None:
    r = subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            pki / "root.crt",
            "-untrusted",
            pki / "intermediate.crt",
            pki / "server.crt",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and "server.crt: OK" in r.stdout, r.stdout + r.stderr
    r = subprocess.run(
        ["openssl", "verify", "-purpose", "sslclient", "-CAfile", pki / "root.crt", pki / "alice.crt"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr


@needs_openssl
def test_openssl_reads_the_crl(pki: Path) -> None:
    bob = read_certs(pki / "bob.crt")[0].serial_number
    r = subprocess.run(
        ["openssl", "crl", "-in", pki / "root+intermediate.crl", "-noout", "-text"],
        capture_output=True,
        text=True,
        check=True,
    )
    # OpenSSL prints the serial's bytes without leading zero bytes (a random 20-byte serial may start with 00)
    printed = bob.to_bytes((bob.bit_length() + 7) // 8, "big").hex().upper()
    assert printed in r.stdout.replace(":", "").upper().replace("SERIAL NUMBER ", "").replace(" ", "")
    assert len(read_crls(pki / "root+intermediate.crl")) == 2
    # the CRL says bob is revoked, and openssl's own CRL check agrees
    r = subprocess.run(
        [
            "openssl",
            "verify",
            "-crl_check",
            "-CAfile",
            pki / "root.crt",
            "-CRLfile",
            pki / "root+intermediate.crl",
            pki / "bob.crt",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode != 0 and "certificate revoked" in r.stdout + r.stderr


def _psql(
    pg: RealPostgres, pki: Path, user: str, *, cert: str | None = None, sql: str = "select 1"
) -> subprocess.CompletedProcess[str]:
    conn = [
        f"host=localhost hostaddr=127.0.0.1 port={pg.port} dbname=postgres user={user}",
        "sslmode=verify-full",
        f"sslrootcert={pki / 'root.crt'}",
    ]
    if cert:
        conn += [f"sslcert={pki / (cert + '.crt')}", f"sslkey={pki / (cert + '.key')}"]
    else:
        conn += ["sslcert=/nonexistent", "sslkey=/nonexistent"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    return subprocess.run(
        [PSQL, " ".join(conn), "-XAtc", sql], capture_output=True, text=True, timeout=30, env=env
    )


@pytest.fixture(scope="module", params=["postgres", "pgtls"])
def pg(request: pytest.FixtureRequest, pki: Path) -> Iterator[RealPostgres]:
    if request.param == "postgres" and not have_postgres():
        prereq.missing("PostgreSQL 15 server binaries are not installed")
    from tests.pgtlsserver import PgtlsServer

    server = RealPostgres().init() if request.param == "postgres" else PgtlsServer().init()
    for name in ("server.crt", "server.key", "root.crt", "root+intermediate.crl"):
        server.copy_in(pki / name)
    server.copy_in(pki / "crldir")
    with open(server.datadir / "postgresql.conf", "a") as f:
        f.write("ssl = on\nssl_ca_file = 'root.crt'\nssl_crl_file = 'root+intermediate.crl'\n")
    server.write(
        "pg_hba.conf",
        "local all all trust\nhostssl all postgres 127.0.0.1/32 trust\nhostssl all all 127.0.0.1/32 cert\n",
    )
    if isinstance(server, RealPostgres):
        server.start()
    try:
        if isinstance(server, RealPostgres):
            r = _psql(server, pki, "postgres", sql="create role alice login; create role bob login")
            assert r.returncode == 0, r.stderr + server.log()
        else:
            for user in ("alice", "bob"):
                server.create_role(user)
            server.start()
        yield server  # type: ignore[misc]
    finally:
        server.cleanup()


@pytest.mark.pg
def test_verify_full_with_pgtls_server_cert(pg: RealPostgres, pki: Path) -> None:
    # Behind pgtls, PostgreSQL's own pg_stat_ssl sees the private Unix socket; sslinfo's ssl_is_used()
    # answers for the client's connection to pgtls (and is PostgreSQL's own sslinfo on the direct side).
    if isinstance(pg, RealPostgres):
        sql = "select ssl from pg_stat_ssl where pid = pg_backend_pid()"
    else:
        sql = "select ssl_is_used()"
    r = _psql(pg, pki, "postgres", sql=sql)
    assert r.returncode == 0 and r.stdout.strip() == "t", r.stderr


@pytest.mark.pg
def test_cert_method_accepts_pgtls_client_cert(pg: RealPostgres, pki: Path) -> None:
    r = _psql(pg, pki, "alice", cert="alice", sql="select current_user")
    assert r.returncode == 0 and r.stdout.strip() == "alice", r.stderr + pg.log()
    r = _psql(pg, pki, "bob", cert="alice")  # CN alice may not log in as bob
    assert r.returncode != 0 and "certificate authentication failed" in r.stderr


@pytest.mark.pg
def test_revoked_client_refused_via_crl_file(pg: RealPostgres, pki: Path) -> None:
    r = _psql(pg, pki, "bob", cert="bob")
    assert r.returncode != 0 and "certificate revoked" in r.stderr, r.stderr


@pytest.mark.pg
def test_revoked_client_refused_via_crl_dir(pg: RealPostgres, pki: Path) -> None:
    with open(pg.datadir / "postgresql.conf", "a") as f:
        f.write("ssl_crl_file = ''\nssl_crl_dir = 'crldir'\n")
    pg.restart()
    try:
        assert _psql(pg, pki, "alice", cert="alice").returncode == 0, pg.log()
        r = _psql(pg, pki, "bob", cert="bob")
        assert r.returncode != 0 and "certificate revoked" in r.stderr, r.stderr
        # the same data directory, as PostgreSQL runs it, passes pgtls check
        assert [f.code for f in run_check(pg.datadir)] == []
    finally:
        with open(pg.datadir / "postgresql.conf", "a") as f:
            f.write("ssl_crl_dir = ''\nssl_crl_file = 'root+intermediate.crl'\n")
        pg.restart()
