"""The libssl/libcrypto entry points Python 3.11's ``ssl`` module does not expose.

PostgreSQL's ``be-secure-openssl.c`` configures an ``SSL_CTX`` with calls that
CPython's ``ssl.SSLContext`` has no setter for (TLS 1.3 ciphersuites, group
lists, a verify callback, the CertificateRequest CA list, CRL stores) and reads
OpenSSL's *first* queued error where CPython reports the last one.  This module
reaches the very same libraries through :mod:`ctypes`:

* the libraries are found among the objects already mapped into this process
  (``/proc/self/maps``) after ``_ssl`` is imported, and must report the same
  version number as :data:`ssl.OPENSSL_VERSION_NUMBER` — never a guessed name
  that could load a second, different OpenSSL;
* ``SSL_CTX *`` and ``SSL *`` pointers are read from CPython's object layout
  (``PySSLContext``: ``PyObject_HEAD; SSL_CTX *ctx``; ``PySSLSocket``:
  ``PyObject_HEAD; PyObject *Socket; SSL *ssl``), and each layout is checked
  against values set through the public Python API before it is relied on.

Nothing outside ``pgtls.tls`` imports this module.
"""

from __future__ import annotations

import ctypes
import os
import ssl
import subprocess
import sys
import threading
from dataclasses import dataclass

c_void_p = ctypes.c_void_p
c_char_p = ctypes.c_char_p
c_int = ctypes.c_int
c_long = ctypes.c_long
c_ulong = ctypes.c_ulong
c_uint64 = ctypes.c_uint64

# --- constants from OpenSSL 3.0 headers ----------------------------------------------------------

SSL_VERIFY_PEER = 0x01
SSL_VERIFY_CLIENT_ONCE = 0x04
SSL_FILETYPE_PEM = 1
SSL_CTRL_SET_TMP_DH = 3
SSL_CTRL_MODE = 33
SSL_CTRL_SET_SESS_CACHE_MODE = 44
SSL_CTRL_GET_CHAIN_CERTS = 82
SSL_CTRL_SET_GROUPS_LIST = 92
SSL_CTRL_SET_MIN_PROTO_VERSION = 123
SSL_CTRL_SET_MAX_PROTO_VERSION = 124
SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER = 0x2
SSL_SESS_CACHE_OFF = 0x0
SSL_TLSEXT_ERR_OK = 0
SSL_TLSEXT_ERR_ALERT_FATAL = 2
BIO_CTRL_INFO = 3
X509_V_FLAG_CRL_CHECK = 0x4
X509_V_FLAG_CRL_CHECK_ALL = 0x8
DH_CHECK_P_NOT_PRIME = 0x01
DH_CHECK_P_NOT_SAFE_PRIME = 0x02
DH_NOT_SUITABLE_GENERATOR = 0x08
NID_undef = 0
NID_commonName = 13

# ERR_SYSTEM_ERROR / ERR_GET_REASON (OpenSSL 3.0 err.h macros)
_ERR_SYSTEM_FLAG = 0x80000000
_ERR_SYSTEM_MASK = 0x7FFFFFFF
_ERR_REASON_MASK = 0x7FFFFF

VERIFY_CB = ctypes.CFUNCTYPE(c_int, c_int, c_void_p)
PASSWD_CB = ctypes.CFUNCTYPE(c_int, c_void_p, c_int, c_int, c_void_p)
ALPN_SELECT_CB = ctypes.CFUNCTYPE(
    c_int,
    c_void_p,
    ctypes.POINTER(c_void_p),
    ctypes.POINTER(ctypes.c_ubyte),
    c_void_p,
    ctypes.c_uint,
    c_void_p,
)


class FfiError(RuntimeError):
    """The OpenSSL used by Python's ssl module cannot be reached safely."""


@dataclass(frozen=True)
class Libs:
    ssl: ctypes.CDLL
    crypto: ctypes.CDLL
    ssl_path: str
    crypto_path: str


_libs: Libs | None = None
_libs_lock = threading.Lock()


def _mapped_paths(prefix: str) -> list[str]:
    seen: list[str] = []
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                parts = line.split(None, 5)
                if len(parts) < 6:
                    continue
                path = parts[5].strip()
                if os.path.basename(path).startswith(prefix) and path not in seen:
                    seen.append(path)
    except OSError as e:
        raise FfiError(f"could not read /proc/self/maps: {e.strerror}") from e
    return seen


