"""Transaction pooling's view of the protocol, sans-IO: whole client messages, statement names, replies.

In transaction mode a client's messages may reach a different upstream server
connection for each transaction, so pgtls has to know three things the
session-mode hot path never looks at:

* **where each transaction ends**: every client message that the server
  answers is queued with what its answer looks like; the server's messages
  are walked (headers only) to pop the queue.  The server connection goes back
  to the pool when nothing is owed, the last ReadyForQuery said idle (``I``)
  and the client's last message was a sync point;
* **named prepared statements** (PgBouncer 1.21's ``max_prepared_statements``):
  a client's statement names are its own; on the server each statement is
  prepared under a name made from its text (``pgtls_<hash>``), once per
  server connection, and a bounded LRU per connection decides which stay.
  Parse of a statement the server already has is answered by pgtls; Bind and
  Describe of one it lacks get a Parse in front, whose ParseComplete the
  client never sees;
* **where replies go**: answers pgtls makes up (ParseComplete, CloseComplete)
  are put exactly where PostgreSQL would have sent them, and after an error
  the messages PostgreSQL skips until Sync get no made-up answer either.

Nothing here does I/O: :mod:`pgtls.backends.relay.txnsession` moves the bytes.
"""

from __future__ import annotations

import collections
import hashlib
import struct
import types
import typing
from collections.abc import Callable

from pgtls.errors import PROTOCOL_VIOLATION, PgError
from pgtls.protocol.limits import PQ_LARGE_MESSAGE_LIMIT
from pgtls.protocol.startup import LogOnly

_I32 = struct.Struct("!i")

# The largest client message held whole (PostgreSQL's own limit for a frontend message, PQ_LARGE_MESSAGE_LIMIT).
MAX_HELD_MESSAGE = PQ_LARGE_MESSAGE_LIMIT - 1
PARSE_COMPLETE = b"1\0\0\0\x04"
CLOSE_COMPLETE = b"3\0\0\0\x04"
SYNC = b"S\0\0\0\x04"
READY_IDLE = b"Z\0\0\0\x05I"

# What the answer to one client message looks like (the response queue's items).
R_PARSE, R_BIND, R_CLOSE, R_DESCRIBE_S, R_DESCRIBE_P, R_EXECUTE, R_SYNC, R_QUERY = range(8)
R_NAMED_PARSE = 8  # the client's Parse of a named statement, sent on under pgtls's name
DROP_PARSE, DROP_CLOSE = 9, 10  # answers to messages pgtls added: not for the client
FAKE_PARSE, FAKE_CLOSE = 20, 21  # answers pgtls gives itself, in place
_ONE = {
    R_PARSE: 49,
    R_BIND: 50,
    R_CLOSE: 51,
    R_NAMED_PARSE: 49,
    DROP_PARSE: 49,
    DROP_CLOSE: 51,
}  # '1' '2' '3'
_PREPARING = frozenset({R_NAMED_PARSE, DROP_PARSE})
_ENDS_AT_Z = frozenset({R_SYNC, R_QUERY})
_EXECUTE_END = frozenset(b"CIs")
_ASYNC = frozenset(b"NAS")  # NoticeResponse, NotificationResponse, ParameterStatus: any time
SYNC_KINDS = frozenset(b"QSF")


def server_name(body_after_name: bytes) -> str:
    """The server-side name of a statement: its text and parameter types decide it."""
    return "pgtls_" + hashlib.blake2b(body_after_name, digest_size=10).hexdigest()


def _cstr_end(body: bytes, start: int) -> int:
    end = body.find(b"\0", start)
    if end < 0:
        raise LogOnly("invalid string in message")
    return end


