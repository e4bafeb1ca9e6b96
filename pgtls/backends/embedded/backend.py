"""The embedded backend: PostgreSQL sessions over DuckDB files in the data directory."""

from __future__ import annotations

from pathlib import Path

from pgtls.backends.base import Registry, SessionInfo
from pgtls.backends.embedded.databases import DatabaseFiles
from pgtls.backends.embedded.session import EmbeddedSession


class EmbeddedBackend:
    """``Backend`` implementation; ``settings`` is the server's settings object (``.show``, ``.names``)."""

    def __init__(self, data_dir: Path, settings: object | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.settings = settings
        self.files = DatabaseFiles(self.data_dir)

    def open_session(self, info: SessionInfo, registry: Registry) -> EmbeddedSession:
        cur = self.files.acquire(info.database)
        try:
            return EmbeddedSession(self, info, registry, cur)
        except BaseException:
            cur.close()
            self.files.release(info.database)
            raise

    def close(self) -> None:
        self.files.close()
