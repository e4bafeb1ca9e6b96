"""Client certificates: verification outcomes, verify-failure DETAIL, connection facts, channel binding."""

from __future__ import annotations

import hashlib
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from pgtls.certs import x509build as xb
from pgtls.errors import PgError
from pgtls.tls import (
    PeerCertError,
    TlsConfig,
    accept_error,
    build_tls_config,
    channel_binding_data,
    connection_facts,
    verify_failure,
)
from pgtls.tls.facts import peer_names
from pgtls.tls.names import prepare_cert_name
from tests import weaksig
from tests.unit.tls.tls_support import Env, client_context, handshake, make_env

CLIENT_CA_SLASH = "/CN=Test CA for pgtls client certs"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    return make_env(tmp_path_factory.mktemp("tlscc"))


@pytest.fixture(scope="module")
def crl_file_cfg(env: Env) -> TlsConfig:
    return env.config(ssl_ca_file="root+client_ca.crt", ssl_crl_file="root+client.crl")


@pytest.fixture(scope="module")
def crl_dir_cfg(env: Env) -> TlsConfig:
    return env.config(ssl_ca_file="root+client_ca.crt", ssl_crl_dir="root+client-crldir")


def serial_of(env: Env, name: str) -> int:
    return x509.load_pem_x509_certificate((env.certs.dir / f"{name}.crt").read_bytes()).serial_number


def expected_detail(env: Env, name: str, depth: int, reason: str, subject: str = "/CN=ssltestuser") -> str:
    return (
        f"Client certificate verification failed at depth {depth}: {reason}.\n"
        f'Failed certificate data (unverified): subject "{subject}", serial number {serial_of(env, name)}, '
        f'issuer "{CLIENT_CA_SLASH}".'
    )


# --- accepted certificates and facts ---------------------------------------------------------------


def test_valid_client_cert_facts(env: Env, crl_file_cfg: TlsConfig) -> None:
    res = handshake(crl_file_cfg.context, client_context(env, cert="client-dn", alpn=["postgresql"]))
    assert res.ok
    assert verify_failure(res.server) is None
    f = connection_facts(res.server)
    assert f.peer_cert_valid
    assert f.peer_cn == "ssltestuser-dn"
    assert f.peer_dn == "CN=ssltestuser-dn,OU=Testing,OU=Engineering,O=PGDG"
    assert f.client_dn == "/O=PGDG/OU=Engineering/OU=Testing/CN=ssltestuser-dn"
    assert f.issuer_dn == CLIENT_CA_SLASH
    assert f.client_serial == serial_of(env, "client-dn")
    pem = (env.certs.dir / "client-dn.crt").read_bytes()
    assert f.peer_cert_der == x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    assert f.field("subject", "OU") == "Engineering"
    assert f.field("subject", "organizationalUnitName") == "Engineering"
    assert f.field("subject", "CN") == f.field("subject", "commonName") == "ssltestuser-dn"
    assert f.field("subject", "emailAddress") is None
    assert f.field("issuer", "CN") == "Test CA for pgtls client certs"
    with pytest.raises(PgError) as info:
        f.field("subject", "nosuchfield")
    assert info.value.sqlstate == "22023" and info.value.message == 'invalid X.509 field name: "nosuchfield"'


def test_client_cert_with_intermediate_and_via_crl_dir(env: Env, crl_dir_cfg: TlsConfig) -> None:
    res = handshake(crl_dir_cfg.context, client_context(env, cert="client"))
    assert res.ok and connection_facts(res.server).peer_cn == "ssltestuser"


def test_no_client_cert_is_accepted_at_tls_level(env: Env, crl_file_cfg: TlsConfig) -> None:
    res = handshake(crl_file_cfg.context, client_context(env))
    assert res.ok
    f = connection_facts(res.server)
    assert not f.peer_cert_valid and f.peer_cn is None and f.client_serial is None
    assert f.field("subject", "CN") is None


def test_without_ca_no_cert_is_requested(env: Env) -> None:
    res = handshake(env.config().context, client_context(env, cert="client"))
    assert res.ok and connection_facts(res.server).peer_cert_der is None