class ClientMessages:
    """The client's stream cut into whole messages (type byte, the whole message)."""

    __slots__ = ("_buf", "terminated")

    def __init__(self) -> None:
        self._buf = bytearray()
        self.terminated = False

    @property
    def partial(self) -> bool:
        return bool(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        if self.terminated:
            return []
        buf = self._buf
        if not buf and len(data) >= 5:
            (length,) = _I32.unpack_from(data, 1)
            if (
                length + 1 == len(data) and data[0] != 88 and length >= 4
            ):  # one whole message: the common case
                return [data]
        buf += data
        out: list[bytes] = []
        pos = 0
        n = len(buf)
        while n - pos >= 5:
            kind = buf[pos]
            if kind == 88:  # 'X' Terminate: the client's session ends here
                self.terminated = True
                buf.clear()
                return out
            (length,) = _I32.unpack_from(buf, pos + 1)
            if length < 4 or length > MAX_HELD_MESSAGE:
                raise LogOnly("invalid message length")
            end = pos + 1 + length
            if end > n:
                break
            out.append(bytes(buf[pos:end]))
            pos = end
        del buf[:pos]
        return out


class ServerStatements:
    """The statements one server connection has prepared under pgtls's names, least recently used first."""

    __slots__ = ("names",)

    def __init__(self) -> None:
        self.names: collections.OrderedDict[str, None] = collections.OrderedDict()

    def clear(self) -> None:
        self.names.clear()


# While a client has no server connection attached it owes nothing and knows no server's statements: these
# two stand in for its queue and its server's statements, shared by every such client (an empty deque
# costs about 0.7 KB, an OrderedDict and its holder another 0.2, per idle client).  Neither can be changed,
# so a path that wrongly added to them would fail loudly instead of leaking into other clients.
_NO_QUEUE: collections.deque[int] = typing.cast("collections.deque[int]", ())
_NO_SERVER = ServerStatements.__new__(ServerStatements)
_NO_SERVER.names = typing.cast("collections.OrderedDict[str, None]", types.MappingProxyType({}))


class TxnState:
    """One client's side of transaction pooling: its statements, and the replies owed on its current server."""

    def __init__(self, max_prepared: Callable[[], int]) -> None:
        self.statements: dict[
            str, tuple[str, bytes]
        ] = {}  # client name -> (server name, Parse body after name)
        self.queue: collections.deque[int] = _NO_QUEUE  # a deque of its own while a server is attached
        self.skipping = False  # the server had an error and skips messages until Sync
        self.status = "I"  # the last ReadyForQuery's transaction status
        self.synced = True  # the last message sent on was a sync point (Query, Sync, FunctionCall)
        self.cache = _NO_SERVER  # the statements of the server connection now attached
        # names of the Parses in the queue (made at the first one: an empty deque is ~0.7 KB per idle client)
        self._preparing: collections.deque[str] | None = None
        self.added_parses = 0  # statements pgtls prepared on a server before a Bind or Describe of them
        self.errors = (
            0  # ErrorResponses the server sent (a statement that ended session state may have failed)
        )
        self._max_prepared = max_prepared
        # the server walk
        self._remaining = 0
        self._header = bytearray()
        self._kind = 0

    def attached(self, statements: ServerStatements) -> None:
        """A server connection (whose prepared statements are ``statements``) now serves the client."""
        self.cache = statements
        if self.queue is _NO_QUEUE:
            self.queue = collections.deque()

    def detached(self) -> None:
        """The server connection went back to the pool, at an idle point (nothing owed)."""
        assert not self.queue
        self.cache = _NO_SERVER
        self.queue = _NO_QUEUE

    @property
    def idle(self) -> bool:
        """Nothing owed, nothing half-sent, and the server is outside a transaction: it may go back."""
        return (
            not self.queue and self.status == "I" and self.synced and not self._remaining and not self._header
        )

    # --- client to server ---------------------------------------------------------------------
    def to_server(self, msgs: list[bytes]) -> tuple[bytes, bytes]:
        """Messages for the server (statement names rewritten, Parses added where the server lacks one)
        and bytes for the client at once (answers made up while nothing was owed)."""
        cache = self.cache
        out: list[bytes] = []
        to_client: list[bytes] = []
        queue = self.queue
        for msg in msgs:
            kind = msg[0]
            if kind == 80:  # 'P' Parse
                body = msg[5:]
                end = _cstr_end(body, 0)
                if end == 0:
                    out.append(msg)
                    queue.append(R_PARSE)
                else:
                    name = body[:end].decode("utf-8", "surrogateescape")
                    rest = body[end + 1 :]
                    sname = server_name(rest)
                    self.statements[name] = (sname, rest)
                    if sname in cache.names:
                        cache.names.move_to_end(sname)
                        queue.append(FAKE_PARSE)
                    else:
                        self._prepare(sname, rest, cache, out)
                        queue[-1] = (
                            R_NAMED_PARSE  # the client asked for this one: its ParseComplete is the client's
                        )
                self.synced = False
                continue
            if kind == 66:  # 'B' Bind: portal, statement
                body = msg[5:]
                p_end = _cstr_end(body, 0)
                s_end = _cstr_end(body, p_end + 1)
                name = body[p_end + 1 : s_end].decode("utf-8", "surrogateescape")
                known = self.statements.get(name) if name else None
                if known is not None:
                    self._ensure(known, cache, out)
                    new_body = body[: p_end + 1] + known[0].encode() + body[s_end:]
                    msg = b"B" + _I32.pack(len(new_body) + 4) + new_body
                out.append(msg)
                queue.append(R_BIND)
                self.synced = False
                continue
            if kind in (68, 67):  # 'D' Describe, 'C' Close: 'S'|'P', name
                body = msg[5:]
                what = body[:1]
                end = _cstr_end(body, 1)
                name = body[1:end].decode("utf-8", "surrogateescape")
                known = self.statements.get(name) if what == b"S" and name else None
                if kind == 67 and known is not None:  # Close of a client's statement: the server keeps it
                    del self.statements[name]
                    queue.append(FAKE_CLOSE)
                    self.synced = False
                    continue
                if known is not None:
                    self._ensure(known, cache, out)
                    new_body = b"S" + known[0].encode() + b"\0"
                    msg = b"D" + _I32.pack(len(new_body) + 4) + new_body
                out.append(msg)
                queue.append(R_CLOSE if kind == 67 else (R_DESCRIBE_S if what == b"S" else R_DESCRIBE_P))
                self.synced = False
                continue
            if kind == 69:  # 'E' Execute
                queue.append(R_EXECUTE)
                self.synced = False
            elif kind in SYNC_KINDS:  # Sync, Query, FunctionCall: each answered up to a ReadyForQuery
                queue.append(R_SYNC if kind == 83 else R_QUERY)
                self.synced = True
            elif kind != 72:  # anything but Flush (CopyData, CopyDone, CopyFail): no answer of its own
                self.synced = self.synced and kind in b"dcf"
            out.append(msg)
        self._advance(to_client)  # made-up answers with nothing owed before them go out now
        return b"".join(out), b"".join(to_client)

    def parse_alone(self, msgs: list[bytes], acceptable: Callable[[bytes], bool]) -> bytes | None:
        """Named Parses and a Sync, outside a transaction with no server attached: pgtls answers them itself
        (ParseComplete each, ReadyForQuery idle) and prepares them on a server at their first Bind or
        Describe.  Only when every statement's text is ``acceptable`` (it parses; it leaves no session
        state); otherwise None, and a server answers."""
        if len(msgs) < 2 or msgs[-1] != SYNC or self.queue or self.skipping:
            return None
        found: list[tuple[str, bytes]] = []
        for msg in msgs[:-1]:
            if msg[0] != 80:
                return None
            body = msg[5:]
            end = _cstr_end(body, 0)
            sql_end = _cstr_end(body, end + 1)
            if end == 0 or not acceptable(body[end + 1 : sql_end]):
                return None
            found.append((body[:end].decode("utf-8", "surrogateescape"), body[end + 1 :]))
        for name, rest in found:
            self.statements[name] = (server_name(rest), rest)
        self.synced = True
        return PARSE_COMPLETE * len(found) + READY_IDLE

    def _ensure(self, known: tuple[str, bytes], cache: ServerStatements, out: list[bytes]) -> None:
        sname, rest = known
        if sname in cache.names:
            cache.names.move_to_end(sname)
        else:
            self._prepare(sname, rest, cache, out)
            self.added_parses += 1

    def _prepare(self, sname: str, rest: bytes, cache: ServerStatements, out: list[bytes]) -> None:
        """Prepare ``sname`` on the server (its answer dropped), making room in the cache first."""
        limit = self._max_prepared()
        while limit > 0 and len(cache.names) >= limit:
            old, _ = cache.names.popitem(last=False)
            body = b"S" + old.encode() + b"\0"
            out.append(b"C" + _I32.pack(len(body) + 4) + body)
            self.queue.append(DROP_CLOSE)
        body = sname.encode() + b"\0" + rest
        out.append(b"P" + _I32.pack(len(body) + 4) + body)
        self.queue.append(DROP_PARSE)
        if self._preparing is None:
            self._preparing = collections.deque()
        self._preparing.append(sname)
        cache.names[sname] = None

    def forget_all(self) -> None:
        """DISCARD ALL / DEALLOCATE ALL: the client's statements are gone, and so are the server's."""
        self.statements.clear()
        self.cache.clear()

    def _popped(self, item: int, ok: bool) -> None:
        """A queue item is done; a Parse that failed or was skipped leaves no statement on the server."""
        if item in _PREPARING:
            assert self._preparing is not None  # _prepare queued it
            sname = self._preparing.popleft()
            if not ok:
                self.cache.names.pop(sname, None)

    # --- server to client ---------------------------------------------------------------------
    def from_server(self, data: bytes) -> bytes:
        """What of ``data`` the client gets: answers to pgtls's own Parses and Closes taken out, made-up
        answers put in."""
        pos = 0
        n = len(data)
        if self._header:
            data = bytes(self._header) + data
            self._header.clear()
            n = len(data)
        parts: list[bytes] | None = None  # only when something is taken out or put in
        start = 0  # first byte not yet copied into parts
        if self._remaining:
            if self._remaining > n:
                self._remaining -= n
                return data
            pos = self._remaining
            self._remaining = 0
            if self._kind == 90:
                self.status = chr(data[pos - 1])
            self._done_message(self._kind)
            if self._must_advance():
                parts = [data[:pos]]
                start = pos
                self._advance(parts)
        while pos < n:
            if n - pos < 5:
                self._header += data[pos:]
                if parts is None:
                    return data[:pos]
                parts.append(data[start:pos])
                return b"".join(parts)
            kind = data[pos]
            (length,) = _I32.unpack_from(data, pos + 1)
            if length < 4:
                raise PgError(
                    PROTOCOL_VIOLATION, "invalid message length from the upstream server", severity="FATAL"
                )
            end = pos + 1 + length
            head = self.queue[0] if self.queue else -1
            drop = (head == DROP_PARSE and kind == 49) or (head == DROP_CLOSE and kind == 51)
            if drop:
                if parts is None:
                    parts = []
                parts.append(data[start:pos])
                start = end
            if end > n:
                self._remaining = end - n
                self._kind = kind
                break
            if kind == 90:
                self.status = chr(data[end - 1])
            self._done_message(kind)
            if self._must_advance():
                if parts is None:
                    parts = []
                parts.append(data[start:end])
                start = end
                self._advance(parts)
            pos = end
        if parts is None:
            return data
        parts.append(data[start:n] if start < n else b"")
        return b"".join(parts)

    def _must_advance(self) -> bool:
        queue = self.queue
        return bool(queue) and (queue[0] >= FAKE_PARSE or (self.skipping and queue[0] != R_SYNC))

    def _done_message(self, kind: int) -> None:
        """A whole server message of type ``kind`` went by: pop what it completes."""
        queue = self.queue
        if kind == 69:
            self.errors += 1
        if kind in _ASYNC or not queue:
            if kind == 90 and not queue:  # a ReadyForQuery nobody asked for: believe its status anyway
                self.skipping = False
            return
        head = queue[0]
        if kind == 69:  # ErrorResponse
            if head in _ENDS_AT_Z:
                return
            self._popped(queue.popleft(), False)
            self.skipping = True
            return
        if kind == 90:  # ReadyForQuery
            if head in _ENDS_AT_Z:
                queue.popleft()
                self.skipping = False
            return
        if head in _ENDS_AT_Z:
            return
        one = _ONE.get(head)
        if one is not None:
            if kind == one:
                self._popped(queue.popleft(), True)
        elif head == R_DESCRIBE_S:
            if kind in (84, 110):  # RowDescription, NoData (after ParameterDescription)
                queue.popleft()
        elif head == R_DESCRIBE_P:
            if kind in (84, 110):
                queue.popleft()
        elif head == R_EXECUTE:
            if kind in _EXECUTE_END:
                queue.popleft()

    def _advance(self, parts: list[bytes]) -> None:
        """Made-up answers now at the head of the queue go out (none while the server skips to Sync)."""
        queue = self.queue
        while queue:
            head = queue[0]
            if self.skipping and head != R_SYNC:
                self._popped(queue.popleft(), False)
            elif head >= FAKE_PARSE:
                queue.popleft()
                parts.append(PARSE_COMPLETE if head == FAKE_PARSE else CLOSE_COMPLETE)
            else:
                break
