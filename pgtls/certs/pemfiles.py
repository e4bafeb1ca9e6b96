"""Reading certificate, key and CRL files with one clear error line, plus passphrase sources.

Every loader here turns whatever the file holds -- corrupt PEM, DER, random bytes,
an encrypted key without its passphrase -- into a :class:`CertError` whose message
names the file and never contains key material or a passphrase.  PostgreSQL reads
every SSL file as PEM (``SSL_CTX_use_certificate_chain_file``, ``SSL_FILETYPE_PEM``),
so a DER file is reported as such rather than silently accepted.

Passphrases never come from the command line (other users can read argv); a
*source* says where to get one: ``prompt``, ``file:PATH``, ``env:VAR`` or ``stdin``.
"""

from __future__ import annotations

import getpass
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from pgtls.certs.x509build import PrivateKey

# A PEM file bigger than this is not a certificate bundle anyone should load;
# reading it whole would only let a bad path (a device, a huge log) eat memory.
MAX_PEM_FILE_BYTES = 10 * 1024 * 1024

_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.S)


class CertError(Exception):
    """A certificate-tooling error meant for the user: one line, no secrets."""


def _read(path: Path, what: str) -> bytes:
    try:
        if path.is_dir():
            raise CertError(f'{what} file "{path}" is a directory')
        size = path.stat().st_size
        if size > MAX_PEM_FILE_BYTES:
            raise CertError(f'{what} file "{path}" is too large ({size} bytes) to be a PEM file')
        # A device or a growing file reports no useful size (/dev/zero: 0): the read itself is bounded.
        with path.open("rb") as f:
            data = f.read(MAX_PEM_FILE_BYTES + 1)
        if len(data) > MAX_PEM_FILE_BYTES:
            raise CertError(
                f'{what} file "{path}" is too large (over {MAX_PEM_FILE_BYTES} bytes) to be a PEM file'
            )
        return data
    except FileNotFoundError:
        raise CertError(f'{what} file "{path}" does not exist') from None
    except OSError as e:
        raise CertError(f'could not read {what} file "{path}": {e.strerror}') from None


def _blocks(data: bytes, labels: tuple[str, ...]) -> list[bytes]:
    return [m.group(0) for m in _BLOCK.finditer(data) if m.group(1).decode() in labels]


def _no_pem(data: bytes, p: object, what: str, der_loader: Callable[[bytes], object], kind: str) -> CertError:
    """The error for a file without PEM blocks of ``kind``: a DER file is named as such."""
    if _looks_der(data):
        try:
            der_loader(data)
        except Exception:
            pass
        else:
            return CertError(f'{what} file "{p}" is in DER format; PostgreSQL needs PEM')
    return CertError(f'{what} file "{p}" contains no PEM {kind}')


def _looks_der(data: bytes) -> bool:
    return len(data) > 2 and data[0] == 0x30 and b"-----BEGIN" not in data


def read_certs(path: str | os.PathLike[str], what: str = "certificate") -> list[x509.Certificate]:
    """All certificates of a PEM file, in file order (at least one)."""
    p = Path(path)
    data = _read(p, what)
    blocks = _blocks(data, ("CERTIFICATE", "TRUSTED CERTIFICATE", "X509 CERTIFICATE"))
    if not blocks:
        raise _no_pem(data, p, what, x509.load_der_x509_certificate, "certificate")
    out: list[x509.Certificate] = []
    for i, block in enumerate(blocks, 1):
        try:
            cert = x509.load_pem_x509_certificate(block.replace(b"TRUSTED CERTIFICATE", b"CERTIFICATE"))
            cert.subject.rfc4514_string()  # parsed lazily: force the name parse now
            cert.issuer.rfc4514_string()
            cert.extensions  # noqa: B018  (same: surface a malformed extension here)
        except Exception:
            raise CertError(f'{what} file "{p}": certificate #{i} is corrupt') from None
        out.append(cert)
    return out


