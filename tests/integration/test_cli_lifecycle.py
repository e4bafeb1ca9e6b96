"""The data directory and process lifecycle: init, serve, postmaster.pid, reload, stop,
and postgresql.conf errors at start (fatal) and at reload (logged, old value kept)."""

from __future__ import annotations

import subprocess
import sys
import time

import psycopg
import pytest

from tests.conftest import run_psql


def pgtls(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pgtls", *args], capture_output=True, text=True, input=input, timeout=60
    )


def test_init_writes_postgres_files(tmp_path):
    d = tmp_path / "data"
    r = pgtls("init", "-D", str(d), "-U", "alice")
    assert r.returncode == 0, r.stderr
    for name in ("postgresql.conf", "pg_hba.conf", "pg_ident.conf", "PG_VERSION"):
        assert (d / name).is_file()
    conf = (d / "postgresql.conf").read_text()
    assert "#ssl = off" in conf and "#ssl_ciphers = 'HIGH:MEDIUM:+3DES:!aNULL'" in conf
    assert "#port = 5432" in conf
    # 0700 like PostgreSQL's; as root, o+x (traverse only) so that the cluster's OS user reaches cluster/
    assert (d.stat().st_mode & 0o776) == 0o700
    assert (d / "cluster" / "PG_VERSION").is_file() and ((d / "cluster").stat().st_mode & 0o077) == 0
    roles = pgtls("role", "list", "-D", str(d))
    assert roles.returncode == 0 and "alice" in roles.stdout and "Superuser" in roles.stdout
    # init refuses a non-empty directory, like initdb
    again = pgtls("init", "-D", str(d))
    assert again.returncode != 0 and "exists but is not empty" in again.stderr


def test_init_uses_pgdata(tmp_path, monkeypatch):
    d = tmp_path / "pgdata"
    r = subprocess.run(
        [sys.executable, "-m", "pgtls", "init"],
        capture_output=True,
        text=True,
        env={"PGDATA": str(d), "PATH": "/usr/bin:/bin", "USER": "someone", "HOME": str(tmp_path)},
    )
    assert r.returncode == 0, r.stderr
    assert (d / "postgresql.conf").exists()


def test_pidfile_reload_stop(pgtls_factory, client_home):
    s = pgtls_factory().init()
    s.start()
    pid_lines = (s.datadir / "postmaster.pid").read_text().splitlines()
    assert int(pid_lines[0]) == s.proc.pid
    assert pid_lines[1] == str(s.datadir.resolve())
    assert pid_lines[3] == str(s.port)
    # A second server on the same data directory is refused.
    second = pgtls("serve", "-D", str(s.datadir), "-c", "port=1")
    assert second.returncode != 0
    assert 'lock file "postmaster.pid" already exists' in second.stderr
    r = pgtls("reload", "-D", str(s.datadir))
    assert r.returncode == 0 and "server signaled" in r.stdout
    deadline = time.monotonic() + 5
    while "received SIGHUP, reloading configuration files" not in s.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "received SIGHUP, reloading configuration files" in s.log()
    r = pgtls("stop", "-D", str(s.datadir))
    assert r.returncode == 0 and "server stopped" in r.stdout
    assert s.proc.wait(10) == 0
    assert not (s.datadir / "postmaster.pid").exists()
    assert not (s.sockdir / f".s.PGSQL.{s.port}").exists()


def test_unknown_parameter_refuses_start_naming_file_and_line(pgtls_factory):
    s = pgtls_factory().init()
    with open(s.datadir / "postgresql.conf", "a") as f:
        f.write("bogus_setting = 1\n")
    line = (s.datadir / "postgresql.conf").read_text().count("\n")
    assert not s.start(check=False)
    assert s.proc.returncode != 0
    assert (
        f'unrecognized configuration parameter "bogus_setting" in file "{s.datadir / "postgresql.conf"}" '
        f"line {line}"
    ) in s.log()


# pgtls's own settings are observed with SHOW, which the embedded backend answers from pgtls's snapshot
# (through the relay, SHOW is the managed PostgreSQL's own).
def test_c_overrides_file(pgtls_factory, client_home):
    s = pgtls_factory().init(backend="duckdb")
    s.conf(authentication_timeout="30s")
    s.start(args=["-c", "authentication_timeout=45s", "-c", "application_name=fromcmdline"])
    with psycopg.connect(s.dsn()) as c:
        assert c.execute("SHOW authentication_timeout").fetchone() == ("45s",)


def test_reload_bad_value_keeps_old_and_postmaster_param_needs_restart(pgtls_factory, client_home):
    s = pgtls_factory().init(backend="duckdb")
    s.conf(authentication_timeout="30s")
    s.start()
    s.conf(authentication_timeout="notatime")
    s.reload()
    log = s.log()
    assert 'invalid value for parameter "authentication_timeout": "notatime"' in log
    assert "contains errors" in log
    with psycopg.connect(s.dsn()) as c:
        assert c.execute("SHOW authentication_timeout").fetchone() == ("30s",)
    s.conf(authentication_timeout="40s", max_connections="7")
    s.reload()
    assert 'parameter "max_connections" cannot be changed without restarting the server' in s.log()
    with psycopg.connect(s.dsn()) as c:
        assert c.execute("SHOW authentication_timeout").fetchone() == ("40s",)
        assert c.execute("SHOW max_connections").fetchone() == ("100",)


def test_ssl_turned_on_by_reload(pgtls_factory, certs, client_home):
    s = pgtls_factory().init()
    s.start()
    assert not run_psql(s.dsn(sslmode="require"), home=client_home).ok
    s.copy_in(certs.path("server-chain.crt"), "server.crt", 0o644)
    s.copy_in(certs.path("server.key"), "server.key", 0o600)
    s.conf(ssl="on")
    s.reload()
    r = run_psql(s.dsn(sslmode="require"), r"\conninfo", home=client_home)
    assert r.ok and "SSL connection" in r.stdout
    s.conf(ssl="off")
    s.reload()
    assert not run_psql(s.dsn(sslmode="require"), home=client_home).ok


@pytest.mark.parametrize("mode", ["smart", "fast"])
def test_stop_modes(pgtls_factory, mode):
    s = pgtls_factory().init()
    s.start()
    conn = psycopg.connect(s.dsn())
    r = subprocess.Popen(
        [sys.executable, "-m", "pgtls", "stop", "-D", str(s.datadir), "-m", mode, "-t", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, _ = r.communicate(timeout=30)
    if mode == "fast":
        assert r.returncode == 0
        with pytest.raises(psycopg.OperationalError):
            conn.execute("select 1")
    else:
        # smart shutdown waits for the open session
        assert r.returncode == 1
        assert conn.execute("select 1").fetchone() == (1,)
        conn.close()
        assert s.proc.wait(10) == 0
    conn.close()


def test_log_disconnections(pgtls_factory):
    import re

    s = pgtls_factory().init()
    s.conf(log_disconnections="on")
    s.start()
    with psycopg.connect(s.dsn()) as c:
        c.execute("select 1")
    deadline = time.monotonic() + 5
    while "disconnection:" not in s.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert re.search(
        r"LOG:  disconnection: session time: \d+:\d\d:\d\d\.\d\d\d user=postgres database=postgres "
        r"host=127\.0\.0\.1 port=\d+",
        s.log(),
    )
