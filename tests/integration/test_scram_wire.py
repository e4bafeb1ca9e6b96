"""SCRAM-SHA-256(-PLUS) on the wire: psycopg's channel_binding, and a hand-written SCRAM client on a
raw socket that breaks the exchange on purpose (wrong proof, replayed nonce, wrong channel binding,
PLUS without TLS, unknown user).

Where a real PostgreSQL 15 is installed each raw scenario also runs against it, and the ErrorResponse
fields (severity, SQLSTATE, message, detail) must be the same; the expected values are spelled out too
(reference A7.38-A7.40, auth-scram.c).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import shutil
import ssl
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from pgtls.protocol.startup import ssl_request_packet, startup_packet
from tests import weaksig
from tests.pgserver import RealPostgres, have_postgres, shared_tmpdir
from tests.pgtlsserver import PgtlsServer
from tests.rawclient import Raw, error_fields
from tests.secretleaks import find_leaks, secrets_of

PASSWORD = "Wire-pass-3b9d"
USER = "scramuser"
HBA = "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
PLUS, PLAIN = "SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"
COMPARED_FIELDS = ("S", "V", "C", "M", "D")  # PostgreSQL's F/L/R (source file/line/routine) are its own


# --- servers --------------------------------------------------------------------------------------------


def _tls_files(server, certs) -> None:
    server.copy_in(certs.path("server-chain.crt"), "server.crt", 0o644)
    server.copy_in(certs.path("server.key"), "server.key", 0o600)
    server.write("pg_hba.conf", HBA)
    with open(server.datadir / "postgresql.conf", "a") as f:
        f.write("ssl = on\n")


@pytest.fixture(scope="module")
def ours(certs) -> Iterator[PgtlsServer]:
    s = PgtlsServer().init()
    _tls_files(s, certs)
    s.create_role(USER, password=PASSWORD)
    s.start()
    yield s
    s.cleanup()


@pytest.fixture(scope="module")
def realpg(certs) -> Iterator[RealPostgres | None]:
    if not have_postgres():
        yield None
        return
    pg = RealPostgres().init()
    _tls_files(pg, certs)
    pg.start()
    pg.psql(
        "-q",
        "-c",
        f"SET password_encryption = 'scram-sha-256'; CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'",
    )
    yield pg
    pg.cleanup()


# --- a raw SCRAM client ----------------------------------------------------------------------------------


def _read_message(r: Raw) -> tuple[bytes, bytes]:
    head = r.recv_exact(5)
    assert len(head) == 5, f"connection closed, got {head!r}"
    (length,) = struct.unpack("!i", head[1:])
    return head[:1], r.recv_exact(length - 4)


def _sasl_initial(mech: str, data: bytes) -> bytes:
    body = mech.encode() + b"\0" + struct.pack("!i", len(data)) + data
    return b"p" + struct.pack("!i", len(body) + 4) + body


def _sasl_response(data: bytes) -> bytes:
    return b"p" + struct.pack("!i", len(data) + 4) + data


def _hmac(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


@dataclass
class Scram:
    """One SCRAM exchange on a raw socket, stepped by the test."""

    port: int
    user: str = USER
    tls: bool = True
    r: Raw = field(init=False)
    mechanisms: list[str] = field(init=False)
    gs2: str = "n,,"
    client_first_bare: str = ""
    server_first: str = ""
    nonce: str = ""  # client nonce + server nonce
    salt: bytes = b""
    iterations: int = 0

    def __post_init__(self) -> None:
        self.r = Raw(self.port)
        if self.tls:
            self.r.send(ssl_request_packet())
            assert self.r.recv_exact(1) == b"S"
            self.r.start_tls()
        self.r.send(startup_packet({"user": self.user, "database": "postgres"}))
        kind, body = _read_message(self.r)
        assert kind == b"R", error_fields(body) if kind == b"E" else kind
        (code,) = struct.unpack("!i", body[:4])
        assert code == 10, code  # AuthenticationSASL
        self.mechanisms = [x.decode() for x in body[4:].split(b"\0") if x]

    def server_cert_hash(self) -> bytes:
        assert self.r.tls is not None
        der = self.r.tls.getpeercert(binary_form=True)
        assert der is not None
        return hashlib.sha256(der).digest()  # the suite's server certificate is signed with ecdsa-with-SHA256

    def first(self, mech: str = PLAIN, gs2: str | None = None) -> list[tuple[bytes, bytes]] | None:
        """Send client-first; None when the server answered with server-first, else what it sent."""
        self.gs2 = gs2 if gs2 is not None else ("p=tls-server-end-point,," if mech == PLUS else "n,,")
        client_nonce = base64.b64encode(os.urandom(18)).decode()
        self.client_first_bare = f"n=,r={client_nonce}"
        self.r.send(_sasl_initial(mech, (self.gs2 + self.client_first_bare).encode()))
        kind, body = _read_message(self.r)
        if kind != b"R":
            return [(kind, body)]
        (code,) = struct.unpack("!i", body[:4])
        assert code == 11, code  # AuthenticationSASLContinue
        self.server_first = body[4:].decode()
        attrs = dict(a.split("=", 1) for a in self.server_first.split(","))
        assert attrs["r"].startswith(client_nonce)
        self.nonce, self.salt, self.iterations = attrs["r"], base64.b64decode(attrs["s"]), int(attrs["i"])
        return None

    def final(
        self,
        password: str = PASSWORD,
        *,
        nonce: str | None = None,
        cbind_data: bytes | None = None,
        bad_proof: bool = False,
    ) -> list[tuple[bytes, bytes]]:
        """Send client-final; everything the server sent until it closed (or finished authentication)."""
        cb = self.gs2.encode() + (cbind_data or b"")
        without_proof = f"c={base64.b64encode(cb).decode()},r={nonce or self.nonce}"
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), self.salt, self.iterations)
        client_key = _hmac(salted, b"Client Key")
        stored_key = hashlib.sha256(client_key).digest()
        auth_message = f"{self.client_first_bare},{self.server_first},{without_proof}".encode()
        proof = bytes(a ^ b for a, b in zip(client_key, _hmac(stored_key, auth_message), strict=True))
        if bad_proof:
            proof = bytes([proof[0] ^ 1]) + proof[1:]
        self.r.send(_sasl_response(f"{without_proof},p={base64.b64encode(proof).decode()}".encode()))
        out = []
        while True:  # until ErrorResponse, ReadyForQuery or the server closing
            try:
                kind, body = _read_message(self.r)
            except (AssertionError, OSError):
                break
            out.append((kind, body))
            if kind in (b"E", b"Z"):
                break
        self.r.close()
        return out


def error_of(msgs: list[tuple[bytes, bytes]] | None) -> dict[str, str]:
    assert msgs is not None
    for kind, body in msgs:
        if kind == b"E":
            f = error_fields(body)
            return {k: v for k, v in f.items() if k in COMPARED_FIELDS}
    raise AssertionError(f"no ErrorResponse in {msgs!r}")


def authenticated(msgs: list[tuple[bytes, bytes]]) -> bool:
    return any(k == b"R" and body[:4] == struct.pack("!i", 0) for k, body in msgs)


def both(ours: PgtlsServer, realpg: RealPostgres | None, scenario) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Run ``scenario(port)`` against pgtls and, when installed, PostgreSQL 15; their errors must agree."""
    got = scenario(ours.port)
    if realpg is not None:
        expected = scenario(realpg.port)
        assert got == expected, f"\npostgres: {expected}\npgtls:    {got}"
    return got


