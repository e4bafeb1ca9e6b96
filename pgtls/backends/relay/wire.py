"""The frontend side of PostgreSQL's protocol 3.0, sans-IO: what pgtls says to an upstream server.

pgtls is a client of the PostgreSQL servers behind it.  This module builds the
messages it sends (startup, simple and extended queries, cancel) and splits
what comes back into messages, with no sockets: :mod:`pgtls.backends.relay.upstream`
moves the bytes.

It also holds the few byte-level facts the relay uses on the hot path without
parsing every message: whether a chunk ends with a ReadyForQuery, and where
the client's stream of frontend messages stands (:class:`FrontendTracker`).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from pgtls.errors import PROTOCOL_VIOLATION, PgError
from pgtls.protocol.limits import PQ_LARGE_MESSAGE_LIMIT
from pgtls.protocol.startup import CANCEL_REQUEST_CODE, LogOnly

PROTOCOL_3_0 = 196608
# A backend message longer than this is a protocol error.
MAX_BACKEND_MESSAGE = PQ_LARGE_MESSAGE_LIMIT

_I32 = struct.Struct("!i")
_I16 = struct.Struct("!h")
_HEADER = struct.Struct("!ci")

# ReadyForQuery is always 'Z', length 5, one status byte: a chunk that ends with it ends a response.
RFQ_PREFIX = b"Z\x00\x00\x00\x05"


def _cstr(s: str) -> bytes:
    b = s.encode("utf-8", "surrogateescape")  # bytes a client sent (not UTF-8) go on unchanged
    if b"\0" in b:
        raise ValueError("a protocol string cannot contain NUL")
    return b + b"\0"


def message(kind: bytes, body: bytes = b"") -> bytes:
    return kind + _I32.pack(len(body) + 4) + body


def startup_message(params: dict[str, str]) -> bytes:
    body = _I32.pack(PROTOCOL_3_0) + b"".join(_cstr(k) + _cstr(v) for k, v in params.items()) + b"\0"
    return _I32.pack(len(body) + 4) + body


def cancel_request(pid: int, key: bytes) -> bytes:
    return _I32.pack(16) + _I32.pack(CANCEL_REQUEST_CODE) + _I32.pack(pid) + key


def query(sql: str) -> bytes:
    return message(b"Q", _cstr(sql))


def parse(name: str, sql: str) -> bytes:
    """Parse (untyped parameters) into the prepared statement ``name`` ('' = unnamed)."""
    return message(b"P", _cstr(name) + _cstr(sql) + _I16.pack(0))


def bind_execute_sync(name: str, params: Sequence[str | None]) -> bytes:
    """Bind ``name`` to the unnamed portal (text in, text out), Execute it, Sync."""
    vals = [_I16.pack(0), _I16.pack(len(params))]
    for p in params:
        if p is None:
            vals.append(_I32.pack(-1))
        else:
            b = p.encode()
            vals.append(_I32.pack(len(b)) + b)
    bind = _cstr("") + _cstr(name) + b"".join(vals) + _I16.pack(0)
    return message(b"B", bind) + message(b"E", _cstr("") + _I32.pack(0)) + message(b"S")


def extended_query(sql: str, params: Sequence[str | None]) -> bytes:
    """Parse (unnamed, untyped) + Bind (text in, text out) + Execute + Sync."""
    return parse("", sql) + bind_execute_sync("", params)


SYNC = message(b"S")
TERMINATE = message(b"X")


# --- backend messages -------------------------------------------------------------------------


def split_messages(buf: bytearray) -> Iterator[tuple[bytes, bytes]]:
    """Take complete messages (type, body) off the front of ``buf``; what is incomplete stays."""
    pos = 0
    n = len(buf)
    try:
        while n - pos >= 5:
            kind, length = _HEADER.unpack_from(buf, pos)
            if length < 4 or length > MAX_BACKEND_MESSAGE:
                raise PgError(
                    PROTOCOL_VIOLATION, "invalid message length from the upstream server", severity="FATAL"
                )
            end = pos + 1 + length
            if end > n:
                break
            yield kind, bytes(buf[pos + 5 : end])
            pos = end
    finally:
        if pos:
            del buf[:pos]


def cstrings(body: bytes) -> list[str]:
    return [p.decode("utf-8", "replace") for p in body.split(b"\0")[:-1]]


def parameter_status(body: bytes) -> tuple[str, str]:
    parts = cstrings(body)
    if len(parts) != 2:
        raise PgError(
            PROTOCOL_VIOLATION, "invalid ParameterStatus message from the upstream server", severity="FATAL"
        )
    return parts[0], parts[1]


@dataclass
class ErrorFields:
    """An ErrorResponse/NoticeResponse as received: every field by its code."""

    fields: dict[str, str] = field(default_factory=dict)

    @property
    def sqlstate(self) -> str:
        return self.fields.get("C", "XX000")

    @property
    def severity(self) -> str:
        return self.fields.get("V") or self.fields.get("S", "ERROR")

    @property
    def message(self) -> str:
        return self.fields.get("M", "")

    def to_error(self, severity: str | None = None) -> PgError:
        """As a PgError, optionally with another severity (an upstream ERROR that ends a login is FATAL)."""
        extra = {k: v for k, v in self.fields.items() if k not in "SVCMDHP"}
        pos = self.fields.get("P")
        return PgError(
            self.sqlstate,
            self.message,
            severity=severity or self.severity,
            detail=self.fields.get("D"),
            hint=self.fields.get("H"),
            position=int(pos) if pos and pos.isdigit() else None,
            extra=extra,
        )


def error_fields(body: bytes) -> ErrorFields:
    out: dict[str, str] = {}
    for part in body.split(b"\0"):
        if part:
            out[chr(part[0])] = part[1:].decode("utf-8", "replace")
    return ErrorFields(out)


def data_row(body: bytes) -> list[str | None]:
    (n,) = _I16.unpack_from(body, 0)
    pos = 2
    out: list[str | None] = []
    for _ in range(n):
        (ln,) = _I32.unpack_from(body, pos)
        pos += 4
        if ln < 0:
            out.append(None)
        else:
            out.append(body[pos : pos + ln].decode("utf-8", "replace"))
            pos += ln
    return out


def ends_with_ready(chunk: bytes | bytearray | memoryview) -> str | None:
    """The status of a ReadyForQuery the chunk seems to end with (a hint, never proof)."""
    if len(chunk) >= 6 and chunk[-6:-1] == RFQ_PREFIX:
        status = chr(chunk[-1])
        if status in "ITE":
            return status
    return None


# --- the client's side of a relayed session -------------------------------------------------

# Frontend messages after which the server owes a ReadyForQuery for everything sent so far.
SYNC_POINTS = frozenset(b"QSF")
# How much of a watched message the tracker hands over (type, length and the start of the body).
WATCH_PREFIX = 5 + 200


class FrontendTracker:
    """Walks the headers of the client's frontend messages as they are relayed.

    Per chunk this costs one header step per message (a few per query); bodies
    are skipped, so COPY data costs nothing more.  It finds a Terminate (which
    must not reach a pooled upstream session) and knows, when the client goes,
    whether its last message completed a request (Query, Sync, FunctionCall)
    with nothing half-sent: only then may the upstream session be checked and
    kept.
    """

    __slots__ = (
        "_remaining",
        "_header",
        "last_kind",
        "terminated",
        "_watch",
        "watched",
        "_head",
        "_head_need",
    )

    def __init__(self, watch: frozenset[int] = frozenset()) -> None:
        self._remaining = 0  # body bytes of the current message still to come
        self._header = bytearray()  # a header split across chunks, held back
        self.last_kind = 0  # type byte of the last message whose header was seen
        self.terminated = False
        self._watch = watch  # message types whose start (type + first body bytes) the caller wants to see
        self.watched: list[bytes] = []
        self._head = bytearray()  # the start of a watched message whose body continues in the next chunk
        self._head_need = 0  # bytes still missing from _head

    @property
    def at_boundary(self) -> bool:
        return self._remaining == 0 and not self._header

    @property
    def synced(self) -> bool:
        """At a message boundary, the last message a sync point (or nothing sent at all)."""
        return self.at_boundary and (self.last_kind == 0 or self.last_kind in SYNC_POINTS)

    def feed(self, chunk: bytes) -> bytes:
        """Account for ``chunk``; return what to forward now.

        A header split across chunks is held back until it is whole (so a Terminate is never half
        forwarded); everything before a Terminate is returned and the rest dropped.
        """
        if self._header:
            chunk = bytes(self._header) + chunk
            self._header.clear()
        n = len(chunk)
        pos = 0
        if self._remaining:
            if self._head_need:  # a watched start is handed over whole, wherever the chunks were cut
                take = chunk[: self._head_need]
                self._head += take
                self._head_need -= len(take)
                if not self._head_need:
                    self.watched.append(bytes(self._head))
                    self._head.clear()
            if self._remaining >= n:
                self._remaining -= n
                return chunk
            pos = self._remaining
            self._remaining = 0
        watch = self._watch
        while pos < n:
            if n - pos < 5:
                self._header += chunk[pos:]
                return chunk[:pos]
            kind = chunk[pos]
            if kind == 88:  # 'X' Terminate
                self.terminated = True
                return chunk[:pos]
            (length,) = _I32.unpack_from(chunk, pos + 1)
            if length < 4:  # PostgreSQL logs it (COMMERROR) and closes, without a word to the client
                raise LogOnly("invalid message length")
            if watch and kind in watch:
                want = min(WATCH_PREFIX, 1 + length)
                head = chunk[pos : pos + want]
                if len(head) == want:
                    self.watched.append(head)
                else:
                    self._head[:] = head
                    self._head_need = want - len(head)
            self.last_kind = kind
            pos += 1 + length
        if pos > n:
            self._remaining = pos - n
        return chunk
