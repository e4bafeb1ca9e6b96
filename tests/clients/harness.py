"""Servers and per-client report caches for the scenario tests (integration and differential)."""

from __future__ import annotations

import time
from typing import Any

from tests.clients import pydrivers
from tests.pgserver import RealPostgres
from tests.pgtlsserver import PgtlsServer

HBA = "local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n"


def start_pgtls(certs: Any) -> PgtlsServer:
    s = PgtlsServer().init()
    s.copy_in(certs.path("server-chain.crt"), "server.crt", 0o644)
    s.copy_in(certs.path("server.key"), "server.key", 0o600)
    s.write("pg_hba.conf", HBA)
    s.conf(ssl="on")
    s.start()
    return s


def start_realpg(certs: Any) -> RealPostgres:
    pg = RealPostgres().init()
    pg.copy_in(certs.path("server-chain.crt"), "server.crt", 0o644)
    pg.copy_in(certs.path("server.key"), "server.key", 0o600)
    pg.write("pg_hba.conf", HBA)
    with open(pg.datadir / "postgresql.conf", "a") as f:
        f.write("ssl = on\ntimezone = 'UTC'\nlog_timezone = 'UTC'\n")
    pg.start()
    return pg


class Reports:
    """Runs each client once against one server, on first use, and keeps its report."""

    def __init__(self, target: pydrivers.Target, tag: str) -> None:
        self.target = target
        self.tag = tag
        self._done: dict[str, dict[str, Any] | BaseException] = {}
        self.seconds: dict[str, float] = {}
        pydrivers.prepare_server(target)

    def get(self, client: str) -> dict[str, Any]:
        if client not in self._done:
            started = time.monotonic()
            try:
                self._done[client] = pydrivers.run_client(client, self.target, f"{self.tag}_{client.replace('-', '_')}")
            except Exception as e:  # the client program itself failed: every test of it shows why
                self._done[client] = e
            self.seconds[client] = time.monotonic() - started
        got = self._done[client]
        if isinstance(got, BaseException):
            raise AssertionError(f"{client} did not finish the scenario: {got}")
        return got
