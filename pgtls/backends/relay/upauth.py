"""Answering an upstream PostgreSQL's authentication requests, as libpq does (fe-auth.c).

Sans-IO: :meth:`Authenticator.on_request` takes the body of each AuthenticationRequest ('R') and
returns the bytes to send back (or nothing).  Methods: trust, cleartext password, md5,
SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (with a password, or with the ClientKey/ServerKey recovered
from the client's own SCRAM proof).  ``channel_binding`` keeps libpq's meaning, including that
``require`` refuses a server that lets the client in without SCRAM-SHA-256-PLUS.  Failures are
FATAL errors with libpq's texts.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from pgtls.auth.scram_client import SCRAM_PLUS, ScramClient, ScramClientError, ScramKeys, choose_mechanism
from pgtls.errors import CONNECTION_EXCEPTION, PgError

AUTH_OK, AUTH_CLEARTEXT, AUTH_MD5, AUTH_SASL, AUTH_SASL_CONTINUE, AUTH_SASL_FINAL = 0, 3, 5, 10, 11, 12
CHANNEL_BINDING_VALUES = ("disable", "prefer", "require")


def _fail(message: str) -> PgError:
    return PgError(CONNECTION_EXCEPTION, message, severity="FATAL")


def _message(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


@dataclass
class Credentials:
    user: str
    password: str | None = None
    scram_keys: ScramKeys | None = None
    channel_binding: str = "prefer"


class Authenticator:
    def __init__(self, creds: Credentials, *, tls: bool, cbind_data: bytes | None) -> None:
        if creds.channel_binding not in CHANNEL_BINDING_VALUES:
            raise _fail(f'invalid channel_binding value: "{creds.channel_binding}"')
        if creds.channel_binding == "require" and not tls:
            raise _fail("channel binding required, but SSL not in use")
        self.creds = creds
        self.tls = tls
        self.cbind_data = cbind_data
        self.scram: ScramClient | None = None
        self.method = ""

    def _password(self, what: str) -> str:
        if self.creds.password is None:
            raise _fail(
                "fe_sendauth: no password supplied"
                if not self.creds.scram_keys
                else f"the upstream asked for {what}, which a relayed SCRAM login cannot answer"
            )
        return self.creds.password

    def on_request(self, body: bytes) -> bytes:
        code = int.from_bytes(body[:4], "big")
        require_cb = self.creds.channel_binding == "require"
        if code == AUTH_OK:
            if require_cb and (self.scram is None or self.scram.mechanism != SCRAM_PLUS):
                raise _fail(
                    "channel binding required, but server authenticated client without channel binding"
                )
            return b""
        if code in (AUTH_CLEARTEXT, AUTH_MD5) and require_cb:
            raise _fail("channel binding required but not supported by server's authentication request")
        if code == AUTH_CLEARTEXT:
            self.method = "password"
            return _message(b"p", self._password("a cleartext password").encode("utf-8") + b"\0")
        if code == AUTH_MD5:
            self.method = "md5"
            pw = self._password("an md5 password")
            inner = hashlib.md5((pw + self.creds.user).encode("utf-8")).hexdigest()
            outer = hashlib.md5(inner.encode("ascii") + body[4:8]).hexdigest()
            return _message(b"p", b"md5" + outer.encode("ascii") + b"\0")
        try:
            if code == AUTH_SASL:
                if self.creds.password is None and self.creds.scram_keys is None:
                    raise _fail("fe_sendauth: no password supplied")
                offered = [m.decode("ascii", "replace") for m in body[4:].split(b"\0") if m]
                mech = choose_mechanism(
                    offered, self.creds.channel_binding, self.tls and self.cbind_data is not None
                )
                self.scram = ScramClient(
                    mech,
                    password=self.creds.password if self.creds.scram_keys is None else None,
                    keys=self.creds.scram_keys,
                    cbind_data=self.cbind_data if mech == SCRAM_PLUS else None,
                )
                self.method = mech
                first = self.scram.first()
                return _message(b"p", mech.encode("ascii") + b"\0" + struct.pack("!i", len(first)) + first)
            if code == AUTH_SASL_CONTINUE and self.scram is not None:
                return _message(b"p", self.scram.final(body[4:]))
            if code == AUTH_SASL_FINAL and self.scram is not None:
                self.scram.verify(body[4:])
                return b""
        except ScramClientError as e:
            raise _fail(str(e)) from None
        except ValueError as e:
            raise _fail(str(e)) from None
        raise _fail(f"authentication method {code} not supported")
