"""Encoding of backend messages and decoding of frontend messages (protocol v3), sans-IO.

Follows PostgreSQL's "Message Formats" chapter.  Encoders return complete
messages (type byte, Int32 length, body); decoders take the body of one
message and raise :class:`ProtocolError` on malformed input.  Nothing here
touches a socket.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterable, Sequence

from pgtls.errors import PROTOCOL_VIOLATION, PgError

# Distinct (name, value) ParameterStatus messages kept encoded (bounded: application_name is the client's).
PARAMETER_STATUS_CACHE = 512

_I32 = struct.Struct("!i")
_I16 = struct.Struct("!h")


class ProtocolError(PgError):
    def __init__(self, message: str) -> None:
        super().__init__(PROTOCOL_VIOLATION, message, severity="FATAL")


def msg(kind: bytes, body: bytes = b"") -> bytes:
    return kind + _I32.pack(len(body) + 4) + body


def cstr(s: str) -> bytes:
    # surrogateescape: a name a client sent as bytes that are not UTF-8 goes back out as the same bytes
    return s.encode("utf-8", "surrogateescape") + b"\0"


# --- backend messages -------------------------------------------------------------------------

AUTH_OK = 0
AUTH_CLEARTEXT = 3
AUTH_MD5 = 5
AUTH_SASL = 10
AUTH_SASL_CONTINUE = 11
AUTH_SASL_FINAL = 12


def authentication(code: int, data: bytes = b"") -> bytes:
    return msg(b"R", _I32.pack(code) + data)


def auth_ok() -> bytes:
    return authentication(AUTH_OK)


def auth_sasl(mechanisms: Sequence[str]) -> bytes:
    return authentication(AUTH_SASL, b"".join(cstr(m) for m in mechanisms) + b"\0")


def backend_key_data(pid: int, key: bytes) -> bytes:
    """BackendKeyData: the pid and the cancel key (4 bytes in protocol 3.0, up to 256 in 3.2)."""
    return msg(b"K", struct.pack("!i", pid) + key)


@functools.lru_cache(maxsize=PARAMETER_STATUS_CACHE)
def parameter_status(name: str, value: str) -> bytes:
    """ParameterStatus; memoized, since every login sends the same dozen or so (name, value) pairs."""
    return msg(b"S", cstr(name) + cstr(value))


def notification_response(pid: int, channel: str, payload: str) -> bytes:
    return msg(b"A", _I32.pack(pid) + cstr(channel) + cstr(payload))


def ready_for_query(status: str = "I") -> bytes:
    return msg(b"Z", status.encode())


def negotiate_protocol_version(minor: int, unrecognized: Sequence[str]) -> bytes:
    return msg(
        b"v",
        _I32.pack((3 << 16) | minor) + _I32.pack(len(unrecognized)) + b"".join(cstr(o) for o in unrecognized),
    )


def command_complete(tag: str) -> bytes:
    return msg(b"C", cstr(tag))


def empty_query_response() -> bytes:
    return msg(b"I")


def row_description(fields: Sequence[tuple[str, int, int, int, int]]) -> bytes:
    """fields: (name, type_oid, typlen, typmod, format)."""
    out = [_I16.pack(len(fields))]
    for name, oid, typlen, typmod, fmt in fields:
        out.append(cstr(name) + struct.pack("!ihihih", 0, 0, oid, typlen, typmod, fmt))
    return msg(b"T", b"".join(out))


def data_row(values: Sequence[bytes | None]) -> bytes:
    parts = [_I16.pack(len(values))]
    for v in values:
        if v is None:
            parts.append(b"\xff\xff\xff\xff")
        else:
            parts.append(_I32.pack(len(v)))
            parts.append(v)
    return msg(b"D", b"".join(parts))


def _fields(err: PgError, severity: str) -> bytes:
    parts = [
        b"S" + cstr(severity),
        b"V" + cstr(severity),
        b"C" + cstr(err.sqlstate),
        b"M" + cstr(err.message),
    ]
    if err.detail:
        parts.append(b"D" + cstr(err.detail))
    if err.hint:
        parts.append(b"H" + cstr(err.hint))
    if err.position is not None:
        parts.append(b"P" + cstr(str(err.position)))
    for code, value in err.extra.items():
        parts.append(code.encode()[:1] + cstr(value))
    return b"".join(parts) + b"\0"


def error_response(err: PgError) -> bytes:
    return msg(b"E", _fields(err, err.severity))


def notice_response(err: PgError) -> bytes:
    return msg(b"N", _fields(err, err.severity if err.severity not in ("ERROR", "FATAL") else "NOTICE"))


# --- frontend message bodies ------------------------------------------------------------------


class Reader:
    """Cursor over one message body; every read is bounds-checked."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def int32(self) -> int:
        if self.pos + 4 > len(self.data):
            raise ProtocolError("invalid message format")
        v: int
        (v,) = _I32.unpack_from(self.data, self.pos)
        self.pos += 4
        return v

    def int16(self) -> int:
        if self.pos + 2 > len(self.data):
            raise ProtocolError("invalid message format")
        v: int
        (v,) = _I16.unpack_from(self.data, self.pos)
        self.pos += 2
        return v

    def cstring(self) -> str:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise ProtocolError("invalid string in message")
        raw = self.data[self.pos : end]
        self.pos = end + 1
        try:
            return raw.decode()
        except UnicodeDecodeError:
            raise ProtocolError('invalid byte sequence for encoding "UTF8"') from None

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ProtocolError("insufficient data left in message")
        v = self.data[self.pos : self.pos + n]
        self.pos += n
        return v

    def rest(self) -> bytes:
        v = self.data[self.pos :]
        self.pos = len(self.data)
        return v

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def expect_end(self) -> None:
        if self.pos != len(self.data):
            raise ProtocolError("invalid message format")


def parse_password_message(body: bytes) -> str:
    r = Reader(body)
    s = r.cstring()
    r.expect_end()
    return s


def parse_sasl_initial(body: bytes) -> tuple[str, bytes | None]:
    r = Reader(body)
    mech = r.cstring()
    n = r.int32()
    data = None if n == -1 else r.take(n)
    r.expect_end()
    return mech, data


def join_messages(parts: Iterable[bytes]) -> bytes:
    return b"".join(parts)


# --- extended query and COPY backend messages (added for the embedded backend) ----------------


def parse_complete() -> bytes:
    return msg(b"1")


def bind_complete() -> bytes:
    return msg(b"2")


def close_complete() -> bytes:
    return msg(b"3")


def no_data() -> bytes:
    return msg(b"n")


def portal_suspended() -> bytes:
    return msg(b"s")


def parameter_description(oids: Sequence[int]) -> bytes:
    return msg(b"t", _I16.pack(len(oids)) + b"".join(struct.pack("!I", o) for o in oids))


def _copy_response(kind: bytes, overall_format: int, column_formats: Sequence[int]) -> bytes:
    body = struct.pack("!bh", overall_format, len(column_formats))
    body += b"".join(_I16.pack(f) for f in column_formats)
    return msg(kind, body)


def copy_in_response(overall_format: int, column_formats: Sequence[int]) -> bytes:
    return _copy_response(b"G", overall_format, column_formats)


def copy_out_response(overall_format: int, column_formats: Sequence[int]) -> bytes:
    return _copy_response(b"H", overall_format, column_formats)


def copy_data(data: bytes) -> bytes:
    return msg(b"d", data)


def copy_done() -> bytes:
    return msg(b"c")
