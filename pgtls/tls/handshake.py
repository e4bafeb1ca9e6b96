"""Per-handshake hooks: ALPN selection, client-certificate verify logging, accept-failure reports.

* ALPN (be-secure-openssl.c ``alpn_cb``): the server offers exactly
  ``postgresql``; a client whose ALPN list lacks it gets the fatal alert
  no_application_protocol (120).  CPython's own selector silently answers
  "no ALPN" instead, so our selector replaces it on the SSL_CTX.
* Verify callback (``verify_cb``): when OpenSSL rejects a client certificate
  the depth, reason, subject, serial and issuer of the failing certificate are
  recorded so the server can log
  ``Client certificate verification failed at depth %d: %s.`` and
  ``Failed certificate data (unverified): subject "%s", serial number %s, issuer "%s".``
  The verdict (``preverify_ok``) is returned unchanged.  Records are kept per
  connection object (CPython stores the owning ``_ssl._SSLSocket`` as the
  SSL's app data and that object's ``owner`` is the :class:`ssl.SSLObject`), in
  a weak mapping guarded by a lock, so concurrent handshakes in threads never
  see each other's failures and nothing outlives its connection.
* :func:`accept_error`: the ``could not accept SSL connection: %s`` report for
  a failed handshake, with the verify DETAIL and the protocol-version HINT.
"""

from __future__ import annotations

import ctypes
import re
import ssl
import threading
import weakref
from dataclasses import dataclass

from pgtls.tls import ffi, names

ALPN_PROTOCOL = b"postgresql"

_alpn_buffer = ctypes.create_string_buffer(ALPN_PROTOCOL, len(ALPN_PROTOCOL))
_failures: weakref.WeakKeyDictionary[object, str] = weakref.WeakKeyDictionary()
_failures_lock = threading.Lock()


def _alpn_select(ssl_: int, out: object, outlen: object, in_: int, inlen: int, arg: int) -> int:
    try:
        offered = ctypes.string_at(in_, inlen) if in_ and inlen else b""
        i = 0
        while i < len(offered):
            n = offered[i]
            proto = offered[i + 1 : i + 1 + n]
            if len(proto) != n:
                break
            if proto == ALPN_PROTOCOL:
                out[0] = ctypes.addressof(_alpn_buffer)  # type: ignore[index]
                outlen[0] = len(ALPN_PROTOCOL)  # type: ignore[index]
                return ffi.SSL_TLSEXT_ERR_OK
            i += 1 + n
    except BaseException:  # never unwind through OpenSSL
        pass
    return ffi.SSL_TLSEXT_ERR_ALERT_FATAL


def _owner_of(store_ctx: int) -> object | None:
    """The ssl.SSLObject (or SSLSocket) whose handshake is verifying ``store_ctx``."""
    lib = ffi.libs()
    ssl_ = lib.crypto.X509_STORE_CTX_get_ex_data(store_ctx, lib.ssl.SSL_get_ex_data_X509_STORE_CTX_idx())
    if not ssl_:
        return None
    app = lib.ssl.SSL_get_ex_data(ssl_, 0)
    # Only a PySSLSocket whose SSL* field points back at this SSL is dereferenced as a Python object.
    if not app or ctypes.c_void_p.from_address(app + ffi._SSL_OFFSET).value != ssl_:
        return None
    inner = ctypes.cast(ctypes.c_void_p(app), ctypes.py_object).value
    return getattr(inner, "owner", None)


def _describe_failure(store_ctx: int) -> str:
    c = ffi.libs().crypto
    depth = c.X509_STORE_CTX_get_error_depth(store_ctx)
    reason = (c.X509_verify_cert_error_string(c.X509_STORE_CTX_get_error(store_ctx)) or b"").decode(
        "utf-8", "replace"
    )
    text = f"Client certificate verification failed at depth {depth}: {reason}."
    cert = c.X509_STORE_CTX_get_current_cert(store_ctx)
    if cert:
        subject = names.prepare_cert_name(names.slash_bytes(c.X509_get_subject_name(cert)))
        issuer = names.prepare_cert_name(names.slash_bytes(c.X509_get_issuer_name(cert)))
        serial = names.serial_decimal(cert) or "unknown"
        text += f'\nFailed certificate data (unverified): subject "{subject}", serial number {serial}, issuer "{issuer}".'
    return text


