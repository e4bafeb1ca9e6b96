"""The server side of SCRAM-SHA-256(-PLUS) (pgtls.auth.scram.ScramExchange), message by message.

Input: one control byte, then up to three SASL message bodies ('p' messages) separated by ``SEP``: the
SASLInitialResponse, then the SASLResponse(s).  Control bits: 0 = channel binding data is available (PLUS is
offered), 1 = the role has a real secret (else the mock exchange runs), 2 = the second message arrives with
another type byte than 'p'.  The server nonce and the secret are fixed, so the seed corpus holds complete,
successful exchanges.

Expected: every step returns Continue, Success or Failure (SCRAM's refusals are Failures, never
exceptions).  A bug: any exception; a Success for the mock exchange or with a proof that does not verify; a
step after the end that is not a Failure; a client-visible error text with unsanitised bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from tests.fuzz.common import instrumented, main, parts

with instrumented(__name__):
    from pgtls.auth.exchange import Continue, Failure, Success
    from pgtls.auth.passwords import scram_build_secret
    from pgtls.auth.scram import ScramExchange


USER = "alice"
PASSWORD = "secret"
SALT = b"0123456789abcdef"
ITERATIONS = 4096
SECRET = scram_build_secret(PASSWORD, ITERATIONS, SALT)
SERVER_NONCE = "c2VydmVybm9uY2VzZXJ2ZXJub25jZQ=="
CB_DATA = hashlib.sha256(b"the server certificate").digest()
CLUSTER_SECRET = b"cluster secret for the mock exchange"


def _printable(s: str | None) -> bool:
    return s is None or all(0x20 <= ord(c) <= 0x7E or c == "\n" for c in s)


def _proof_ok(ex: ScramExchange, final: bytes) -> bool:
    """Verify the client-final-message's proof independently of pgtls (RFC 5802)."""
    without_proof, _, proof_b64 = final.decode("latin-1").rpartition(",p=")
    salted = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), SALT, ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    auth_message = ",".join((ex.client_first_bare, ex.server_first, without_proof)).encode("latin-1")
    signature = hmac.new(hashlib.sha256(client_key).digest(), auth_message, hashlib.sha256).digest()
    expected = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    return base64.b64decode(proof_b64) == expected


def test_one_input(data: bytes) -> None:
    if not data:
        return
    control = data[0]
    messages = parts(data[1:], 3)
    ex = ScramExchange(
        USER,
        SECRET if control & 2 else None,
        channel_binding=CB_DATA if control & 1 else None,
        cluster_secret=CLUSTER_SECRET,
        mock_iterations=ITERATIONS,
        server_nonce=SERVER_NONCE,
    )
    out = ex.start()
    assert isinstance(out, Continue)
    for i, body in enumerate(messages):
        kind = b"d" if i == 1 and control & 4 else b"p"
        out = ex.step(body, kind) if len(body) <= ex.max_message_length else ex.too_long()
        if isinstance(out, Continue):
            continue
        if isinstance(out, Success):
            assert control & 2, "the mock exchange succeeded"
            assert _proof_ok(ex, messages[i]), "Success with a proof that does not verify"
        else:
            assert isinstance(out, Failure), f"step returned {out!r}"
            assert _printable(out.error.message), f"unsanitised error text {out.error.message!r}"
            assert _printable(out.error.detail), f"unsanitised error detail {out.error.detail!r}"
        after = ex.step(b"n,,n=,r=x", b"p")
        assert isinstance(after, Failure), "a step after the end of the exchange did not fail"
        return


if __name__ == "__main__":
    main(test_one_input)