def read_key(
    path: str | os.PathLike[str], passphrase: bytes | None = None, what: str = "private key"
) -> PrivateKey:
    """One PEM private key (PKCS#1, SEC1 or PKCS#8, optionally encrypted)."""
    p = Path(path)
    data = _read(p, what)
    blocks = _blocks(data, ("PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY"))
    if not blocks:
        if _looks_der(data):
            try:
                serialization.load_der_private_key(data, None)
            except TypeError:  # encrypted DER
                raise CertError(f'{what} file "{p}" is in DER format; PostgreSQL needs PEM') from None
            except Exception:
                pass
            else:
                raise CertError(f'{what} file "{p}" is in DER format; PostgreSQL needs PEM')
        raise CertError(f'{what} file "{p}" contains no PEM private key')
    block = blocks[0]
    encrypted = b"ENCRYPTED" in block or b"Proc-Type: 4,ENCRYPTED" in block
    if encrypted and not passphrase:
        raise CertError(f'{what} file "{p}" is encrypted and no passphrase was given')
    try:
        key = serialization.load_pem_private_key(block, passphrase if encrypted else None)
    except TypeError:
        raise CertError(f'{what} file "{p}" is encrypted and no passphrase was given') from None
    except ValueError:
        if encrypted:
            raise CertError(f'could not decrypt {what} file "{p}": wrong passphrase') from None
        raise CertError(f'{what} file "{p}" is corrupt') from None
    except Exception:
        raise CertError(f'{what} file "{p}" is corrupt or of an unsupported type') from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise CertError(f'{what} file "{p}" holds an unsupported key type ({type(key).__name__})')
    return key


def key_is_encrypted(path: str | os.PathLike[str]) -> bool:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_PEM_FILE_BYTES)
    except OSError:
        return False
    return b"ENCRYPTED PRIVATE KEY" in data or b"Proc-Type: 4,ENCRYPTED" in data


def read_crls(path: str | os.PathLike[str], what: str = "CRL") -> list[x509.CertificateRevocationList]:
    """All CRLs of a PEM file (at least one)."""
    p = Path(path)
    data = _read(p, what)
    blocks = _blocks(data, ("X509 CRL",))
    if not blocks:
        raise _no_pem(data, p, what, x509.load_der_x509_crl, "CRL")
    out: list[x509.CertificateRevocationList] = []
    for i, block in enumerate(blocks, 1):
        try:
            crl = x509.load_pem_x509_crl(block)
            crl.issuer.rfc4514_string()
            list(crl)
            crl.next_update_utc  # noqa: B018
        except Exception:
            raise CertError(f'{what} file "{p}": CRL #{i} is corrupt') from None
        out.append(crl)
    return out


def same_public_key(a: object, b: object) -> bool:
    """True when two public keys (or a private key's public half) are the same key."""

    def spki(k: object) -> bytes:
        pub = k.public_key() if hasattr(k, "private_bytes") else k  # type: ignore[attr-defined]
        return pub.public_bytes(  # type: ignore[union-attr]
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    try:
        return spki(a) == spki(b)
    except Exception:
        return False


# --- passphrases ------------------------------------------------------------------------------

PASSPHRASE_SOURCES = "prompt, file:PATH, env:VAR or stdin"


def passphrase_reader(spec: str, *, confirm: bool = False, what: str = "passphrase") -> Callable[[], bytes]:
    """A function returning the passphrase from ``spec``; it is only read when called.

    ``pass:...`` (OpenSSL's inline form) is refused on purpose: argv is visible to
    every user of the machine through ps and /proc.
    """
    kind, _, arg = spec.partition(":")
    if kind == "prompt" and not arg:

        def from_prompt() -> bytes:
            first = getpass.getpass(f"Enter {what}: ")
            if confirm and getpass.getpass(f"Verify {what}: ") != first:
                raise CertError("passphrases do not match")
            return _nonempty(first.encode(), "prompt")

        return from_prompt
    if kind == "file" and arg:

        def from_file() -> bytes:
            try:
                with open(arg, "rb") as f:
                    line = f.readline(4096)
            except OSError as e:
                raise CertError(f'could not read passphrase file "{arg}": {e.strerror}') from None
            return _nonempty(line.rstrip(b"\r\n"), f'file "{arg}"')

        return from_file
    if kind == "env" and arg:

        def from_env() -> bytes:
            value = os.environ.get(arg)
            if value is None:
                raise CertError(f"environment variable {arg} is not set")
            return _nonempty(value.encode(), f"environment variable {arg}")

        return from_env
    if kind == "stdin" and not arg:

        def from_stdin() -> bytes:
            return _nonempty(sys.stdin.buffer.readline(4096).rstrip(b"\r\n"), "standard input")

        return from_stdin
    if kind == "pass":
        raise CertError(f"passphrases are not accepted on the command line; use {PASSPHRASE_SOURCES}")
    raise CertError(f"unknown passphrase source (use {PASSPHRASE_SOURCES})")


def _nonempty(value: bytes, where: str) -> bytes:
    if not value:
        raise CertError(f"empty passphrase from {where}")
    return value