def _verify(preverify_ok: int, store_ctx: int) -> int:
    if preverify_ok:
        return preverify_ok
    try:
        owner = _owner_of(store_ctx)
        if owner is not None:
            text = _describe_failure(store_ctx)
            with _failures_lock:
                _failures.setdefault(owner, text)  # the first failure is the one OpenSSL stops at
    except BaseException:  # never unwind through OpenSSL; the verdict stands regardless
        pass
    return preverify_ok


# Kept alive for the life of the process: every SSL_CTX we configure points at them.
VERIFY_CALLBACK = ffi.VERIFY_CB(_verify)
ALPN_CALLBACK = ffi.ALPN_SELECT_CB(_alpn_select)


def install_verify(context: ssl.SSLContext) -> None:
    """Request a client certificate (VERIFY_PEER | VERIFY_CLIENT_ONCE, not required) with our logging callback."""
    ffi.libs().ssl.SSL_CTX_set_verify(
        ffi.ctx_ptr(context), ffi.SSL_VERIFY_PEER | ffi.SSL_VERIFY_CLIENT_ONCE, VERIFY_CALLBACK
    )


def install_alpn(context: ssl.SSLContext) -> None:
    """Offer exactly ``postgresql``; refuse a client that offers ALPN without it (alert 120)."""
    context.set_alpn_protocols([ALPN_PROTOCOL.decode()])
    ffi.libs().ssl.SSL_CTX_set_alpn_select_cb(ffi.ctx_ptr(context), ALPN_CALLBACK, None)


def verify_failure(sslobj: ssl.SSLObject | ssl.SSLSocket) -> str | None:
    """The two-line verify-failure DETAIL recorded during this connection's handshake (and forget it)."""
    with _failures_lock:
        return _failures.pop(sslobj, None)


# --- accept failures -----------------------------------------------------------------------------

_PROTOCOL_REASONS = frozenset(
    {
        "NO_PROTOCOLS_AVAILABLE",
        "UNSUPPORTED_PROTOCOL",
        "BAD_PROTOCOL_VERSION_NUMBER",
        "UNKNOWN_PROTOCOL",
        "UNKNOWN_SSL_VERSION",
        "UNSUPPORTED_SSL_VERSION",
        "WRONG_SSL_VERSION",
        "WRONG_VERSION_NUMBER",
        "TLSV1_ALERT_PROTOCOL_VERSION",
        "VERSION_TOO_HIGH",
        "VERSION_TOO_LOW",
    }
)
_SSL_ERROR_TEXT = re.compile(r"^(?:\[[^\]]*\] )?(?P<text>.*?)(?: \(_ssl\.c:\d+\))?$", re.S)


@dataclass(frozen=True)
class AcceptError:
    """A log-only (08P01) report of a failed server handshake."""

    message: str
    detail: str | None = None
    hint: str | None = None
    sqlstate: str = "08P01"


def openssl_reason_text(exc: ssl.SSLError) -> str:
    """OpenSSL's reason string for an :class:`ssl.SSLError` (what ``SSLerrmessage`` prints)."""
    raw = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], str) else str(exc)
    m = _SSL_ERROR_TEXT.match(raw)
    text = m.group("text") if m else raw
    verify_message = getattr(exc, "verify_message", None)
    if (
        isinstance(exc, ssl.SSLCertVerificationError)
        and verify_message
        and text.endswith(": " + verify_message)
    ):
        text = text[: -len(verify_message) - 2]
    return text


def accept_error(
    exc: BaseException,
    sslobj: ssl.SSLObject | ssl.SSLSocket | None,
    protocol_range: tuple[str, str] = ("TLSv1", "TLSv1.3"),
) -> AcceptError:
    """``could not accept SSL connection: ...`` for a handshake that raised ``exc``.

    ``protocol_range`` is :attr:`TlsConfig.protocol_range` (for the version HINT).
    The verify DETAIL for ``sslobj`` is consumed.
    """
    detail = verify_failure(sslobj) if sslobj is not None else None
    if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        return AcceptError("could not accept SSL connection: EOF detected", detail)
    if isinstance(exc, ssl.SSLError):
        hint = None
        if (exc.reason or "") in _PROTOCOL_REASONS:
            hint = (
                "This may indicate that the client does not support any SSL protocol version between "
                f"{protocol_range[0]} and {protocol_range[1]}."
            )
        return AcceptError(f"could not accept SSL connection: {openssl_reason_text(exc)}", detail, hint)
    if isinstance(exc, OSError) and exc.strerror:
        return AcceptError(f"could not accept SSL connection: {exc.strerror}", detail, sqlstate="08006")
    return AcceptError("could not accept SSL connection: EOF detected", detail)