def _open_matching(prefix: str, version_fn: str) -> tuple[ctypes.CDLL, str]:
    import _ssl  # noqa: F401  (maps the libraries _ssl is linked against)

    for path in _mapped_paths(prefix):
        lib = ctypes.CDLL(path)
        fn = getattr(lib, version_fn, None)
        if fn is None:
            continue
        fn.restype = c_ulong
        fn.argtypes = []
        if fn() == ssl.OPENSSL_VERSION_NUMBER:
            return lib, path
    raise FfiError(
        f"could not find the {prefix} library of Python's ssl module ({ssl.OPENSSL_VERSION}) among the loaded objects"
    )


def _proto(lib: ctypes.CDLL, name: str, restype: object, *argtypes: object) -> None:
    fn = getattr(lib, name)
    fn.restype = restype
    fn.argtypes = list(argtypes)


def _declare(s: ctypes.CDLL, c: ctypes.CDLL) -> None:
    vp, cp, i, ul = c_void_p, c_char_p, c_int, c_ulong
    # libssl
    _proto(s, "SSL_CTX_ctrl", c_long, vp, i, c_long, vp)
    _proto(s, "SSL_CTX_get_options", c_uint64, vp)
    _proto(s, "SSL_CTX_get_verify_mode", i, vp)
    _proto(s, "SSL_CTX_set_verify", None, vp, i, VERIFY_CB)
    _proto(s, "SSL_CTX_set_ciphersuites", i, vp, cp)
    _proto(s, "SSL_CTX_use_certificate_chain_file", i, vp, cp)
    _proto(s, "SSL_CTX_use_PrivateKey_file", i, vp, cp, i)
    _proto(s, "SSL_CTX_check_private_key", i, vp)
    _proto(s, "SSL_CTX_set_default_passwd_cb", None, vp, PASSWD_CB)
    _proto(s, "SSL_CTX_set_default_passwd_cb_userdata", None, vp, vp)
    _proto(s, "SSL_CTX_load_verify_locations", i, vp, cp, cp)
    _proto(s, "SSL_load_client_CA_file", vp, cp)
    _proto(s, "SSL_CTX_set_client_CA_list", None, vp, vp)
    _proto(s, "SSL_CTX_get_cert_store", vp, vp)
    _proto(s, "SSL_CTX_get0_certificate", vp, vp)
    _proto(s, "SSL_CTX_set_alpn_select_cb", None, vp, ALPN_SELECT_CB, vp)
    _proto(s, "SSL_get_SSL_CTX", vp, vp)
    _proto(s, "SSL_set_verify", None, vp, i, VERIFY_CB)
    _proto(s, "SSL_get_peer_cert_chain", vp, vp)
    _proto(s, "SSL_ctrl", c_long, vp, i, c_long, vp)
    _proto(s, "SSL_get_ex_data", vp, vp, i)
    _proto(s, "SSL_get_ex_data_X509_STORE_CTX_idx", i)
    # libcrypto: errors
    _proto(c, "ERR_get_error", ul)
    _proto(c, "ERR_clear_error", None)
    _proto(c, "ERR_reason_error_string", cp, ul)
    # stores, X509, names
    _proto(c, "X509_STORE_load_locations", i, vp, cp, cp)
    _proto(c, "X509_STORE_set_flags", i, vp, ul)
    _proto(c, "X509_STORE_CTX_get_ex_data", vp, vp, i)
    _proto(c, "X509_STORE_CTX_get_error", i, vp)
    _proto(c, "X509_STORE_CTX_get_error_depth", i, vp)
    _proto(c, "X509_STORE_CTX_get_current_cert", vp, vp)
    _proto(c, "X509_verify_cert_error_string", cp, c_long)
    _proto(c, "d2i_X509", vp, vp, ctypes.POINTER(c_void_p), c_long)
    _proto(c, "i2d_X509", i, vp, ctypes.POINTER(c_void_p))
    _proto(c, "X509_free", None, vp)
    _proto(c, "X509_get_subject_name", vp, vp)
    _proto(c, "X509_get_issuer_name", vp, vp)
    _proto(c, "X509_get0_serialNumber", vp, vp)
    _proto(c, "X509_get_signature_info", i, vp, ctypes.POINTER(c_int), ctypes.POINTER(c_int), vp, vp)
    _proto(c, "X509_NAME_print_ex", i, vp, vp, i, ul)
    _proto(c, "X509_NAME_entry_count", i, vp)
    _proto(c, "X509_NAME_get_entry", vp, vp, i)
    _proto(c, "X509_NAME_get_index_by_NID", i, vp, i, i)
    _proto(c, "X509_NAME_get_text_by_NID", i, vp, i, vp, i)
    _proto(c, "X509_NAME_ENTRY_get_object", vp, vp)
    _proto(c, "X509_NAME_ENTRY_get_data", vp, vp)
    _proto(c, "ASN1_STRING_print_ex", i, vp, vp, ul)
    _proto(c, "ASN1_INTEGER_to_BN", vp, vp, vp)
    _proto(c, "BN_bn2dec", vp, vp)
    _proto(c, "BN_free", None, vp)
    _proto(c, "CRYPTO_free", None, vp, cp, i)
    _proto(c, "OBJ_obj2nid", i, vp)
    _proto(c, "OBJ_txt2nid", i, cp)
    _proto(c, "OBJ_nid2sn", cp, i)
    _proto(c, "OBJ_nid2ln", cp, i)
    _proto(c, "OPENSSL_sk_num", i, vp)
    _proto(c, "OPENSSL_sk_value", vp, vp, i)
    # BIO
    _proto(c, "BIO_s_mem", vp)
    _proto(c, "BIO_new", vp, vp)
    _proto(c, "BIO_new_mem_buf", vp, vp, i)
    _proto(c, "BIO_free", i, vp)
    _proto(c, "BIO_ctrl", c_long, vp, i, c_long, vp)
    # DH (deprecated in 3.0 but present; PostgreSQL uses the same calls)
    _proto(c, "PEM_read_bio_DHparams", vp, vp, vp, vp, vp)
    _proto(c, "DH_check", i, vp, ctypes.POINTER(c_int))
    _proto(c, "DH_free", None, vp)
    _proto(c, "BN_get_rfc3526_prime_2048", vp, vp)
    _proto(c, "BN_new", vp)
    _proto(c, "BN_set_word", i, vp, ul)
    _proto(c, "DH_new", vp)
    _proto(c, "DH_set0_pqg", i, vp, vp, vp, vp)


