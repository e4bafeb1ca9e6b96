"""SCRAM-SHA-256(-PLUS) exchange against scramp's client and hand-made hostile clients."""

from __future__ import annotations

import base64
import hashlib
import struct

import pytest
import scramp
from hypothesis import given, settings
from hypothesis import strategies as st

from pgtls.auth.exchange import Continue, Failure, Success
from pgtls.auth.passwords import (
    encrypt_password,
    md5_hash,
    parse_scram_secret,
    password_type,
    saslprep,
    scram_build_secret,
    verify_plain_password,
)
from pgtls.auth.scram import MAX_SASL_MESSAGE_LENGTH, ScramExchange

CB = hashlib.sha256(b"server certificate DER").digest()
SECRET = scram_build_secret("pass", 4096)


def initial(mech: str, data: bytes | None) -> bytes:
    if data is None:
        return mech.encode() + b"\0" + struct.pack("!i", -1)
    return mech.encode() + b"\0" + struct.pack("!i", len(data)) + data


def payload(out: object) -> bytes:
    assert isinstance(out, (Continue, Success)), out
    return out.send[9:]  # 'R' + len + int32 code


def run_scramp(ex: ScramExchange, password: str, *, plus: bool, cb: bytes | None = None) -> object:
    start = ex.start()
    assert isinstance(start, Continue)
    mechs = [m for m in start.send[9:].split(b"\0") if m]
    assert mechs == (
        [b"SCRAM-SHA-256-PLUS", b"SCRAM-SHA-256"] if ex.cb_data is not None else [b"SCRAM-SHA-256"]
    )
    if plus:
        client = scramp.ScramClient(
            ["SCRAM-SHA-256-PLUS"], "alice", password, channel_binding=("tls-server-end-point", cb)
        )
    else:
        client = scramp.ScramClient(["SCRAM-SHA-256"], "alice", password)
    out = ex.step(initial(client.mechanism_name, client.get_client_first().encode()))
    assert isinstance(out, Continue)
    client.set_server_first(payload(out).decode())
    out = ex.step(client.get_client_final().encode())
    if isinstance(out, Success):
        client.set_server_final(payload(out).decode())  # verifies the server signature
    return out


def test_scramp_client_success_plain_and_plus() -> None:
    out = run_scramp(ScramExchange("alice", SECRET), "pass", plus=False)
    assert isinstance(out, Success) and out.authn_id == "alice"
    out = run_scramp(ScramExchange("alice", SECRET, channel_binding=CB), "pass", plus=True, cb=CB)
    assert isinstance(out, Success)
    # PLUS offered but client does not support channel binding (flag n): allowed
    out = run_scramp(ScramExchange("alice", SECRET, channel_binding=CB), "pass", plus=False)
    assert isinstance(out, Success)


def test_wrong_password() -> None:
    out = run_scramp(ScramExchange("alice", SECRET), "wrong", plus=False)
    assert isinstance(out, Failure) and out.auth_failed
    assert (out.error.sqlstate, out.error.message) == (
        "28P01",
        'password authentication failed for user "alice"',
    )
    assert out.error.severity == "FATAL"


def test_mock_exchange_is_indistinguishable() -> None:
    real = ScramExchange("alice", SECRET, cluster_secret=b"k", mock_iterations=4096)
    mock = ScramExchange(
        "nobody",
        None,
        cluster_secret=b"k",
        mock_iterations=4096,
        no_secret_detail='Role "nobody" does not exist.',
    )
    outs = []
    for ex in (real, mock):
        c = scramp.ScramClient(["SCRAM-SHA-256"], "alice", "wrong")
        ex.start()
        first = ex.step(initial("SCRAM-SHA-256", c.get_client_first().encode()))
        attrs = dict(a.split("=", 1) for a in payload(first).decode().split(","))
        assert attrs["i"] == "4096" and len(base64.b64decode(attrs["s"])) == 16
        c.set_server_first(payload(first).decode())
        outs.append(ex.step(c.get_client_final().encode()))
    a, b = outs
    assert isinstance(a, Failure) and isinstance(b, Failure)
    assert a.error == b.error.__class__(**{**b.error.__dict__, "message": a.error.message})
    assert b.error.message == 'password authentication failed for user "nobody"'
    assert b.log_detail == 'Role "nobody" does not exist.' and a.log_detail is None
    # the mock salt is stable per user and cluster, and differs between users
    s1 = ScramExchange("nobody", None, cluster_secret=b"k").salt_b64
    assert s1 == mock.salt_b64 != ScramExchange("other", None, cluster_secret=b"k").salt_b64
    # even the right password fails for a user whose secret is md5
    md5user = ScramExchange("bob", md5_hash("pass", "bob"))
    out = run_scramp(md5user, "pass", plus=False)
    assert isinstance(out, Failure) and out.log_detail == 'User "bob" does not have a valid SCRAM secret.'


