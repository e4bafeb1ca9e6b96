"""Password packets and stored secrets: pgtls.auth.exchange (password, md5), pgtls.auth.passwords and the
frontend-body decoders of pgtls.protocol.messages.

Input: one control byte, then the body of a PasswordMessage ('p').  Bits 0-1 pick the exchange
(``password`` against a SCRAM secret, ``password`` against an md5 secret, ``md5``, ``password`` with no
usable secret), bit 2 sends the body with another type byte.  The same bytes are also read as a stored
secret (``parse_scram_secret``/``password_type``), as a password (SASLprep) and as PasswordMessage and
SASLInitialResponse bodies.

Expected: exchanges return Success or Failure, the decoders raise ``ProtocolError`` (a ``PgError``).  A bug:
any other exception, a Success for a wrong password (against the SCRAM secret, a password that SASLprep
maps to the right one is right), or a parsed secret that does not print back as itself.
"""

from __future__ import annotations

import stringprep
import unicodedata

from tests.fuzz.common import instrumented, main

with instrumented(__name__):
    from pgtls.auth.exchange import Continue, Failure, MD5Exchange, PasswordExchange, Success
    from pgtls.auth.passwords import (
        md5_challenge_response,
        md5_hash,
        parse_scram_secret,
        password_type,
        prepare_password,
        saslprep,
        scram_build_secret,
    )
    from pgtls.protocol.messages import ProtocolError, parse_password_message, parse_sasl_initial


USER = "alice"
PASSWORD = "secret"
SCRAM_SECRET = scram_build_secret(PASSWORD, 16, b"0123456789abcdef")  # few iterations: fast, same code
MD5_SECRET = md5_hash(PASSWORD, USER)
MD5_SALT = b"\x01\x02\x03\x04"
GOOD = {PASSWORD.encode(), md5_challenge_response(MD5_SECRET, MD5_SALT).encode()}


def _same_after_saslprep(candidate: bytes) -> bool:
    """Whether ``candidate`` is PASSWORD after RFC 4013's mapping (table B.1 characters removed, C.1.2 spaces
    made ASCII spaces, NFKC), computed here from the standard library's stringprep tables, independently of
    pgtls.auth.passwords: PostgreSQL's SCRAM verifies such a password (a soft hyphen inside it is nothing)."""
    try:
        text = candidate.decode("utf-8")
    except UnicodeDecodeError:
        return False
    mapped = "".join(" " if stringprep.in_table_c12(c) else c for c in text if not stringprep.in_table_b1(c))
    return unicodedata.normalize("NFKC", mapped) == PASSWORD


def _exchange(which: int) -> PasswordExchange | MD5Exchange:
    if which == 0:
        return PasswordExchange(USER, SCRAM_SECRET, None)
    if which == 1:
        return PasswordExchange(USER, MD5_SECRET, None)
    if which == 2:
        return MD5Exchange(USER, MD5_SECRET, None, salt=MD5_SALT)
    return PasswordExchange(USER, None, f'User "{USER}" has no password assigned.')


def test_one_input(data: bytes) -> None:
    if not data:
        return
    control, body = data[0], data[1:]
    ex = _exchange(control & 3)
    assert isinstance(ex.start(), Continue)
    kind = b"d" if control & 4 else b"p"
    out = ex.step(body, kind) if len(body) <= ex.max_message_length else ex.too_long()
    if isinstance(out, Success):
        right = body[:-1] in GOOD or (control & 3 == 0 and _same_after_saslprep(body[:-1]))
        assert kind == b"p" and body.endswith(b"\0") and right, f"accepted {body!r}"
    else:
        assert isinstance(out, Failure), f"step returned {out!r}"
    assert isinstance(ex.step(body, b"p"), Failure), "a step after the end did not fail"

    for decode in (parse_password_message, parse_sasl_initial):
        try:
            decode(body)
        except ProtocolError:
            pass

    text = body.decode("utf-8", "surrogateescape")
    parsed = parse_scram_secret(text)
    if parsed is not None:
        assert password_type(text) == "scram-sha-256"
        again = parse_scram_secret(str(parsed))
        assert again == parsed, f"{text!r} does not round-trip"
    else:
        assert password_type(text) in ("md5", "plaintext")
    prepped = saslprep(text)
    if prepped is not None:
        assert saslprep(prepped) == prepped, "SASLprep is not idempotent"
    prepare_password(body)
    prepare_password(text)


if __name__ == "__main__":
    main(test_one_input)
