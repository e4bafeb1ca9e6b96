"""The real pgtls server as a subprocess on a free loopback port, for integration tests.

By default a server stands in front of its own managed PostgreSQL cluster, as
`pgtls init` makes it.  initdb runs once per superuser name per test session:
later servers get a copy of that cluster (``cluster_template``), which is
several times faster.  ``init(backend="duckdb")`` gives the embedded backend.

Roles live in the cluster: :meth:`PgtlsServer.sql` runs statements as the
cluster's superuser over its private socket (with the cluster started for the
duration when pgtls is not running), :meth:`PgtlsServer.create_role` builds
``CREATE ROLE``; both queue their work until :meth:`start` when the server is
not running, so a test pays for no extra cluster start.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.pgserver import ServerDir, preexec

# pgtls's own line (the managed cluster's says "cluster: LOG:  database system is ready ...")
READY = "] LOG:  database system is ready to accept connections"


_TEMPLATES: dict[str, Path] = {}


def cluster_template(superuser: str) -> Path:
    """A stopped managed cluster with ``superuser``, made once per test session (fsync off: tests only)."""
    t = _TEMPLATES.get(superuser)
    if t is None:
        from pgtls.server.initdb import init_data_dir

        base = Path(tempfile.mkdtemp(prefix="pgtls-cluster-template-"))
        base.chmod(0o755)
        init_data_dir(base / "data", superuser=superuser, backend="postgresql")
        t = base / "data" / "cluster"
        with open(t / "postgresql.conf", "a") as f:
            f.write("fsync = off\n")
        _TEMPLATES[superuser] = t
    return t


def drop_templates() -> None:
    for t in _TEMPLATES.values():
        shutil.rmtree(t.parent.parent, ignore_errors=True)
    _TEMPLATES.clear()


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class PgtlsServer(ServerDir):
    def __init__(self, base: Path | None = None, *, superuser: str = "postgres") -> None:
        super().__init__(base, "pgtls-srv-", superuser)
        self.backend = "postgresql"
        self.python = sys.executable  # the interpreter that runs pgtls (bench/ab_connect.py may pick another)
        self._queued_sql: list[tuple[str, str]] = []

    def init(self, *, tls: bool = False, backend: str = "postgresql") -> PgtlsServer:
        from pgtls.server.initdb import init_data_dir

        self.backend = backend
        template = cluster_template(self.superuser) if backend == "postgresql" else None
        init_data_dir(
            self.datadir, superuser=self.superuser, tls=tls, backend=backend, cluster_template=template
        )
        self.sockdir.mkdir(exist_ok=True)
        # One process unless a test asks for workers (tests/relay/test_workers.py): most tests read one
        # process's log and count its sessions.
        self.conf(
            listen_addresses="127.0.0.1",
            port=str(self.port),
            unix_socket_directories=str(self.sockdir),
            log_connections="on",
            workers="1",
        )
        return self

    def conf(self, **settings: str) -> None:
        """Append settings to postgresql.conf (later lines win)."""
        with open(self.datadir / "postgresql.conf", "a") as f:
            for k, v in settings.items():
                f.write(f"{k} = '{v}'\n")

    # --- roles and SQL in the managed cluster -------------------------------------------------
    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def sql(self, statement: str, database: str = "postgres") -> list[list[str | None]]:
        """Run ``statement`` as the cluster's superuser (queued until start when the server is down)."""
        if not self.running:
            self._queued_sql.append((database, statement))
            return []
        from pgtls.backends.relay.clustersql import run_sql

        return run_sql(self.datadir, [(statement, None)], database=database)[0].rows

    def create_role(
        self,
        name: str,
        *,
        password: str | None = None,
        password_encryption: str = "scram-sha-256",
        options: str = "LOGIN",
        member_of: tuple[str, ...] = (),
    ) -> None:
        """CREATE ROLE with a password encrypted as ``password_encryption`` (md5 or scram-sha-256)."""
        sql = f"SET password_encryption = {quote_literal(password_encryption)}; "
        sql += f"CREATE ROLE {quote_ident(name)} {options}"
        if password is not None:
            sql += f" PASSWORD {quote_literal(password)}"
        if member_of:
            sql += " IN ROLE " + ", ".join(quote_ident(g) for g in member_of)
        self.sql(sql)

    def _run_queued(self) -> None:
        if not self._queued_sql:
            return
        from pgtls.backends.relay.clustersql import run_sql_in

        work = [(db, [(stmt, None)]) for db, stmt in self._queued_sql]
        self._queued_sql = []
        run_sql_in(self.datadir, work)

    def start(
        self,
        *,
        check: bool = True,
        args: list[str] | None = None,
        stdin: int | None = None,
        timeout: float = 30,
    ) -> bool:
        self._log_offset = self.logfile.stat().st_size if self.logfile.exists() else 0
        logf = open(self.logfile, "ab")
        env = dict(os.environ)
        self.proc = subprocess.Popen(
            [self.python, "-m", "pgtls", "serve", "-D", str(self.datadir), *(args or [])],
            stdout=logf,
            stderr=logf,
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            env=env,
            preexec_fn=preexec(),
        )
        return self.wait_ready(timeout, check)

    def wait_ready(self, timeout: float, check: bool = True, what: str = "pgtls") -> bool:
        """Once the started process logs READY, run the queued setup SQL: True.  A process that exits first:
        RuntimeError (``what`` failed to start), or False without ``check``; RuntimeError after ``timeout``."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if READY in self.log():
                self._run_queued()
                return True
            if self.proc.poll() is not None:
                if check:
                    raise RuntimeError(f"{what} failed to start (exit {self.proc.returncode}):\n{self.log()}")
                return False
            time.sleep(0.05)
        raise RuntimeError(f"{what} did not start in time:\n{self.log()}")

    def reload(self) -> None:
        assert self.proc is not None
        before = self.log().count("received SIGHUP")
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while self.log().count("received SIGHUP") == before and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)  # let the reload finish (it runs on the loop right after the log line)

    def dsn(self, **kw: object) -> str:
        params: dict[str, object] = {
            "host": "127.0.0.1",
            "port": self.port,
            "user": self.superuser,
            "dbname": "postgres",
        }
        params.update(kw)
        return " ".join(f"{k}={v}" for k, v in params.items() if v is not None)


TRUST_HBA = "local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n"


def tls_server(
    certs: object,
    server: PgtlsServer | None = None,
    *,
    cert: str = "server-chain.crt",
    key: str = "server.key",
    hba: str = TRUST_HBA,
    start: bool = True,
    backend: str = "postgresql",
    **conf: str,
) -> PgtlsServer:
    """A pgtls server with ssl=on, the certificate set's server chain and key, and trust rules."""
    s = (server or PgtlsServer()).init(backend=backend)
    s.copy_in(certs.path(cert), "server.crt", 0o644)  # type: ignore[attr-defined]
    s.copy_in(certs.path(key), "server.key", 0o600)  # type: ignore[attr-defined]
    s.write("pg_hba.conf", hba)
    s.conf(ssl="on", **conf)
    if start:
        s.start()
    return s
