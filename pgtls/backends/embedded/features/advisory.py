"""Advisory locks: ``pg_advisory_lock()`` and its family, between the sessions of one database.

As in PostgreSQL (src/backend/utils/adt/lockfuncs.c):

- a key is one bigint or two ints (two separate key spaces), per database;
- a lock is exclusive or shared; session-level locks are re-entrant and held
  until unlocked as often as taken (or the session ends), transaction-level
  (``_xact_``) ones until the transaction ends;
- ``pg_advisory_lock`` waits; the wait ends with the lock, a cancel (57014,
  also from statement_timeout) or, after ``deadlock_timeout`` (1 s), with
  40P01 ``deadlock detected`` when the sessions wait for each other in a cycle;
- unlocking a lock the session does not hold gives WARNING ``you don't own a
  lock of type ExclusiveLock`` (or ShareLock) and false.

Calls are recognised as plain ``SELECT pg_...advisory...(args)`` statements;
each argument may be any expression DuckDB can evaluate to an integer.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pgtls.backends.embedded.engine.execute import Result, one_row
from pgtls.backends.embedded.pgtypes import typemap as T
from pgtls.backends.embedded.sql.lexer import tokens
from pgtls.errors import PgError

DEADLOCK_TIMEOUT = 1.0  # seconds, PostgreSQL's default deadlock_timeout
POLL = 0.05  # how often a waiter looks at its cancel flag

Key = tuple[str, int, int, int]  # (database, key space 1|2, high, low)

_CALL = re.compile(
    r"""^\s*select\s+(?:pg_catalog\s*\.\s*)?
        (?P<fn>pg_(?:try_)?advisory_(?:xact_)?(?:un)?lock(?:_shared)?|pg_advisory_unlock_all)\s*\(
        (?P<args>.*)\)(?:\s+(?:as\s+)?(?P<alias>"[^"]+"|\w+))?\s*;?\s*$""",
    re.IGNORECASE | re.VERBOSE | re.DOTALL,
)


@dataclass
class Call:
    function: str  # lower-case name
    args: list[str]  # SQL text of each argument
    column: str

    @property
    def shared(self) -> bool:
        return self.function.endswith("_shared")

    @property
    def xact(self) -> bool:
        return "_xact_" in self.function

    @property
    def returns_bool(self) -> bool:
        return self.function.startswith("pg_try_") or (
            "unlock" in self.function and self.function != "pg_advisory_unlock_all"
        )


def _split_args(text: str) -> list[str] | None:
    """Top-level comma-separated arguments; None if the parentheses do not balance."""
    args: list[str] = []
    depth, start = 0, 0
    for t in tokens(text):
        if t.text == "(":
            depth += 1
        elif t.text == ")":
            depth -= 1
            if depth < 0:
                return None
        elif t.text == "," and depth == 0:
            args.append(text[start : t.start].strip())
            start = t.end
    if depth:
        return None
    last = text[start:].strip()
    if last or args:
        args.append(last)
    return args


def match(sql: str) -> Call | None:
    """The advisory-lock call of a plain ``SELECT pg_advisory_...(args)``, else None."""
    m = _CALL.match(sql)
    if m is None:
        return None
    args = _split_args(m.group("args"))
    if args is None or any(not a for a in args):
        return None
    fn = m.group("fn").lower()
    alias = m.group("alias")
    return Call(fn, args, alias.strip('"') if alias else fn)


@dataclass
class _Lock:
    exclusive: dict[object, int] = field(default_factory=dict)  # holder -> count
    shared: dict[object, int] = field(default_factory=dict)


