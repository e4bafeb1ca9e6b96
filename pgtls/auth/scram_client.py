"""The client side of SCRAM-SHA-256(-PLUS) (RFC 5802, RFC 7677), for pgtls's upstream logins.

Sans-IO: :meth:`ScramClient.first` gives the client-first-message, :meth:`final` takes the
server-first-message and gives the client-final-message, :meth:`verify` checks the server-final.
The secret is either a password (SaltedPassword from PBKDF2 with the server's salt and count) or
the keys themselves (``ClientKey`` and ``ServerKey``): what pgtls recovers from a client's proof
when it relays a SCRAM login upstream without knowing the password (libpq 18 calls them
``scram_client_key``/``scram_server_key``).

Channel binding is ``tls-server-end-point`` (the only type PostgreSQL offers): the hash of the
upstream's certificate, given by the caller.  ``channel_binding`` keeps libpq's meaning:
``require`` fails unless SCRAM-SHA-256-PLUS is used, ``prefer`` uses it when the server offers it and
the connection is TLS, ``disable`` never does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from pgtls.auth.passwords import prepare_password

SCRAM = "SCRAM-SHA-256"
SCRAM_PLUS = "SCRAM-SHA-256-PLUS"
MAX_ITERATIONS = 1 << 24  # an upstream asking for more is refused, not obeyed for minutes


class ScramClientError(Exception):
    """The server's messages are wrong or it failed to prove it knows the verifier."""


@dataclass(frozen=True)
class ScramKeys:
    client_key: bytes
    server_key: bytes


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def keys_from_password(password: str, salt: bytes, iterations: int) -> ScramKeys:
    salted = hashlib.pbkdf2_hmac("sha256", prepare_password(password), salt, iterations)
    return ScramKeys(_hmac(salted, b"Client Key"), _hmac(salted, b"Server Key"))


def choose_mechanism(offered: list[str], channel_binding: str, tls: bool) -> str:
    """libpq's choice among the server's SASL mechanisms."""
    if channel_binding == "require":
        if not tls:
            raise ScramClientError("channel binding required, but SSL not in use")
        if SCRAM_PLUS not in offered:
            raise ScramClientError(
                "channel binding is required, but server did not offer an authentication "
                "method that supports channel binding"
            )
        return SCRAM_PLUS
    if tls and channel_binding != "disable" and SCRAM_PLUS in offered:
        return SCRAM_PLUS
    if SCRAM in offered:
        return SCRAM
    raise ScramClientError("none of the server's SASL authentication mechanisms are supported")


class ScramClient:
    def __init__(
        self,
        mechanism: str,
        *,
        password: str | None = None,
        keys: ScramKeys | None = None,
        cbind_data: bytes | None = None,
    ) -> None:
        if (password is None) == (keys is None):
            raise ValueError("a password or the keys, not both")
        self.mechanism = mechanism
        self._password = password
        self._keys = keys
        self._nonce = base64.b64encode(secrets.token_bytes(18)).decode("ascii")
        if mechanism == SCRAM_PLUS:
            if cbind_data is None:
                raise ValueError("SCRAM-SHA-256-PLUS needs the channel binding data")
            self._gs2 = b"p=tls-server-end-point,,"
        else:
            self._gs2 = b"y,," if cbind_data is not None else b"n,,"
        self._cbind = cbind_data if mechanism == SCRAM_PLUS else None
        self._first_bare = f"n=,r={self._nonce}".encode("ascii")  # PostgreSQL takes the user from startup
        self._server_signature = b""

    def first(self) -> bytes:
        return self._gs2 + self._first_bare

    def final(self, server_first: bytes) -> bytes:
        try:
            attrs = dict(part.split("=", 1) for part in server_first.decode("ascii").split(","))
            nonce, salt, iterations = attrs["r"], base64.b64decode(attrs["s"], validate=True), int(attrs["i"])
        except (ValueError, KeyError, UnicodeDecodeError) as e:
            raise ScramClientError(f"malformed SCRAM message (server-first-message: {e})") from None
        if not nonce.startswith(self._nonce) or len(nonce) == len(self._nonce):
            raise ScramClientError("invalid SCRAM response (nonce mismatch)")
        if not 1 <= iterations <= MAX_ITERATIONS:
            raise ScramClientError(f"SCRAM iteration count {iterations} refused (at most {MAX_ITERATIONS})")
        keys = self._keys or keys_from_password(self._password or "", salt, iterations)
        channel = self._gs2 + (self._cbind or b"")
        final_bare = f"c={base64.b64encode(channel).decode('ascii')},r={nonce}".encode("ascii")
        auth_message = self._first_bare + b"," + server_first + b"," + final_bare
        signature = _hmac(_h(keys.client_key), auth_message)
        proof = bytes(a ^ b for a, b in zip(keys.client_key, signature, strict=True))
        self._server_signature = _hmac(keys.server_key, auth_message)
        return final_bare + b",p=" + base64.b64encode(proof)

    def verify(self, server_final: bytes) -> None:
        text = server_final.decode("ascii", "replace")
        if text.startswith("e="):
            raise ScramClientError(f"SCRAM authentication failed: {text[2:]}")
        if not text.startswith("v="):
            raise ScramClientError("malformed SCRAM message (server-final-message)")
        try:
            got = base64.b64decode(text[2:].split(",", 1)[0], validate=True)
        except ValueError:
            raise ScramClientError("malformed SCRAM message (server-final-message)") from None
        if not self._server_signature or not hmac.compare_digest(got, self._server_signature):
            raise ScramClientError("incorrect server signature")