# --- psycopg with channel_binding ----------------------------------------------------------------------


def test_psycopg_channel_binding_require_over_tls(ours):
    with psycopg.connect(
        ours.dsn(
            user=USER,
            password=PASSWORD,
            sslmode="require",
            channel_binding="require",
            sslrootcert="invalid",
            sslcert="invalid",
        )
    ) as c:
        assert c.pgconn.ssl_in_use
        assert c.execute("select current_user").fetchone() == (USER,)
    assert f'connection authenticated: identity="{USER}" method=scram-sha-256' in ours.log()


def test_psycopg_channel_binding_require_without_tls_fails(ours, realpg):
    def attempt(port: int) -> str:
        with pytest.raises(psycopg.OperationalError) as ei:
            psycopg.connect(
                host="127.0.0.1",
                port=port,
                user=USER,
                dbname="postgres",
                password=PASSWORD,
                sslmode="disable",
                channel_binding="require",
                connect_timeout=10,
            )
        return str(ei.value).replace(str(port), "PORT")

    got = attempt(ours.port)
    assert "channel binding required, but SSL not in use" in got
    if realpg is not None:
        assert got == attempt(realpg.port)


def test_raw_client_succeeds_with_plus(ours, realpg):
    """The control case: the hand-written client is right, so the refusals below are the server's doing."""
    for server in (ours, realpg):
        if server is None:
            continue
        s = Scram(server.port)
        assert s.first(PLUS) is None
        msgs = s.final(cbind_data=s.server_cert_hash())
        assert authenticated(msgs), msgs
        s = Scram(server.port, tls=False)
        assert s.first(PLAIN) is None
        assert authenticated(s.final())