# --- refused certificates -------------------------------------------------------------------------


@pytest.mark.parametrize("cfg_name", ["crl_file_cfg", "crl_dir_cfg"])
def test_revoked(env: Env, cfg_name: str, request: pytest.FixtureRequest) -> None:
    cfg: TlsConfig = request.getfixturevalue(cfg_name)
    res = handshake(cfg.context, client_context(env, cert="client-revoked"))
    assert isinstance(res.server_error, ssl.SSLCertVerificationError)
    assert res.client_error is not None and "revoked" in str(res.client_error)
    report = accept_error(res.server_error, res.server, cfg.protocol_range)
    assert report.message == "could not accept SSL connection: certificate verify failed"
    assert report.detail == expected_detail(env, "client-revoked", 0, "certificate revoked")
    assert verify_failure(res.server) is None  # consumed


@pytest.mark.parametrize(
    ("cert", "reason"),
    [
        ("client-wrongca", "unable to get local issuer certificate"),
        ("client-expired", "certificate has expired"),
        ("client-future", "certificate is not yet valid"),
    ],
)
def test_unverifiable(env: Env, crl_file_cfg: TlsConfig, cert: str, reason: str) -> None:
    res = handshake(crl_file_cfg.context, client_context(env, cert=cert))
    assert isinstance(res.server_error, ssl.SSLCertVerificationError)
    assert verify_failure(res.server) == expected_detail(env, cert, 0, reason)


def test_concurrent_handshakes_keep_their_own_failures(env: Env, crl_file_cfg: TlsConfig) -> None:
    kinds = ["client", "client-revoked", "client-expired", "client-wrongca", "client-dn"] * 4
    barrier = threading.Barrier(len(kinds))
    outcomes: dict[int, tuple[bool, str | None]] = {}
    errors: list[BaseException] = []

    def run(i: int, cert: str) -> None:
        try:
            client = client_context(env, cert=cert)
            barrier.wait()
            for _ in range(3):
                res = handshake(crl_file_cfg.context, client)
                outcomes[i] = (res.server_error is None, verify_failure(res.server))
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i, k)) for i, k in enumerate(kinds)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    reasons = {
        "client-revoked": "certificate revoked",
        "client-expired": "certificate has expired",
        "client-wrongca": "unable to get local issuer certificate",
    }
    for i, cert in enumerate(kinds):
        ok, detail = outcomes[i]
        if cert in reasons:
            assert not ok and detail == expected_detail(env, cert, 0, reasons[cert])
        else:
            assert ok and detail is None


def test_embedded_null_in_names(env: Env, tmp_path: Path) -> None:
    ca = xb.make_ca(xb.cn("ca"))
    evil = xb.make_leaf(xb.cn("evil\x00user"), ca, purpose="client")
    with pytest.raises(PeerCertError) as info:
        peer_names(evil.cert.public_bytes(serialization.Encoding.DER))
    assert info.value.message == "SSL certificate's common name contains embedded null"
    assert info.value.sqlstate == "08P01"


def test_prepare_cert_name() -> None:
    assert prepare_cert_name(b"/CN=ok") == "/CN=ok"
    assert prepare_cert_name("/CN=Οδυσσέας".encode()) == "/CN=" + "".join(
        f"\\x{b:02x}" for b in "Οδυσσέας".encode()
    )
    long = b"/O=" + b"o" * 40 + b"/CN=" + b"c" * 64
    out = prepare_cert_name(long)
    assert len(out) == 71 and out.startswith("...") and out.endswith("/CN=" + "c" * 64)


