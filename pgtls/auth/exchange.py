"""Authentication exchanges as sans-IO state machines, and the simple methods.

An exchange never touches a socket.  The server drives it like this::

    ex = ...                       # built by pgtls.auth.decide (or directly)
    out = ex.start()
    while isinstance(out, Continue):
        send(out.send)
        kind, body = read_message(limit=ex.max_message_length)   # or ex.too_long()
        out = await asyncio.to_thread(ex.step, body, kind) if ex.blocking else ex.step(body, kind)
    # Success: send(out.send); Failure: send(out.send + error_response(out.error))
    # then log every out.log line.

``blocking`` is True when :meth:`step` may run PBKDF2 (cleartext ``password``
against a SCRAM secret); such steps must run in a worker thread.  Steps are pure CPU
otherwise (SCRAM's server side only runs HMAC/SHA-256, also for the mock exchange).

Messages and SQLSTATEs follow PostgreSQL 16's ``auth.c`` (``recv_password_packet``,
``CheckPasswordAuth``, ``CheckMD5Auth``, ``auth_failed``) and ``crypt.c``.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from pgtls.auth.passwords import md5_challenge_response, password_type, verify_plain_password
from pgtls.errors import (
    INVALID_AUTHORIZATION_SPECIFICATION,
    INVALID_PASSWORD,
    PROTOCOL_VIOLATION,
    PgError,
    fatal,
)
from pgtls.protocol import messages as m

# PG_MAX_AUTH_TOKEN_LENGTH (auth.c): bound for password packets.
MAX_PASSWORD_PACKET_LENGTH = 65535


@dataclass(frozen=True)
class LogLine:
    level: str  # "LOG", "FATAL", "COMMERROR", "DEBUG"
    message: str
    detail: str | None = None


@dataclass(frozen=True)
class Continue:
    send: bytes


@dataclass(frozen=True)
class ProvenSecret:
    """What a successful login proved, kept in memory for the relay's login upstream as the same role:
    the cleartext password of the ``password`` method, or SCRAM's ClientKey (recovered from the client's
    proof) with the verifier's ServerKey.  Never logged, never written anywhere (no repr)."""

    password: bytes | None = field(default=None, repr=False)
    client_key: bytes | None = field(default=None, repr=False)
    server_key: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Success:
    send: bytes  # e.g. AuthenticationSASLFinal (the flow in decide.py appends AuthenticationOk)
    authn_id: str | None = None
    log: tuple[LogLine, ...] = ()
    proven: ProvenSecret | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Failure:
    error: PgError  # FATAL, sent to the client as is
    log_detail: str | None = None  # errdetail_log: server log only
    auth_failed: bool = False  # True: auth_failed() of auth.c (the flow adds "Connection matched ...")
    send: bytes = b""  # to send before the ErrorResponse
    log: tuple[LogLine, ...] = ()
    silent: bool = False  # close without an ErrorResponse (PostgreSQL's STATUS_EOF)


Step = Continue | Success | Failure


class Exchange(Protocol):
    method: str
    blocking: bool
    max_message_length: int

    def start(self) -> Step: ...

    def step(self, body: bytes, kind: bytes = b"p") -> Step: ...

    def too_long(self) -> Step: ...


def auth_failed_error(method: str, user: str) -> PgError:
    """auth_failed(): the client-visible FATAL for a failed method."""
    if method in ("password", "md5", "scram-sha-256"):
        return fatal(INVALID_PASSWORD, f'password authentication failed for user "{user}"')
    if method == "cert":
        return fatal(
            INVALID_AUTHORIZATION_SPECIFICATION, f'certificate authentication failed for user "{user}"'
        )
    return fatal(INVALID_AUTHORIZATION_SPECIFICATION, f'"{method}" authentication failed for user "{user}"')


def role_password_detail(user: str, role_exists: bool, secret: str | None, expired: bool) -> str | None:
    """get_role_password()'s log detail when no usable secret exists (None: usable)."""
    if not role_exists:
        return f'Role "{user}" does not exist.'
    if secret is None:
        return f'User "{user}" has no password assigned.'
    if expired:
        return f'User "{user}" has an expired password.'
    if secret == "":
        return f'User "{user}" has an empty password.'
    return None


def protocol_error(message: str, detail: str | None = None) -> Failure:
    return Failure(fatal(PROTOCOL_VIOLATION, message, detail=detail))


