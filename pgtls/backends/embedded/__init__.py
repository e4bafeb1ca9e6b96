"""The embedded DuckDB backend (the default): see docs/embedded.md."""

from pgtls.backends.embedded.backend import EmbeddedBackend
from pgtls.backends.embedded.engine.databases import create_database, list_databases

__all__ = ["EmbeddedBackend", "create_database", "list_databases"]
