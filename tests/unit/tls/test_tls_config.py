"""build_tls_config: every refusal with PostgreSQL's wording, and what a good load yields."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pgtls.tls import TlsConfigError, build_tls_config
from pgtls.tls.keyfile import PERMISSIONS_DETAIL, check_key_file_permissions
from tests.unit.tls.tls_support import Env, make_env


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    return make_env(tmp_path_factory.mktemp("tlscfg"))


def refuse(env: Env, *, is_start: bool = True, **settings: object) -> TlsConfigError:
    with pytest.raises(TlsConfigError) as info:
        build_tls_config(settings, env.data, is_start=is_start)
    return info.value


def test_good_config_loads_chain_and_defaults(env: Env) -> None:
    cfg = env.config()
    pem = (env.certs.dir / "server-chain.crt").read_bytes()
    expected = tuple(c.public_bytes(serialization.Encoding.DER) for c in x509.load_pem_x509_certificates(pem))
    assert cfg.cert_chain == expected and len(expected) == 2
    assert cfg.leaf_der == expected[0]
    assert not cfg.ca_loaded and not cfg.passphrase_used
    assert cfg.context.verify_mode == ssl.CERT_NONE
    assert cfg.protocol_range == ("TLSv1.2", "TLSv1.3")
    assert cfg.context.minimum_version == ssl.TLSVersion.TLSv1_2
    opts = cfg.context.options
    for flag in (
        ssl.OP_NO_TICKET,
        ssl.OP_NO_COMPRESSION,
        ssl.OP_NO_RENEGOTIATION,
        ssl.OP_CIPHER_SERVER_PREFERENCE,
    ):
        assert opts & flag
    assert cfg.context.num_tickets == 0


def test_ca_and_crl_request_but_do_not_require_a_client_cert(env: Env) -> None:
    cfg = env.config(ssl_ca_file="root+client_ca.crt", ssl_crl_file="root+client.crl")
    assert cfg.ca_loaded
    assert cfg.context.verify_mode == ssl.CERT_OPTIONAL
    assert cfg.context.verify_flags & ssl.VERIFY_CRL_CHECK_CHAIN == ssl.VERIFY_CRL_CHECK_CHAIN
    assert cfg.context.cert_store_stats()["x509_ca"] == 2


def test_prefer_server_ciphers_off(env: Env) -> None:
    assert not env.config(ssl_prefer_server_ciphers=False).context.options & ssl.OP_CIPHER_SERVER_PREFERENCE
    assert not env.config(ssl_prefer_server_ciphers="off").context.options & ssl.OP_CIPHER_SERVER_PREFERENCE


# --- certificate file --------------------------------------------------------------------------


def test_missing_cert_file(env: Env) -> None:
    err = refuse(env, ssl_cert_file="missing.crt")
    assert err.message == 'could not load server certificate file "missing.crt": No such file or directory'
    assert err.sqlstate == "F0000"


def test_der_cert_file_is_refused_with_openssl_reason(env: Env) -> None:
    cert = x509.load_pem_x509_certificates((env.certs.dir / "server-chain.crt").read_bytes())[0]
    (env.data / "server.der").write_bytes(cert.public_bytes(serialization.Encoding.DER))
    err = refuse(env, ssl_cert_file="server.der")
    assert err.message == 'could not load server certificate file "server.der": no start line'


def test_absolute_cert_path_is_shown_as_configured(env: Env) -> None:
    path = str(env.data / "nowhere" / "server.crt")
    assert refuse(env, ssl_cert_file=path).message.startswith(
        f'could not load server certificate file "{path}": '
    )


# --- key file rules (§19.9.1) -------------------------------------------------------------------


def test_key_0644_refused_with_detail(env: Env) -> None:
    env.install("server.key", "open.key", 0o644)
    err = refuse(env, ssl_key_file="open.key")
    assert err.message == 'private key file "open.key" has group or world access'
    assert err.detail == PERMISSIONS_DETAIL
    assert err.detail == (
        "File must have permissions u=rw (0600) or less if owned by the database user, "
        "or permissions u=rw,g=r (0640) or less if owned by root."
    )


def test_key_0600_accepted(env: Env) -> None:
    env.install("server.key", "tight.key", 0o600)
    env.config(ssl_key_file="tight.key")


def test_root_owned_0640_accepted_for_a_non_root_server(env: Env) -> None:
    env.install("server.key", "rootgroup.key", 0o640)
    path = env.data / "rootgroup.key"
    if os.stat(path).st_uid != 0:
        pytest.skip("needs a root-owned file")
    check_key_file_permissions(path, "rootgroup.key", euid=1000)  # server user 1000, key owned by root
    path.chmod(0o644)
    with pytest.raises(TlsConfigError, match="has group or world access"):
        check_key_file_permissions(path, "rootgroup.key", euid=1000)
    path.chmod(0o660)
    with pytest.raises(TlsConfigError, match="has group or world access"):
        check_key_file_permissions(path, "rootgroup.key", euid=1000)


def test_root_owned_0640_refused_when_server_runs_as_root(env: Env) -> None:
    # PostgreSQL checks "owned by us" first; a server running as root gets the 0600 rule.
    env.install("server.key", "asroot.key", 0o640)
    with pytest.raises(TlsConfigError, match="has group or world access"):
        check_key_file_permissions(env.data / "asroot.key", "asroot.key", euid=0)


def test_key_owned_by_someone_else(env: Env) -> None:
    name = env.install("server.key", "foreign.key", 0o600)
    if os.geteuid() == 0:
        os.chown(env.data / name, 12345, 12345)
        err = refuse(env, ssl_key_file=name)
    else:
        with pytest.raises(TlsConfigError) as info:
            check_key_file_permissions(env.data / name, name, euid=os.geteuid() + 1)
        err = info.value
    assert err.message == 'private key file "foreign.key" must be owned by the database user or root'


def test_key_missing_and_not_regular(env: Env) -> None:
    err = refuse(env, ssl_key_file="absent.key")
    assert err.message == 'could not access private key file "absent.key": No such file or directory'
    assert err.sqlstate == "58P01"
    (env.data / "keydir").mkdir()
    assert refuse(env, ssl_key_file="keydir").message == 'private key file "keydir" is not a regular file'


def test_key_of_same_type_but_other_pair(env: Env) -> None:
    env.install("server2.key", "other.key", 0o600)
    err = refuse(env, ssl_key_file="other.key")
    # OpenSSL 3 checks the pair while loading a key of the certificate's type (PostgreSQL reports the same).
    assert err.message.startswith(
        ('could not load private key file "other.key": ', "check of private key failed: ")
    )
    assert "mismatch" in err.message


def test_key_cert_mismatch_check(env: Env) -> None:
    env.install("server-rsa.key", "rsa.key", 0o600)  # RSA key, ECDSA certificate
    err = refuse(env, ssl_key_file="rsa.key")
    assert err.message.startswith("check of private key failed: ")
    assert "BEGIN" not in err.message


def test_key_file_that_is_not_a_key(env: Env) -> None:
    env.install("server-chain.crt", "cert-as-key.key", 0o600)
    assert refuse(env, ssl_key_file="cert-as-key.key").message.startswith(
        'could not load private key file "cert-as-key.key": '
    )


# --- passphrases --------------------------------------------------------------------------------


@pytest.fixture()
def pw_env(env: Env) -> Env:
    env.install("server-password.key", "pw.key", 0o600)
    return env


def test_passphrase_command_ok(pw_env: Env) -> None:
    cfg = pw_env.config(ssl_key_file="pw.key", ssl_passphrase_command="echo secret1")
    assert cfg.passphrase_used


def test_passphrase_command_placeholders(pw_env: Env) -> None:
    cmd = "test '%p' = 'Enter PEM pass phrase:' && test '%%' = \"$(printf '\\045')\" && printf 'secret1\\r\\nignored\\n'"
    assert pw_env.config(ssl_key_file="pw.key", ssl_passphrase_command=cmd).passphrase_used


def test_wrong_passphrase(pw_env: Env) -> None:
    err = refuse(pw_env, ssl_key_file="pw.key", ssl_passphrase_command="echo wrongpassword")
    assert err.message.startswith('could not load private key file "pw.key": ')
    assert "wrongpassword" not in (err.message + str(err.detail))


def test_failing_passphrase_command_at_start(pw_env: Env) -> None:
    err = refuse(pw_env, ssl_key_file="pw.key", ssl_passphrase_command="exit 3")
    assert err.message == 'command "exit 3" failed'
    assert err.detail == "child process exited with exit code 3"
    err = refuse(pw_env, ssl_key_file="pw.key", ssl_passphrase_command="/nonexistent/pgtls-cmd")
    assert err.detail == "command not found"


def test_bad_placeholder(pw_env: Env) -> None:
    err = refuse(pw_env, ssl_key_file="pw.key", ssl_passphrase_command="echo %x")
    assert err.message == 'invalid value for parameter "ssl_passphrase_command": "echo %x"'
    assert err.detail == 'String contains unexpected placeholder "%x".'


def test_reload_without_supports_reload_refused(pw_env: Env) -> None:
    for cmd in ("echo secret1", ""):
        err = refuse(pw_env, is_start=False, ssl_key_file="pw.key", ssl_passphrase_command=cmd)
        assert err.message == 'private key file "pw.key" cannot be reloaded because it requires a passphrase'


def test_reload_with_supports_reload(pw_env: Env) -> None:
    cfg = build_tls_config(
        {
            "ssl_key_file": "pw.key",
            "ssl_passphrase_command": "echo secret1",
            "ssl_passphrase_command_supports_reload": True,
        },
        pw_env.data,
        is_start=False,
    )
    assert cfg.passphrase_used


def test_reload_with_failing_command_logs_it_first(pw_env: Env) -> None:
    err = refuse(
        pw_env,
        is_start=False,
        ssl_key_file="pw.key",
        ssl_passphrase_command="exit 2",
        ssl_passphrase_command_supports_reload=True,
    )
    assert err.message.startswith('could not load private key file "pw.key": ')
    assert [e.message for e in err.logged_before] == ['command "exit 2" failed']


def test_no_command_and_no_terminal_at_start(pw_env: Env) -> None:
    err = refuse(pw_env, ssl_key_file="pw.key")
    assert err.message.startswith('could not load private key file "pw.key": ')


def test_unencrypted_key_never_runs_the_command(env: Env, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    cfg = env.config(ssl_passphrase_command=f"touch {marker}; echo x")
    assert not cfg.passphrase_used and not marker.exists()


# --- protocol, ciphers, groups, DH ----------------------------------------------------------------


def test_min_higher_than_max(env: Env) -> None:
    err = refuse(env, ssl_min_protocol_version="TLSv1.2", ssl_max_protocol_version="TLSv1.1")
    assert err.message == "could not set SSL protocol version range"
    assert err.detail == '"ssl_min_protocol_version" cannot be higher than "ssl_max_protocol_version"'
    assert err.sqlstate == "F0000"


def test_protocol_names_are_case_insensitive(env: Env) -> None:
    cfg = env.config(ssl_min_protocol_version="tlsv1.3", ssl_max_protocol_version="TLSV1.3")
    assert cfg.context.minimum_version == ssl.TLSVersion.TLSv1_3
    assert cfg.context.maximum_version == ssl.TLSVersion.TLSv1_3
    assert cfg.protocol_range == ("TLSv1.3", "TLSv1.3")


def test_unknown_protocol_name(env: Env) -> None:
    err = refuse(env, ssl_min_protocol_version="SSLv3")
    assert err.message == 'invalid value for parameter "ssl_min_protocol_version": "SSLv3"'
    assert err.sqlstate == "22023"


def test_bad_cipher_list(env: Env) -> None:
    err = refuse(env, ssl_ciphers="NOT-A-CIPHER")
    assert err.message == "could not set the TLSv1.2 cipher list (no valid ciphers available)"


def test_bad_tls13_ciphers(env: Env) -> None:
    err = refuse(env, ssl_tls13_ciphers="NOT_A_SUITE")
    assert err.message == "could not set the TLSv1.3 cipher suites (no valid ciphers available)"


def test_bad_groups(env: Env) -> None:
    err = refuse(env, ssl_groups="bad:value")
    assert err.message.startswith("could not set group names specified in ssl_groups: ")
    assert "no SSL error reported" not in err.message
    assert err.hint == (
        "Ensure that each group name is spelled correctly and supported by the installed version of OpenSSL."
    )
    assert refuse(env, ssl_ecdh_curve="nocurve").message.startswith("could not set group names")


def test_dh_params_file(env: Env) -> None:
    err = refuse(env, ssl_dh_params_file="nodh.pem")
    assert err.message == 'could not open DH parameters file "nodh.pem": No such file or directory'
    env.install("server-chain.crt", "notdh.pem")
    assert (
        refuse(env, ssl_dh_params_file="notdh.pem").message
        == "could not load DH parameters file: no start line"
    )
    # At reload a bad file is reported and the built-in group is used, as in PostgreSQL.
    cfg = build_tls_config({"ssl_dh_params_file": "notdh.pem"}, env.data, is_start=False)
    assert [n.message for n in cfg.notices] == ["could not load DH parameters file: no start line"]


# --- CA and CRL files ------------------------------------------------------------------------------


def test_bad_ca_file(env: Env) -> None:
    err = refuse(env, ssl_ca_file="noca.crt")
    assert err.message == 'could not load root certificate file "noca.crt": No such file or directory'
    env.install("server.key", "keyasca.crt")
    assert refuse(env, ssl_ca_file="keyasca.crt").message.startswith(
        'could not load root certificate file "keyasca.crt": '
    )


def test_bad_crl_settings(env: Env) -> None:
    env.install("server.key", "junk.crl")
    assert refuse(env, ssl_crl_file="junk.crl").message.startswith(
        'could not load SSL certificate revocation list file "junk.crl": '
    )
    assert refuse(env, ssl_crl_file="junk.crl", ssl_crl_dir="crldir").message.startswith(
        'could not load SSL certificate revocation list file "junk.crl" or directory "crldir": '
    )
    env.config(ssl_crl_dir="root+client-crldir")  # directory entries are read lazily, at verify time