def test_empty_initial_response_gets_empty_challenge() -> None:
    ex = ScramExchange("alice", SECRET)
    ex.start()
    out = ex.step(initial("SCRAM-SHA-256", None))
    assert isinstance(out, Continue) and out.send == b"R\x00\x00\x00\x08\x00\x00\x00\x0b"
    c = scramp.ScramClient(["SCRAM-SHA-256"], "alice", "pass")
    out = ex.step(c.get_client_first().encode())
    c.set_server_first(payload(out).decode())
    assert isinstance(ex.step(c.get_client_final().encode()), Success)


def first_error(mech: str, msg: bytes, cb: bytes | None = None) -> Failure:
    ex = ScramExchange("alice", SECRET, channel_binding=cb)
    ex.start()
    out = ex.step(initial(mech, msg))
    assert isinstance(out, Failure), out
    return out


@pytest.mark.parametrize(
    ("mech", "msg", "cb", "sqlstate", "message", "detail"),
    [
        (
            "SCRAM-SHA-1",
            b"n,,n=,r=abc",
            None,
            "08P01",
            "client selected an invalid SASL authentication mechanism",
            None,
        ),
        (
            "SCRAM-SHA-256-PLUS",
            b"p=tls-server-end-point,,n=,r=abc",
            None,
            "08P01",
            "client selected an invalid SASL authentication mechanism",
            None,
        ),
        (
            "SCRAM-SHA-256",
            b"y,,n=,r=abc",
            CB,
            "28000",
            "SCRAM channel binding negotiation error",
            "The client supports SCRAM channel binding but thinks the server does not.  However, this server does support channel binding.",
        ),
        (
            "SCRAM-SHA-256-PLUS",
            b"n,,n=,r=abc",
            CB,
            "08P01",
            "malformed SCRAM message",
            "The client selected SCRAM-SHA-256-PLUS, but the SCRAM message does not include channel binding data.",
        ),
        (
            "SCRAM-SHA-256",
            b"p=tls-server-end-point,,n=,r=abc",
            CB,
            "08P01",
            "malformed SCRAM message",
            "The client selected SCRAM-SHA-256 without channel binding, but the SCRAM message includes channel binding data.",
        ),
        (
            "SCRAM-SHA-256-PLUS",
            b"p=tls-unique,,n=,r=abc",
            CB,
            "08P01",
            'unsupported SCRAM channel-binding type "tls-unique"',
            None,
        ),
        (
            "SCRAM-SHA-256",
            b"n,a=bob,n=,r=abc",
            None,
            "0A000",
            "client uses authorization identity, but it is not supported",
            None,
        ),
        (
            "SCRAM-SHA-256",
            b"n,,m=ext,n=,r=abc",
            None,
            "0A000",
            "client requires an unsupported SCRAM extension",
            None,
        ),
        (
            "SCRAM-SHA-256",
            b"x,,n=,r=abc",
            None,
            "08P01",
            "malformed SCRAM message",
            "Unexpected channel-binding flag \"'x'\".",
        ),
        (
            "SCRAM-SHA-256",
            b"n;,n=,r=abc",
            None,
            "08P01",
            "malformed SCRAM message",
            "Comma expected, but found character \"';'\".",
        ),
        (
            "SCRAM-SHA-256",
            b"n,,r=abc",
            None,
            "08P01",
            "malformed SCRAM message",
            'Expected attribute "n" but found "\'r\'".',
        ),
        ("SCRAM-SHA-256", b"n,,n=,r=a\x01b", None, "08P01", "non-printable characters in SCRAM nonce", None),
        (
            "SCRAM-SHA-256",
            b"n,,n=,r=abc,1=x",
            None,
            "08P01",
            "malformed SCRAM message",
            "Attribute expected, but found invalid character \"'1'\".",
        ),
        ("SCRAM-SHA-256", b"", None, "08P01", "malformed SCRAM message", "The message is empty."),
        (
            "SCRAM-SHA-256",
            b"n,,n=\0,r=abc",
            None,
            "08P01",
            "malformed SCRAM message",
            "Message length does not match input length.",
        ),
    ],
)
def test_client_first_errors(
    mech: str, msg: bytes, cb: bytes | None, sqlstate: str, message: str, detail: str | None
) -> None:
    f = first_error(mech, msg, cb)
    assert (f.error.sqlstate, f.error.message, f.error.detail) == (sqlstate, message, detail)
    assert f.error.severity == "FATAL" and not f.auth_failed


