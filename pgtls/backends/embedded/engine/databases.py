"""Databases of the embedded backend: one DuckDB file per database at ``DATA/base/<name>.duckdb``.

DuckDB lets a process open a database file only once, so every session of a
database shares one ``duckdb.DuckDBPyConnection`` and works on its own ``cursor()``,
which in DuckDB is a separate connection with its own transaction, temporary objects
and variables.  A file is opened on first use and stays open while idle (a client
that connects, runs one query and disconnects must not pay for opening and
checkpointing the file every time); it is closed ``idle_close`` seconds after its
last session ended, by DROP DATABASE, or by :meth:`DatabaseFiles.close`.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from pgtls.errors import PgError
from pgtls.protocol.limits import NAMEDATALEN

# PostgreSQL's NAMEDATALEN - 1; names are also file names, so we refuse path characters.
MAX_NAME_LENGTH = NAMEDATALEN - 1
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
IDLE_CLOSE_SECONDS = 60.0  # an open file with no session is closed (and checkpointed) after this long


def base_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "base"


def db_path(data_dir: Path, name: str) -> Path:
    check_name(name)
    return base_dir(data_dir) / (name + SUFFIX)


def check_name(name: str) -> None:
    if (
        not name
        or len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_LENGTH
        or not _VALID_NAME.fullmatch(name)
    ):
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


class _Open:
    __slots__ = ("con", "count", "idle_since")

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.count = 0
        self.idle_since = 0.0


def _close_quietly(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.close()
    except duckdb.Error:
        pass


class DatabaseFiles:
    """Process-wide owner of the open DuckDB files, reference-counted by session.

    ``prepare(con)`` runs once on every newly opened file while DuckDB's external access
    is still on (the backend attaches its catalog database there); afterwards external
    access is switched off for good.
    """

    def __init__(
        self,
        data_dir: Path,
        prepare: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
        idle_close: float = IDLE_CLOSE_SECONDS,
    ) -> None:
        self.data_dir = Path(data_dir)
        self._prepare = prepare
        self.idle_close = idle_close
        self._lock = threading.Lock()
        self._open: dict[str, _Open] = {}
        self._janitor: threading.Thread | None = None
        self._stop = threading.Event()

    def _connect(self, path: Path) -> duckdb.DuckDBPyConnection:
        config: dict[str, str | bool | int | float | list[str]] = {
            k: v for k, v in DB_CONFIG.items() if k != "enable_external_access"
        }
        con = duckdb.connect(str(path), config=config)
        try:
            _init_file(con)
            if self._prepare is not None:
                self._prepare(con)
            con.execute("SET enable_external_access = false")
        except BaseException:
            _close_quietly(con)
            raise
        return con

    def acquire(self, name: str) -> duckdb.DuckDBPyConnection:
        """A new cursor on database ``name``; FATAL 3D000 if there is no such database."""
        with self._lock:
            entry = self._open.get(name)
            if entry is None:
                try:
                    path: Path | None = db_path(self.data_dir, name)
                except PgError:
                    path = None
                if path is None or not path.is_file():
                    raise PgError("3D000", f'database "{name}" does not exist', severity="FATAL")
                entry = self._open[name] = _Open(self._connect(path))
            entry.count += 1
            return entry.con.cursor()

    def connection(self, name: str) -> duckdb.DuckDBPyConnection | None:
        """The shared connection of an open database (None if it is not open)."""
        entry = self._open.get(name)
        return entry.con if entry is not None else None

    def release(self, name: str) -> None:
        with self._lock:
            entry = self._open.get(name)
            if entry is None:
                return
            entry.count -= 1
            if entry.count > 0:
                return
            entry.count = 0
            if self.idle_close <= 0:
                del self._open[name]
                _close_quietly(entry.con)
                return
            entry.idle_since = time.monotonic()
            if self._janitor is None:
                self._janitor = threading.Thread(target=self._close_idle, name="pgtls-db-idle", daemon=True)
                self._janitor.start()

    def _close_idle(self) -> None:
        interval = max(0.05, min(self.idle_close / 4, 10.0))
        while not self._stop.wait(interval):
            now = time.monotonic()
            with self._lock:
                for name, entry in list(self._open.items()):
                    if entry.count == 0 and now - entry.idle_since >= self.idle_close:
                        del self._open[name]
                        _close_quietly(entry.con)

    def create(self, name: str) -> None:
        with self._lock:
            create_database(self.data_dir, name)

    def drop(self, name: str, missing_ok: bool = False) -> None:
        with self._lock:
            path = db_path(self.data_dir, name)
            entry = self._open.get(name)
            if entry is not None and entry.count > 0:
                raise PgError(
                    "55006",
                    f'database "{name}" is being accessed by other users',
                    detail="There are other sessions using the database.",
                )
            if entry is not None:
                del self._open[name]
                _close_quietly(entry.con)
            if not path.exists():
                if missing_ok:
                    return
                raise PgError("3D000", f'database "{name}" does not exist')
            path.unlink()
            wal = path.with_name(path.name + ".wal")
            if wal.exists():
                wal.unlink()

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            for entry in self._open.values():
                _close_quietly(entry.con)
            self._open.clear()