class LockTable:
    """Every advisory lock of a backend; holders are session objects."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._locks: dict[Key, _Lock] = {}
        self._waiting: dict[object, tuple[Key, bool]] = {}  # waiter -> (key, shared)

    def _grantable(self, key: Key, who: object, shared: bool) -> bool:
        lock = self._locks.get(key)
        if lock is None:
            return True
        others_x = any(h is not who for h in lock.exclusive)
        if shared:
            return not others_x
        return not others_x and not any(h is not who for h in lock.shared)

    def _grant(self, key: Key, who: object, shared: bool) -> None:
        lock = self._locks.setdefault(key, _Lock())
        table = lock.shared if shared else lock.exclusive
        table[who] = table.get(who, 0) + 1

    def _blockers(self, key: Key, who: object, shared: bool) -> set[object]:
        lock = self._locks.get(key)
        if lock is None:
            return set()
        out = {h for h in lock.exclusive if h is not who}
        if not shared:
            out |= {h for h in lock.shared if h is not who}
        return out

    def _deadlocked(self, who: object) -> bool:
        """Whether ``who`` waits, through other waiters, for itself."""
        seen: set[int] = set()
        frontier = [who]
        while frontier:
            w = frontier.pop()
            wanted = self._waiting.get(w)
            if wanted is None:
                continue
            for b in self._blockers(wanted[0], w, wanted[1]):
                if b is who:
                    return True
                if id(b) not in seen:
                    seen.add(id(b))
                    frontier.append(b)
        return False

    def acquire(self, key: Key, who: object, shared: bool, wait: bool, cancelled: Callable[[], bool]) -> bool:
        with self._cond:
            if self._grantable(key, who, shared):
                self._grant(key, who, shared)
                return True
            if not wait:
                return False
            self._waiting[who] = (key, shared)
            started = time.monotonic()
            checked = False
            try:
                while not self._grantable(key, who, shared):
                    if cancelled():
                        raise PgError("57014", "canceling statement due to user request")
                    if not checked and time.monotonic() - started >= DEADLOCK_TIMEOUT:
                        checked = True
                        if self._deadlocked(who):
                            raise PgError("40P01", "deadlock detected",
                                          detail="Process waits for an advisory lock held by a process that "
                                                 "waits for one this process holds.",
                                          hint="See server log for query details.")  # fmt: skip
                    self._cond.wait(POLL)
                self._grant(key, who, shared)
                return True
            finally:
                del self._waiting[who]

    def release(self, key: Key, who: object, shared: bool) -> bool:
        with self._cond:
            lock = self._locks.get(key)
            table = None if lock is None else lock.shared if shared else lock.exclusive
            if table is None or who not in table:
                return False
            table[who] -= 1
            if not table[who]:
                del table[who]
            if lock is not None and not lock.exclusive and not lock.shared:
                del self._locks[key]
            self._cond.notify_all()
            return True

    def release_all(self, who: object, held: list[tuple[Key, bool]]) -> None:
        for key, shared in held:
            self.release(key, who, shared)


class AdvisoryLocks:
    """One session's advisory locks."""

    def __init__(self, table: LockTable, database: str) -> None:
        self.table = table
        self.database = database
        self._session: list[tuple[Key, bool]] = []  # one entry per acquisition
        self._xact: list[tuple[Key, bool]] = []

    def key(self, values: list[int]) -> Key:
        if len(values) == 1:
            v = values[0] & 0xFFFFFFFFFFFFFFFF
            return (self.database, 1, v >> 32, v & 0xFFFFFFFF)
        return (self.database, 2, values[0] & 0xFFFFFFFF, values[1] & 0xFFFFFFFF)

    def call(self, call: Call, values: list[int], in_block: bool, cancelled: Callable[[], bool],
             warn: Callable[[PgError], None]) -> bool | None:  # fmt: skip
        """Run the call; the function's result (None for void)."""
        if call.function == "pg_advisory_unlock_all":
            self.table.release_all(self, self._session)
            self._session.clear()
            return None
        key = self.key(values)
        shared = call.shared
        if "unlock" in call.function:
            entry = (key, shared)
            if entry in self._session and self.table.release(key, self, shared):
                self._session.remove(entry)
                return True
            kind = "ShareLock" if shared else "ExclusiveLock"
            warn(PgError("01000", f"you don't own a lock of type {kind}", severity="WARNING"))
            return False
        got = self.table.acquire(key, self, shared, wait=not call.function.startswith("pg_try_"),
                                 cancelled=cancelled)  # fmt: skip
        if got:
            (self._xact if call.xact else self._session).append((key, shared))
            if call.xact and not in_block:  # a single-statement transaction ends at once
                self.end_transaction()
        return got if call.returns_bool else None

    def end_transaction(self) -> None:
        self.table.release_all(self, self._xact)
        self._xact.clear()

    def close(self) -> None:
        self.end_transaction()
        self.table.release_all(self, self._session)
        self._session.clear()


def result(call: Call, value: bool | None, null: bool = False) -> Result:
    """The one-row result of ``call``: ``value`` (bool functions) or void; NULL with ``null``."""
    if call.returns_bool:
        return one_row(T.Column(call.column, T.BOOL, -1, "BOOLEAN"), None if null else value)
    return one_row(T.Column(call.column, T.VOID, -1, "VARCHAR"), None if null else "")


def columns(call: Call) -> list[T.Column]:
    cols = result(call, None).columns
    assert cols is not None
    return cols
