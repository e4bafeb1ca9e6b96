"""The command line with the managed PostgreSQL: `pgtls role` on the cluster, and which backend a directory gets."""

from __future__ import annotations

import subprocess
import sys

import psycopg

from tests.pgtlsserver import PgtlsServer


def pgtls(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pgtls", *args], capture_output=True, text=True, input=input, timeout=120
    )


def login(s: PgtlsServer, user: str, password: str) -> bool:
    try:
        with psycopg.connect(
            host="127.0.0.1", port=s.port, user=user, password=password, dbname="postgres"
        ) as c:
            return c.execute("select current_user").fetchone() == (user,)
    except psycopg.OperationalError:
        return False


def test_role_commands_run_in_the_cluster(pgtls_factory):
    s = pgtls_factory().init()
    s.write(
        "pg_hba.conf",
        "local all all trust\nhost all postgres 127.0.0.1/32 trust\n"
        "host all all 127.0.0.1/32 scram-sha-256\n",
    )
    d = str(s.datadir)
    # With pgtls stopped: the command starts the cluster for the duration.
    r = pgtls("role", "add", "erin", "-D", d, "--password-stdin", "--createdb", input="first\n")
    assert r.returncode == 0, r.stderr
    assert "first" not in r.stdout + r.stderr
    s.start()
    assert login(s, "erin", "first")
    # With pgtls running: the running cluster is used, and the change counts for the next login.
    r = pgtls("role", "alter", "erin", "-D", d, "--password-stdin", input="second\n")
    assert r.returncode == 0, r.stderr
    assert not login(s, "erin", "first") and login(s, "erin", "second")
    listed = pgtls("role", "list", "-D", d)
    assert listed.returncode == 0 and "erin" in listed.stdout and "Create DB" in listed.stdout
    assert "scram-sha-256" in listed.stdout.split("erin", 1)[1].splitlines()[0]
    with psycopg.connect(s.dsn()) as c:
        secret = c.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'erin'").fetchone()[0]
    assert secret.startswith("SCRAM-SHA-256$4096:")
    r = pgtls("role", "drop", "erin", "-D", d)
    assert r.returncode == 0, r.stderr
    assert not login(s, "erin", "second")
    r = pgtls("role", "drop", "erin", "-D", d)
    assert r.returncode == 1 and 'role "erin" does not exist' in r.stderr


def test_a_directory_without_a_cluster_stays_duckdb(pgtls_factory):
    """A data directory made before the managed PostgreSQL (no `backend` line, no cluster/) is DuckDB."""
    s = pgtls_factory().init(backend="duckdb")
    conf = s.datadir / "postgresql.conf"
    conf.write_text(
        "".join(line for line in conf.read_text().splitlines(keepends=True) if not line.startswith("backend"))
    )
    s.start()
    with psycopg.connect(s.dsn()) as c:
        assert c.execute("SHOW server_version").fetchone() == ("17.0",)  # the embedded backend's
    assert not (s.datadir / "cluster").exists()


def test_backend_setting_picks_the_managed_cluster(pgtls_factory):
    s = pgtls_factory().init()
    assert "backend = 'postgresql'" in (s.datadir / "postgresql.conf").read_text()
    s.start()
    with psycopg.connect(s.dsn()) as c:
        assert c.execute("SELECT version()").fetchone()[0].startswith("PostgreSQL 18")


def test_check_on_a_managed_directory(pgtls_factory):
    s = pgtls_factory().init(tls=True)
    r = pgtls("check", "-D", str(s.datadir))
    assert r.returncode == 0 and "no problems found" in r.stdout, r.stdout + r.stderr
