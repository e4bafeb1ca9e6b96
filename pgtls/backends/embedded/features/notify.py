"""LISTEN / UNLISTEN / NOTIFY and ``pg_notify()`` between the sessions of one database.

As in PostgreSQL (src/backend/commands/async.c):

- LISTEN and UNLISTEN inside a transaction block take effect at COMMIT and are
  forgotten at ROLLBACK; outside one they take effect at once.
- A notification is sent when the notifying transaction commits, to every
  session of the same database listening on the channel, the notifier
  included; identical (channel, payload) pairs of one transaction are sent once.
- A listener gets it as a NotificationResponse when it is not in a transaction
  block: at once if the session is idle, else just before its next
  ReadyForQuery with status I.
- Payloads are at most 7999 bytes; channel names are identifiers (63 bytes).

The hub lives in the backend; each session has a :class:`Listener` with its
channels, its transaction's pending actions and an inbox of messages not yet
delivered.  Delivery to an idle session goes through ``post``, which the server
sets to a non-blocking write on its event loop.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

from pgtls.backends.embedded.engine.execute import Result, one_row
from pgtls.backends.embedded.pgtypes import typemap as T
from pgtls.backends.embedded.sql.lexer import Token, string_value, tokens, unquote_ident
from pgtls.errors import PgError
from pgtls.protocol import messages as m
from pgtls.protocol.limits import NAMEDATALEN

NOTIFY_PAYLOAD_MAX_LENGTH = 8000  # bytes including the terminator, as in async.c

_PG_NOTIFY = re.compile(r"^\s*select\s+(?:pg_catalog\.)?pg_notify\s*\(", re.IGNORECASE)


class Hub:
    """Who listens to what, per database; shared by all sessions of a backend."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: dict[tuple[str, str], set[Listener]] = {}

    def add(self, database: str, channel: str, who: Listener) -> None:
        with self._lock:
            self._listeners.setdefault((database, channel), set()).add(who)

    def remove(self, database: str, channel: str, who: Listener) -> None:
        with self._lock:
            group = self._listeners.get((database, channel))
            if group is not None:
                group.discard(who)
                if not group:
                    del self._listeners[(database, channel)]

    def send(self, database: str, pid: int, pairs: list[tuple[str, str]]) -> None:
        for channel, payload in pairs:
            with self._lock:
                targets = list(self._listeners.get((database, channel), ()))
            msg = m.notification_response(pid, channel, payload)
            for who in targets:
                who.deliver(msg)


class Listener:
    """One session's side: its channels, pending transactional actions and undelivered messages."""

    def __init__(self, hub: Hub, database: str, pid: int) -> None:
        self.hub = hub
        self.database = database
        self.pid = pid
        self.channels: set[str] = set()
        self._actions: list[tuple[str, str | None]] = []  # ("listen"|"unlisten", channel or None for all)
        self._pending: list[tuple[str, str]] = []  # NOTIFYs of the open transaction
        self._lock = threading.Lock()
        self._inbox: list[bytes] = []
        self._busy = False
        self._idle = True  # not in a transaction block
        self.post: Callable[[bytes], None] | None = None  # non-blocking write while idle (set by the server)

    # --- statements -------------------------------------------------------------------------
    def listen(self, channel: str, in_block: bool) -> None:
        self._act(("listen", channel), in_block)

    def unlisten(self, channel: str | None, in_block: bool) -> None:
        self._act(("unlisten", channel), in_block)

    def _act(self, action: tuple[str, str | None], in_block: bool) -> None:
        self._actions.append(action)
        if not in_block:
            self.commit()

    def notify(self, channel: str, payload: str, in_block: bool) -> None:
        if not channel:
            raise PgError("22023", "channel name cannot be empty")
        if len(channel.encode()) >= NAMEDATALEN:
            raise PgError("22023", "channel name too long")
        if len(payload.encode()) >= NOTIFY_PAYLOAD_MAX_LENGTH:
            raise PgError("22023", "payload string too long")
        if (channel, payload) not in self._pending:
            self._pending.append((channel, payload))
        if not in_block:
            self.commit()

    # --- transaction end --------------------------------------------------------------------
    def commit(self) -> None:
        for kind, channel in self._actions:
            if kind == "listen" and channel is not None:
                if channel not in self.channels:
                    self.channels.add(channel)
                    self.hub.add(self.database, channel, self)
            else:
                for ch in [channel] if channel is not None else list(self.channels):
                    if ch in self.channels:
                        self.channels.discard(ch)
                        self.hub.remove(self.database, ch, self)
        self._actions.clear()
        pending, self._pending = self._pending, []
        if pending:
            self.hub.send(self.database, self.pid, pending)

    def rollback(self) -> None:
        self._actions.clear()
        self._pending.clear()

    def mark(self) -> tuple[int, int]:
        """Where the transaction's LISTEN/UNLISTEN actions and NOTIFYs stand (at a SAVEPOINT)."""
        return len(self._actions), len(self._pending)

    def rollback_to(self, mark: tuple[int, int]) -> None:
        """ROLLBACK TO SAVEPOINT: forget what came after ``mark``."""
        del self._actions[mark[0] :]
        del self._pending[mark[1] :]

    def close(self) -> None:
        self.rollback()
        for ch in list(self.channels):
            self.hub.remove(self.database, ch, self)
        self.channels.clear()
        self.post = None

    # --- delivery ---------------------------------------------------------------------------
    def deliver(self, msg: bytes) -> None:
        """From any thread: send now if the session is idle, else keep it for its next ReadyForQuery."""
        with self._lock:
            post = self.post
            if self._busy or not self._idle or post is None:
                self._inbox.append(msg)
                return
        post(msg)

    def begin_work(self) -> None:
        with self._lock:
            self._busy = True

    def take(self) -> bytes:
        """What is waiting, to go out before a ReadyForQuery with status I."""
        if not self._inbox:  # (read without the lock: what arrives now is posted, the session being idle)
            return b""
        with self._lock:
            data = b"".join(self._inbox)
            self._inbox.clear()
            return data

    def end_work(self, idle: bool) -> bytes:
        """The session is done with a message; ``idle``: not in a transaction block.  Returns what arrived
        since its ReadyForQuery and may go out now."""
        with self._lock:
            self._busy = False
            self._idle = idle
            if not idle or not self._inbox:
                return b""
            data = b"".join(self._inbox)
            self._inbox.clear()
            return data