def test_long_names_are_truncated_like_pg_stat_ssl(env: Env, crl_file_cfg: TlsConfig, tmp_path: Path) -> None:
    ca_key = serialization.load_pem_private_key((env.certs.dir / "client_ca.key").read_bytes(), None)
    ca_cert = x509.load_pem_x509_certificate((env.certs.dir / "client_ca.crt").read_bytes())
    ca = xb.Issued(ca_cert, ca_key)  # type: ignore[arg-type]
    subject = xb.make_name(("O", "PostgreSQL Global Development Group"), ("CN", "ssl-" + "1234567890" * 6))
    leaf = xb.make_leaf(subject, ca, purpose="client")
    xb.write_certs(tmp_path / "long.crt", [leaf.cert])
    xb.write_key(tmp_path / "long.key", leaf.key)  # type: ignore[arg-type]
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_verify_locations(env.certs.path("root_ca.crt"))
    client.load_cert_chain(tmp_path / "long.crt", tmp_path / "long.key")
    res = handshake(crl_file_cfg.context, client)
    assert res.ok
    f = connection_facts(res.server)
    full = "/O=PostgreSQL Global Development Group/CN=ssl-" + "1234567890" * 6
    assert f.client_dn == full[:63]
    assert f.peer_cn == "ssl-" + "1234567890" * 6


# --- channel binding -------------------------------------------------------------------------------


def _server_cfg(tmp_path: Path, leaf: xb.Issued, issuer: xb.Issued) -> TlsConfig:
    xb.write_certs(tmp_path / "cb.crt", [leaf.cert, issuer.cert])
    xb.write_key(tmp_path / "cb.key", leaf.key)  # type: ignore[arg-type]
    return build_tls_config({"ssl_cert_file": "cb.crt", "ssl_key_file": "cb.key"}, tmp_path, is_start=True)


def test_channel_binding_ecdsa_sha256(env: Env) -> None:
    cfg = env.config()
    assert cfg.channel_binding_hash == "sha256"
    assert channel_binding_data(cfg) == hashlib.sha256(cfg.leaf_der).digest()


def test_channel_binding_rsa_sha384(tmp_path: Path) -> None:
    ca = xb.make_ca(xb.cn("rsa ca"), key_kind="rsa2048")
    leaf = xb.make_leaf(xb.cn("localhost"), ca, key_kind="rsa2048", hash_alg=hashes.SHA384())
    cfg = _server_cfg(tmp_path, leaf, ca)
    assert cfg.channel_binding_hash == "sha384"
    assert channel_binding_data(cfg) == hashlib.sha384(cfg.leaf_der).digest()


def test_channel_binding_ed25519_is_undefined(tmp_path: Path) -> None:
    ca = xb.make_ca(xb.cn("ed ca"), key_kind="ed25519")
    leaf = xb.make_leaf(xb.cn("localhost"), ca, key_kind="ed25519")
    cfg = _server_cfg(tmp_path, leaf, ca)
    assert cfg.channel_binding_hash is None and channel_binding_data(cfg) is None


def test_channel_binding_rsa_pss_uses_its_hash_parameter(tmp_path: Path) -> None:
    key = xb.generate_key("rsa2048")
    name = xb.cn("localhost")
    builder = xb._builder(name, name, key.public_key(), 30, None, None, None)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)
    cert = builder.sign(key, hashes.SHA384(), rsa_padding=pss)  # type: ignore[arg-type]
    xb.write_certs(tmp_path / "cb.crt", [cert])
    xb.write_key(tmp_path / "cb.key", key)
    cfg = build_tls_config({"ssl_cert_file": "cb.crt", "ssl_key_file": "cb.key"}, tmp_path, is_start=True)
    assert cfg.channel_binding_hash == "sha384"


@pytest.mark.parametrize("digest", weaksig.DIGESTS)
def test_channel_binding_sha1_md5_upgrade_to_sha256(tmp_path: Path, digest: str) -> None:
    """RFC 5929 §4.1: a certificate signed with MD5 or SHA-1 binds with SHA-256 (openssl CLI certificates:
    cryptography will not sign with either).  End to end with libpq: tests/integration/test_scram_wire.py."""
    crt, key = weaksig.make(tmp_path, digest)
    cfg = build_tls_config({"ssl_cert_file": crt.name, "ssl_key_file": key.name}, tmp_path, is_start=True)
    assert cfg.channel_binding_hash == "sha256"
    assert channel_binding_data(cfg) == hashlib.sha256(cfg.leaf_der).digest()