# --- mechanisms offered ----------------------------------------------------------------------------------


def test_plus_offered_only_over_tls(ours, realpg):
    for server in (ours, realpg):
        if server is None:
            continue
        assert Scram(server.port, tls=True).mechanisms == [PLUS, PLAIN]
        assert Scram(server.port, tls=False).mechanisms == [PLAIN]


def test_plus_selected_without_tls_refused(ours, realpg):
    def scenario(port: int) -> dict[str, str]:
        return error_of(Scram(port, tls=False).first(PLUS))

    err = both(ours, realpg, scenario)
    assert err["C"] == "08P01" and err["M"] == "client selected an invalid SASL authentication mechanism"


# --- broken exchanges ------------------------------------------------------------------------------------


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "notls"])
def test_wrong_proof_refused(ours, realpg, tls):
    def scenario(port: int) -> dict[str, str]:
        s = Scram(port, tls=tls)
        assert s.first(PLAIN) is None
        return error_of(s.final(bad_proof=True))

    err = both(ours, realpg, scenario)
    assert err == {
        "S": "FATAL",
        "V": "FATAL",
        "C": "28P01",
        "M": f'password authentication failed for user "{USER}"',
    }


def test_wrong_password_refused(ours, realpg):
    def scenario(port: int) -> dict[str, str]:
        s = Scram(port)
        assert s.first(PLUS) is None
        return error_of(s.final("not-the-password", cbind_data=s.server_cert_hash()))

    assert both(ours, realpg, scenario)["C"] == "28P01"


def test_replayed_nonce_refused(ours, realpg):
    def scenario(port: int) -> dict[str, str]:
        old = Scram(port)
        assert old.first(PLAIN) is None
        assert authenticated(old.final())  # a complete, successful exchange whose nonce is then replayed
        s = Scram(port)
        assert s.first(PLAIN) is None
        return error_of(s.final(nonce=old.nonce))

    err = both(ours, realpg, scenario)
    assert (
        err["C"] == "08P01" and err["M"] == "invalid SCRAM response" and err["D"] == "Nonce does not match."
    )


def test_mismatched_channel_binding_refused(ours, realpg):
    def scenario(port: int) -> dict[str, str]:
        s = Scram(port)
        assert s.first(PLUS) is None
        return error_of(s.final(cbind_data=hashlib.sha256(b"some other certificate").digest()))

    err = both(ours, realpg, scenario)
    assert err == {"S": "FATAL", "V": "FATAL", "C": "28000", "M": "SCRAM channel binding check failed"}


