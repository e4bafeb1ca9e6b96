"""Point lookups answered from memory: a hash index over a snapshot of a table.

DuckDB plans and runs every statement for about 0.7 ms of CPU, even a primary-key lookup that
PostgreSQL answers in a tenth of that.  A table that is read by key far more often than it is
written gets, after enough such lookups, an in-memory hash index over a snapshot of the columns
asked for, and a query of exactly the form

    SELECT col, ... | *  FROM table  WHERE keycol = literal [;]

from a session that is idle (no transaction block) is then answered from that index on the event
loop, without DuckDB and without a thread hop.  Everything else, and every query the index cannot
answer exactly as DuckDB would, takes the normal path.

Correctness rests on one rule: **no index is used while any session of the database may have
changed data that the index does not show.**  A session *enters* the write state (``enter``)
before it runs any statement that may change something, and *leaves* it (``leave``) only when it
is idle again, i.e. after its transaction committed or rolled back.  Both bump the database's
generation; an index is used only while no session is in the write state and the generation is
the one it was built at, and a build that saw the generation change while it read is thrown away.
So a client that got CommandComplete for its COMMIT never reads an older value through an index,
and a reader never sees uncommitted data.  A write anywhere in the database drops every index of
that database (tables are not told apart: a statement's effects are not always visible in its text).

When to build is a ski-rental rule: a build costs about as much CPU as a few lookups per thousand
rows on the normal path, so a shape is indexed once it has missed at least ``MISSES_PER_ROW`` x rows
times since the last write (and at least ``MIN_MISSES``).  Tables that are written often therefore
never pay for builds.  ``pgtls.point_lookup_rows`` (postgresql.conf) caps the rows held in all
indexes together (least recently used indexes go first); 0 turns the index off.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import duckdb

from pgtls.backends.embedded.catalog import shared as catalog
from pgtls.backends.embedded.engine.execute import run
from pgtls.backends.embedded.pgtypes import typemap as T
from pgtls.backends.embedded.sql.lexer import quote_literal, unquote_ident, words
from pgtls.protocol import messages as m

SETTING = "pgtls.point_lookup_rows"
DEFAULT_ROWS = 2_000_000
MIN_MISSES = 32
MAX_SHAPES = 4096  # shapes counted per database between writes
MISSES_PER_ROW = 0.001

_WS = r"[ \t\n\r\f\v]"
_ID = r'(?:[A-Za-z_][A-Za-z0-9_]*|"(?:[^"]|"")+")'  # a name, plain or quoted
_REF = rf"{_ID}(?:\.{_ID})?"  # [table.]column
_ITEM = rf"{_REF}(?:{_WS}+as{_WS}+{_ID})?"
SHAPE = re.compile(
    rf"{_WS}*select{_WS}+(?P<cols>\*|{_ITEM}(?:{_WS}*,{_WS}*{_ITEM})*)"
    rf"{_WS}+from{_WS}+(?P<table>{_ID}(?:\.{_ID})?)"
    rf"{_WS}+where{_WS}+(?P<key>{_REF}){_WS}*={_WS}*(?P<value>-?[0-9]+|'(?:[^']|'')*'|\$1)"
    rf"(?:{_WS}+limit{_WS}+(?P<limit>[0-9]{{1,9}}))?"
    rf"{_WS}*;?{_WS}*\Z",
    re.IGNORECASE,
)
_PLAIN_WORD = re.compile(r'"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_]*')
# Words that cannot be a column or table name here (PostgreSQL's reserved keywords that may follow).
_RESERVED = {"select", "from", "where", "and", "or", "not", "limit", "order", "group", "having", "union",
             "distinct", "all", "as", "null", "true", "false", "case", "when", "then", "else", "end",
             "offset", "fetch", "for", "into", "with", "window", "intersect", "except", "is", "in",
             "between", "like", "ilike", "similar", "default", "array", "current_date", "current_time",
             "current_timestamp", "current_user", "session_user", "user", "localtime", "localtimestamp",
             "collate", "both", "leading", "trailing", "only", "table", "on", "using", "lateral"}  # fmt: skip

INT_RANGES = {
    "TINYINT": (-(1 << 7), (1 << 7) - 1),
    "SMALLINT": (-(1 << 15), (1 << 15) - 1),
    "INTEGER": (-(1 << 31), (1 << 31) - 1),
    "BIGINT": (-(1 << 63), (1 << 63) - 1),
}
# Result column types whose fetched values and text do not depend on the session (TimeZone): one
# encoder per result format serves every session (inline.py).
_VALUE_TYPES = {"BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER",
                "UBIGINT", "HUGEINT", "FLOAT", "DOUBLE", "VARCHAR", "DATE", "TIMESTAMP", "UUID", "BLOB"}  # fmt: skip
_DECIMAL = re.compile(r"DECIMAL\(\d+,\d+\)\Z")
INT_TEXT = re.compile(r"-?[0-9]+\Z")

Shape = tuple[str, str, str, str]  # (DuckDB search path, table, key column, column list) as written


class Query(NamedTuple):
    """A query of the indexable form, split up."""

    shape: Shape
    value: str  # the literal as written (digits, or a quoted string), or $1
    limit: int | None  # LIMIT n


def match(sql: str, search_path: str) -> Query | None:
    mt = SHAPE.match(sql)
    if mt is None:
        return None
    cols, table, key, value, limit = mt.group("cols", "table", "key", "value", "limit")
    shape = _shape(search_path, table, key, cols)
    return None if shape is None else Query(shape, value, None if limit is None else int(limit))


@functools.lru_cache(maxsize=256)
def _shape(search_path: str, table: str, key: str, cols: str) -> Shape | None:
    """The shape, or None when a plain word in it is a keyword (``SELECT a FROM t WHERE limit = 1``)."""
    words = _PLAIN_WORD.findall(f"{table} {key} {cols}")
    if any(w[0] != '"' and w.lower() in _RESERVED and w.lower() != "as" for w in words):
        return None
    return (search_path, table, key, re.sub(rf"{_WS}*,{_WS}*", ", ", cols))


@dataclass
class Index:
    gen: int
    key_range: tuple[int, int] | None  # integer keys: the key type's range; None: a text key
    key_column: T.Column
    columns: list[T.Column]
    rows: dict[Any, Any]  # key -> its row (a tuple), or a list of rows where the key is not unique
    size: int
    description: bytes = b""
    last_used: float = 0.0
    encoders: dict[tuple[int, ...], Callable[[tuple[Any, ...]], bytes]] = field(default_factory=dict)

    def find(self, key: Any) -> list[tuple[Any, ...]]:
        got = self.rows.get(key)
        return [] if got is None else [got] if type(got) is tuple else got

    def key(self, literal: str) -> tuple[bool, Any]:
        """(usable, key) for a literal: whether the literal means what a DuckDB lookup would make of it."""
        if self.key_range is None:
            if literal[0] != "'":
                return False, None  # text = integer: an error in PostgreSQL
            return True, literal[1:-1].replace("''", "'")
        quoted = literal[0] == "'"
        if not quoted:  # digits, as the query's pattern matched them
            return True, int(literal)  # out of the key type's range it compares as a wider type: no row
        value = int_in_range(literal[1:-1], self.key_range)  # '12abc', ' 5', '99999999999'::int4: errors
        return value is not None, value


def int_in_range(text: str, bounds: tuple[int, int]) -> int | None:
    """``text`` as an integer if it is plain digits within ``bounds``; None where the normal path would
    cast it differently or fail (leading spaces, a sign other than -, out of the type's range)."""
    if not INT_TEXT.match(text):
        return None
    value = int(text)
    return value if bounds[0] <= value <= bounds[1] else None


class DatabaseLookups:
    """The indexes and the write state of one database."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.gen = 0
        self.writers = 0
        self.indexes: dict[Shape, Index] = {}
        self.misses: dict[Shape, int] = {}
        self.needed: dict[Shape, int] = {}  # misses a shape needs before it is built (its table's size)
        self.refused: set[Shape] = set()  # shapes that cannot be indexed until the next write
        self.building: set[Shape] = set()

    def _bump(self) -> None:
        self.gen += 1
        if self.indexes or self.misses or self.refused or self.needed:
            self.indexes = {}
            self.misses = {}
            self.needed = {}
            self.refused = set()

    def refuse(self, shape: Shape) -> None:
        """``shape`` cannot be indexed until the next write (caller holds the lock)."""
        if len(self.refused) >= MAX_SHAPES:
            self.refused.clear()
        self.refused.add(shape)

    def enter(self) -> None:
        with self.lock:
            self.writers += 1
            self._bump()

    def leave(self) -> None:
        with self.lock:
            self.writers -= 1
            self._bump()

    def usable(self, shape: Shape) -> Index | None:
        if self.writers:
            return None
        index = self.indexes.get(shape)
        if index is None or index.gen != self.gen:
            return None
        return index


class PointLookups:
    """All databases' indexes, with one background thread that builds them."""

    def __init__(self, acquire: Callable[[str], duckdb.DuckDBPyConnection], release: Callable[[str], None],
                 limit: Callable[[], int], debug: Callable[[str], None] | None = None) -> None:  # fmt: skip
        self._acquire = acquire
        self._debug = debug  # the server log's DEBUG1 (passed in: this layer does not import the server)
        self._release = release
        self._limit = limit
        self._lock = threading.Lock()
        self._dbs: dict[str, DatabaseLookups] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._closed = False

    def database(self, name: str) -> DatabaseLookups:
        db = self._dbs.get(name)
        if db is None:
            with self._lock:
                db = self._dbs.setdefault(name, DatabaseLookups())
        return db

    def forget(self, name: str) -> None:
        """A database was dropped: its indexes go with it."""
        with self._lock:
            db = self._dbs.pop(name, None)
        if db is not None:
            with db.lock:
                db._bump()

    def close(self) -> None:
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    # --- the fast path (event loop) -----------------------------------------------------------
    def answer(self, database: str, q: Query) -> Index | None:
        """The index that answers ``q`` now, or None (and maybe a build is started)."""
        db = self.database(database)
        index = db.usable(q.shape)
        if index is not None:
            index.last_used = time.monotonic()
            return index
        if db.writers or q.shape in db.refused or q.shape in db.building:
            return None
        if len(db.misses) >= MAX_SHAPES and q.shape not in db.misses:
            db.misses.clear()  # a client inventing shapes (table names that do not exist, ...) costs no memory
        n = db.misses.get(q.shape, 0) + 1
        db.misses[q.shape] = n
        if n >= max(MIN_MISSES, db.needed.get(q.shape, 0)) and self._limit() > 0 and not self._closed:
            with db.lock:
                if q.shape in db.building:
                    return None
                db.building.add(q.shape)
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pgtls-lookup")
            self._pool.submit(self._build, database, db, q)
        return None

    # --- building (background thread) ---------------------------------------------------------
    def _build(self, database: str, db: DatabaseLookups, q: Query) -> None:
        try:
            self._build_one(database, db, q)
        except Exception:  # the query's table or columns do not exist, ...: the normal path says why
            with db.lock:
                db.refuse(q.shape)
        finally:
            with db.lock:
                db.building.discard(q.shape)

    def _build_one(self, database: str, db: DatabaseLookups, q: Query) -> None:
        path, table, key, cols = q.shape
        started = time.monotonic()
        with db.lock:
            gen = db.gen
            if db.writers:
                return
        try:
            cur = self._acquire(database)
        except Exception:
            return
        try:
            cur.execute(f"SET search_path = {quote_literal(path)}")
            if not _is_base_table(cur, table):
                with db.lock:
                    if db.gen == gen:
                        db.refuse(q.shape)
                return
            (count,) = cur.execute(f"SELECT count(*) FROM {table}").fetchone() or (0,)
            limit = self._limit()
            if count > limit:
                with db.lock:
                    if db.gen == gen:
                        db.refuse(q.shape)
                return
            needed = max(MIN_MISSES, int(count * MISSES_PER_ROW))
            if db.misses.get(q.shape, 0) < needed:
                with db.lock:
                    if db.gen == gen:
                        db.needed[q.shape] = needed
                return
            sql = f"SELECT {key}, {cols} FROM {table}"
            res = run(cur, sql, words(sql, 4), "SELECT")
            columns = res.columns
            if columns is None or not _indexable(columns):
                with db.lock:
                    if db.gen == gen:
                        db.refuse(q.shape)
                return
            key_duck = columns[0].duck
            rows: dict[Any, Any] = {}
            total = 0
            while batch := res.fetch(100_000):
                for row in batch:
                    k = row[0]
                    if k is None:
                        continue  # key = literal never finds a NULL key
                    got = rows.get(k)
                    if got is None:
                        rows[k] = row[1:]
                    elif type(got) is tuple:
                        rows[k] = [got, row[1:]]
                    else:
                        got.append(row[1:])
                total += len(batch)
                if total > limit:
                    return
        finally:
            try:
                cur.close()
            finally:
                self._release(database)
        index = Index(
            gen=gen,
            key_range=INT_RANGES.get(key_duck),
            key_column=columns[0],
            columns=columns[1:],
            rows=rows,
            size=total,
            description=m.row_description([c.field(0) for c in columns[1:]]),
            last_used=time.monotonic(),
        )
        with db.lock:
            if db.gen != gen or db.writers:
                return
            self._make_room(total)
            db.indexes[q.shape] = index
        if self._debug is not None:
            self._debug(
                f'point-lookup index on "{table}" ("{key}") of database "{database}": {total} rows, '
                f"built in {(time.monotonic() - started) * 1000:.0f} ms"
            )

    def _make_room(self, rows: int) -> None:
        """Drop the least recently used indexes until ``rows`` more fit under the limit."""
        limit = self._limit()
        held = [(ix.last_used, db, shape, ix.size) for db in list(self._dbs.values())
                for shape, ix in list(db.indexes.items())]  # fmt: skip
        total = sum(h[3] for h in held)
        for _used, db, shape, size in sorted(held, key=lambda h: h[0]):
            if total + rows <= limit:
                break
            db.indexes.pop(shape, None)
            total -= size


def _is_base_table(cur: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether ``table`` names a table of the session's own database, and no view anywhere has its name."""
    parts = [unquote_ident(p) if p.startswith('"') else p.lower() for p in _PLAIN_WORD.findall(table)]
    schema, name = (parts[0], parts[1]) if len(parts) == 2 else ("", parts[0])
    views = cur.execute(
        "SELECT count(*) FROM duckdb_views() WHERE lower(view_name) = lower(?)", [name]
    ).fetchone()
    if views and views[0]:
        return False
    sql = ("SELECT count(*) FROM duckdb_tables() WHERE database_name NOT IN (?, 'system', 'temp') "
           "AND NOT temporary AND lower(table_name) = lower(?)")  # fmt: skip
    args = [catalog.CAT, name]
    if schema:
        sql += " AND lower(schema_name) = lower(?)"
        args.append(schema)
    found = cur.execute(sql, args).fetchone()
    return bool(found and found[0])


def _indexable(columns: list[T.Column]) -> bool:
    if columns[0].duck not in INT_RANGES and columns[0].duck != "VARCHAR":
        return False
    return all(c.duck in _VALUE_TYPES or _DECIMAL.match(c.duck) for c in columns[1:])
