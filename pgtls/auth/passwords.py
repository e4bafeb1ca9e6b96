"""Stored password secrets: SCRAM-SHA-256 verifiers and md5 hashes, PostgreSQL formats.

* SCRAM (RFC 5802/7677, PostgreSQL's ``common/scram-common.c`` and ``auth-scram.c``):
  ``SCRAM-SHA-256$<iterations>:<b64 salt>$<b64 StoredKey>:<b64 ServerKey>``.
* md5 (``common/md5_common.c``): ``"md5" + md5(password || username)`` in hex.

Passwords are normalised with SASLprep when possible; like PostgreSQL, a password that
SASLprep refuses (prohibited or unassigned characters, or bytes that are not UTF-8) is
used as raw bytes instead of being rejected.  Plaintext passwords only ever live in
local variables here; nothing in this module logs or stores them.

Everything that runs PBKDF2 (:func:`scram_build_secret`, :func:`verify_plain_password`,
:func:`encrypt_password`) costs milliseconds per call: run it off the event loop.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import stringprep
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

SCRAM_KEY_LEN = 32
SCRAM_DEFAULT_SALT_LEN = 16
SCRAM_DEFAULT_ITERATIONS = 4096
# Upper bound we accept for iterations in a stored verifier: refuses absurd values that
# would pin a CPU (PostgreSQL accepts up to INT_MAX; its GUC scram_iterations too).
SCRAM_MAX_ITERATIONS = 2**31 - 1
PASSWORD_METHODS = ("md5", "scram-sha-256")

_MD5_RE = re.compile(r"md5[0-9a-f]{32}\Z")


@dataclass(frozen=True)
class ScramSecret:
    iterations: int
    salt_b64: str
    stored_key: bytes
    server_key: bytes

    @property
    def salt(self) -> bytes:
        return base64.b64decode(self.salt_b64)

    def __str__(self) -> str:
        return (
            f"SCRAM-SHA-256${self.iterations}:{self.salt_b64}$"
            f"{base64.b64encode(self.stored_key).decode()}:{base64.b64encode(self.server_key).decode()}"
        )


def _b64decode_strict(s: str) -> bytes | None:
    try:
        return base64.b64decode(s.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None


def parse_scram_secret(secret: str) -> ScramSecret | None:
    """parse_scram_secret(): None if ``secret`` is not a well-formed SCRAM-SHA-256 secret."""
    scheme, sep, rest = secret.partition("$")
    if not sep or scheme != "SCRAM-SHA-256":
        return None
    iters, sep, rest = rest.partition(":")
    if not sep:
        return None
    salt, sep, rest = rest.partition("$")
    if not sep:
        return None
    stored, sep, server = rest.partition(":")
    if not sep:
        return None
    if not re.fullmatch(r"[+-]?[0-9]+", iters):
        return None
    n = int(iters)
    if n < 1 or n > SCRAM_MAX_ITERATIONS:
        return None
    if _b64decode_strict(salt) is None:
        return None
    sk, svk = _b64decode_strict(stored), _b64decode_strict(server)
    if sk is None or svk is None or len(sk) != SCRAM_KEY_LEN or len(svk) != SCRAM_KEY_LEN:
        return None
    return ScramSecret(n, salt, sk, svk)


def password_type(secret: str) -> str:
    """get_password_type(): "md5", "scram-sha-256" or "plaintext"."""
    if _MD5_RE.match(secret):
        return "md5"
    if parse_scram_secret(secret) is not None:
        return "scram-sha-256"
    return "plaintext"


def saslprep(password: str) -> str | None:
    """RFC 4013 SASLprep (stored strings); None where PostgreSQL's pg_saslprep fails."""
    if password.isascii() and all(0x20 <= ord(c) < 0x7F for c in password):
        return password  # fast path: printable ASCII is unchanged by SASLprep
    mapped = "".join(
        " " if stringprep.in_table_c12(c) else c for c in password if not stringprep.in_table_b1(c)
    )
    norm = unicodedata.normalize("NFKC", mapped)
    if not norm:
        return norm
    for c in norm:
        if (
            stringprep.in_table_c12(c)
            or stringprep.in_table_c21_c22(c)
            or stringprep.in_table_c3(c)
            or stringprep.in_table_c4(c)
            or stringprep.in_table_c5(c)
            or stringprep.in_table_c6(c)
            or stringprep.in_table_c7(c)
            or stringprep.in_table_c8(c)
            or stringprep.in_table_c9(c)
            or stringprep.in_table_a1(c)
        ):
            return None
    if any(stringprep.in_table_d1(c) for c in norm):
        if any(stringprep.in_table_d2(c) for c in norm):
            return None
        if not (stringprep.in_table_d1(norm[0]) and stringprep.in_table_d1(norm[-1])):
            return None
    return norm


