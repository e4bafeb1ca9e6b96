"""A certificate authority on disk: ``NAME.crt`` + ``NAME.key`` + ``NAME.revoked.json``.

``--ca NAME`` names a CA by path prefix: ``root`` means ``root.crt`` (the CA
certificate, followed by the intermediates above it, never the root) and
``root.key`` (its private key, which belongs offline).  Revocation needs state
that a CRL alone does not keep in an editable form, so every ``pgtls cert
revoke`` adds the serial to ``NAME.revoked.json`` beside the key, and every
``pgtls cert crl`` lists all serials recorded there.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from pgtls.certs import x509build as xb
from pgtls.certs.pemfiles import CertError, key_is_encrypted, read_certs, read_key, same_public_key

PassphraseGetter = Callable[[], bytes]


@dataclass(frozen=True)
class Authority:
    """A loaded CA: its certificate and key, the intermediates above it, and where it lives."""

    issued: xb.Issued
    chain: list[x509.Certificate]  # CA cert first, then the intermediates above it (no self-signed root)
    crt_path: Path
    key_path: Path

    @property
    def cert(self) -> x509.Certificate:
        return self.issued.cert

    @property
    def revoked_path(self) -> Path:
        return revocation_db_path(self.key_path)

    @property
    def is_root(self) -> bool:
        return is_self_signed(self.cert)


def is_self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except Exception:
        return False
    return True


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when ``issuer``'s name and key signed ``cert``."""
    try:
        cert.verify_directly_issued_by(issuer)
    except Exception:
        return False
    return True


def is_ca(cert: x509.Certificate) -> bool:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    return bool(bc.ca)


def ca_paths(spec: str, search_dirs: tuple[Path, ...] = ()) -> tuple[Path, Path]:
    """``NAME`` or ``path/NAME`` (``.crt``/``.key`` suffix optional) -> (cert path, key path).

    A relative prefix is looked up in the current directory first, then in each of
    ``search_dirs`` (the command's ``--out-dir``).
    """
    prefix = spec[:-4] if spec.endswith((".crt", ".key")) else spec
    candidates = [Path(prefix)]
    if not Path(prefix).is_absolute():
        candidates += [d / prefix for d in search_dirs]
    for c in candidates:
        if c.with_name(c.name + ".crt").exists():
            return c.with_name(c.name + ".crt"), c.with_name(c.name + ".key")
    raise CertError(f'CA certificate "{prefix}.crt" does not exist')


def load_authority(
    spec: str,
    passphrase: PassphraseGetter | None = None,
    search_dirs: tuple[Path, ...] = (),
    *,
    need_key: bool = True,
) -> Authority:
    """Load a CA that can sign: its certificate must be a CA and its private key must match it.

    ``need_key=False`` (revoke only records a serial) loads the certificate alone.
    """
    crt, key_path = ca_paths(spec, search_dirs)
    certs = read_certs(crt, "CA certificate")
    ca_cert = certs[0]
    if not is_ca(ca_cert):
        raise CertError(
            f'"{crt}" is not a CA certificate (no basicConstraints CA:TRUE); make one with "pgtls cert ca"'
        )
    chain = [ca_cert] + [c for c in certs[1:] if not is_self_signed(c)]
    if not need_key:
        return Authority(xb.Issued(ca_cert, None), chain, crt, key_path)
    if not key_path.exists():
        raise CertError(f'CA "{crt}" has no private key at "{key_path}"; signing needs the CA key')
    pw = None
    if key_is_encrypted(key_path):
        if passphrase is None:
            raise CertError(
                f'CA key "{key_path}" is encrypted; give --ca-passphrase (prompt, file:PATH, env:VAR or stdin)'
            )
        pw = passphrase()
    key = read_key(key_path, pw, "CA private key")
    if not same_public_key(key, ca_cert.public_key()):
        raise CertError(f'CA key "{key_path}" does not match the certificate "{crt}"')
    return Authority(xb.Issued(ca_cert, key), chain, crt, key_path)


def find_root(chain: list[x509.Certificate], search_dir: Path) -> x509.Certificate | None:
    """The self-signed root above ``chain``: the chain's own top if self-signed, else a ``*.crt`` in ``search_dir``."""
    top = chain[-1]
    if is_self_signed(top):
        return top
    try:
        files = sorted(search_dir.glob("*.crt"))
    except OSError:
        return None
    for f in files:
        try:
            certs = read_certs(f)
        except CertError:
            continue
        for c in certs:
            if c.subject == top.issuer and is_self_signed(c) and issued_by(top, c):
                return c
    return None


# --- the revocation database ------------------------------------------------------------------


def revocation_db_path(key_path: Path) -> Path:
    return key_path.with_name(key_path.name.removesuffix(".key") + ".revoked.json")


def read_revoked(db: Path) -> list[dict[str, str]]:
    """Entries ``{"serial": decimal, "revoked_at": ISO time, "subject": RFC 4514}``, oldest first."""
    try:
        data = json.loads(db.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as e:
        raise CertError(f'revocation database "{db}" is unreadable: {e}') from None
    entries = data.get("revoked") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and str(e.get("serial", "")).isdigit() for e in entries
    ):
        raise CertError(f'revocation database "{db}" is not in the expected format')
    return entries


def add_revoked(authority: Authority, cert: x509.Certificate, when: dt.datetime | None = None) -> bool:
    """Record ``cert`` as revoked by ``authority``; False if it was already recorded."""
    if cert.issuer != authority.cert.subject or not issued_by(cert, authority.cert):
        raise CertError(
            f'the certificate (serial {cert.serial_number}) was not issued by CA "{authority.crt_path}"'
        )
    db = authority.revoked_path
    entries = read_revoked(db)
    if any(int(e["serial"]) == cert.serial_number for e in entries):
        return False
    entries.append(
        {
            "serial": str(cert.serial_number),
            "revoked_at": (when or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds"),
            "subject": cert.subject.rfc4514_string(),
        }
    )
    payload = (
        json.dumps({"issuer": authority.cert.subject.rfc4514_string(), "revoked": entries}, indent=2) + "\n"
    )
    tmp = db.with_name(db.name + ".tmp")
    tmp.write_text(payload)
    os.replace(tmp, db)
    return True


def build_crl(authority: Authority, days: int = 30) -> x509.CertificateRevocationList:
    """A CRL of ``authority`` listing every serial in its revocation database."""
    serials = [int(e["serial"]) for e in read_revoked(authority.revoked_path)]
    return xb.make_crl(authority.issued, serials, days=days)
