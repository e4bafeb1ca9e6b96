"""The admin console (database pgtls) and the Prometheus metrics, with real clients over TLS.

psql through the door as for any database; the metrics over HTTP on their own port; one server process and
two worker processes (a client of either worker is seen from the other).
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import struct
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from cryptography import x509

from tests.pgtlsserver import PgtlsServer
from tests.relay.util import read_to_eof, read_to_ready, startup_message, tls_request

HBA = "local all all trust\nhostssl all all 127.0.0.1/32 trust\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def admin_server(certs, workers: str = "1", **conf: str) -> tuple[PgtlsServer, int]:
    s = PgtlsServer().init()
    s.copy_in(certs.path("server-chain.crt"), "server.crt", 0o644)
    s.copy_in(certs.path("server.key"), "server.key", 0o600)
    s.copy_in(certs.path("root+client_ca.crt"), "root+client_ca.crt", 0o644)
    s.write("pg_hba.conf", HBA)
    port = free_port()
    s.conf(
        ssl="on",
        ssl_ca_file="root+client_ca.crt",
        metrics_address=f"127.0.0.1:{port}",
        workers=workers,
        pool_mode="transaction",
        default_pool_size="1",
        query_wait_timeout="5",
        **conf,
    )
    s.create_role("ssltestuser")
    s.create_role("watcher")
    s.start()
    return s, port


@pytest.fixture(scope="module")
def served(certs) -> Iterator[tuple[PgtlsServer, int]]:
    s, port = admin_server(certs, admin_users="watcher")
    yield s, port
    print(s.full_log()[-3000:])
    s.cleanup()


def psql(
    s: PgtlsServer, keys: Path, sql: str, user: str = "postgres", db: str = "pgtls"
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    dsn = (
        f"host=localhost port={s.port} user={user} dbname={db} sslmode=verify-full "
        f"sslrootcert={keys / 'root_ca.crt'}"
    )
    return subprocess.run(
        ["psql", "-XAtq", "-F", "|", dsn, "-c", sql], capture_output=True, text=True, env=env, timeout=60
    )


def client(s: PgtlsServer, keys: Path, user: str = "ssltestuser", **kw: object) -> psycopg.Connection:
    return psycopg.connect(
        host="localhost",
        port=s.port,
        user=user,
        dbname="postgres",
        autocommit=True,
        sslmode="verify-full",
        sslrootcert=str(keys / "root_ca.crt"),
        sslcert=str(keys / "client.crt"),
        sslkey=str(keys / "client.key"),
        connect_timeout=10,
        **kw,
    )


def metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        return r.read().decode()


def sample(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            got = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}", 1)[0]))
            if all(got.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return None


def test_show_clients_lists_a_client_with_its_certificate_dn(served, keys):
    s, _ = served
    with client(s, keys) as c:
        c.execute("SELECT 1")
        r = psql(s, keys, "SHOW CLIENTS")
        assert r.returncode == 0, r.stderr
        rows = [line.split("|") for line in r.stdout.splitlines()]
        mine = [row for row in rows if row[2] == "ssltestuser"]
        assert (
            mine and mine[0][3] == "postgres" and mine[0][9] == "TLSv1.3" and mine[0][11] == "/CN=ssltestuser"
        )


def test_show_pools_servers_stats_ssl_and_config(served, keys):
    s, _ = served
    with client(s, keys) as c:
        c.execute("LISTEN chan")  # pins it (transaction mode): visible in SHOW POOLS and SHOW CLIENTS
        pools = psql(s, keys, "SHOW POOLS").stdout
        assert re.search(r"^0\|ssltestuser\|postgres\|transaction\|1\|1\|1\|0\|0\|1$", pools, re.M), pools
        assert "|LISTEN|" in psql(s, keys, "SHOW CLIENTS").stdout
        backend = c.execute("SELECT pg_backend_pid()").fetchone()[0]
        assert f"0|{backend}|ssltestuser|postgres|active|" in psql(s, keys, "SHOW SERVERS").stdout
    stats = psql(s, keys, "show stats;").stdout.split("|")
    assert int(stats[8]) >= 2 and int(stats[10]) >= 2  # handshakes, logins
    ssl_rows = psql(s, keys, "SHOW SSL").stdout.splitlines()
    assert any(r.startswith("0|certificate|server.crt||CN=localhost") for r in ssl_rows), ssl_rows
    assert "pool_mode|transaction" in psql(s, keys, "SHOW CONFIG").stdout


def test_console_errors_and_extended_protocol(served, keys):
    s, _ = served
    r = psql(s, keys, "SHOW NOTHING")
    assert r.returncode != 0 and 'unrecognized admin console item "NOTHING"' in r.stderr
    r = psql(s, keys, "DROP TABLE x")
    assert r.returncode != 0 and "unrecognized admin console command" in r.stderr
    with psycopg.connect(
        host="localhost", port=s.port, user="postgres", dbname="pgtls", autocommit=True, sslmode="require"
    ) as c:  # psycopg: the extended protocol
        cols = [d.name for d in c.execute("SHOW POOLS").description]
        assert cols[:4] == ["worker", "user", "database", "mode"]
        with pytest.raises(psycopg.errors.UndefinedObject):
            c.execute("KILL 999999999")


def test_only_superusers_and_admin_users(served, keys):
    s, _ = served
    r = psql(s, keys, "SHOW CLIENTS", user="ssltestuser")
    assert r.returncode != 0 and 'permission denied for database "pgtls"' in r.stderr
    assert psql(s, keys, "SHOW CLIENTS", user="watcher").returncode == 0


def tls_session(port: int, user: str = "postgres") -> tuple[ssl.SSLSocket, int]:
    """A raw TLS session (SSLRequest, trust login) and its BackendKeyData pid: a victim whose FATAL is read
    before anything is sent (a client sending after the close can meet a TCP reset that discards it)."""
    t = tls_request(port)
    t.sendall(startup_message(user))
    got = read_to_ready(t)
    key = got[got.index(b"K\0\0\0") :]
    return t, struct.unpack("!i", key[5:9])[0]


def test_kill_pause_and_resume(served, keys):
    s, _ = served
    victim, pid = tls_session(s.port)
    assert psql(s, keys, f"KILL {pid}").returncode == 0
    victim.settimeout(10)
    rest = read_to_eof(victim)
    victim.close()
    assert rest.startswith(b"E") and b"C57P01\0" in rest
    assert b"terminating connection due to administrator command" in rest
    with client(s, keys) as c:
        assert psql(s, keys, "PAUSE").returncode == 0
        done: list[float] = []
        t0 = time.monotonic()
        th = threading.Thread(target=lambda: done.append(c.execute("SELECT 1").fetchone()[0]))
        th.start()
        time.sleep(1)
        assert not done  # waits while paused
        assert psql(s, keys, "RESUME").returncode == 0
        th.join(10)
        assert done == [1] and time.monotonic() - t0 >= 1


def test_metrics(served, keys):
    s, port = served
    with client(s, keys) as c:
        c.execute("SELECT 1")
        text = metrics(port)
    assert sample(text, "pgtls_tls_handshakes_total", protocol="TLSv1.3") >= 1
    assert sample(text, "pgtls_authentications_total", method="trust", outcome="success") >= 1
    assert sample(text, "pgtls_client_connections", state="active") is not None
    assert sample(text, "pgtls_upstream_up", upstream="managed cluster") == 1
    cert = x509.load_pem_x509_certificates((s.datadir / "server.crt").read_bytes())[0]
    left = sample(text, "pgtls_certificate_expiry_seconds", kind="certificate")
    assert left is not None and abs(left - (cert.not_valid_after_utc.timestamp() - time.time())) < 60
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10):
        pass
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=10)


def test_failed_reload_is_shown_and_the_old_certificate_stays(certs, keys):
    s, port = admin_server(certs)
    try:
        before = ssl_fingerprint(s.port)
        ok = pgtls_reload(s)
        assert ok.returncode == 0 and "configuration reloaded" in ok.stdout, (ok.stdout, ok.stderr)
        (s.datadir / "server.crt").write_text(
            "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"
        )
        r = pgtls_reload(s)
        assert r.returncode == 1 and "server signaled" in r.stdout
        assert "the server kept its old configuration for SSL configuration" in r.stderr
        assert '"server.crt"' in r.stderr, r.stderr
        rows = psql(s, keys, "SHOW RELOAD").stdout
        assert re.search(r"^0\|SSL configuration\|[^|]+\|f\|.*server\.crt", rows, re.M), rows
        assert sample(metrics(port), "pgtls_reload_success", file="SSL configuration") == 0
        assert sample(metrics(port), "pgtls_reload_success", file="pg_hba.conf") == 1
        assert ssl_fingerprint(s.port) == before
    finally:
        s.cleanup()


def pgtls_reload(s: PgtlsServer) -> subprocess.CompletedProcess[str]:
    import sys

    return subprocess.run(
        [sys.executable, "-m", "pgtls", "reload", "-D", str(s.datadir), "-t", "30"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def ssl_fingerprint(port: int) -> bytes:
    with tls_request(port) as t:
        der = t.getpeercert(binary_form=True)
    assert der is not None
    return der


def test_two_workers_answer_for_each_other(certs, keys):
    s, port = admin_server(certs, workers="2")
    try:
        clients = [client(s, keys, application_name=f"app{i}") for i in range(6)]
        try:
            for c in clients:
                c.execute("SELECT 1")
            for _ in range(4):  # whichever worker the console lands on lists every client
                names = {row.split("|")[6] for row in psql(s, keys, "SHOW CLIENTS").stdout.splitlines()}
                assert {f"app{i}" for i in range(6)} <= names
            text = metrics(port)
            assert sample(text, "pgtls_worker_restarts_total", worker="0") == 0
            assert sample(text, "pgtls_worker_restarts_total", worker="1") == 0
            total = sum(
                sample(text, "pgtls_tls_handshakes_total", worker=w, protocol="TLSv1.3") or 0
                for w in ("0", "1")
            )
            assert total >= 6
            # pgtls reload answers once both workers have reloaded; a bad pg_hba.conf line is named per worker
            ok = pgtls_reload(s)
            assert ok.returncode == 0 and "configuration reloaded" in ok.stdout, (ok.stdout, ok.stderr)
            (s.datadir / "pg_hba.conf").write_text(HBA + "hostssl all all 127.0.0.1/32 nosuchmethod\n")
            bad = pgtls_reload(s)
            assert bad.returncode == 1
            assert "worker process 0 kept its old configuration for pg_hba.conf" in bad.stderr, bad.stderr
            assert "worker process 1 kept its old configuration for pg_hba.conf" in bad.stderr, bad.stderr
        finally:
            for c in clients:
                c.close()
    finally:
        s.cleanup()
