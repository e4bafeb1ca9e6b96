"""Low-level X.509 building blocks: keys, CA and leaf certificates, CRLs, PEM files.

This module owns *how* a certificate is made (extensions, serials, validity); the
`pgtls cert` commands and the test certificate set are thin layers over it.  The
extension profiles follow §19.9.5 of the PostgreSQL manual: CAs carry the
``v3_ca`` profile (basicConstraints CA:TRUE critical, keyUsage keyCertSign and
cRLSign, subject key identifier), leaves carry serverAuth or clientAuth.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime as dt
import ipaddress
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KeyKind = Literal["ec", "rsa2048", "rsa3072", "rsa4096", "ed25519"]
KEY_KINDS: tuple[str, ...] = ("ec", "rsa2048", "rsa3072", "rsa4096", "ed25519")
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

# RFC 5280 allows serials of up to 20 octets; 159 random bits keep the DER
# integer positive and within that bound.
SERIAL_BITS = 159

_NAME_OIDS = {
    "CN": NameOID.COMMON_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "C": NameOID.COUNTRY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "L": NameOID.LOCALITY_NAME,
    "emailAddress": NameOID.EMAIL_ADDRESS,
}


def generate_key(kind: str = "ec") -> PrivateKey:
    """A new private key: ECDSA P-256 (default), RSA 2048/3072/4096 or Ed25519."""
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if kind.startswith("rsa") and kind[3:] in ("2048", "3072", "4096"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[3:]))
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unknown key type {kind!r} (choose one of {', '.join(KEY_KINDS)})")


def make_name(*attrs: tuple[str, str]) -> x509.Name:
    """A Name from (short name, value) pairs in DER order, e.g. ("O", "PGDG"), ("CN", "alice")."""
    out = []
    for short, value in attrs:
        oid = _NAME_OIDS.get(short)
        if oid is None:
            raise ValueError(f"unknown name attribute {short!r}")
        out.append(x509.NameAttribute(oid, value))
    return x509.Name(out)


def random_serial() -> int:
    return secrets.randbits(SERIAL_BITS) | 1


@dataclass(frozen=True)
class Issued:
    """A certificate together with its private key (the key may be absent for a CA loaded without it)."""

    cert: x509.Certificate
    key: PrivateKey | None


def _hash_for(key: PrivateKey) -> hashes.HashAlgorithm | None:
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def _window(
    days: int, not_before: dt.datetime | None, not_after: dt.datetime | None
) -> tuple[dt.datetime, dt.datetime]:
    start = not_before or (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))
    end = not_after or (start + dt.timedelta(days=days))
    return start, end


def _builder(
    subject: x509.Name,
    issuer_name: x509.Name,
    public_key: object,
    days: int,
    not_before: dt.datetime | None,
    not_after: dt.datetime | None,
    serial: int | None,
) -> x509.CertificateBuilder:
    start, end = _window(days, not_before, not_after)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(serial if serial is not None else random_serial())
        .not_valid_before(start)
        .not_valid_after(end)
    )


def _sign(
    builder: x509.CertificateBuilder, signer: Issued, hash_alg: hashes.HashAlgorithm | None
) -> x509.Certificate:
    if signer.key is None:
        raise ValueError("the issuing CA's private key is not available")
    alg = hash_alg if not isinstance(signer.key, ed25519.Ed25519PrivateKey) else None
    return builder.sign(signer.key, alg)  # type: ignore[arg-type]


def make_ca(
    subject: x509.Name,
    *,
    issuer: Issued | None = None,
    key: PrivateKey | None = None,
    key_kind: str = "ec",
    days: int = 3650,
    path_length: int | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    serial: int | None = None,
    v3_ca: bool = True,
) -> Issued:
    """A root (issuer=None) or intermediate CA with the v3_ca profile.

    ``v3_ca=False`` leaves out every extension (for tests of the checker's
    "intermediate without CA:TRUE" finding).
    """
    key = key or generate_key(key_kind)
    issuer_name = issuer.cert.subject if issuer else subject
    b = _builder(subject, issuer_name, key.public_key(), days, not_before, not_after, serial)
    if v3_ca:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        b = b.add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        if issuer is not None:
            b = b.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.cert.public_key()),  # type: ignore[arg-type]
                critical=False,
            )
    signer = issuer if issuer is not None else Issued(cert=None, key=key)  # type: ignore[arg-type]
    return Issued(_sign(b, signer, hashes.SHA256()), key)


def parse_san(items: Iterable[str]) -> list[x509.GeneralName]:
    """``DNS:name``, ``IP:addr`` or a bare name/address (guessed) -> GeneralNames."""
    out: list[x509.GeneralName] = []
    for raw in items:
        kind, _, value = (
            raw.partition(":") if raw[:4].upper() in ("DNS:",) or raw[:3].upper() == "IP:" else ("", "", raw)
        )
        if kind.upper() == "IP":
            out.append(x509.IPAddress(ipaddress.ip_address(value)))
        elif kind.upper() == "DNS":
            out.append(x509.DNSName(value))
        else:
            try:
                out.append(x509.IPAddress(ipaddress.ip_address(value)))
            except ValueError:
                out.append(x509.DNSName(value))
    return out


def make_leaf(
    subject: x509.Name,
    issuer: Issued,
    *,
    purpose: Literal["server", "client", "none"] = "server",
    san: Sequence[str] = (),
    key: PrivateKey | None = None,
    key_kind: str = "ec",
    days: int = 365,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    serial: int | None = None,
    hash_alg: hashes.HashAlgorithm | None = None,
    extensions: bool = True,
) -> Issued:
    """A server or client leaf certificate signed by ``issuer``."""
    key = key or generate_key(key_kind)
    b = _builder(subject, issuer.cert.subject, key.public_key(), days, not_before, not_after, serial)
    if extensions:
        b = b.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        if purpose != "none":
            eku = ExtendedKeyUsageOID.SERVER_AUTH if purpose == "server" else ExtendedKeyUsageOID.CLIENT_AUTH
            b = b.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
        b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        b = b.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        names = parse_san(san)
        if names:
            b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return Issued(_sign(b, issuer, hash_alg or hashes.SHA256()), key)


def make_selfsigned(
    subject: x509.Name,
    *,
    san: Sequence[str] = (),
    key_kind: str = "ec",
    days: int = 365,
    key: PrivateKey | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    serial: int | None = None,
) -> Issued:
    """The seed's first recipe: a self-signed server certificate (it is its own CA)."""
    key = key or generate_key(key_kind)
    b = _builder(subject, subject, key.public_key(), days, not_before, not_after, serial)
    b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    names = parse_san(san)
    if names:
        b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return Issued(_sign(b, Issued(cert=None, key=key), hashes.SHA256()), key)  # type: ignore[arg-type]


