"""The real pgtls server as a subprocess on a free loopback port, for integration tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.pgserver import ServerDir

READY = "database system is ready to accept connections"


class PgtlsServer(ServerDir):
    def __init__(self, base: Path | None = None, *, superuser: str = "postgres") -> None:
        super().__init__(base, "pgtls-srv-", superuser)

    def init(self, *, tls: bool = False) -> PgtlsServer:
        from pgtls.server.initdb import init_data_dir

        init_data_dir(self.datadir, superuser=self.superuser, tls=tls)
        self.sockdir.mkdir(exist_ok=True)
        self.conf(listen_addresses="127.0.0.1", port=str(self.port), unix_socket_directories=str(self.sockdir),
                  log_connections="on")
        return self

    def conf(self, **settings: str) -> None:
        """Append settings to postgresql.conf (later lines win)."""
        with open(self.datadir / "postgresql.conf", "a") as f:
            for k, v in settings.items():
                f.write(f"{k} = '{v}'\n")

    def start(self, *, check: bool = True, args: list[str] | None = None, stdin: int | None = None,
              timeout: float = 30) -> bool:
        self._log_offset = self.logfile.stat().st_size if self.logfile.exists() else 0
        logf = open(self.logfile, "ab")
        env = dict(os.environ)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pgtls", "serve", "-D", str(self.datadir), *(args or [])],
            stdout=logf, stderr=logf, stdin=stdin if stdin is not None else subprocess.DEVNULL, env=env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if READY in self.log():
                return True
            if self.proc.poll() is not None:
                if check:
                    raise RuntimeError(f"pgtls failed to start (exit {self.proc.returncode}):\n{self.log()}")
                return False
            time.sleep(0.05)
        raise RuntimeError(f"pgtls did not start in time:\n{self.log()}")

    def reload(self) -> None:
        assert self.proc is not None
        before = self.log().count("received SIGHUP")
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while self.log().count("received SIGHUP") == before and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)  # let the reload finish (it runs on the loop right after the log line)

    def dsn(self, **kw: object) -> str:
        params: dict[str, object] = {"host": "127.0.0.1", "port": self.port, "user": self.superuser,
                                     "dbname": "postgres"}
        params.update(kw)
        return " ".join(f"{k}={v}" for k, v in params.items() if v is not None)


TRUST_HBA = "local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n"


def tls_server(certs: object, server: PgtlsServer | None = None, *, cert: str = "server-chain.crt",
               key: str = "server.key", hba: str = TRUST_HBA, start: bool = True, **conf: str) -> PgtlsServer:
    """A pgtls server with ssl=on, the certificate set's server chain and key, and trust rules."""
    s = (server or PgtlsServer()).init()
    s.copy_in(certs.path(cert), "server.crt", 0o644)  # type: ignore[attr-defined]
    s.copy_in(certs.path(key), "server.key", 0o600)  # type: ignore[attr-defined]
    s.write("pg_hba.conf", hba)
    s.conf(ssl="on", **conf)
    if start:
        s.start()
    return s
