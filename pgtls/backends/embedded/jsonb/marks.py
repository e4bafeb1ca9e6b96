"""Which columns are jsonb: the marks in column comments, as each session sees them (:func:`marked_columns`).

A PostgreSQL ``jsonb`` column is a DuckDB JSON column whose comment starts with :data:`types.JSONB_MARK`
(ddl_marks.py sets it).  A session reads the committed marks on a fresh cursor and keeps them for
:data:`MARKS_TTL` seconds or until any session's DDL (:func:`bump`); the tables it (re)defined itself in its
transaction win over them (:func:`set_session_columns`).
"""

from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass, field

import duckdb

from pgtls.backends.embedded.pgtypes import typemap as T

# Seconds a session trusts its copy of the catalog's marks (another session's DDL may commit after it ran).
MARKS_TTL = 2.0


_MARKS_SQL = (
    "SELECT lower(table_name), lower(column_name) FROM duckdb_columns() WHERE starts_with(comment, ?)"
)


@dataclass
class Marks:
    generation: int
    at: float
    # table (lower-case) -> its jsonb columns, as the committed catalog says
    columns: dict[str, set[str]]
    # tables this session (re)defined (maybe not committed yet, or temporary): these win over ``columns``
    own: dict[str, set[str]] = field(default_factory=dict)


_lock = threading.Lock()


_generation = 0  # bumped by every DDL statement of any session: cached marks are then read again


_marks: weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, Marks] = weakref.WeakKeyDictionary()


def bump() -> None:
    global _generation
    with _lock:
        _generation += 1


def entry(cur: duckdb.DuckDBPyConnection) -> Marks:
    with _lock:
        m = _marks.get(cur)
        if m is None:
            m = _marks[cur] = Marks(-1, 0.0, {})
        return m


def set_session_columns(cur: duckdb.DuckDBPyConnection, table: str, columns: set[str]) -> None:
    """The jsonb columns of ``table`` as this session's transaction has made them (DDL that is not yet
    committed; the committed marks are read on another connection)."""
    entry(cur).own[table.lower()] = columns


def marked_columns(cur: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    """Table -> jsonb columns for the session ``cur`` (read again when the cached copy is stale, on a fresh
    cursor of the same database: ``cur`` may hold a pending result)."""
    m = entry(cur)
    now = time.monotonic()
    if m.generation != _generation or now - m.at > MARKS_TTL:
        gen = _generation
        cols: dict[str, set[str]] = {}
        reader = cur.cursor()
        try:
            for table, col in reader.execute(_MARKS_SQL, [T.JSONB_MARK]).fetchall():
                cols.setdefault(table, set()).add(col)
        finally:
            reader.close()
        m.generation, m.at, m.columns = gen, now, cols
    if not m.own:
        return m.columns
    return {**m.columns, **m.own}