def read_password_packet(body: bytes, kind: bytes) -> bytes | Failure:
    """recv_password_packet(): the password bytes, or the error PostgreSQL raises."""
    if kind != b"p":
        return protocol_error(f"expected password response, got message type {kind[0] if kind else 0}")
    if len(body) > MAX_PASSWORD_PACKET_LENGTH:
        return _too_long_password()
    nul = body.find(b"\0")
    if nul + 1 != len(body):
        return protocol_error("invalid password packet size")
    if len(body) == 1:
        return Failure(fatal(INVALID_PASSWORD, "empty password returned by client"))
    return body[:-1]


def _too_long_password() -> Failure:
    # pq_getmessage() logs COMMERROR and returns EOF: the backend exits without a reply.
    return Failure(
        fatal(PROTOCOL_VIOLATION, "invalid message length"),
        log=(LogLine("COMMERROR", "invalid message length"),),
        silent=True,
    )


class _PasswordBase:
    method = "password"
    blocking = False
    max_message_length = MAX_PASSWORD_PACKET_LENGTH

    def __init__(self, user: str, secret: str | None, detail: str | None) -> None:
        self.user = user
        self.secret = secret
        self.detail = detail  # why no usable secret (log only)
        self.done = False

    def _fail(self, detail: str | None) -> Failure:
        self.done = True
        return Failure(auth_failed_error(self.method, self.user), detail, auth_failed=True)

    def too_long(self) -> Step:
        self.done = True
        return _too_long_password()

    def step(self, body: bytes, kind: bytes = b"p") -> Step:
        if self.done:
            return protocol_error("invalid authentication exchange state")
        pw = read_password_packet(body, kind)
        if isinstance(pw, Failure):
            self.done = True
            return pw
        if self.secret is None or self.detail is not None:
            return self._fail(self.detail)
        detail = self._check(pw, self.secret)
        if detail is not None:
            return self._fail(detail)
        self.done = True
        return Success(b"", authn_id=self.user)

    def _check(self, pw: bytes, secret: str) -> str | None:
        """None if ``pw`` proves the password, else the log-only reason."""
        raise NotImplementedError


class PasswordExchange(_PasswordBase):
    """``password``: AuthenticationCleartextPassword, then check against the stored secret."""

    method = "password"
    blocking = True  # verify_plain_password runs PBKDF2 for SCRAM secrets
    abandoned: Callable[[], bool] | None = None  # set by the driver: the login's timeout fired

    def start(self) -> Step:
        return Continue(m.authentication(m.AUTH_CLEARTEXT))

    def step(self, body: bytes, kind: bytes = b"p") -> Step:
        out = super().step(body, kind)
        if isinstance(out, Success):
            pw = read_password_packet(body, kind)
            if isinstance(pw, bytes):
                return Success(out.send, out.authn_id, out.log, ProvenSecret(password=pw))
        return out

    def _check(self, pw: bytes, secret: str) -> str | None:
        ok, detail = verify_plain_password(self.user, pw, secret, self.abandoned)
        return None if ok else (detail or f'Password does not match for user "{self.user}".')


class MD5Exchange(_PasswordBase):
    """``md5`` with an md5 secret: AuthenticationMD5Password with a 4-byte random salt."""

    method = "md5"

    def __init__(self, user: str, secret: str | None, detail: str | None, salt: bytes | None = None) -> None:
        super().__init__(user, secret, detail)
        self.salt = os.urandom(4) if salt is None else salt

    def start(self) -> Step:
        return Continue(m.authentication(m.AUTH_MD5, self.salt))

    def _check(self, pw: bytes, secret: str) -> str | None:
        if password_type(secret) != "md5":
            return f'User "{self.user}" has a password that cannot be used with MD5 authentication.'
        expected = md5_challenge_response(secret, self.salt).encode()
        if not hmac.compare_digest(expected, pw):
            return f'Password does not match for user "{self.user}".'
        return None


class TrustExchange:
    """``trust`` (and the first half of ``cert``): succeeds at once, sets no identity."""

    blocking = False
    max_message_length = 0

    def __init__(self, method: str = "trust") -> None:
        self.method = method

    def start(self) -> Step:
        return Success(b"")

    def step(self, body: bytes, kind: bytes = b"p") -> Step:
        return protocol_error("invalid authentication exchange state")

    def too_long(self) -> Step:
        return protocol_error("invalid authentication exchange state")