def prepare_password(password: str | bytes) -> bytes:
    """The bytes PBKDF2 runs on: SASLprep'd UTF-8 if possible, else the raw bytes."""
    if isinstance(password, bytes):
        try:
            text = password.decode("utf-8")
        except UnicodeDecodeError:
            return password
    else:
        text = password
    prepped = saslprep(text)
    if prepped is None:
        return password if isinstance(password, bytes) else password.encode("utf-8", "surrogatepass")
    return prepped.encode("utf-8")


# Above this many iterations, PBKDF2 runs in slices between which it asks whether the login was abandoned
# (authentication_timeout), as PostgreSQL 16+ checks for interrupts inside its loop.  Below it the C
# implementation runs whole (about 30 ms here at the limit); a stored verifier may ask for up to INT_MAX.
PBKDF2_SLICED_ABOVE = 100_000
PBKDF2_SLICE = 8192


class Abandoned(Exception):
    """The login this work was for is gone (its authentication_timeout fired)."""


def salted_password(
    password: str | bytes, salt: bytes, iterations: int, abandoned: Callable[[], bool] | None = None
) -> bytes:
    """Hi() of RFC 5802: PBKDF2-HMAC-SHA-256; with ``abandoned``, large counts stop (Abandoned) once it says so."""
    key = prepare_password(password)
    if abandoned is None or iterations <= PBKDF2_SLICED_ABOVE:
        return hashlib.pbkdf2_hmac("sha256", key, salt, iterations)
    base = hmac.new(key, digestmod=hashlib.sha256)
    h = base.copy()
    h.update(salt + b"\0\0\0\1")
    u = h.digest()
    acc = int.from_bytes(u, "big")
    done = 1
    while done < iterations:
        if abandoned():
            raise Abandoned
        for _ in range(min(PBKDF2_SLICE, iterations - done)):
            h = base.copy()
            h.update(u)
            u = h.digest()
            acc ^= int.from_bytes(u, "big")
        done += PBKDF2_SLICE
    return acc.to_bytes(32, "big")


def hmac_sha256(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


def scram_build_secret(
    password: str | bytes, iterations: int = SCRAM_DEFAULT_ITERATIONS, salt: bytes | None = None
) -> str:
    if iterations < 1:
        raise ValueError("iterations must be positive")
    salt = os.urandom(SCRAM_DEFAULT_SALT_LEN) if salt is None else salt
    sp = salted_password(password, salt, iterations)
    stored = hashlib.sha256(hmac_sha256(sp, b"Client Key")).digest()
    server = hmac_sha256(sp, b"Server Key")
    return str(ScramSecret(iterations, base64.b64encode(salt).decode(), stored, server))


def md5_hash(password: str | bytes, user: str) -> str:
    pw = password if isinstance(password, bytes) else password.encode("utf-8", "surrogatepass")
    return "md5" + hashlib.md5(pw + user.encode("utf-8", "surrogateescape")).hexdigest()


def md5_challenge_response(md5_secret: str, salt: bytes) -> str:
    """What the client sends for AuthenticationMD5Password: "md5" + md5(hex || salt)."""
    return "md5" + hashlib.md5(md5_secret[3:].encode("ascii") + salt).hexdigest()


def encrypt_password(
    password: str, user: str, method: str, iterations: int = SCRAM_DEFAULT_ITERATIONS
) -> str:
    """encrypt_password(): hash a plaintext password per ``password_encryption``.

    A value that already is an md5 hash or a SCRAM secret passes through unchanged,
    like PostgreSQL does for ``CREATE ROLE ... PASSWORD 'SCRAM-SHA-256$...'``.
    """
    if method not in PASSWORD_METHODS:
        raise ValueError(f'invalid value for parameter "password_encryption": "{method}"')
    if password_type(password) != "plaintext":
        return password
    if method == "md5":
        return md5_hash(password, user)
    return scram_build_secret(password, iterations)


def verify_plain_password(
    user: str, password: str | bytes, secret: str, abandoned: Callable[[], bool] | None = None
) -> tuple[bool, str | None]:
    """plain_crypt_verify(): check a cleartext password against a stored secret.

    Returns (ok, log detail).  Compares in constant time.  ``abandoned``: see :func:`salted_password`.
    """
    kind = password_type(secret)
    if kind == "scram-sha-256":
        s = parse_scram_secret(secret)
        assert s is not None
        server = hmac_sha256(salted_password(password, s.salt, s.iterations, abandoned), b"Server Key")
        ok = hmac.compare_digest(server, s.server_key)
    elif kind == "md5":
        ok = hmac.compare_digest(md5_hash(password, user).encode(), secret.encode())
    else:
        ok = False
    return ok, None if ok else f'Password does not match for user "{user}".'


def mock_salt(user: str, cluster_secret: bytes) -> bytes:
    """scram_mock_salt(): deterministic per user and cluster, so probing reveals nothing."""
    return hashlib.sha256(user.encode("utf-8", "surrogateescape") + cluster_secret).digest()[
        :SCRAM_DEFAULT_SALT_LEN
    ]
