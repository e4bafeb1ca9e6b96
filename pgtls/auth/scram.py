"""SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (tls-server-end-point), server side, sans-IO.

Follows RFC 5802/7677 and PostgreSQL 16's ``auth-scram.c`` and ``sasl.c``, including
its rules:

* mechanisms offered: ``SCRAM-SHA-256-PLUS`` (only when the caller gives channel
  binding data, i.e. on TLS with a usable certificate hash) then ``SCRAM-SHA-256``;
* the user name inside SCRAM is ignored (the startup packet's is used), an authzid
  is refused, so are mandatory extensions;
* GS2 flag ``y`` when PLUS was offered is a downgrade attempt and is refused;
* the proof is checked in constant time; an unknown user, or one without a SCRAM
  secret, gets a *mock* exchange (salt derived from the user name and a per-cluster
  secret, the configured iteration count) that runs the very same computations and
  fails exactly like a wrong password;
* client messages are bounded by ``PG_MAX_SASL_MESSAGE_LENGTH`` (1024 bytes).

Error messages never echo client bytes except sanitised (``sanitize_char``/``_str``).
Client messages are handled as Latin-1 text so every byte maps to one character and
the AuthMessage bytes are reproduced exactly.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
from enum import Enum

from pgtls.auth.exchange import (
    Continue,
    Failure,
    LogLine,
    ProvenSecret,
    Step,
    Success,
    auth_failed_error,
    protocol_error,
)
from pgtls.auth.passwords import (
    SCRAM_DEFAULT_ITERATIONS,
    SCRAM_KEY_LEN,
    hmac_sha256,
    mock_salt,
    parse_scram_secret,
    password_type,
)
from pgtls.errors import FEATURE_NOT_SUPPORTED, INVALID_AUTHORIZATION_SPECIFICATION, fatal
from pgtls.protocol import messages as m

SCRAM_SHA_256 = "SCRAM-SHA-256"
SCRAM_SHA_256_PLUS = "SCRAM-SHA-256-PLUS"
# PG_MAX_SASL_MESSAGE_LENGTH (sasl.h): larger SASL messages are refused unread.
MAX_SASL_MESSAGE_LENGTH = 1024
# SCRAM_RAW_NONCE_LEN (scram-common.h): 18 random bytes, 24 base64 characters.
SCRAM_RAW_NONCE_LEN = 18
CBIND_HEADER = b"p=tls-server-end-point,,"


class _State(Enum):
    INIT = 0  # waiting for SASLInitialResponse
    FIRST = 1  # mechanism chosen, waiting for client-first-message (empty initial response)
    SALT_SENT = 2
    FINISHED = 3


class _ScramError(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.error.message)
        self.failure = failure


def _malformed(detail: str) -> _ScramError:
    return _ScramError(protocol_error("malformed SCRAM message", detail))


def sanitize_char(c: str) -> str:
    o = ord(c) if c else 0
    return f"'{c}'" if 0x21 <= o <= 0x7E else f"0x{o:02x}"


def sanitize_str(s: str) -> str:
    return "".join(c if 0x21 <= ord(c) <= 0x7E else "?" for c in s[:30])


class _Reader:
    """A cursor over a SCRAM message, mirroring read_attr_value/read_any_attr."""

    def __init__(self, text: str) -> None:
        self.s = text
        self.pos = 0

    def peek(self) -> str:
        return self.s[self.pos] if self.pos < len(self.s) else ""

    def _value(self) -> str:
        end = self.s.find(",", self.pos)
        if end < 0:
            v, self.pos = self.s[self.pos :], len(self.s)
        else:
            v, self.pos = self.s[self.pos : end], end + 1
        return v

    def attr(self, attr: str) -> str:
        c = self.peek()
        if c != attr:
            raise _malformed(f'Expected attribute "{attr}" but found "{sanitize_char(c)}".')
        self.pos += 1
        if self.peek() != "=":
            raise _malformed(f'Expected character "=" for attribute "{attr}".')
        self.pos += 1
        return self._value()

    def any_attr(self) -> tuple[str, str]:
        c = self.peek()
        if not c:
            raise _malformed("Attribute expected, but found end of string.")
        if not ("A" <= c <= "Z" or "a" <= c <= "z"):
            raise _malformed(f'Attribute expected, but found invalid character "{sanitize_char(c)}".')
        self.pos += 1
        if self.peek() != "=":
            raise _malformed(f'Expected character "=" for attribute "{c}".')
        self.pos += 1
        return c, self._value()


def _printable(s: str) -> bool:
    return all(0x21 <= ord(c) <= 0x7E and c != "," for c in s)


class ScramExchange:
    """One SCRAM exchange for ``user``.

    ``secret``: the role's stored secret, or None (unknown user / no password: mock).
    ``no_secret_detail``: get_role_password()'s log detail when ``secret`` is None.
    ``channel_binding``: H(server certificate) for tls-server-end-point, or None when
    PLUS must not be offered (no TLS, or no usable certificate hash).
    ``cluster_secret``/``mock_iterations``: parameters of the mock exchange.
    ``method``: the hba method name used in logs ("scram-sha-256", or "md5" when an
    md5 line falls back to SCRAM because the stored secret is a SCRAM verifier).
    """

    blocking = False  # HMAC/SHA-256 only; PBKDF2 never runs on the server side
    max_message_length = MAX_SASL_MESSAGE_LENGTH

    def __init__(
        self,
        user: str,
        secret: str | None,
        *,
        channel_binding: bytes | None = None,
        cluster_secret: bytes = b"",
        mock_iterations: int = SCRAM_DEFAULT_ITERATIONS,
        no_secret_detail: str | None = None,
        method: str = "scram-sha-256",
        server_nonce: str | None = None,
    ) -> None:
        self.user = user
        self.method = method
        self.cb_data = channel_binding
        self.state = _State.INIT
        self.logdetail: str | None = no_secret_detail
        self.doomed = False
        self.log: list[LogLine] = []
        parsed = parse_scram_secret(secret) if secret else None
        if secret is not None and parsed is None:
            if secret.startswith("SCRAM-SHA-256$") and password_type(secret) == "plaintext":
                self.log.append(LogLine("LOG", f'invalid SCRAM secret for user "{user}"'))
            self.logdetail = f'User "{user}" does not have a valid SCRAM secret.'
        if parsed is None:
            self.doomed = True
            salt = mock_salt(user, cluster_secret)
            self.salt_b64 = base64.b64encode(salt).decode()
            self.iterations = mock_iterations
            self.stored_key = bytes(SCRAM_KEY_LEN)
            self.server_key = bytes(SCRAM_KEY_LEN)
        else:
            self.salt_b64, self.iterations = parsed.salt_b64, parsed.iterations
            self.stored_key, self.server_key = parsed.stored_key, parsed.server_key
        self.server_nonce = server_nonce or base64.b64encode(os.urandom(SCRAM_RAW_NONCE_LEN)).decode()
        self.plus = False
        self.cbind_flag = ""
        self.client_first_bare = ""
        self.client_nonce = ""
        self.server_first = ""

    @property
    def mechanisms(self) -> list[str]:
        return [SCRAM_SHA_256_PLUS, SCRAM_SHA_256] if self.cb_data is not None else [SCRAM_SHA_256]

    def start(self) -> Step:
        return Continue(m.auth_sasl(self.mechanisms))

    def too_long(self) -> Step:
        # pq_getmessage() refuses it (COMMERROR), CheckSASLAuth() then fails the method.
        self.state = _State.FINISHED
        return Failure(
            auth_failed_error(self.method, self.user),
            self.logdetail,
            auth_failed=True,
            log=(*self.log, LogLine("COMMERROR", "invalid message length")),
        )

    def step(self, body: bytes, kind: bytes = b"p") -> Step:
        """Consume one 'p' message body.  Pure CPU (no PBKDF2); safe on the event loop."""
        if kind != b"p":
            self.state = _State.FINISHED
            return protocol_error(f"expected SASL response, got message type {kind[0] if kind else 0}")
        if len(body) > MAX_SASL_MESSAGE_LENGTH:
            return self.too_long()
        try:
            if self.state is _State.INIT:
                return self._initial(body)
            if self.state is _State.FIRST:
                return self._exchange(body)
            if self.state is _State.SALT_SENT:
                return self._exchange(body)
            return protocol_error("invalid SCRAM exchange state")
        except _ScramError as e:
            self.state = _State.FINISHED
            f = e.failure
            return Failure(f.error, f.log_detail, f.auth_failed, f.send, (*self.log, *f.log))

    # --- SASLInitialResponse -------------------------------------------------------------

    def _initial(self, body: bytes) -> Step:
        nul = body.find(b"\0")
        if nul < 0:
            raise _ScramError(protocol_error("invalid string in message"))
        mech = body[:nul]
        if mech == SCRAM_SHA_256_PLUS.encode() and self.cb_data is not None:
            self.plus = True
        elif mech != SCRAM_SHA_256.encode():
            raise _ScramError(protocol_error("client selected an invalid SASL authentication mechanism"))
        rest = body[nul + 1 :]
        if len(rest) < 4:
            raise _ScramError(protocol_error("no data left in message"))
        (n,) = struct.unpack("!i", rest[:4])
        data = rest[4:]
        if n == -1:
            if data:
                raise _ScramError(protocol_error("invalid message format"))
            self.state = _State.FIRST
            return Continue(m.authentication(m.AUTH_SASL_CONTINUE, b""))
        if n < 0 or n > len(data):
            raise _ScramError(protocol_error("insufficient data left in message"))
        if n != len(data):
            raise _ScramError(protocol_error("invalid message format"))
        self.state = _State.FIRST
        return self._exchange(data)

    def _exchange(self, data: bytes) -> Step:
        if not data:
            raise _malformed("The message is empty.")
        if b"\0" in data:
            raise _malformed("Message length does not match input length.")
        text = data.decode("latin-1")
        if self.state is _State.FIRST:
            self._read_client_first(text)
            self.server_first = (
                f"r={self.client_nonce}{self.server_nonce},s={self.salt_b64},i={self.iterations}"
            )
            self.state = _State.SALT_SENT
            return Continue(m.authentication(m.AUTH_SASL_CONTINUE, self.server_first.encode("latin-1")))
        return self._final(text)

    # --- client-first-message ------------------------------------------------------------

    def _read_client_first(self, text: str) -> None:
        r = _Reader(text)
        flag = r.peek()
        self.cbind_flag = flag
        if flag in ("n", "y"):
            if self.plus:
                raise _malformed(
                    "The client selected SCRAM-SHA-256-PLUS, but the SCRAM message does not include "
                    "channel binding data."
                )
            if flag == "y" and self.cb_data is not None:
                raise _ScramError(
                    Failure(
                        fatal(
                            INVALID_AUTHORIZATION_SPECIFICATION,
                            "SCRAM channel binding negotiation error",
                            detail="The client supports SCRAM channel binding but thinks the server does not.  "
                            "However, this server does support channel binding.",
                        )
                    )
                )
            r.pos += 1
            if r.peek() != ",":
                raise _malformed(f'Comma expected, but found character "{sanitize_char(r.peek())}".')
            r.pos += 1
        elif flag == "p":
            if not self.plus:
                raise _malformed(
                    "The client selected SCRAM-SHA-256 without channel binding, but the SCRAM message "
                    "includes channel binding data."
                )
            cbtype = r.attr("p")
            if cbtype != "tls-server-end-point":
                raise _ScramError(
                    protocol_error(f'unsupported SCRAM channel-binding type "{sanitize_str(cbtype)}"')
                )
        else:
            raise _malformed(f'Unexpected channel-binding flag "{sanitize_char(flag)}".')
        if r.peek() == "a":
            raise _ScramError(
                Failure(
                    fatal(
                        FEATURE_NOT_SUPPORTED, "client uses authorization identity, but it is not supported"
                    )
                )
            )
        if r.peek() != ",":
            raise _malformed(f'Unexpected attribute "{sanitize_char(r.peek())}" in client-first-message.')
        r.pos += 1
        self.client_first_bare = text[r.pos :]
        if r.peek() == "m":
            raise _ScramError(
                Failure(fatal(FEATURE_NOT_SUPPORTED, "client requires an unsupported SCRAM extension"))
            )
        r.attr("n")  # ignored: the startup packet's user name is authoritative
        self.client_nonce = r.attr("r")
        if not _printable(self.client_nonce):
            raise _ScramError(protocol_error("non-printable characters in SCRAM nonce"))
        while r.pos < len(text):
            r.any_attr()

    # --- client-final-message ------------------------------------------------------------

    def _final(self, text: str) -> Step:
        r = _Reader(text)
        cbind = r.attr("c")
        if self.plus:
            assert self.cb_data is not None
            expected = base64.b64encode(CBIND_HEADER + self.cb_data).decode()
            if not hmac.compare_digest(cbind.encode("latin-1"), expected.encode()):
                raise _ScramError(
                    Failure(fatal(INVALID_AUTHORIZATION_SPECIFICATION, "SCRAM channel binding check failed"))
                )
        elif not (
            (cbind == "biws" and self.cbind_flag == "n") or (cbind == "eSws" and self.cbind_flag == "y")
        ):
            raise _ScramError(
                protocol_error("unexpected SCRAM channel-binding attribute in client-final-message")
            )
        final_nonce = r.attr("r")
        while True:
            proof_start = r.pos - 1
            attr, value = r.any_attr()
            if attr == "p":
                break
        try:
            proof = base64.b64decode(value.encode("latin-1"), validate=True)
        except (binascii.Error, ValueError):
            proof = b""
        if len(proof) != SCRAM_KEY_LEN:
            raise _malformed("Malformed proof in client-final-message.")
        if r.pos < len(text):
            raise _malformed("Garbage found at the end of client-final-message.")
        without_proof = text[:proof_start]
        expected_nonce = (self.client_nonce + self.server_nonce).encode("latin-1")
        if not hmac.compare_digest(final_nonce.encode("latin-1"), expected_nonce):
            raise _ScramError(protocol_error("invalid SCRAM response", "Nonce does not match."))
        auth_message = ",".join((self.client_first_bare, self.server_first, without_proof)).encode("latin-1")
        # Computed even for a doomed (mock) exchange, so timing reveals nothing.
        signature = hmac_sha256(self.stored_key, auth_message)
        client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
        ok = hmac.compare_digest(hashlib.sha256(client_key).digest(), self.stored_key)
        self.state = _State.FINISHED
        if not ok or self.doomed:
            return Failure(
                auth_failed_error(self.method, self.user),
                self.logdetail,
                auth_failed=True,
                log=tuple(self.log),
            )
        server_sig = base64.b64encode(hmac_sha256(self.server_key, auth_message)).decode()
        return Success(
            m.authentication(m.AUTH_SASL_FINAL, f"v={server_sig}".encode()),
            authn_id=self.user,
            log=tuple(self.log),
            proven=ProvenSecret(client_key=client_key, server_key=self.server_key),
        )
