"""Savepoints for a database engine without subtransactions: a statement journal and replay.

DuckDB can only roll back a whole transaction.  PostgreSQL's ``ROLLBACK TO
SAVEPOINT`` is therefore done the long way round: every statement that may
change something is journalled from the start of the DuckDB transaction; to
roll back to a savepoint the session rolls the DuckDB transaction back, begins
a new one and runs again the journalled statements that came before the
savepoint.  That also leaves the aborted state (E), as PostgreSQL does, which
is what psql's ON_ERROR_ROLLBACK, psycopg's nested ``transaction()`` blocks
and pgJDBC's ``autosave`` rely on.

What differs from PostgreSQL, and is documented in docs/embedded.md:

- the statements are run again on a new snapshot, so a statement that read
  rows another session has changed since may now do something else, and
  ``now()`` moves to the new transaction's start;
- ``nextval()`` in a replayed statement takes new values;
- a transaction whose journal outgrew :data:`JOURNAL_LIMIT` (statements and
  the rows of ``COPY FROM STDIN`` together) cannot roll back to a savepoint set
  before that happened (0A000).

Pure reads are not journalled: running them again would change nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pgtls.backends.embedded.features.settings import GucMark
from pgtls.errors import PgError

JOURNAL_LIMIT = 64 * 1024 * 1024  # bytes (about) a transaction may journal before replay is given up

_READS = {"SELECT", "VALUES", "TABLE", "SHOW", "FROM", "DESCRIBE", "SUMMARIZE", "EXPLAIN", "PRAGMA"}
_SIDE_EFFECTS = ("nextval", "setval", "analyze")


def is_pure_read(first: str, sql: str) -> bool:
    """Whether running ``sql`` again could not change the database (so it need not be journalled)."""
    if first not in _READS:
        return False
    low = sql.lower()
    return not any(s in low for s in _SIDE_EFFECTS)


Entry = tuple[str, object]  # a statement and its parameters (None, or what DuckDB's execute() takes)


@dataclass
class Savepoint:
    name: str
    position: int  # journal entries before it
    size: int  # the journal's size then
    blocker: str | None  # why the statements before it cannot be replayed, if they cannot
    gucs: GucMark  # Gucs.mark() at SAVEPOINT
    cursors: frozenset[str]  # SQL cursors open at SAVEPOINT
    notify: tuple[int, int]  # Listener.mark() at SAVEPOINT: LISTEN/NOTIFY actions of the transaction so far


@dataclass
class Journal:
    """The statements of the current DuckDB transaction and the savepoints set in it."""

    entries: list[Entry] = field(default_factory=list)
    size: int = 0
    blocker: str | None = None  # set once the journal can no longer be replayed from its start
    savepoints: list[Savepoint] = field(default_factory=list)

    def reset(self) -> None:
        self.entries.clear()
        self.size = 0
        self.blocker = None
        self.savepoints.clear()

    def record(self, sql: str, params: object = None, size: int = 0) -> None:
        """Journal a statement that ran; ``size`` approximates the memory ``params`` hold."""
        if self.blocker is not None:
            return
        self.size += len(sql) + size
        if self.size > JOURNAL_LIMIT:
            self.block(
                f"the transaction's statements exceed the {JOURNAL_LIMIT // (1024 * 1024)} MB replay journal"
            )
            return
        self.entries.append((sql, params))

    def block(self, why: str) -> None:
        if self.blocker is None:
            self.blocker = why  # the entries so far stay: savepoints set before this can still be replayed

    def push(self, name: str, gucs: GucMark, cursors: frozenset[str], notify: tuple[int, int]) -> None:
        self.savepoints.append(
            Savepoint(name, len(self.entries), self.size, self.blocker, gucs, cursors, notify)
        )

    def find(self, name: str) -> int:
        """Index of the newest savepoint called ``name``; 3B001 if there is none."""
        for i in range(len(self.savepoints) - 1, -1, -1):
            if self.savepoints[i].name == name:
                return i
        raise PgError("3B001", f'savepoint "{name}" does not exist')

    def release(self, name: str) -> None:
        """RELEASE: forget the savepoint and every later one; their statements stay."""
        del self.savepoints[self.find(name) :]

    def rollback_to(self, name: str, replay: Callable[[list[Entry]], None]) -> Savepoint:
        """ROLLBACK TO: ``replay`` the statements before the savepoint (in a new DuckDB transaction).

        The savepoint itself stays, later ones go.  Raises 0A000 when the statements cannot be replayed.
        """
        i = self.find(name)
        sp = self.savepoints[i]
        if sp.blocker is not None:
            raise PgError(
                "0A000",
                f'cannot roll back to savepoint "{name}": {sp.blocker}',
                hint="The embedded DuckDB backend rolls back to a savepoint by running the transaction's "
                "earlier statements again. Roll back the whole transaction instead.",
            )
        del self.savepoints[i + 1 :]
        del self.entries[sp.position :]
        self.size = sp.size
        self.blocker = None
        replay(list(self.entries))
        return sp