# Where pgtls reads CPython's object layout: CPython 3.11 to 3.14 on Linux, with OpenSSL 3.
SUPPORTED = "CPython 3.11-3.14 on Linux with OpenSSL 3.x"
_PROBE_ENV = "PGTLS_FFI_PROBE_CHILD"
# How long the probe in a child process may take (it imports ssl, loads the libraries, checks one context).
PROBE_TIMEOUT = 60


def _probe_in_child() -> None:
    """Do the layout check first in a child process: if this Python keeps its objects elsewhere, the child
    may crash (a bad pointer read is a segfault, not an exception); the server then fails cleanly."""
    if os.environ.get(_PROBE_ENV) == "1":
        return
    env = dict(os.environ, **{_PROBE_ENV: "1"})
    try:
        p = subprocess.run(
            [sys.executable, "-c", "import pgtls.tls.ffi as f; f.libs()"],
            env=env,
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
        )
    except (OSError, subprocess.SubprocessError) as e:
        raise FfiError(f"could not probe OpenSSL's objects in a child process: {e}") from None
    if p.returncode != 0:
        how = f"signal {-p.returncode}" if p.returncode < 0 else f"exit code {p.returncode}"
        last = (p.stderr.strip().splitlines() or [""])[-1]
        raise FfiError(
            f"this Python's ssl module cannot be reached safely (the probe ended with {how}: {last}); "
            f"pgtls supports {SUPPORTED}"
        )


def libs() -> Libs:
    """The libssl/libcrypto pair Python's ``_ssl`` uses, loaded once and layout-checked (first in a child
    process, then here)."""
    global _libs
    if _libs is None:
        with _libs_lock:
            if _libs is None:
                _probe_in_child()
                s, sp = _open_matching("libssl.so", "OpenSSL_version_num")
                c, cpath = _open_matching("libcrypto.so", "OpenSSL_version_num")
                _declare(s, c)
                candidate = Libs(s, c, sp, cpath)
                _check_context_layout(candidate)
                _libs = candidate
    return _libs


