"""Suite-wide fixtures: the certificate set, real pgtls servers and real PostgreSQL servers."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import certset, prereq
from tests.pgserver import RealPostgres, have_postgres, managed_pg_bin, shared_tmpdir
from tests.pgtlsserver import PgtlsServer, drop_templates


@pytest.fixture(scope="session", autouse=True)
def _cluster_templates() -> Iterator[None]:
    """The managed-cluster templates the servers of this session copied (removed at the end)."""
    yield
    drop_templates()


@pytest.fixture(scope="session")
def certs() -> Iterator[certset.CertSet]:
    d = shared_tmpdir("pgtls-certs-")
    cs = certset.build(d)
    for p in d.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    yield cs
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def client_home() -> Iterator[Path]:
    """An empty HOME for libpq so no ~/.postgresql files leak into a test."""
    d = shared_tmpdir("pgtls-home-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def realpg() -> Iterator[RealPostgres]:
    """A running PostgreSQL 15 (trust, no TLS) for a module of differential tests."""
    if not have_postgres():
        prereq.missing("PostgreSQL 15 server binaries are not installed")
    pg = RealPostgres().init()
    try:
        pg.start()
        yield pg
    finally:
        pg.cleanup()


@pytest.fixture(scope="module")
def pg_and_pgtls() -> Iterator[tuple[RealPostgres, PgtlsServer]]:
    """A PostgreSQL 15 and a pgtls server with the embedded DuckDB backend side by side (no TLS, trust), for a
    module of the embedded backend's differential tests."""
    if not have_postgres():
        prereq.missing("PostgreSQL 15 server binaries are not installed")
    pg = RealPostgres()
    ours = PgtlsServer()
    try:
        pg.init().start()
        ours.init(backend="duckdb")
        ours.start()
        yield pg, ours
    finally:
        print(f"--- pgtls server log ---\n{ours.full_log()[-4000:]}")  # shown only on failure
        ours.cleanup()
        pg.cleanup()


@pytest.fixture(scope="module")
def relay_and_pg() -> Iterator[tuple[PgtlsServer, RealPostgres]]:
    """pgtls in front of its managed PostgreSQL, and the same PostgreSQL version run directly (no TLS, trust),
    for a module of the relay's differential tests: through pgtls and directly must agree exactly."""
    pg = RealPostgres(bindir=managed_pg_bin())
    ours = PgtlsServer()
    try:
        pg.init().start()
        ours.init()
        ours.start()
        yield ours, pg
    finally:
        print(f"--- pgtls server log ---\n{ours.full_log()[-4000:]}")  # shown only on failure
        ours.cleanup()
        pg.cleanup()


@pytest.fixture
def pgtls_factory() -> Iterator[type]:
    made: list[PgtlsServer] = []

    def make(**kw: object) -> PgtlsServer:
        s = PgtlsServer(**kw)  # type: ignore[arg-type]
        made.append(s)
        return s

    yield make  # type: ignore[misc]
    for s in made:
        print(f"--- pgtls server log ({s.datadir}) ---\n{s.full_log()[-6000:]}")  # shown only on failure
        s.cleanup()


@pytest.fixture
def realpg_factory() -> Iterator[type]:
    if not have_postgres():
        prereq.missing("PostgreSQL 15 server binaries are not installed")
    made: list[RealPostgres] = []

    def make(**kw: object) -> RealPostgres:
        s = RealPostgres(**kw)  # type: ignore[arg-type]
        made.append(s)
        return s

    yield make  # type: ignore[misc]
    for s in made:
        s.cleanup()


@dataclass
class PsqlResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run_psql(
    conninfo: str,
    sql: str = "select 1",
    *,
    home: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 30,
) -> PsqlResult:
    e = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    if home is not None:
        e["HOME"] = str(home)
    e.update(env or {})
    p = subprocess.run(
        ["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-c", sql],
        capture_output=True,
        text=True,
        env=e,
        timeout=timeout,
    )
    return PsqlResult(p.returncode, p.stdout.strip(), p.stderr.strip())


@pytest.fixture(scope="module")
def keys(certs, tmp_path_factory) -> Path:
    """The certificate set's client keys and root, copied with the modes libpq demands of a client key."""
    d = tmp_path_factory.mktemp("keys")
    for name in ("client.crt", "client.key", "root_ca.crt", "anotheruser.crt", "anotheruser.key"):
        shutil.copy(certs.path(name), d / name)
        (d / name).chmod(0o600)
    return d
