"""The relay and the same PostgreSQL 18 run directly, side by side: the servers (pgtls with TLS and
client certificates under ``cert``; PostgreSQL over plain TCP with trust) and the libpq parameters and
environment for each.  Used by tests/relay/test_sql_relay.py and tests/relay/test_tools_relay.py."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from tests.pgserver import RealPostgres, managed_pg_bin, shared_tmpdir
from tests.pgtlsserver import PgtlsServer, tls_server

ROLE = "ssltestuser"  # the CN of the certificate set's client.crt
CERT_HBA = "local all all trust\nhostssl all ssltestuser 127.0.0.1/32 cert\n"


def relay_server(certs: object, databases: tuple[str, ...], **conf: str) -> PgtlsServer:
    """A started pgtls (relay backend) with TLS, client certificates checked against the client CA (``cert``
    for ssltestuser over TCP, nothing else), and ``databases`` owned by ssltestuser."""
    s = tls_server(certs, hba=CERT_HBA, start=False, ssl_ca_file="root+client_ca.crt", **conf)
    s.copy_in(certs.path("root+client_ca.crt"), "root+client_ca.crt", 0o644)  # type: ignore[attr-defined]
    s.create_role(ROLE)
    for db in databases:
        s.sql(f'CREATE DATABASE "{db}" OWNER {ROLE}')
    s.start()
    return s


def direct_pg(databases: tuple[str, ...]) -> RealPostgres:
    """The same PostgreSQL 18 run directly (TCP, trust, no TLS) with the same role and databases."""
    pg = RealPostgres(bindir=managed_pg_bin())
    pg.init().start()
    with psycopg.connect(
        host="127.0.0.1", port=pg.port, user="postgres", dbname="postgres", autocommit=True
    ) as c:
        c.execute(f"CREATE ROLE {ROLE} LOGIN")
        for db in databases:
            c.execute(f'CREATE DATABASE "{db}" OWNER {ROLE}')
    return pg


def client_keys() -> Path:
    """A directory for client.crt/client.key with mode 0600 (libpq refuses a key others can read)."""
    return shared_tmpdir("pgtls-relay-keys-")


def install_keys(certs: object, d: Path) -> None:
    for name in ("client.crt", "client.key"):
        shutil.copy(certs.path(name), d / name)  # type: ignore[attr-defined]
        (d / name).chmod(0o600)


@contextmanager
def side_by_side(
    certs: object, relay_databases: tuple[str, ...], direct_databases: tuple[str, ...]
) -> Iterator[tuple[PgtlsServer, RealPostgres, Path]]:
    """The relay (:func:`relay_server` with ``relay_databases``) and PostgreSQL directly (:func:`direct_pg` with
    ``direct_databases``), and the directory with the client's key: (relay, postgres, keys).  All removed
    after; the relay's log is printed (pytest shows it only on failure)."""
    keys = client_keys()
    ours: PgtlsServer | None = None
    pg: RealPostgres | None = None
    try:
        install_keys(certs, keys)
        ours = relay_server(certs, relay_databases)
        pg = direct_pg(direct_databases)
        yield ours, pg, keys
    finally:
        if ours is not None:
            print(f"--- pgtls server log ---\n{ours.full_log()[-6000:]}")
            ours.cleanup()
        if pg is not None:
            pg.cleanup()
        shutil.rmtree(keys, ignore_errors=True)


def tls_params(
    server: PgtlsServer, certs: object, keys: Path, dbname: str, **extra: object
) -> dict[str, object]:
    """libpq parameters: TLS with verify-full (name localhost, address 127.0.0.1) and the client certificate."""
    params: dict[str, object] = {
        "host": "localhost",
        "hostaddr": "127.0.0.1",
        "port": server.port,
        "user": ROLE,
        "dbname": dbname,
        "sslmode": "verify-full",
        "sslrootcert": certs.path("root_ca.crt"),  # type: ignore[attr-defined]
        "sslcert": str(keys / "client.crt"),
        "sslkey": str(keys / "client.key"),
        "connect_timeout": 15,
    }
    params.update(extra)
    return params


def direct_params(pg: RealPostgres, dbname: str, **extra: object) -> dict[str, object]:
    params: dict[str, object] = {
        "host": "127.0.0.1",
        "port": pg.port,
        "user": ROLE,
        "dbname": dbname,
        "sslmode": "disable",
        "connect_timeout": 15,
    }
    params.update(extra)
    return params


def conninfo(params: dict[str, object]) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items() if v is not None)


def client_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment for psql/pgbench: no PG* variables from outside, an empty HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["HOME"] = str(home)
    env.update(extra)
    return env