# --- CPython object layout ---------------------------------------------------------------------

_PTR = ctypes.sizeof(c_void_p)
_CTX_OFFSET = object.__basicsize__  # PySSLContext: PyObject_HEAD, SSL_CTX *ctx
_SSL_OFFSET = object.__basicsize__ + _PTR  # PySSLSocket: PyObject_HEAD, PyObject *Socket, SSL *ssl


def _raw_ctx_ptr(context: ssl.SSLContext) -> int:
    value = c_void_p.from_address(id(context) + _CTX_OFFSET).value
    if not value:
        raise FfiError("ssl.SSLContext holds no SSL_CTX")
    return value


def _check_context_layout(lib: Libs) -> None:
    """Prove the SSL_CTX* offset on a scratch context: options and verify mode must round-trip."""
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ptr = _raw_ctx_ptr(probe)
    for verify_mode, expected in ((ssl.CERT_OPTIONAL, SSL_VERIFY_PEER), (ssl.CERT_NONE, 0)):
        probe.verify_mode = verify_mode
        probe.options |= ssl.OP_NO_TICKET
        if (
            lib.ssl.SSL_CTX_get_options(ptr) != int(probe.options)
            or lib.ssl.SSL_CTX_get_verify_mode(ptr) != expected
        ):
            raise FfiError(
                "the SSL_CTX pointer of ssl.SSLContext is not where this Python build was expected to keep it"
            )


def ctx_ptr(context: ssl.SSLContext) -> int:
    """The ``SSL_CTX *`` of an :class:`ssl.SSLContext` (the context must stay alive while it is used)."""
    libs()
    if not isinstance(context, ssl.SSLContext):
        raise TypeError("expected an ssl.SSLContext")
    return _raw_ctx_ptr(context)


def ssl_ptr(sslobj: ssl.SSLObject) -> int:
    """The ``SSL *`` of an :class:`ssl.SSLObject`, verified before use.

    CPython stores the ``PySSLSocket`` itself as the SSL's app data (ex_data
    index 0) and the SSL must belong to the object's context; both are checked,
    so a different struct layout fails loudly instead of reading garbage.
    """
    lib = libs()
    inner = getattr(sslobj, "_sslobj", None)
    if inner is None:
        raise FfiError("SSLObject has no underlying _ssl._SSLSocket")
    ptr = c_void_p.from_address(id(inner) + _SSL_OFFSET).value
    if not ptr:
        raise FfiError("SSLObject holds no SSL")
    if lib.ssl.SSL_get_ex_data(ptr, 0) != id(inner) or lib.ssl.SSL_get_SSL_CTX(ptr) != ctx_ptr(
        sslobj.context
    ):
        raise FfiError(
            "the SSL pointer of ssl.SSLObject is not where this Python build was expected to keep it"
        )
    return ptr


# --- errors and memory BIOs --------------------------------------------------------------------


def clear_errors() -> None:
    libs().crypto.ERR_clear_error()


def first_error() -> int:
    """``ERR_get_error()``: the oldest queued error (what PostgreSQL reports); the rest are discarded."""
    lib = libs()
    code = int(lib.crypto.ERR_get_error())
    lib.crypto.ERR_clear_error()
    return code


def errmessage(code: int) -> str:
    """PostgreSQL's ``SSLerrmessage()``: reason string, else strerror for system errors, else the number."""
    if code == 0:
        return "no SSL error reported"
    reason: bytes | None = libs().crypto.ERR_reason_error_string(code)
    if reason is not None:
        return reason.decode("utf-8", "replace")
    if code & _ERR_SYSTEM_FLAG:
        return os.strerror(code & _ERR_SYSTEM_MASK)
    return f"SSL error code {code}"


def errmessage_ext(code: int, replacement: str) -> str:
    """``SSLerrmessageExt()``: like :func:`errmessage` but with a replacement when nothing was queued."""
    return replacement if code == 0 else errmessage(code)


def err_reason(code: int) -> int:
    return code & (_ERR_SYSTEM_MASK if code & _ERR_SYSTEM_FLAG else _ERR_REASON_MASK)


