"""Connection churn against a pgtls server, for tests/integration/test_soak.py and bench/soak.py (its long
version): a server with TLS and trust rules, ``pgbench -C`` (every transaction a new TLS connection that runs
SELECT 1; 4 clients on 2 threads), and what /proc says of a process's descriptors and memory."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.pgtlsserver import PgtlsServer, tls_server

SOAK_HBA = "local all all trust\nhostssl all all 127.0.0.1/32 trust\n"


def soak_server(certs: object, server: PgtlsServer, backend: str, **conf: str) -> PgtlsServer:
    """``server`` (not yet initialised) started with ssl=on, the certificate set's server chain and key,
    trust over TLS only (:data:`SOAK_HBA`), no connection log, and ``conf``."""
    return tls_server(certs, server, hba=SOAK_HBA, backend=backend, log_connections="off", **conf)


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def client_backends(s: PgtlsServer) -> int:
    """The client backends of the managed cluster but the one asking: the relay's upstream sessions."""
    rows = s.sql(
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
        "AND pid <> pg_backend_pid()"
    )
    return int(rows[0][0] or 0)


def select1_script(directory: Path) -> Path:
    """A pgbench script of one ``SELECT 1``, written in ``directory``."""
    script = directory / "select1.sql"
    script.write_text("SELECT 1;\n")
    return script


def pgbench_connects(
    port: int, script: Path, length: Sequence[str], env: Mapping[str, str], timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    """``pgbench -n -C`` as postgres over TLS (sslmode=require), 4 clients on 2 threads, running ``script``
    for ``length`` (``-t`` transactions a client, or ``-T`` seconds)."""
    return subprocess.run(
        ["pgbench", "-n", "-C", "-c", "4", "-j", "2", *length, "-f", str(script),
         f"host=127.0.0.1 port={port} user=postgres dbname=postgres sslmode=require"],
        capture_output=True, text=True, timeout=timeout, env=dict(env),
    )  # fmt: skip


def processed(stdout: str) -> tuple[int, int] | None:
    """What pgbench says it processed: (transactions, failed ones: 0 where it does not say); None where it
    gives no count."""
    done = re.search(r"number of transactions actually processed: (\d+)", stdout)
    failed = re.search(r"number of failed transactions: (\d+)", stdout)
    if done is None:
        return None
    return int(done.group(1)), int(failed.group(1)) if failed else 0