# --- statements -----------------------------------------------------------------------------
def _syntax(sql: str, tok: Token | None, offset: int) -> PgError:
    """PostgreSQL's syntax error at ``tok`` (None: at end of input), with its 1-based position."""
    if tok is None:
        return PgError("42601", "syntax error at end of input", position=offset + len(sql.rstrip()) + 1)
    return PgError("42601", f'syntax error at or near "{tok.text}"', position=offset + tok.start + 1)


def parse_listen(sql: str, offset: int = 0) -> tuple[str, str | None, str]:
    """(command, channel, payload) of LISTEN ch / UNLISTEN ch|* / NOTIFY ch [, 'payload']."""
    toks: list[Token | None] = [t for t in tokens(sql) if t.text != ";"]
    toks += [None, None, None, None]
    head = toks[0]
    first = head.text.upper() if head is not None else ""
    channel: str | None = None
    payload = ""
    i = 2
    t1 = toks[1]
    if first == "UNLISTEN" and t1 is not None and t1.text == "*":
        pass
    elif t1 is None or t1.kind not in ("word", "ident"):
        raise _syntax(sql, t1, offset)
    else:
        channel = unquote_ident(t1.text)
        t2, t3 = toks[2], toks[3]
        if first == "NOTIFY" and t2 is not None and t2.text == ",":
            if t3 is None or t3.kind != "string":
                raise _syntax(sql, t3, offset)
            payload = string_value(t3.text)
            i = 4
    if toks[i] is not None:
        raise _syntax(sql, toks[i], offset)
    return first, channel, payload


_ARG = r"""(?:cast\s*\(\s*)?(?:'(?:[^']|'')*'|null)(?:\s*::\s*\w+|\s+as\s+\w+\s*\))?"""
_PG_NOTIFY_CALL = re.compile(
    rf"""^\s*select\s+(?:pg_catalog\.)?pg_notify\s*\(\s*(?P<ch>{_ARG})\s*,\s*(?P<payload>{_ARG})\s*\)
        (?:\s+(?:as\s+)?(?P<alias>"[^"]+"|\w+))?\s*;?\s*$""",
    re.IGNORECASE | re.VERBOSE,
)


def _arg(text: str) -> str:
    toks = [t for t in tokens(text) if t.kind == "string"]
    return string_value(toks[0].text) if toks else ""  # NULL: empty, as pg_notify() treats it


def match_pg_notify(sql: str) -> tuple[str, str, str] | None:
    """(channel, payload, column name) of a plain ``SELECT pg_notify('ch', 'payload')``: literals or NULLs,
    maybe cast, as the extended protocol renders bound parameters."""
    if not _PG_NOTIFY.match(sql):
        return None
    mt = _PG_NOTIFY_CALL.match(sql)
    if mt is None:
        return None
    alias = mt.group("alias")
    return _arg(mt.group("ch")), _arg(mt.group("payload")), alias.strip('"') if alias else "pg_notify"


def void_result(column: str) -> Result:
    return one_row(T.Column(column, T.VOID, -1, "VARCHAR"), "")
