"""Issue 13: a real HA manager's own failover gives the same result as a manual promotion (test_failover.py).

pg_auto_failover (Debian's pg-auto-failover-cli and postgresql-15-auto-failover) runs a monitor and two data
nodes of PostgreSQL 15 on 127.0.0.1, with self-signed TLS on each.  pgtls routes `app` to whichever node is
read-write; after `pg_autoctl perform failover` has completed, a new login to `app` writes on the other node
within 20 s.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import psycopg
import pytest

from tests import prereq
from tests.pgserver import (
    PG_BIN,
    _demote,
    free_port,
    give_to_server_user,
    have_postgres,
    preexec,
    shared_tmpdir,
)
from tests.pgtlsserver import PgtlsServer, tls_server

PG_AUTOCTL = Path("/usr/bin/pg_autoctl")
EXTENSION = Path("/usr/share/postgresql/15/extension/pgautofailover.control")
PASSWORD = "auth-secret"
WRITE_DEADLINE = 20.0  # seconds after the failover completes


class Formation:
    """A pg_auto_failover monitor and data nodes, each a `pg_autoctl ... --run` service run as ``postgres``."""

    def __init__(self) -> None:
        self.base = shared_tmpdir("pgtls-ha-")
        self.sockdir = self.base / "sock"
        self.sockdir.mkdir()
        give_to_server_user(self.base)
        # pg_autoctl keeps its config and state under XDG_*, and its Postgres' sockets in PG_REGRESS_SOCK_DIR
        # (it passes -k): all inside the temp directory.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "XDG_"))}
        env.update(
            HOME=str(self.base),
            XDG_CONFIG_HOME=str(self.base / "config"),
            XDG_DATA_HOME=str(self.base / "share"),
            XDG_RUNTIME_DIR=str(self.base / "run"),
            PG_REGRESS_SOCK_DIR=str(self.sockdir),
            PGHOST=str(self.sockdir),
            PATH=f"{PG_BIN}:/usr/local/bin:/usr/bin:/bin",
        )  # not root's: the postgres user can't enter it
        self.env = env
        self.monitor_port = free_port()
        self.monitor_uri = (
            f"postgres://autoctl_node@127.0.0.1:{self.monitor_port}/pg_auto_failover?sslmode=require"
        )
        self.ports: dict[str, int] = {}
        self.services: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []

    def pgdata(self, name: str) -> Path:
        return self.base / name

    def _service(self, name: str, args: list[str]) -> None:
        log = open(self.base / f"{name}.log", "wb")  # noqa: SIM115 - closed in stop()
        self._logs.append(log)
        self.services[name] = subprocess.Popen(
            [
                str(PG_AUTOCTL),
                *args,
                "--pgdata",
                str(self.pgdata(name)),
                "--pgctl",
                str(PG_BIN / "pg_ctl"),
                "--hostname",
                "127.0.0.1",
                "--auth",
                "trust",
                "--ssl-self-signed",
                "--run",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.base,
            preexec_fn=preexec(demote=True),
        )

    def ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(PG_AUTOCTL), *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.base,
            preexec_fn=_demote,
            timeout=timeout,
        )

    def start_monitor(self) -> None:
        self._service(
            "monitor", ["create", "monitor", "--pgport", str(self.monitor_port), "--listen", "127.0.0.1"]
        )
        self._wait("monitor ready", self._monitor_ready, 60)

    def _monitor_ready(self) -> bool:
        try:
            with psycopg.connect(self.monitor_uri, connect_timeout=2) as c:
                return c.execute("SELECT count(*) FROM pgautofailover.formation").fetchone() == (1,)
        except psycopg.Error:
            return False

    def add_node(self, name: str) -> None:
        self.ports[name] = free_port()
        self._service(
            name,
            [
                "create",
                "postgres",
                "--pgport",
                str(self.ports[name]),
                "--listen",
                "127.0.0.1",
                "--name",
                name,
                "--monitor",
                self.monitor_uri,
            ],
        )

    def state(self) -> dict[str, str]:
        """Node name -> its current state, for nodes whose current state is the one the monitor assigned."""
        r = self.ctl("show", "state", "--pgdata", str(self.pgdata("monitor")), "--json", timeout=30)
        if r.returncode != 0:
            return {}
        try:
            nodes = json.loads(r.stdout)
        except json.JSONDecodeError:
            return {}
        return {
            n["nodename"]: n["current_group_state"]
            for n in nodes
            if n["current_group_state"] == n["assigned_group_state"]
        }

    def wait_state(self, want: dict[str, str], timeout: float) -> None:
        self._wait(f"formation state {want}", lambda: self.state() == want, timeout)

    def _wait(self, what: str, ok: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, p in self.services.items():
                if p.poll() is not None:
                    pytest.fail(
                        f"pg_autoctl service {name} exited ({p.returncode}) waiting for {what}\n{self.logs()}"
                    )
            if ok():
                return
            time.sleep(0.5)
        pytest.fail(f"timed out waiting for {what}: {self.state()}\n{self.logs()}")

    def logs(self) -> str:
        out = []
        for name in self.services:
            try:
                text = (self.base / f"{name}.log").read_text(errors="replace")
            except FileNotFoundError:
                continue
            out.append(f"--- pg_autoctl {name} ---\n{text[-3000:]}")
        return "\n".join(out)

    def stop(self) -> None:
        """`pg_autoctl stop` per node (data nodes first), then anything it left: the service, its Postgres."""
        for name in reversed(list(self.services)):
            p = self.services[name]
            if p.poll() is None:
                self.ctl("stop", "--pgdata", str(self.pgdata(name)), timeout=30)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    self.ctl("stop", "--immediate", "--pgdata", str(self.pgdata(name)), timeout=30)
                    try:
                        p.wait(15)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.wait()
            self._stop_postmaster(self.pgdata(name))
        for log in self._logs:
            log.close()

    def _stop_postmaster(self, pgdata: Path) -> None:
        try:
            pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError):
            return
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        subprocess.run(
            [str(PG_BIN / "pg_ctl"), "stop", "-D", str(pgdata), "-m", "immediate", "-w", "-t", "20"],
            capture_output=True,
            env=self.env,
            preexec_fn=_demote,
            timeout=60,
        )
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def cleanup(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def formation() -> Iterator[Formation]:
    if not have_postgres():
        prereq.missing("PostgreSQL 15 server binaries are not installed")
    if not PG_AUTOCTL.exists() or not EXTENSION.exists():
        prereq.missing(
            "pg_auto_failover is not installed (pg-auto-failover-cli, postgresql-15-auto-failover)"
        )
    f = Formation()
    try:
        f.start_monitor()
        f.add_node("node1")
        f.wait_state({"node1": "single"}, 90)
        f.add_node("node2")
        f.wait_state({"node1": "primary", "node2": "secondary"}, 120)
        yield f
    finally:
        f.cleanup()


def login(s: PgtlsServer) -> psycopg.Connection:
    return psycopg.connect(
        host="127.0.0.1",
        port=s.port,
        user="app",
        dbname="app",
        sslmode="require",
        autocommit=True,
        connect_timeout=5,
    )


@pytest.mark.timeout(300)
def test_pg_auto_failover_failover_reaches_new_primary(formation: Formation, certs, pgtls_factory) -> None:
    p1, p2 = formation.ports["node1"], formation.ports["node2"]
    with psycopg.connect(
        host="127.0.0.1", port=p1, user="postgres", dbname="postgres", sslmode="require", autocommit=True
    ) as c:
        c.execute(f"CREATE ROLE pgtls_auth LOGIN SUPERUSER PASSWORD '{PASSWORD}'")
        c.execute("CREATE ROLE app LOGIN")
        c.execute("CREATE TABLE t (i int)")
        c.execute("GRANT ALL ON t TO app")
    d = shared_tmpdir("pgtls-pgpass-")
    try:
        pgpass = d / "pgpass"
        pgpass.write_text(f"*:*:*:pgtls_auth:{PASSWORD}\n")
        pgpass.chmod(0o600)
        s = tls_server(certs, pgtls_factory(), hba="hostssl all all 127.0.0.1/32 trust\n", start=False)
        s.write(
            "pgtls_databases.conf",
            f"app = host=127.0.0.1,127.0.0.1 port={p1},{p2} dbname=postgres sslmode=require "
            f"target_session_attrs=read-write connect_timeout=2 auth_user=pgtls_auth passfile={pgpass}\n",
        )
        s.start()
        with login(s) as c:
            assert c.execute("SELECT pg_is_in_recovery(), inet_server_port()").fetchone() == (False, p1)
            c.execute("INSERT INTO t VALUES (1)")

        began = time.monotonic()
        r = formation.ctl(
            "perform", "failover", "--pgdata", str(formation.pgdata("monitor")), "--wait", "90", timeout=120
        )
        assert r.returncode == 0, f"{r.stdout}\n{r.stderr}\n{formation.logs()}"
        formation.wait_state({"node1": "secondary", "node2": "primary"}, 60)
        done = time.monotonic()

        wrote = None
        last: Exception | None = None
        while time.monotonic() - done < WRITE_DEADLINE:
            try:
                with login(s) as c:
                    c.execute("INSERT INTO t VALUES (2)")
                    wrote = c.execute("SELECT inet_server_port(), count(*) FROM t").fetchone()
                    break
            except (
                psycopg.Error
            ) as e:  # the old primary, now a standby, refuses writes until routing moves on
                last = e
                time.sleep(0.2)
        took = time.monotonic() - done
        print(f"pg_autoctl perform failover: {done - began:.1f} s; then a write through pgtls: {took:.1f} s")
        assert wrote == (p2, 2), f"{last!r}\n{s.log()[-3000:]}\n{formation.logs()}"
        assert took < WRITE_DEADLINE
    finally:
        shutil.rmtree(d, ignore_errors=True)
