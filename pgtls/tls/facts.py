"""What an established TLS connection tells the rest of the server.

Mirrors the end of ``be_tls_open_server`` and the ``be_tls_get_*`` accessors
of be-secure-openssl.c: protocol version, cipher and its secret bits, the ALPN
protocol, and for a client certificate (present means verified: the handshake
succeeded) its common name, RFC 2253 DN, slash-format subject/issuer and
serial, plus sslinfo's field lookup.  Names with an embedded NUL are refused
(CVE-2009-4034) with :class:`PeerCertError`.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Literal

from pgtls.errors import INVALID_PARAMETER_VALUE, PgError
from pgtls.tls import ffi, names
from pgtls.tls.errors import PeerCertError


@dataclass(frozen=True)
class ConnectionFacts:
    version: str
    cipher: str
    bits: int
    alpn: str | None
    peer_cert_der: bytes | None  # client certificate presented (and so verified)
    peer_cn: str | None
    peer_dn: str | None  # RFC 2253 (XN_FLAG_RFC2253)
    client_dn: str | None  # slash format, truncated like pg_stat_ssl (63 bytes)
    issuer_dn: str | None  # slash format, truncated like pg_stat_ssl (63 bytes)
    client_serial: int | None

    def field(self, which: Literal["subject", "issuer"], name: str) -> str | None:
        """sslinfo ``ssl_client_dn_field`` / ``ssl_issuer_field``: first attribute named ``name``.

        OpenSSL short or long names (``CN``, ``commonName``, ``emailAddress``,
        ``O``, ...) or a dotted OID; an unknown name is ERROR 22023.
        """
        nid = names.field_nid(name)
        if nid == ffi.NID_undef:
            raise PgError(INVALID_PARAMETER_VALUE, f'invalid X.509 field name: "{name}"')
        if self.peer_cert_der is None:
            return None
        c = ffi.libs().crypto
        with ffi.X509Ref(self.peer_cert_der) as x509:
            name_ptr = (
                c.X509_get_subject_name(x509.ptr) if which == "subject" else c.X509_get_issuer_name(x509.ptr)
            )
            return names.field_value(name_ptr, nid)

    @property
    def peer_cert_valid(self) -> bool:
        return self.peer_cert_der is not None


@dataclass(frozen=True)
class PeerNames:
    cn: str | None
    dn: str
    subject_slash: str
    issuer_slash: str
    serial: int | None


def peer_names(der: bytes) -> PeerNames:
    """Names of a (verified) client certificate; :class:`PeerCertError` on an embedded NUL."""
    c = ffi.libs().crypto
    with ffi.X509Ref(der) as x509:
        subject = c.X509_get_subject_name(x509.ptr)
        cn_raw = names.common_name_bytes(subject)
        if cn_raw is not None and b"\0" in cn_raw:
            raise PeerCertError("SSL certificate's common name contains embedded null")
        dn_raw = names.rfc2253_bytes(subject)
        if b"\0" in dn_raw:
            raise PeerCertError("SSL certificate's distinguished name contains embedded null")
        serial = names.serial_decimal(x509.ptr)
        return PeerNames(
            # Lossless, as the startup packet's user name: PostgreSQL compares the CN with it as bytes.
            cn=None if cn_raw is None else cn_raw.decode("utf-8", "surrogateescape"),
            dn=dn_raw.decode("utf-8", "surrogateescape"),
            subject_slash=names.slash(subject),
            issuer_slash=names.slash(c.X509_get_issuer_name(x509.ptr)),
            serial=int(serial) if serial is not None else None,
        )


def connection_facts(sslobj: ssl.SSLObject | ssl.SSLSocket) -> ConnectionFacts:
    """Facts of a connection whose server handshake has completed."""
    cipher = sslobj.cipher()
    if cipher is None:
        raise ValueError("the TLS handshake has not completed")
    der = sslobj.getpeercert(binary_form=True)
    peer = peer_names(der) if der else None
    return ConnectionFacts(
        version=sslobj.version() or cipher[1],
        cipher=cipher[0],
        bits=int(cipher[2]),
        alpn=sslobj.selected_alpn_protocol(),
        peer_cert_der=der or None,
        peer_cn=peer.cn if peer else None,
        peer_dn=peer.dn if peer else None,
        client_dn=names.truncate_name(peer.subject_slash) if peer else None,
        issuer_dn=names.truncate_name(peer.issuer_slash) if peer else None,
        client_serial=peer.serial if peer else None,
    )