class MemBio:
    """An OpenSSL memory BIO, used as an output buffer for the printing functions."""

    def __init__(self) -> None:
        c = libs().crypto
        self._c = c
        self.ptr = c.BIO_new(c.BIO_s_mem())
        if not self.ptr:
            raise MemoryError("could not create BIO")

    def data(self) -> bytes:
        buf = c_void_p()
        n = self._c.BIO_ctrl(self.ptr, BIO_CTRL_INFO, 0, ctypes.byref(buf))
        return ctypes.string_at(buf.value, n) if n > 0 and buf.value else b""

    def close(self) -> None:
        if self.ptr:
            self._c.BIO_free(self.ptr)
            self.ptr = None

    def __enter__(self) -> MemBio:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def take_cstring(ptr: int | None) -> str | None:
    """Copy an OpenSSL-allocated C string and free it (``OPENSSL_free``)."""
    if not ptr:
        return None
    try:
        return ctypes.string_at(ptr).decode("ascii", "replace")
    finally:
        libs().crypto.CRYPTO_free(ptr, b"pgtls", 0)


class X509Ref:
    """An owned ``X509 *`` decoded from DER (freed on close)."""

    def __init__(self, der: bytes) -> None:
        c = libs().crypto
        self._c = c
        buf = ctypes.create_string_buffer(der, len(der))
        p = c_void_p(ctypes.addressof(buf))
        self.ptr = c.d2i_X509(None, ctypes.byref(p), len(der))
        if not self.ptr:
            first_error()
            raise ValueError("could not decode certificate")

    def close(self) -> None:
        if self.ptr:
            self._c.X509_free(self.ptr)
            self.ptr = None

    def __enter__(self) -> X509Ref:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def x509_der(x509: int) -> bytes:
    """``i2d_X509`` of a borrowed ``X509 *``."""
    c = libs().crypto
    n = c.i2d_X509(x509, None)
    if n <= 0:
        raise ValueError("could not encode certificate")
    buf = ctypes.create_string_buffer(n)
    p = c_void_p(ctypes.addressof(buf))
    c.i2d_X509(x509, ctypes.byref(p))
    return buf.raw[:n]


def stack_items(sk: int | None) -> list[int]:
    if not sk:
        return []
    c = libs().crypto
    return [c.OPENSSL_sk_value(sk, i) for i in range(c.OPENSSL_sk_num(sk))]


# --- setters CPython 3.11 lacks (usable on client contexts too) -----------------------------------


def _ascii(value: str, what: str) -> bytes:
    raw = value.encode("ascii")
    if b"\0" in raw:
        raise ValueError(f"{what} must not contain NUL")
    return raw


def _set_natively(context: ssl.SSLContext, method: str, value: str, what: str) -> bool:
    """``context.<method>(value)`` where this Python's SSLContext has the method (3.15): True once done,
    ValueError (with OpenSSL's reason) when OpenSSL refuses; False where the method does not exist."""
    native = getattr(context, method, None)
    if native is None:
        return False
    try:
        native(value)
    except ssl.SSLError as e:
        raise ValueError(f"could not set {what}: {e.reason or e}") from None
    return True


def set_tls13_ciphersuites(context: ssl.SSLContext, suites: str) -> None:
    """``SSL_CTX_set_ciphersuites``; ValueError (with OpenSSL's reason) when nothing valid remains.

    Python 3.15's ``SSLContext.set_ciphersuites`` is used where it exists."""
    if _set_natively(context, "set_ciphersuites", suites, "TLS 1.3 ciphersuites"):
        return
    lib = libs()
    clear_errors()
    if lib.ssl.SSL_CTX_set_ciphersuites(ctx_ptr(context), _ascii(suites, "ciphersuites")) != 1:
        raise ValueError(f"could not set TLS 1.3 ciphersuites: {errmessage(first_error())}")


def set_groups(context: ssl.SSLContext, groups: str) -> None:
    """``SSL_CTX_set1_groups_list``; ValueError (with OpenSSL's reason) for an unusable list.

    Python 3.15's ``SSLContext.set_groups`` is used where it exists."""
    if _set_natively(context, "set_groups", groups, "groups"):
        return
    lib = libs()
    clear_errors()
    if lib.ssl.SSL_CTX_ctrl(ctx_ptr(context), SSL_CTRL_SET_GROUPS_LIST, 0, _ascii(groups, "groups")) != 1:
        raise ValueError(f"could not set groups: {errmessage_ext(first_error(), 'No valid groups found')}")
