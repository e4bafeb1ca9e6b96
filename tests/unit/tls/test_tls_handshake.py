"""Real in-memory handshakes against build_tls_config contexts: versions, ciphers, groups, ALPN, chain, DH."""

from __future__ import annotations

import ssl

import pytest

from pgtls.tls import accept_error, connection_facts, ffi
from tests.unit.tls.tls_support import Env, client_context, handshake, make_env


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    return make_env(tmp_path_factory.mktemp("tlshs"))


def test_default_handshake_negotiates_alpn_and_tls13(env: Env) -> None:
    res = handshake(env.config().context, client_context(env, alpn=["postgresql"]))
    assert res.ok and res.echoed == b"ping"
    facts = connection_facts(res.server)
    assert facts.alpn == "postgresql" and res.client.selected_alpn_protocol() == "postgresql"
    assert facts.version == "TLSv1.3" and facts.bits >= 128
    assert facts.peer_cert_der is None and facts.peer_dn is None and facts.client_dn is None


def test_client_without_alpn_is_fine(env: Env) -> None:
    res = handshake(env.config().context, client_context(env))
    assert res.ok and connection_facts(res.server).alpn is None


def test_client_alpn_without_postgresql_gets_fatal_alert(env: Env) -> None:
    res = handshake(env.config().context, client_context(env, alpn=["http/1.1"]))
    assert res.server_error is not None and res.client_error is not None
    assert "no application protocol" in str(res.client_error).lower()


def test_chain_is_sent_whole(env: Env) -> None:
    # The client trusts only the root: the server must send the intermediate CA as well.
    assert handshake(env.config().context, client_context(env, trust="root_ca.crt")).ok
    env.install("server.crt", "leaf-only.crt")
    res = handshake(
        env.config(ssl_cert_file="leaf-only.crt").context, client_context(env, trust="root_ca.crt")
    )
    assert isinstance(res.client_error, ssl.SSLCertVerificationError)


def test_min_tls13_refuses_tls12_client(env: Env) -> None:
    cfg = env.config(ssl_min_protocol_version="TLSv1.3")
    res = handshake(cfg.context, client_context(env, max_version=ssl.TLSVersion.TLSv1_2))
    assert isinstance(res.server_error, ssl.SSLError) and res.client_error is not None
    report = accept_error(res.server_error, res.server, cfg.protocol_range)
    assert report.message.startswith("could not accept SSL connection: ")
    assert report.hint == (
        "This may indicate that the client does not support any SSL protocol version between TLSv1.3 and TLSv1.3."
    )
    assert handshake(cfg.context, client_context(env)).ok


def test_max_tls12_is_honoured(env: Env) -> None:
    res = handshake(env.config(ssl_max_protocol_version="TLSv1.2").context, client_context(env))
    assert res.ok and connection_facts(res.server).version == "TLSv1.2"


def test_tls12_cipher_list_is_enforced(env: Env) -> None:
    cfg = env.config(ssl_ciphers="ECDHE-ECDSA-AES256-GCM-SHA384")
    tls12 = ssl.TLSVersion.TLSv1_2
    bad = handshake(
        cfg.context, client_context(env, max_version=tls12, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256")
    )
    assert bad.server_error is not None
    assert (
        accept_error(bad.server_error, bad.server).message
        == "could not accept SSL connection: no shared cipher"
    )
    good = handshake(
        cfg.context, client_context(env, max_version=tls12, ciphers="ECDHE-ECDSA-AES256-GCM-SHA384")
    )
    assert good.ok and connection_facts(good.server).cipher == "ECDHE-ECDSA-AES256-GCM-SHA384"


def test_tls13_ciphersuites_are_enforced(env: Env) -> None:
    cfg = env.config(ssl_tls13_ciphers="TLS_AES_128_GCM_SHA256")
    bad = handshake(cfg.context, client_context(env, tls13_ciphers="TLS_AES_256_GCM_SHA384"))
    assert bad.server_error is not None and bad.client_error is not None
    good = handshake(
        cfg.context, client_context(env, tls13_ciphers="TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256")
    )
    assert good.ok and connection_facts(good.server).cipher == "TLS_AES_128_GCM_SHA256"


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2])
def test_groups_are_enforced(env: Env, version: ssl.TLSVersion) -> None:
    # In TLS 1.2 the client's list also vouches for the curve of the server's ECDSA certificate (P-256).
    cfg = env.config(ssl_groups="X25519")
    bad = handshake(cfg.context, client_context(env, groups="secp384r1:prime256v1", max_version=version))
    assert bad.server_error is not None and bad.client_error is not None
    assert handshake(cfg.context, client_context(env, groups="X25519:prime256v1", max_version=version)).ok


def test_builtin_dh_group_serves_dhe(env: Env) -> None:
    env.install("server-rsa-chain.crt")
    env.install("server-rsa.key", "server-rsa.key", 0o600)
    cfg = env.config(ssl_cert_file="server-rsa-chain.crt", ssl_key_file="server-rsa.key")
    client = client_context(env, max_version=ssl.TLSVersion.TLSv1_2, ciphers="DHE-RSA-AES256-GCM-SHA384")
    res = handshake(cfg.context, client)
    assert res.ok and connection_facts(res.server).cipher == "DHE-RSA-AES256-GCM-SHA384"


def test_no_session_tickets_are_issued(env: Env) -> None:
    res = handshake(env.config().context, client_context(env))
    assert res.ok
    session = res.client.session
    assert session is None or not session.has_ticket


def test_sslobject_pointer_layout_is_verified(env: Env) -> None:
    cfg = env.config()
    res = handshake(cfg.context, client_context(env))
    ptr = ffi.ssl_ptr(res.server)
    assert ffi.libs().ssl.SSL_get_SSL_CTX(ptr) == ffi.ctx_ptr(cfg.context)
    assert ffi.ssl_ptr(res.client) != ptr


def test_ffi_setters_refuse_bad_values(env: Env) -> None:
    ctx = client_context(env)
    with pytest.raises(ValueError, match="ciphersuites"):
        ffi.set_tls13_ciphersuites(ctx, "NOPE")
    with pytest.raises(ValueError, match="groups"):
        ffi.set_groups(ctx, "bad:value")
