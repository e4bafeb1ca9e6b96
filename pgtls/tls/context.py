"""ssl_* settings -> a server :class:`ssl.SSLContext`, the way ``be_tls_init`` builds its SSL_CTX.

The steps and their order follow be-secure-openssl.c (PostgreSQL 18):

1. certificate chain from ssl_cert_file (leaf first, intermediates sent too);
2. the key-file rules of §19.9.1 (:mod:`pgtls.tls.keyfile`);
3. the private key, with the passphrase rules of :mod:`pgtls.tls.passphrase`;
4. key/certificate match;
5. protocol bounds, then the fixed hardening (no session tickets or cache, no
   compression, no renegotiation);
6. DH parameters, ssl_groups, ssl_ciphers (TLS <= 1.2), ssl_tls13_ciphers,
   ssl_prefer_server_ciphers;
7. ssl_ca_file as trust store and CertificateRequest CA list, with the client
   certificate requested but not required, and the verify-logging callback;
8. ssl_crl_file / ssl_crl_dir with CRL checks for the whole chain;
9. ALPN ``postgresql``.

Every failure raises :class:`TlsConfigError` with PostgreSQL's wording and the
file name as configured; nothing is half-applied because the context is new
and only returned when every step succeeded ("start-up refuses, reload keeps"
is the caller's policy).  Calls CPython has no API for go through
:mod:`pgtls.tls.ffi` on the same SSL_CTX; the error text is OpenSSL's first
queued error, as PostgreSQL reports it.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgtls.tls import dh, ffi, handshake
from pgtls.tls.errors import TlsConfigError
from pgtls.tls.keyfile import check_key_file_permissions
from pgtls.tls.passphrase import Mode, PasswordCallback, choose_mode

# PostgreSQL's defaults (guc_parameters.dat) for settings absent from the mapping.
DEFAULTS: Mapping[str, object] = {
    "ssl_cert_file": "server.crt",
    "ssl_key_file": "server.key",
    "ssl_ca_file": "",
    "ssl_crl_file": "",
    "ssl_crl_dir": "",
    "ssl_ciphers": "HIGH:MEDIUM:+3DES:!aNULL",
    "ssl_tls13_ciphers": "",
    "ssl_prefer_server_ciphers": True,
    "ssl_groups": "X25519:prime256v1",
    "ssl_min_protocol_version": "TLSv1.2",
    "ssl_max_protocol_version": "",
    "ssl_dh_params_file": "",
    "ssl_passphrase_command": "",
    "ssl_passphrase_command_supports_reload": False,
}

# ssl_protocol_versions_info: GUC spelling (matched case-insensitively) -> (OpenSSL version, Python flag)
PROTOCOL_VERSIONS: Mapping[str, tuple[str, int, bool]] = {
    "tlsv1": ("TLSv1", 0x0301, ssl.HAS_TLSv1),
    "tlsv1.1": ("TLSv1.1", 0x0302, ssl.HAS_TLSv1_1),
    "tlsv1.2": ("TLSv1.2", 0x0303, ssl.HAS_TLSv1_2),
    "tlsv1.3": ("TLSv1.3", 0x0304, ssl.HAS_TLSv1_3),
}
MIN_TLS_VERSION_NAME = "TLSv1"
MAX_TLS_VERSION_NAME = "TLSv1.3"

GROUPS_HINT = (
    "Ensure that each group name is spelled correctly and supported by the installed version of OpenSSL."
)


@dataclass(frozen=True)
class TlsConfig:
    """A loaded server TLS configuration: the context plus what other layers need to know about it."""

    context: ssl.SSLContext
    cert_chain: tuple[bytes, ...]
    leaf_der: bytes
    channel_binding_hash: str | None
    ca_loaded: bool
    passphrase_used: bool
    # Reload-time reports that did not stop the load (PostgreSQL logs them at LOG).
    notices: tuple[TlsConfigError, ...] = ()
    # Effective (min, max) protocol names for the accept-failure HINT.
    protocol_range: tuple[str, str] = (MIN_TLS_VERSION_NAME, MAX_TLS_VERSION_NAME)
    # Server-side SNI (pgtls.tls.sni.SniHosts): every host's configuration; this one is the first entry's.
    sni: Any = field(default=None, compare=False)

    @functools.cached_property
    def channel_binding(self) -> bytes | None:
        """H(DER of the server leaf) for SCRAM tls-server-end-point (computed at first use, once per loaded
        configuration), or None when no hash is defined."""
        if self.channel_binding_hash is None:
            return None
        return hashlib.new(self.channel_binding_hash, self.leaf_der).digest()

    def for_context(self, context: ssl.SSLContext) -> TlsConfig:
        """The configuration a handshake ended up with (SNI may have switched its context)."""
        if self.sni is None or context is self.context:
            return self
        return self.sni.config_of(context) or self


# --- settings access ---------------------------------------------------------------------------

_TRUE = {"on", "true", "yes", "1", "t", "y"}
_FALSE = {"off", "false", "no", "0", "f", "n"}


def _text(settings: Mapping[str, object], name: str) -> str:
    value = settings.get(name, DEFAULTS[name])
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TlsConfigError(f'invalid value for parameter "{name}": "{value}"', sqlstate="22023")
    return value


def _flag(settings: Mapping[str, object], name: str) -> bool:
    value = settings.get(name, DEFAULTS[name])
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise TlsConfigError(f'parameter "{name}" requires a Boolean value', sqlstate="22023")


def _groups(settings: Mapping[str, object]) -> str:
    # ssl_ecdh_curve is the pre-18 name of ssl_groups and still accepted as an alias.
    if "ssl_groups" not in settings and "ssl_ecdh_curve" in settings:
        return _text({"ssl_groups": settings["ssl_ecdh_curve"]}, "ssl_groups")
    return _text(settings, "ssl_groups")


def _protocol(settings: Mapping[str, object], name: str) -> tuple[str, int] | None:
    raw = _text(settings, name)
    if raw == "":
        return None
    entry = PROTOCOL_VERSIONS.get(raw.lower())
    if entry is None:
        allowed = ", ".join(v[0] for v in PROTOCOL_VERSIONS.values())
        raise TlsConfigError(
            f'invalid value for parameter "{name}": "{raw}"',
            hint=f"Available values: {allowed}.",
            sqlstate="22023",
        )
    shown, number, supported = entry
    if not supported:
        raise TlsConfigError(f'"{name}" setting "{raw}" not supported by this build')
    return shown, number


def _resolve(data_dir: Path, value: str) -> Path:
    p = Path(value)
    return p if p.is_absolute() else Path(data_dir) / p


def _c_path(path: Path) -> bytes:
    return os.fsencode(str(path))


# --- the steps ---------------------------------------------------------------------------------


def _load_chain(ctx: int) -> tuple[bytes, ...]:
    lib = ffi.libs()
    leaf = lib.ssl.SSL_CTX_get0_certificate(ctx)
    sk = ctypes.c_void_p()
    lib.ssl.SSL_CTX_ctrl(ctx, ffi.SSL_CTRL_GET_CHAIN_CERTS, 0, ctypes.byref(sk))
    return (ffi.x509_der(leaf), *(ffi.x509_der(x) for x in ffi.stack_items(sk.value)))


def _load_cert_and_key(
    context: ssl.SSLContext,
    settings: Mapping[str, object],
    data_dir: Path,
    *,
    is_start: bool,
    interactive: bool,
) -> tuple[tuple[bytes, ...], bool]:
    lib = ffi.libs().ssl
    ctx = ffi.ctx_ptr(context)
    cert_shown = _text(settings, "ssl_cert_file")
    key_shown = _text(settings, "ssl_key_file")
    command = _text(settings, "ssl_passphrase_command")
    mode = choose_mode(
        command,
        _flag(settings, "ssl_passphrase_command_supports_reload"),
        is_start=is_start,
        interactive=interactive,
    )
    callback = PasswordCallback(mode, command)
    lib.SSL_CTX_set_default_passwd_cb(ctx, callback.cfunc)
    lib.SSL_CTX_set_default_passwd_cb_userdata(ctx, None)
    try:
        ffi.clear_errors()
        if lib.SSL_CTX_use_certificate_chain_file(ctx, _c_path(_resolve(data_dir, cert_shown))) != 1:
            raise TlsConfigError(
                f'could not load server certificate file "{cert_shown}": {ffi.errmessage(ffi.first_error())}'
            )
        if callback.error is not None:  # an encrypted PEM certificate needed the command, and it failed
            raise callback.error

        key_path = _resolve(data_dir, key_shown)
        check_key_file_permissions(key_path, key_shown)

        callback.reset()
        ffi.clear_errors()
        if lib.SSL_CTX_use_PrivateKey_file(ctx, _c_path(key_path), ffi.SSL_FILETYPE_PEM) != 1:
            code = ffi.first_error()
            if mode is Mode.DUMMY and callback.called:
                raise TlsConfigError(
                    f'private key file "{key_shown}" cannot be reloaded because it requires a passphrase'
                )
            if callback.error is not None and is_start:
                raise callback.error  # PostgreSQL's ERROR inside the callback is FATAL at start
            earlier = (callback.error,) if callback.error is not None else ()
            raise TlsConfigError(
                f'could not load private key file "{key_shown}": {ffi.errmessage(code)}',
                logged_before=earlier,
            )
        passphrase_used = callback.called

        ffi.clear_errors()
        if lib.SSL_CTX_check_private_key(ctx) != 1:
            raise TlsConfigError(f"check of private key failed: {ffi.errmessage(ffi.first_error())}")
        return _load_chain(ctx), passphrase_used
    finally:
        # Detach our callback: the context outlives this call, the callback object need not.
        lib.SSL_CTX_set_default_passwd_cb(ctx, ffi.PASSWD_CB())  # NULL
        ffi.clear_errors()


def _apply_protocols(context: ssl.SSLContext, settings: Mapping[str, object]) -> tuple[str, str]:
    lib = ffi.libs().ssl
    ctx = ffi.ctx_ptr(context)
    low = _protocol(settings, "ssl_min_protocol_version")
    high = _protocol(settings, "ssl_max_protocol_version")
    # Direct calls instead of SSLContext.minimum_version: PostgreSQL allows TLSv1/TLSv1.1 by
    # setting, which CPython would accept only with a DeprecationWarning.
    if lib.SSL_CTX_ctrl(ctx, ffi.SSL_CTRL_SET_MIN_PROTO_VERSION, low[1] if low else 0, None) != 1:
        raise TlsConfigError("could not set minimum SSL protocol version")
    if lib.SSL_CTX_ctrl(ctx, ffi.SSL_CTRL_SET_MAX_PROTO_VERSION, high[1] if high else 0, None) != 1:
        raise TlsConfigError("could not set maximum SSL protocol version")
    if low and high and low[1] > high[1]:
        raise TlsConfigError(
            "could not set SSL protocol version range",
            detail='"ssl_min_protocol_version" cannot be higher than "ssl_max_protocol_version"',
        )
    return (low[0] if low else MIN_TLS_VERSION_NAME, high[0] if high else MAX_TLS_VERSION_NAME)


def _harden(context: ssl.SSLContext) -> None:
    """Fixed choices of be_tls_init: no tickets, no session cache, no compression, no renegotiation."""
    lib = ffi.libs().ssl
    ctx = ffi.ctx_ptr(context)
    lib.SSL_CTX_ctrl(ctx, ffi.SSL_CTRL_MODE, ffi.SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER, None)
    context.num_tickets = 0
    context.options |= (
        ssl.OP_NO_TICKET | ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION | ssl.OP_SINGLE_DH_USE
    )
    lib.SSL_CTX_ctrl(ctx, ffi.SSL_CTRL_SET_SESS_CACHE_MODE, ffi.SSL_SESS_CACHE_OFF, None)


def _apply_groups(context: ssl.SSLContext, groups: str) -> None:
    ffi.clear_errors()
    try:
        raw = groups.encode("ascii")
    except UnicodeEncodeError:
        raw = None
    ok = (
        raw is not None
        and b"\0" not in raw
        and ffi.libs().ssl.SSL_CTX_ctrl(ffi.ctx_ptr(context), ffi.SSL_CTRL_SET_GROUPS_LIST, 0, raw) == 1
    )
    if not ok:
        reason = ffi.errmessage_ext(ffi.first_error(), "No valid groups found")
        raise TlsConfigError(f"could not set group names specified in ssl_groups: {reason}", hint=GROUPS_HINT)


def _apply_ciphers(context: ssl.SSLContext, tls12: str, tls13: str, prefer_server: bool) -> None:
    try:
        context.set_ciphers(tls12)
    except (ssl.SSLError, ValueError):
        raise TlsConfigError("could not set the TLSv1.2 cipher list (no valid ciphers available)") from None
    if tls13:
        ffi.clear_errors()
        try:
            raw = tls13.encode("ascii")
        except UnicodeEncodeError:
            raw = b""
        if not raw or b"\0" in raw or ffi.libs().ssl.SSL_CTX_set_ciphersuites(ffi.ctx_ptr(context), raw) != 1:
            ffi.clear_errors()
            raise TlsConfigError("could not set the TLSv1.3 cipher suites (no valid ciphers available)")
    # CPython turns server preference on by default; PostgreSQL leaves it to the setting.
    if prefer_server:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE


def _apply_ca(context: ssl.SSLContext, path: Path, shown: str) -> None:
    lib = ffi.libs().ssl
    ctx = ffi.ctx_ptr(context)
    ffi.clear_errors()
    names = 0
    if lib.SSL_CTX_load_verify_locations(ctx, _c_path(path), None) == 1:
        names = lib.SSL_load_client_CA_file(_c_path(path)) or 0
    if not names:
        raise TlsConfigError(
            f'could not load root certificate file "{shown}": {ffi.errmessage(ffi.first_error())}'
        )
    ffi.clear_errors()
    lib.SSL_CTX_set_client_CA_list(ctx, names)  # the context owns the list from here on
    handshake.install_verify(context)


def _apply_crl(context: ssl.SSLContext, data_dir: Path, crl_file: str, crl_dir: str) -> None:
    lib = ffi.libs()
    store = lib.ssl.SSL_CTX_get_cert_store(ffi.ctx_ptr(context))
    if not store:
        return
    ffi.clear_errors()
    file_arg = _c_path(_resolve(data_dir, crl_file)) if crl_file else None
    dir_arg = _c_path(_resolve(data_dir, crl_dir)) if crl_dir else None
    if lib.crypto.X509_STORE_load_locations(store, file_arg, dir_arg) == 1:
        lib.crypto.X509_STORE_set_flags(store, ffi.X509_V_FLAG_CRL_CHECK | ffi.X509_V_FLAG_CRL_CHECK_ALL)
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_CHAIN
        return
    reason = ffi.errmessage(ffi.first_error())
    if not crl_dir:
        raise TlsConfigError(f'could not load SSL certificate revocation list file "{crl_file}": {reason}')
    if not crl_file:
        raise TlsConfigError(
            f'could not load SSL certificate revocation list directory "{crl_dir}": {reason}'
        )
    raise TlsConfigError(
        f'could not load SSL certificate revocation list file "{crl_file}" or directory "{crl_dir}": {reason}'
    )


def channel_binding_hash_name(leaf_der: bytes) -> str | None:
    """hashlib name for tls-server-end-point (RFC 5929 §4.1; PostgreSQL ``be_tls_get_certificate_hash``).

    The hash of the certificate's signature algorithm (RSA-PSS: its hash
    parameter), MD5/SHA-1 upgraded to SHA-256; None when the signature has no
    separate digest (Ed25519, Ed448).
    """
    lib = ffi.libs().crypto
    md_nid = ctypes.c_int(0)
    with ffi.X509Ref(leaf_der) as x509:
        if not lib.X509_get_signature_info(x509.ptr, ctypes.byref(md_nid), None, None, None):
            ffi.first_error()
            return None
    if md_nid.value == ffi.NID_undef:
        return None
    sn = lib.OBJ_nid2sn(md_nid.value)
    name = (sn or b"").decode("ascii").lower().replace("-", "_")
    if name in ("md5", "sha1"):
        return "sha256"
    try:
        hashlib.new(name)
    except ValueError:
        return None
    return name


def build_tls_config(
    settings: Mapping[str, object], data_dir: Path, *, is_start: bool, interactive: bool = False
) -> TlsConfig:
    """Build a fresh server context from ssl_* settings (file names relative to ``data_dir``).

    Raises :class:`TlsConfigError`; the caller logs it at FATAL (start) or LOG
    followed by ``SSL configuration was not reloaded`` (reload).
    """
    try:
        ffi.libs()
    except ffi.FfiError as e:
        raise TlsConfigError(f"could not create SSL context: {e}") from None
    data_dir = Path(data_dir)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE

    chain, passphrase_used = _load_cert_and_key(
        context, settings, data_dir, is_start=is_start, interactive=interactive
    )
    protocol_range = _apply_protocols(context, settings)
    _harden(context)

    dh_setting = _text(settings, "ssl_dh_params_file")
    notices = dh.apply_dh(
        ffi.ctx_ptr(context),
        _resolve(data_dir, dh_setting) if dh_setting else None,
        dh_setting,
        is_start=is_start,
    )
    _apply_groups(context, _groups(settings))
    _apply_ciphers(
        context,
        _text(settings, "ssl_ciphers"),
        _text(settings, "ssl_tls13_ciphers"),
        _flag(settings, "ssl_prefer_server_ciphers"),
    )

    ca_shown = _text(settings, "ssl_ca_file")
    if ca_shown:
        _apply_ca(context, _resolve(data_dir, ca_shown), ca_shown)
    crl_file, crl_dir = _text(settings, "ssl_crl_file"), _text(settings, "ssl_crl_dir")
    if crl_file or crl_dir:
        _apply_crl(context, data_dir, crl_file, crl_dir)

    handshake.install_alpn(context)
    ffi.clear_errors()
    return TlsConfig(
        context=context,
        cert_chain=chain,
        leaf_der=chain[0],
        channel_binding_hash=channel_binding_hash_name(chain[0]),
        ca_loaded=bool(ca_shown),
        passphrase_used=passphrase_used,
        notices=tuple(notices),
        protocol_range=protocol_range,
    )


def channel_binding_data(config: TlsConfig) -> bytes | None:
    """H(DER of the server leaf) for SCRAM tls-server-end-point, or None when no hash is defined."""
    return config.channel_binding