def make_crl(
    issuer: Issued,
    revoked_serials: Iterable[int] = (),
    *,
    days: int = 30,
    last_update: dt.datetime | None = None,
    next_update: dt.datetime | None = None,
) -> x509.CertificateRevocationList:
    """A v2 CRL signed by ``issuer`` revoking the given serial numbers."""
    start = last_update or (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))
    end = next_update or (start + dt.timedelta(days=days))
    b = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(start)
        .next_update(end)
    )
    for serial in revoked_serials:
        b = b.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(start).build()
        )
    if issuer.key is None:
        raise ValueError("the issuing CA's private key is not available")
    return b.sign(issuer.key, _hash_for(issuer.key))  # type: ignore[arg-type]


# --- files -------------------------------------------------------------------------------------


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)


def key_bytes(
    key: PrivateKey, passphrase: bytes | None = None, *, der: bool = False, pkcs1: bool = False
) -> bytes:
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    fmt = serialization.PrivateFormat.TraditionalOpenSSL if pkcs1 else serialization.PrivateFormat.PKCS8
    encoding = serialization.Encoding.DER if der else serialization.Encoding.PEM
    return key.private_bytes(encoding, fmt, enc)


def write_key(path: str | os.PathLike[str], key: PrivateKey, passphrase: bytes | None = None) -> Path:
    """Write a PEM private key with mode 0600 (the rule of §19.9.1)."""
    p = Path(path)
    _write_private(p, key_bytes(key, passphrase))
    return p


def write_certs(path: str | os.PathLike[str], certs: Iterable[x509.Certificate]) -> Path:
    p = Path(path)
    p.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
    return p


def write_crls(path: str | os.PathLike[str], crls: Iterable[x509.CertificateRevocationList]) -> Path:
    p = Path(path)
    p.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in crls))
    return p


_libcrypto: ctypes.CDLL | None = None


def _crypto() -> ctypes.CDLL:
    global _libcrypto
    if _libcrypto is None:
        import ssl  # noqa: F401  (makes sure the same libcrypto as Python's ssl is loaded)

        name = ctypes.util.find_library("crypto") or "libcrypto.so.3"
        lib = ctypes.CDLL(name)
        lib.d2i_X509_NAME.restype = ctypes.c_void_p
        lib.d2i_X509_NAME.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_long]
        lib.X509_NAME_hash_ex.restype = ctypes.c_ulong
        lib.X509_NAME_hash_ex.argtypes = [
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.POINTER(ctypes.c_int),
        ]
        lib.X509_NAME_free.argtypes = [ctypes.c_void_p]
        _libcrypto = lib
    return _libcrypto


def name_hash(name: x509.Name) -> str:
    """OpenSSL's subject-name hash (``openssl x509 -hash``), used for hashed CA/CRL directories."""
    lib = _crypto()
    der = name.public_bytes()
    buf = ctypes.c_char_p(der)
    nm = lib.d2i_X509_NAME(None, ctypes.byref(buf), len(der))
    if not nm:
        raise ValueError("could not decode name")
    try:
        ok = ctypes.c_int(0)
        h = lib.X509_NAME_hash_ex(nm, None, None, ctypes.byref(ok))
        if not ok.value:
            raise ValueError("could not hash name")
        return f"{h:08x}"
    finally:
        lib.X509_NAME_free(nm)


def write_crl_dir(
    directory: str | os.PathLike[str], crls: Iterable[x509.CertificateRevocationList]
) -> list[Path]:
    """Write CRLs in OpenSSL's hashed layout (``<issuer hash>.r<n>``), as ssl_crl_dir expects."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for crl in crls:
        h = name_hash(crl.issuer)
        n = sum(1 for w in written if w.name.startswith(h + "."))
        written.append(write_crls(d / f"{h}.r{n}", [crl]))
    return written


def cn(value: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, value)])