def test_plus_without_binding_data_refused(ours, realpg):
    def scenario(port: int) -> dict[str, str]:
        return error_of(Scram(port).first(PLUS, gs2="n,,"))

    err = both(ours, realpg, scenario)
    assert err["C"] == "08P01" and err["M"] == "malformed SCRAM message"
    assert err["D"] == (
        "The client selected SCRAM-SHA-256-PLUS, but the SCRAM message does not include channel binding data."
    )


def test_downgrade_flag_y_over_tls_refused(ours, realpg):
    """gs2 flag y ("I could bind, but you did not offer it") while PLUS was offered is a downgrade."""

    def scenario(port: int) -> dict[str, str]:
        return error_of(Scram(port).first(PLAIN, gs2="y,,"))

    err = both(ours, realpg, scenario)
    assert err["C"] == "28000" and err["M"] == "SCRAM channel binding negotiation error"


# --- unknown user ---------------------------------------------------------------------------------------


def test_unknown_user_fails_like_wrong_password(ours, realpg):
    for server in (ours, realpg):
        if server is None:
            continue
        seen = {}
        for user in (USER, "nosuchuser"):
            salts = set()
            for _ in range(2):
                s = Scram(server.port, user=user)
                assert s.mechanisms == [PLUS, PLAIN]
                assert s.first(PLAIN) is None
                salts.add(s.salt)
                err = error_of(s.final("wrong-" + PASSWORD))
            assert len(salts) == 1  # the mock salt is stable, as a real one would be
            seen[user] = (
                len(s.salt),
                s.iterations,
                len(s.nonce),
                {**err, "M": err["M"].replace(f'"{user}"', '"USER"')},
            )
        assert seen[USER] == seen["nosuchuser"], seen
        assert seen[USER][3]["C"] == "28P01"
    if realpg is not None:
        log = realpg.log()
        assert 'Role "nosuchuser" does not exist.' in log
    assert 'Role "nosuchuser" does not exist.' in ours.log()  # the reason goes to the log only


# --- SHA-1 and MD5 signed server certificates --------------------------------------------------------------


@pytest.fixture(scope="module")
def weak_sig_server() -> Iterator[tuple[PgtlsServer, dict[str, tuple[Path, Path]]]]:
    """One server for both weak certificates (openssl CLI, self-signed), switched by a reload."""
    d = shared_tmpdir("pgtls-weaksig-")
    made = {digest: weaksig.make(d, digest) for digest in weaksig.DIGESTS}
    s = PgtlsServer().init()
    s.copy_in(made["sha1"][0], "server.crt", 0o644)
    s.copy_in(made["sha1"][1], "server.key", 0o600)
    s.write("pg_hba.conf", HBA)
    s.conf(ssl="on")
    s.create_role(USER, password=PASSWORD)
    s.start()
    yield s, made
    s.cleanup()
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("digest", weaksig.DIGESTS)
def test_weak_signature_binds_with_sha256(weak_sig_server, digest):
    """A server certificate signed with SHA-1 or MD5: tls-server-end-point hashes it with SHA-256 (RFC 5929
    §4.1, PostgreSQL's be_tls_get_certificate_hash, libpq's pgtls_get_peer_certificate_hash), so libpq with
    channel_binding=require logs in, and a client that binds with the signature's own hash is refused."""
    server, made = weak_sig_server
    crt, key = made[digest]
    server.copy_in(crt, "server.crt", 0o644)
    server.copy_in(key, "server.key", 0o600)
    server.reload()
    assert "SSL configuration was not reloaded" not in server.log()
    expected_der = ssl.PEM_cert_to_DER_cert(crt.read_text())

    s = Scram(server.port)
    der = s.r.tls.getpeercert(binary_form=True)  # type: ignore[union-attr]
    assert der == expected_der, "the server did not switch to the certificate signed with " + digest
    assert s.mechanisms == [PLUS, PLAIN]
    assert s.first(PLUS) is None
    assert authenticated(s.final(cbind_data=hashlib.sha256(der).digest()))

    s = Scram(server.port)
    assert s.first(PLUS) is None
    err = error_of(s.final(cbind_data=hashlib.new(digest, der).digest()))
    assert err == {"S": "FATAL", "V": "FATAL", "C": "28000", "M": "SCRAM channel binding check failed"}

    with psycopg.connect(
        server.dsn(
            user=USER,
            password=PASSWORD,
            sslmode="require",
            channel_binding="require",
            sslrootcert="invalid",
            sslcert="invalid",
            connect_timeout=10,
        )
    ) as c:
        assert c.pgconn.ssl_in_use
        assert c.execute("select current_user").fetchone() == (USER,)