def exchange_to_final(
    cb: bytes | None = None, mech: str = "SCRAM-SHA-256", flag: str = "n,,"
) -> tuple[ScramExchange, str, str]:
    ex = ScramExchange("alice", SECRET, channel_binding=cb)
    ex.start()
    out = ex.step(initial(mech, f"{flag}n=,r=clientnonce".encode()))
    server_first = payload(out).decode()
    nonce = server_first.split(",")[0][2:]
    return ex, server_first, nonce


def proof_for(password: str, server_first: str, bare: str, without_proof: str) -> str:
    attrs = dict(a.split("=", 1) for a in server_first.split(","))
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
    import hmac as _h

    ck = _h.new(salted, b"Client Key", "sha256").digest()
    sk = hashlib.sha256(ck).digest()
    sig = _h.new(sk, f"{bare},{server_first},{without_proof}".encode(), "sha256").digest()
    return base64.b64encode(bytes(a ^ b for a, b in zip(ck, sig, strict=True))).decode()


def test_hand_written_client_and_final_errors() -> None:
    ex, sf, nonce = exchange_to_final()
    wp = f"c=biws,r={nonce}"
    out = ex.step(f"{wp},p={proof_for('pass', sf, 'n=,r=clientnonce', wp)}".encode())
    assert isinstance(out, Success)

    cases = [
        (
            f"c=biws,r={nonce}x,p=" + "A" * 43 + "=",
            "08P01",
            "invalid SCRAM response",
            "Nonce does not match.",
        ),
        (
            f"c=biws,r={nonce[:-1]},p=" + "A" * 43 + "=",
            "08P01",
            "invalid SCRAM response",
            "Nonce does not match.",
        ),
        (
            f"c=eSws,r={nonce},p=" + "A" * 43 + "=",
            "08P01",
            "unexpected SCRAM channel-binding attribute in client-final-message",
            None,
        ),
        (
            f"c=biws,r={nonce},p=AAAA",
            "08P01",
            "malformed SCRAM message",
            "Malformed proof in client-final-message.",
        ),
        (
            f"c=biws,r={nonce},p=" + "A" * 43 + "=,x=y",
            "08P01",
            "malformed SCRAM message",
            "Garbage found at the end of client-final-message.",
        ),
        (
            f"c=biws,r={nonce}",
            "08P01",
            "malformed SCRAM message",
            "Attribute expected, but found end of string.",
        ),
        (f"r={nonce}", "08P01", "malformed SCRAM message", 'Expected attribute "c" but found "\'r\'".'),
    ]
    for msg, code, message, detail in cases:
        ex, sf, nonce2 = exchange_to_final()
        out = ex.step(msg.replace(nonce, nonce2).encode())
        assert isinstance(out, Failure), msg
        assert (out.error.sqlstate, out.error.message, out.error.detail) == (code, message, detail), msg
    # wrong proof (constant-time compare) -> auth failure
    ex, sf, nonce = exchange_to_final()
    out = ex.step(f"c=biws,r={nonce},p={base64.b64encode(bytes(32)).decode()}".encode())
    assert isinstance(out, Failure) and out.auth_failed and out.error.sqlstate == "28P01"


