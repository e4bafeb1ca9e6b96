"""Ephemeral DH parameters (be-secure-openssl.c ``initialize_dh`` / ``load_dh_file``).

ssl_dh_params_file, when set, must hold PEM DH parameters that pass
``DH_check``; otherwise the built-in 2048-bit MODP group of RFC 3526 (the
group PostgreSQL compiles in as FILE_DH2048) is used.  A bad file is fatal at
server start; at reload it is reported and the built-in group is used, as in
PostgreSQL.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from pgtls.tls import ffi
from pgtls.tls.errors import TlsConfigError


def builtin_dh() -> int:
    """A new ``DH *`` for RFC 3526 group 14 (2048-bit MODP, generator 2), from OpenSSL's own constant."""
    c = ffi.libs().crypto
    p = c.BN_get_rfc3526_prime_2048(None)
    g = c.BN_new()
    dh: int | None = c.DH_new()  # c_void_p: NULL is None
    if p and g and dh and c.BN_set_word(g, 2) == 1 and c.DH_set0_pqg(dh, p, None, g) == 1:
        return dh  # the DH owns p and g now
    for bn in (p, g):
        if bn:
            c.BN_free(bn)
    if dh:
        c.DH_free(dh)
    ffi.first_error()
    raise TlsConfigError("DH: could not load DH parameters")


def _read_pem(pem: bytes) -> int:
    c = ffi.libs().crypto
    buf = ctypes.create_string_buffer(pem, len(pem))
    bio = c.BIO_new_mem_buf(ctypes.addressof(buf), len(pem))
    if not bio:
        raise MemoryError("could not create BIO")
    try:
        return c.PEM_read_bio_DHparams(bio, None, None, None) or 0
    finally:
        c.BIO_free(bio)


def _load_file(path: Path, shown: str) -> int:
    """A checked ``DH *`` from ``path``; raises TlsConfigError with PostgreSQL's wording."""
    c = ffi.libs().crypto
    try:
        pem = path.read_bytes()
    except OSError as e:
        raise TlsConfigError(
            f'could not open DH parameters file "{shown}": {os.strerror(e.errno or 0)}',
            sqlstate="58P01" if isinstance(e, FileNotFoundError) else "58030",
        ) from None
    ffi.clear_errors()
    dh = _read_pem(pem)
    if not dh:
        raise TlsConfigError(f"could not load DH parameters file: {ffi.errmessage(ffi.first_error())}")
    codes = ctypes.c_int(0)
    ffi.clear_errors()
    try:
        if c.DH_check(dh, ctypes.byref(codes)) == 0:
            raise TlsConfigError(f"invalid DH parameters: {ffi.errmessage(ffi.first_error())}")
        if codes.value & ffi.DH_CHECK_P_NOT_PRIME:
            raise TlsConfigError("invalid DH parameters: p is not prime")
        if codes.value & ffi.DH_NOT_SUITABLE_GENERATOR and codes.value & ffi.DH_CHECK_P_NOT_SAFE_PRIME:
            raise TlsConfigError("invalid DH parameters: neither suitable generator or safe prime")
    except TlsConfigError:
        c.DH_free(dh)
        raise
    return dh


def apply_dh(ctx: int, path: Path | None, shown: str, *, is_start: bool) -> list[TlsConfigError]:
    """Install DH parameters on ``ctx``; returns reload-time reports that did not stop the load."""
    c = ffi.libs().crypto
    notices: list[TlsConfigError] = []
    dh = 0
    if path is not None:
        try:
            dh = _load_file(path, shown)
        except TlsConfigError as e:
            if is_start:
                raise
            notices.append(e)
    if not dh:
        dh = builtin_dh()
    try:
        ffi.clear_errors()
        if ffi.libs().ssl.SSL_CTX_ctrl(ctx, ffi.SSL_CTRL_SET_TMP_DH, 0, dh) != 1:
            raise TlsConfigError(f"DH: could not set DH parameters: {ffi.errmessage(ffi.first_error())}")
    finally:
        c.DH_free(dh)
    return notices
