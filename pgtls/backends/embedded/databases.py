"""Databases of the embedded backend: one DuckDB file per database at ``DATA/base/<name>.duckdb``.

DuckDB lets a process open a database file only once, so every session of a
database shares one ``duckdb.DuckDBPyConnection`` (opened on first use, closed
with the last session) and works on its own ``cursor()``, which in DuckDB is a
separate connection with its own transaction and temporary objects.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import duckdb

from pgtls.errors import PgError

# PostgreSQL's NAMEDATALEN - 1; names are also file names, so we refuse path characters.
MAX_NAME_LENGTH = 63
_VALID_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
SUFFIX = ".duckdb"

# DuckDB settings for every database file.  Like PostgreSQL, a client must not reach the server's
# file system or network through SQL (read_csv('/etc/...'), ATTACH, COPY TO a file, INSTALL ...):
# DuckDB's external access is switched off (it cannot be switched back on while the file is open).
DB_CONFIG: dict[str, str | bool | int | float] = {
    "checkpoint_threshold": "16MB",
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}


def base_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "base"


def db_path(data_dir: Path, name: str) -> Path:
    check_name(name)
    return base_dir(data_dir) / (name + SUFFIX)


def check_name(name: str) -> None:
    if not name or len(name.encode()) > MAX_NAME_LENGTH or not _VALID_NAME.fullmatch(name):
        raise PgError("42602", f'invalid database name "{name}"')


def list_databases(data_dir: Path) -> list[str]:
    d = base_dir(data_dir)
    if not d.is_dir():
        return []
    return sorted(p.name[: -len(SUFFIX)] for p in d.glob("*" + SUFFIX) if p.is_file())


def _init_file(con: duckdb.DuckDBPyConnection) -> None:
    """PostgreSQL's defaults in a database file: a ``public`` schema and a ``jsonb`` type (JSON)."""
    con.execute("CREATE SCHEMA IF NOT EXISTS public")
    if not con.execute("SELECT 1 FROM duckdb_types() WHERE type_name = 'jsonb' AND NOT internal").fetchall():
        con.execute("CREATE TYPE main.jsonb AS JSON")


def create_database(data_dir: Path, name: str) -> None:
    """Create an empty database file (with a ``public`` schema); 42P04 if it exists."""
    path = db_path(data_dir, name)
    if path.exists():
        raise PgError("42P04", f'database "{name}" already exists')
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        _init_file(con)
        con.execute("CHECKPOINT")
    finally:
        con.close()


class DatabaseFiles:
    """Process-wide owner of the open DuckDB files, reference-counted by session."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self._lock = threading.Lock()
        self._open: dict[str, tuple[duckdb.DuckDBPyConnection, int]] = {}

    def acquire(self, name: str) -> duckdb.DuckDBPyConnection:
        """A new cursor on database ``name``; FATAL 3D000 if there is no such database."""
        try:
            path = db_path(self.data_dir, name)
        except PgError:
            path = None
        with self._lock:
            entry = self._open.get(name)
            if entry is None:
                if path is None or not path.is_file():
                    raise PgError("3D000", f'database "{name}" does not exist', severity="FATAL")
                con = duckdb.connect(str(path), config=dict(DB_CONFIG))
                _init_file(con)
                entry = (con, 0)
            con, count = entry
            self._open[name] = (con, count + 1)
            return con.cursor()

    def release(self, name: str) -> None:
        with self._lock:
            entry = self._open.get(name)
            if entry is None:
                return
            con, count = entry
            if count <= 1:
                del self._open[name]
                try:
                    con.close()
                except duckdb.Error:
                    pass
            else:
                self._open[name] = (con, count - 1)

    def create(self, name: str) -> None:
        with self._lock:
            create_database(self.data_dir, name)

    def drop(self, name: str, missing_ok: bool = False) -> None:
        with self._lock:
            path = db_path(self.data_dir, name)
            if name in self._open:
                raise PgError(
                    "55006",
                    f'database "{name}" is being accessed by other users',
                    detail="There are other sessions using the database.",
                )
            if not path.exists():
                if missing_ok:
                    return
                raise PgError("3D000", f'database "{name}" does not exist')
            path.unlink()
            wal = path.with_name(path.name + ".wal")
            if wal.exists():
                wal.unlink()

    def close(self) -> None:
        with self._lock:
            for con, _ in self._open.values():
                try:
                    con.close()
                except duckdb.Error:
                    pass
            self._open.clear()