def test_channel_binding_mismatch() -> None:
    ex, sf, nonce = exchange_to_final(CB, "SCRAM-SHA-256-PLUS", "p=tls-server-end-point,,")
    wrong = base64.b64encode(b"p=tls-server-end-point,," + bytes(32)).decode()
    out = ex.step(f"c={wrong},r={nonce},p={'A' * 43}=".encode())
    assert isinstance(out, Failure)
    assert (out.error.sqlstate, out.error.message) == ("28000", "SCRAM channel binding check failed")
    # and a client binding to the right certificate succeeds
    ex, sf, nonce = exchange_to_final(CB, "SCRAM-SHA-256-PLUS", "p=tls-server-end-point,,")
    c = base64.b64encode(b"p=tls-server-end-point,," + CB).decode()
    wp = f"c={c},r={nonce}"
    out = ex.step(f"{wp},p={proof_for('pass', sf, 'n=,r=clientnonce', wp)}".encode())
    assert isinstance(out, Success)


def test_sizes_and_message_types() -> None:
    ex = ScramExchange("alice", SECRET)
    ex.start()
    out = ex.step(b"x" * (MAX_SASL_MESSAGE_LENGTH + 1))
    assert isinstance(out, Failure) and out.auth_failed and out.error.sqlstate == "28P01"
    assert any(line.message == "invalid message length" for line in out.log)
    ex = ScramExchange("alice", SECRET)
    ex.start()
    out = ex.step(b"", kind=b"Q")
    assert isinstance(out, Failure) and out.error.message == "expected SASL response, got message type 81"
    ex = ScramExchange("alice", SECRET)
    ex.start()
    out = ex.step(b"SCRAM-SHA-256")
    assert isinstance(out, Failure) and out.error.message == "invalid string in message"


def test_secrets_and_passwords() -> None:
    s = parse_scram_secret(SECRET)
    assert s is not None and s.iterations == 4096 and str(s) == SECRET
    assert password_type(SECRET) == "scram-sha-256"
    assert password_type(md5_hash("pass", "u")) == "md5"
    assert password_type("plain") == "plaintext"
    for bad in (
        "SCRAM-SHA-256$x:c2FsdA==$AAAA:AAAA",
        "SCRAM-SHA-256$4096:c2FsdA==$AAAA:AAAA",
        "SCRAM-SHA-1$1:a$b:c",
    ):
        assert parse_scram_secret(bad) is None
    assert md5_hash("pass", "md5testuser") == "md5" + hashlib.md5(b"passmd5testuser").hexdigest()
    assert encrypt_password(SECRET, "u", "md5") == SECRET  # pass-through
    assert encrypt_password("pass", "u", "md5") == md5_hash("pass", "u")
    assert verify_plain_password("u", "pass", encrypt_password("pass", "u", "scram-sha-256", 1000))[0]
    ok, detail = verify_plain_password("u", "nope", SECRET)
    assert not ok and detail == 'Password does not match for user "u".'
    with pytest.raises(ValueError):
        encrypt_password("x", "u", "plain")
    # SASLprep: non-ASCII space maps to space; prohibited characters fall back to raw bytes
    assert saslprep("a\u00a0b") == "a b" and saslprep("a\u0007b") is None
    assert verify_plain_password("u", "a b", scram_build_secret("a\u00a0b"))[0]
    assert verify_plain_password("u", b"\x07x", scram_build_secret("\x07x"))[0]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200), min_size=1, max_size=4), st.booleans(), st.booleans())
def test_fuzz_exchange_only_documented_failures(msgs: list[bytes], with_cb: bool, known: bool) -> None:
    ex = ScramExchange("alice", SECRET if known else None, channel_binding=CB if with_cb else None)
    ex.start()
    for i, body in enumerate(msgs):
        if i == 0 and body[:1] in (b"S", b"s"):
            body = initial(
                "SCRAM-SHA-256-PLUS" if with_cb and body[:1] == b"s" else "SCRAM-SHA-256", body[1:]
            )
        out = ex.step(body)
        assert isinstance(out, (Continue, Success, Failure))
        if isinstance(out, Failure):
            assert out.error.severity == "FATAL"
            assert out.error.sqlstate in ("08P01", "28000", "28P01", "0A000")
            break
        assert not isinstance(out, Success)  # random bytes never authenticate
