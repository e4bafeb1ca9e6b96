"""X.509 names printed the way PostgreSQL prints them, by OpenSSL itself.

* RFC 2253 (``X509_NAME_print_ex`` with ``XN_FLAG_RFC2253``): the peer DN used
  for ``clientname=DN``, cert-auth identities and pg_ident ``dn`` maps.
* "slash" format (be-secure-openssl.c ``X509_NAME_to_cstring``): ``/SN=value``
  per attribute in DER order, values escaped per RFC 2253 except that
  non-ASCII stays raw UTF-8; used by pg_stat_ssl, sslinfo and the
  verify-failure log DETAIL.
* ``prepare_cert_name``: the log-safe form of a slash name (keep the last 71
  bytes, mark the cut with ``...``, hex-escape non-printable bytes).
* sslinfo's ``X509_NAME_field_to_text`` lookup by OpenSSL short/long name.

Functions here take borrowed ``X509 *`` / ``X509_NAME *`` pointers; the
DER-level wrappers live in :mod:`pgtls.tls.facts`.
"""

from __future__ import annotations

import ctypes

from pgtls.protocol.limits import NAMEDATALEN
from pgtls.tls import ffi

# ASN1_STRFLGS_* / XN_FLAG_* (OpenSSL asn1.h, x509.h)
ASN1_STRFLGS_ESC_MSB = 0x04
ASN1_STRFLGS_UTF8_CONVERT = 0x10
ASN1_STRFLGS_RFC2253 = 0x01 | 0x02 | 0x04 | 0x10 | 0x100 | 0x200
# XN_FLAG_SEP_COMMA_PLUS | XN_FLAG_DN_REV | XN_FLAG_FN_SN (0) | XN_FLAG_DUMP_UNKNOWN_FIELDS
XN_FLAG_RFC2253 = ASN1_STRFLGS_RFC2253 | (1 << 16) | (1 << 20) | (1 << 24)
SLASH_VALUE_FLAGS = (ASN1_STRFLGS_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) | ASN1_STRFLGS_UTF8_CONVERT

# Common Names are at most 64 characters; ".../CN=" + 64 fits in 71 (prepare_cert_name).
LOG_NAME_MAX = 71
# pg_stat_ssl / sslinfo copy names into a NAMEDATALEN (64) buffer.


def rfc2253_bytes(name: int) -> bytes:
    """The RFC 2253 rendering of an ``X509_NAME *`` as raw bytes (may contain NUL, checked by the caller)."""
    with ffi.MemBio() as bio:
        if ffi.libs().crypto.X509_NAME_print_ex(bio.ptr, name, 0, XN_FLAG_RFC2253) == -1:
            ffi.first_error()
            raise ValueError("could not print distinguished name")
        return bio.data()


def _entry_field_name(entry: int) -> str:
    c = ffi.libs().crypto
    nid = c.OBJ_obj2nid(c.X509_NAME_ENTRY_get_object(entry))
    if nid == ffi.NID_undef:
        raise ValueError("could not get NID for ASN1_OBJECT object")
    sn: bytes | None = c.OBJ_nid2sn(nid) or c.OBJ_nid2ln(nid)
    if sn is None:
        raise ValueError(f"could not convert NID {nid} to an ASN1_OBJECT structure")
    return sn.decode("ascii", "replace")


def _string_bytes(asn1_string: int) -> bytes:
    with ffi.MemBio() as bio:
        ffi.libs().crypto.ASN1_STRING_print_ex(bio.ptr, asn1_string, SLASH_VALUE_FLAGS)
        return bio.data()


def slash_bytes(name: int) -> bytes:
    """``X509_NAME_to_cstring``: ``/SN=value`` for each attribute in DER order (raw UTF-8 bytes)."""
    c = ffi.libs().crypto
    parts: list[bytes] = []
    for i in range(c.X509_NAME_entry_count(name)):
        entry = c.X509_NAME_get_entry(name, i)
        parts.append(
            b"/" + _entry_field_name(entry).encode() + b"=" + _string_bytes(c.X509_NAME_ENTRY_get_data(entry))
        )
    return b"".join(parts)


def slash(name: int) -> str:
    return _to_text(slash_bytes(name))


def _to_text(raw: bytes) -> str:
    # The C string ends at the first NUL, as in PostgreSQL.
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def truncate_name(text: str, limit: int = NAMEDATALEN - 1) -> str:
    """strlcpy into a NAMEDATALEN buffer: at most 63 bytes, cut at a character boundary."""
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    return raw[:limit].decode("utf-8", "ignore")


def prepare_cert_name(raw: bytes) -> str:
    """The log-safe form of a slash name (be-secure-openssl.c ``prepare_cert_name``)."""
    raw = raw.split(b"\0", 1)[0]
    if len(raw) > LOG_NAME_MAX:
        raw = b"..." + raw[len(raw) - LOG_NAME_MAX + 3 :]
    return "".join(chr(b) if 0x20 <= b <= 0x7E else f"\\x{b:02x}" for b in raw)


def field_nid(field_name: str) -> int:
    """``OBJ_txt2nid``: an OpenSSL short name, long name or dotted OID; ``NID_undef`` (0) if unknown."""
    try:
        raw = field_name.encode("utf-8")
    except UnicodeEncodeError:
        return ffi.NID_undef
    if b"\0" in raw:
        return ffi.NID_undef
    return int(ffi.libs().crypto.OBJ_txt2nid(raw))


def field_value(name: int, nid: int) -> str | None:
    """Value of the first attribute with ``nid`` (sslinfo ``X509_NAME_field_to_text``), or None."""
    c = ffi.libs().crypto
    index = c.X509_NAME_get_index_by_NID(name, nid, -1)
    if index < 0:
        return None
    return _to_text(_string_bytes(c.X509_NAME_ENTRY_get_data(c.X509_NAME_get_entry(name, index))))


def common_name_bytes(name: int) -> bytes | None:
    """Raw bytes of the first commonName (``X509_NAME_get_text_by_NID``), or None when absent."""
    c = ffi.libs().crypto
    n = c.X509_NAME_get_text_by_NID(name, ffi.NID_commonName, None, 0)
    if n < 0:
        return None
    buf = ctypes.create_string_buffer(n + 1)
    r = c.X509_NAME_get_text_by_NID(name, ffi.NID_commonName, ctypes.addressof(buf), n + 1)
    if r != n:
        raise ValueError("could not read the certificate's common name")
    return buf.raw[:n]


def serial_decimal(x509: int) -> str | None:
    """The serial number in decimal (``BN_bn2dec``), as the logs and pg_stat_ssl show it."""
    c = ffi.libs().crypto
    bn = c.ASN1_INTEGER_to_BN(c.X509_get0_serialNumber(x509), None)
    if not bn:
        return None
    try:
        return ffi.take_cstring(c.BN_bn2dec(bn))
    finally:
        c.BN_free(bn)
