"""The connection-start negotiation of PostgreSQL 17+, as a sans-IO state machine.

It follows ``ProcessSSLStartup`` / ``ProcessStartupPacket`` in PostgreSQL's
``backend_startup.c``:

* The very first byte of a connection may be 0x16 (a TLS handshake record):
  that is *direct TLS*; the machine reports :class:`DirectTLS` and consumes nothing.
* Otherwise packets are read: an Int32 length (which counts itself, 8 .. 10004),
  then an Int32 code.  SSLRequest (80877103) and GSSENCRequest (80877104) are
  answered once each per connection (``ssl_done`` / ``gss_done``); a repeat falls
  through to the version check and is refused as an unsupported protocol
  (CVE-2026-6479).  After any answer, bytes the client had already sent are not
  negotiation data: the caller checks :attr:`StartupMachine.buffered` (CVE-2021-23214).
* CancelRequest (80877102) ends the negotiation.
* Anything else is a StartupMessage: protocol 3.x (3.0 spoken; a higher minor or
  ``_pq_.`` options get NegotiateProtocolVersion), other majors get
  ``unsupported frontend protocol``.

The machine never touches a socket and never decides policy (whether TLS is
available): it reports events, and the caller answers through the methods
:meth:`answered_ssl` / :meth:`answered_gss` / :meth:`tls_started`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import Enum

from pgtls.errors import (
    FEATURE_NOT_SUPPORTED,
    INVALID_AUTHORIZATION_SPECIFICATION,
    PROTOCOL_VIOLATION,
    PgError,
)
from pgtls.protocol.limits import MAX_STARTUP_PACKET_LENGTH, NAMEDATALEN

SSL_REQUEST_CODE = 80877103  # 1234.5679
GSSENC_REQUEST_CODE = 80877104  # 1234.5680
CANCEL_REQUEST_CODE = 80877102  # 1234.5678

# Bounds from PostgreSQL's pqcomm.h: the startup packet payload (after the length word)
# is at least a protocol version and at most MAX_STARTUP_PACKET_LENGTH bytes; identifiers are truncated to
# NAMEDATALEN-1 bytes (both in pgtls.protocol.limits).
MIN_STARTUP_PACKET_LENGTH = 4

PROTOCOL_MAJOR = 3
PROTOCOL_LATEST_MINOR = 2  # protocol 3.2 (PostgreSQL 18): longer cancel keys; 3.0 clients keep 4-byte ones
MAX_CANCEL_KEY_LENGTH = (
    32  # PostgreSQL 18's: the key length a 3.2 session gets, the most a CancelRequest may carry
)
CANCEL_KEY_OFFSET = 8  # offsetof(CancelRequestPacket, cancelAuthCode): request code and pid

TLS_HANDSHAKE_RECORD = 0x16


class LogOnly(Exception):
    """A failure PostgreSQL reports only in the server log (COMMERROR), then closes the connection."""

    def __init__(self, message: str, sqlstate: str = PROTOCOL_VIOLATION) -> None:
        super().__init__(message)
        self.message = message
        self.sqlstate = sqlstate


class LegacyProtocolError(PgError):
    """Refusal of a protocol 1.x/2.x client: PostgreSQL still answers in the version-2 error format."""

    def v2_bytes(self) -> bytes:
        return b"E" + f"{self.severity}:  {self.message}\n".encode() + b"\0"


class Closed(Exception):
    """The client went away; close silently (or with the given log line)."""

    def __init__(self, log: str | None = None) -> None:
        super().__init__(log or "closed")
        self.log = log


# --- events -----------------------------------------------------------------------------------


class NeedData:
    """More bytes are needed."""


NEED_DATA = NeedData()


@dataclass(frozen=True)
class DirectTLS:
    """First byte is a TLS handshake record: run the TLS handshake now (nothing consumed)."""


@dataclass(frozen=True)
class SSLRequest:
    """Answer 'S' or 'N', then call :meth:`StartupMachine.answered_ssl`."""


@dataclass(frozen=True)
class GSSENCRequest:
    """Answer 'N' (pgtls has no GSSAPI), then call :meth:`StartupMachine.answered_gss`."""


@dataclass(frozen=True)
class CancelRequest:
    pid: int
    key: bytes  # 4 bytes (protocol 3.0) or up to MAX_CANCEL_KEY_LENGTH (3.2)


@dataclass(frozen=True)
class Startup:
    minor: int
    params: dict[str, str]
    unrecognized: tuple[str, ...] = ()  # `_pq_.` options we do not know
    needs_negotiation: bool = False  # send NegotiateProtocolVersion before authentication

    @property
    def user(self) -> str:
        return self.params["user"]

    @property
    def database(self) -> str:
        return self.params.get("database") or self.params["user"]


Event = NeedData | DirectTLS | SSLRequest | GSSENCRequest | CancelRequest | Startup


class Phase(Enum):
    START = "start"  # nothing read yet: direct TLS possible
    PACKETS = "packets"
    AWAIT_SSL_ANSWER = "await-ssl-answer"
    AWAIT_GSS_ANSWER = "await-gss-answer"
    DONE = "done"


@dataclass
class StartupMachine:
    """Feed bytes with :meth:`receive_data`, pull events with :meth:`next_event`."""

    buffer: bytearray = field(default_factory=bytearray)
    phase: Phase = Phase.START
    ssl_done: bool = False
    gss_done: bool = False
    tls_active: bool = False
    eof: bool = False

    def receive_data(self, data: bytes) -> None:
        if data:
            self.buffer += data
        else:
            self.eof = True

    @property
    def buffered(self) -> int:
        """Bytes received but not consumed (checked after an SSL/GSS answer: CVE-2021-23214)."""
        return len(self.buffer)

    def take_buffer(self) -> bytes:
        """Hand unconsumed bytes to the TLS engine (after answering 'S' or for direct TLS)."""
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    # --- answers from the caller ---
    def answered_ssl(self) -> None:
        assert self.phase is Phase.AWAIT_SSL_ANSWER
        self.ssl_done = True
        self.phase = Phase.PACKETS

    def answered_gss(self) -> None:
        assert self.phase is Phase.AWAIT_GSS_ANSWER
        self.gss_done = True
        self.phase = Phase.PACKETS

    def tls_started(self, direct: bool) -> None:
        """TLS is up (after 'S' or direct).  A direct TLS connection counts as SSL done."""
        self.tls_active = True
        self.ssl_done = True
        self.phase = Phase.PACKETS

    # --- parsing ---
    def next_event(self) -> Event:
        if self.phase in (Phase.AWAIT_SSL_ANSWER, Phase.AWAIT_GSS_ANSWER):
            raise RuntimeError("answer the pending request first")
        if self.phase is Phase.DONE:
            raise RuntimeError("negotiation is over")
        buf = self.buffer
        if self.phase is Phase.START:
            if not buf:
                if self.eof:
                    raise Closed()
                return NEED_DATA
            self.phase = Phase.PACKETS
            if buf[0] == TLS_HANDSHAKE_RECORD:
                return DirectTLS()
        if len(buf) < 4:
            if self.eof:
                if not buf:
                    raise Closed()
                # A partial length word: PostgreSQL bleats unless a negotiation already finished.
                if not self.ssl_done and not self.gss_done:
                    raise LogOnly("incomplete startup packet")
                raise Closed()
            return NEED_DATA
        (length,) = struct.unpack_from("!i", buf, 0)
        payload_len = length - 4
        if payload_len < MIN_STARTUP_PACKET_LENGTH or payload_len > MAX_STARTUP_PACKET_LENGTH:
            raise LogOnly("invalid length of startup packet")
        if len(buf) < length:
            if self.eof:
                raise LogOnly("incomplete startup packet")
            return NEED_DATA
        payload = bytes(buf[4:length])
        del buf[:length]
        (code,) = struct.unpack_from("!i", payload, 0)

        if code == CANCEL_REQUEST_CODE:
            self.phase = Phase.DONE
            # PostgreSQL 18's processCancelRequest: any key length from 1 to MAX_CANCEL_KEY_LENGTH.
            if len(payload) < CANCEL_KEY_OFFSET:
                raise LogOnly("invalid length of query cancel packet")
            key = payload[CANCEL_KEY_OFFSET:]
            if not key or len(key) > MAX_CANCEL_KEY_LENGTH:
                raise LogOnly("invalid length of query cancel key")
            (pid,) = struct.unpack_from("!i", payload, 4)
            return CancelRequest(pid, key)
        if code == SSL_REQUEST_CODE and not self.ssl_done:
            self.phase = Phase.AWAIT_SSL_ANSWER
            return SSLRequest()
        if code == GSSENC_REQUEST_CODE and not self.gss_done:
            self.phase = Phase.AWAIT_GSS_ANSWER
            return GSSENCRequest()
        return self._startup(code, payload)

    def _startup(self, code: int, payload: bytes) -> Startup:
        self.phase = Phase.DONE
        major, minor = (code >> 16) & 0xFFFF, code & 0xFFFF
        if major != PROTOCOL_MAJOR:
            raise (LegacyProtocolError if major < PROTOCOL_MAJOR else PgError)(
                FEATURE_NOT_SUPPORTED,
                f"unsupported frontend protocol {major}.{minor}: server supports "
                f"{PROTOCOL_MAJOR}.0 to {PROTOCOL_MAJOR}.{PROTOCOL_LATEST_MINOR}",
                severity="FATAL",
            )
        body = payload[4:]
        if not body or body[-1] != 0:
            raise PgError(
                PROTOCOL_VIOLATION,
                "invalid startup packet layout: expected terminator as last byte",
                severity="FATAL",
            )
        params: dict[str, str] = {}
        unrecognized: list[str] = []
        pos = 0
        while pos < len(body):
            end = body.index(b"\0", pos)
            name_b = body[pos:end]
            pos = end + 1
            if not name_b:
                break
            if pos >= len(body):
                raise PgError(
                    PROTOCOL_VIOLATION,
                    "invalid startup packet layout: expected terminator as last byte",
                    severity="FATAL",
                )
            end = body.index(b"\0", pos)
            value_b = body[pos:end]
            pos = end + 1
            # Lossless: PostgreSQL compares these as bytes, so two different byte strings must never
            # become the same str (errors="replace" would turn every bad byte into U+FFFD).
            name = name_b.decode("utf-8", "surrogateescape")
            value = value_b.decode("utf-8", "surrogateescape")
            if name.startswith("_pq_."):
                unrecognized.append(name)
            else:
                params[name] = value
        if pos != len(body):
            raise PgError(
                PROTOCOL_VIOLATION,
                "invalid startup packet layout: expected terminator as last byte",
                severity="FATAL",
            )
        if not params.get("user"):
            raise PgError(
                INVALID_AUTHORIZATION_SPECIFICATION,
                "no PostgreSQL user name specified in startup packet",
                severity="FATAL",
            )
        if not params.get("database"):
            params["database"] = params["user"]
        for key in ("user", "database"):
            params[key] = _truncate_identifier(params[key])
        return Startup(
            minor=minor,
            params=params,
            unrecognized=tuple(unrecognized),
            needs_negotiation=minor > PROTOCOL_LATEST_MINOR or bool(unrecognized),
        )


def _truncate_identifier(s: str) -> str:
    """ProcessStartupPacket's cut of over-long user and database names: at NAMEDATALEN - 1 bytes, even inside
    a multibyte character (the cut bytes are kept as they are)."""
    raw = s.encode("utf-8", "surrogateescape")
    if len(raw) < NAMEDATALEN:
        return s
    return raw[: NAMEDATALEN - 1].decode("utf-8", "surrogateescape")


def ssl_request_packet() -> bytes:
    return struct.pack("!ii", 8, SSL_REQUEST_CODE)


def gssenc_request_packet() -> bytes:
    return struct.pack("!ii", 8, GSSENC_REQUEST_CODE)


def cancel_request_packet(pid: int, key: int | bytes) -> bytes:
    raw = key if isinstance(key, bytes) else (key & 0xFFFFFFFF).to_bytes(4, "big")
    return struct.pack("!iii", 12 + len(raw), CANCEL_REQUEST_CODE, pid) + raw


def startup_packet(params: dict[str, str], minor: int = 0) -> bytes:
    body = b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in params.items()) + b"\0"
    return struct.pack("!ii", len(body) + 8, (3 << 16) | minor) + body