# --- Ed25519 server certificate ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ed25519_server(certs) -> Iterator[PgtlsServer]:
    """A server certificate signed with Ed25519: no hash for tls-server-end-point (RFC 5929 §4.1)."""
    from pgtls.certs import x509build as xb

    d = shared_tmpdir("pgtls-ed25519-")
    ca = xb.make_ca(xb.cn("Ed25519 test CA"), key_kind="ed25519")
    leaf = xb.make_leaf(xb.cn("localhost"), ca, san=("localhost", "IP:127.0.0.1"), key_kind="ed25519")
    xb.write_certs(d / "server.crt", [leaf.cert])
    assert leaf.key is not None
    xb.write_key(d / "server.key", leaf.key)
    s = PgtlsServer().init()
    s.copy_in(d / "server.crt", "server.crt", 0o644)
    s.copy_in(d / "server.key", "server.key", 0o600)
    s.write("pg_hba.conf", HBA)
    s.conf(ssl="on")
    s.create_role(USER, password=PASSWORD)
    s.start()
    yield s
    s.cleanup()


def test_ed25519_certificate_offers_no_plus(ed25519_server):
    """PostgreSQL 15 offers PLUS here as on any TLS connection, and libpq, which picks it under the default
    channel_binding=prefer, then fails on its own side ("could not find digest for NID UNDEF"); pgtls
    leaves PLUS out (pgtls.auth.scram: PLUS only with a usable tls-server-end-point hash), so channel_binding=prefer
    clients authenticate with plain SCRAM and channel_binding=require clients are refused client-side.
    A deliberate difference from PostgreSQL, so this test is pgtls-only."""
    s = Scram(ed25519_server.port)
    assert s.mechanisms == [PLAIN]
    assert s.first(PLAIN, gs2="y,,") is None  # flag y is no downgrade when PLUS was not offered
    assert authenticated(s.final())
    err = error_of(Scram(ed25519_server.port).first(PLUS))
    assert err["C"] == "08P01" and err["M"] == "client selected an invalid SASL authentication mechanism"
    dsn = ed25519_server.dsn(
        user=USER, password=PASSWORD, sslmode="require", sslrootcert="invalid", sslcert="invalid"
    )
    with psycopg.connect(dsn) as c:
        assert c.pgconn.ssl_in_use
    with pytest.raises(psycopg.OperationalError, match="channel binding"):
        psycopg.connect(dsn + " channel_binding=require")


def test_zz_no_secret_in_logs(ours, ed25519_server, certs):
    """Last in this file: neither server logged the password, the stored verifier or key material."""
    logs = {"ours": ours.full_log(), "ed25519": ed25519_server.full_log()}
    secrets = secrets_of(ours.datadir) | secrets_of(ed25519_server.datadir)
    assert len(secrets) == 2
    leaks = find_leaks(logs, {PASSWORD, "wrong-" + PASSWORD, "not-the-password"}, secrets, certs)
    assert not leaks, "\n".join(leaks)
