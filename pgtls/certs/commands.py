"""The §19.9.5 recipes as functions: self-signed, root CA, intermediate, server, client, revoke, CRL.

Each function writes PEM files (keys at 0600 through :func:`x509build.write_key`),
refuses to replace an existing private key unless ``force`` is set (checked
before anything is written), and returns :class:`Written` records that say where
each file belongs: on the ``server``, on a ``client``, or ``offline``.  The CLI
in :mod:`pgtls.certs.cli` only parses arguments and prints these records.

Defaults follow the manual: self-signed and leaf certificates 365 days, a root
CA 3650 days, an intermediate 1825 days; server.crt carries the leaf followed by
the intermediates, never the root ("It is not necessary to add the root
certificate to server.crt").
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from cryptography import x509

from pgtls.certs import x509build as xb
from pgtls.certs.authority import Authority, add_revoked, build_crl, find_root, is_self_signed
from pgtls.certs.pemfiles import CertError, read_certs

DAYS = {"selfsigned": 365, "ca": 3650, "intermediate": 1825, "server": 365, "client": 365}


@dataclass(frozen=True)
class Written:
    """One file written: its path, where it belongs (server, client, clients, offline) and what it is for."""

    path: Path
    where: str
    note: str


@dataclass(frozen=True)
class KeySpec:
    kind: str = "ec"
    passphrase: bytes | None = field(default=None, repr=False)


class ValidityArgs(TypedDict):
    """The validity keyword arguments of pgtls.certs.x509build's make_* functions."""

    days: int
    not_before: dt.datetime | None
    not_after: dt.datetime | None
    serial: int | None


@dataclass(frozen=True)
class Validity:
    days: int | None = None  # None: the command's default (DAYS)
    not_before: dt.datetime | None = None
    not_after: dt.datetime | None = None
    serial: int | None = None

    def kw(self, command: str) -> ValidityArgs:
        days = self.days if self.days is not None else DAYS[command]
        if days <= 0:
            raise CertError("--days must be positive")
        if self.not_before and self.not_after and self.not_after <= self.not_before:
            raise CertError("--not-after must be later than --not-before")
        if self.serial is not None and not (0 < self.serial < 2**159):
            raise CertError("--serial must be a positive integer below 2**159")
        return {
            "days": days,
            "not_before": self.not_before,
            "not_after": self.not_after,
            "serial": self.serial,
        }


_SUBJ_PART = re.compile(r"/((?:[^/\\]|\\.)+)")


def parse_subject(subj: str | None = None, cn: str | None = None) -> x509.Name:
    """``/O=PGDG/OU=Eng/CN=alice`` (OpenSSL ``-subj`` form) and/or a CN -> Name, in the order given."""
    attrs: list[tuple[str, str]] = []
    if subj:
        if not subj.startswith("/"):
            raise CertError('--subj must look like "/O=Org/CN=name"')
        for part in _SUBJ_PART.findall(subj):
            key, sep, value = part.partition("=")
            if not sep or not value:
                raise CertError(f'bad subject component "{part}" (expected NAME=value)')
            attrs.append((key, value.replace("\\/", "/")))
    if cn:
        if any(k == "CN" for k, _ in attrs):
            raise CertError("give the common name either with --cn or inside --subj, not both")
        attrs.append(("CN", cn))
    if not attrs:
        raise CertError("a subject is needed: give --cn (or --subj)")
    try:
        return xb.make_name(*attrs)
    except ValueError as e:
        raise CertError(f"bad subject: {e} (known: CN, O, OU, C, ST, L, emailAddress)") from None


def _refuse_overwrite(keys: Sequence[Path], force: bool) -> None:
    for k in keys:
        if k.exists() and not force:
            raise CertError(f'refusing to overwrite existing private key "{k}" (use --force to replace it)')


def _paths(prefix: Path) -> tuple[Path, Path]:
    prefix.parent.mkdir(parents=True, exist_ok=True)
    return prefix.with_name(prefix.name + ".crt"), prefix.with_name(prefix.name + ".key")


def _intermediates(chain: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    return [c for c in chain if not is_self_signed(c)]


def _key(spec: KeySpec) -> xb.PrivateKey:
    try:
        return xb.generate_key(spec.kind)
    except ValueError as e:
        raise CertError(str(e)) from None


def _key_note(base: str, spec: KeySpec) -> str:
    return base + (" (mode 0600, passphrase-encrypted)" if spec.passphrase else " (mode 0600)")


def _san_list(san: Sequence[str], subject: x509.Name) -> list[str]:
    if san:
        try:
            xb.parse_san(san)
        except ValueError as e:
            raise CertError(f"bad --san value: {e}") from None
        return list(san)
    cns = subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return [str(cns[0].value)] if cns else []


def selfsigned(
    prefix: Path,
    subject: x509.Name,
    san: Sequence[str] = (),
    key: KeySpec = KeySpec(),
    validity: Validity = Validity(),
    force: bool = False,
) -> list[Written]:
    """The manual's first recipe: server.crt/server.key, self-signed, 365 days."""
    crt, keyfile = _paths(prefix)
    _refuse_overwrite([keyfile], force)
    names = _san_list(san, subject)
    private = _key(key)
    issued = xb.make_selfsigned(subject, san=names, key=private, **validity.kw("selfsigned"))
    xb.write_certs(crt, [issued.cert])
    xb.write_key(keyfile, private, key.passphrase)
    return [
        Written(
            crt,
            "server",
            "ssl_cert_file; clients that verify the server use it as their root.crt (it is its own CA)",
        ),
        Written(keyfile, "server", _key_note("ssl_key_file", key)),
    ]


def new_ca(
    prefix: Path,
    subject: x509.Name,
    key: KeySpec = KeySpec(),
    validity: Validity = Validity(),
    force: bool = False,
) -> list[Written]:
    """A root CA with the v3_ca profile, 3650 days."""
    crt, keyfile = _paths(prefix)
    _refuse_overwrite([keyfile], force)
    private = _key(key)
    issued = xb.make_ca(subject, key=private, **validity.kw("ca"))
    xb.write_certs(crt, [issued.cert])
    xb.write_key(keyfile, private, key.passphrase)
    return [
        Written(
            crt,
            "clients",
            "root.crt / sslrootcert to verify the server; on the server: ssl_ca_file to verify client certificates",
        ),
        Written(
            keyfile,
            "offline",
            _key_note("CA key: keep it off the server, it only signs certificates and CRLs", key),
        ),
    ]


def intermediate(
    prefix: Path,
    ca: Authority,
    subject: x509.Name,
    key: KeySpec = KeySpec(),
    validity: Validity = Validity(),
    path_length: int | None = 0,
    force: bool = False,
) -> list[Written]:
    """An intermediate CA (v3_ca with pathlen) signed by ``ca``, 1825 days."""
    crt, keyfile = _paths(prefix)
    _refuse_overwrite([keyfile], force)
    private = _key(key)
    issued = xb.make_ca(
        subject, issuer=ca.issued, key=private, path_length=path_length, **validity.kw("intermediate")
    )
    xb.write_certs(crt, [issued.cert, *_intermediates(ca.chain)])
    xb.write_key(keyfile, private, key.passphrase)
    return [
        Written(
            crt,
            "offline",
            f"intermediate CA: sign with --ca {prefix}; server/client certificates it signs carry it in their chain",
        ),
        Written(keyfile, "offline", _key_note("intermediate CA key: keep it off the server", key)),
    ]


def server(
    prefix: Path,
    ca: Authority,
    subject: x509.Name,
    san: Sequence[str] = (),
    key: KeySpec = KeySpec(),
    validity: Validity = Validity(),
    force: bool = False,
) -> list[Written]:
    """A serverAuth leaf; server.crt holds the leaf then the intermediates (never the root)."""
    crt, keyfile = _paths(prefix)
    _refuse_overwrite([keyfile], force)
    names = _san_list(san, subject)
    private = _key(key)
    issued = xb.make_leaf(
        subject, ca.issued, purpose="server", san=names, key=private, **validity.kw("server")
    )
    inter = _intermediates(ca.chain)
    xb.write_certs(crt, [issued.cert, *inter])
    xb.write_key(keyfile, private, key.passphrase)
    return [
        Written(
            crt,
            "server",
            f"ssl_cert_file (server certificate + {len(inter)} intermediate(s); the root stays with the clients)",
        ),
        Written(keyfile, "server", _key_note("ssl_key_file", key)),
    ]


def client(
    prefix: Path,
    ca: Authority,
    subject: x509.Name,
    key: KeySpec = KeySpec(),
    validity: Validity = Validity(),
    force: bool = False,
    libpq_dir: Path | None = None,
) -> list[Written]:
    """A clientAuth leaf (CN = the database user).  With ``libpq_dir`` (normally ~/.postgresql)
    write libpq's default names postgresql.crt, postgresql.key and root.crt there instead."""
    root: x509.Certificate | None = None
    if libpq_dir is not None:
        root = find_root(ca.chain, ca.crt_path.parent)
        if root is None:
            raise CertError(
                f'cannot find the root CA above "{ca.crt_path}" in {ca.crt_path.parent} (needed for root.crt)'
            )
        libpq_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        crt, keyfile = libpq_dir / "postgresql.crt", libpq_dir / "postgresql.key"
    else:
        crt, keyfile = _paths(prefix)
    _refuse_overwrite([keyfile], force)
    private = _key(key)
    issued = xb.make_leaf(subject, ca.issued, purpose="client", key=private, **validity.kw("client"))
    xb.write_certs(crt, [issued.cert, *_intermediates(ca.chain)])
    xb.write_key(keyfile, private, key.passphrase)
    out = [
        Written(
            crt, "client", "sslcert (libpq default ~/.postgresql/postgresql.crt); the CN is the database user"
        ),
        Written(keyfile, "client", _key_note("sslkey (libpq default ~/.postgresql/postgresql.key)", key)),
    ]
    if root is not None and libpq_dir is not None:  # root is found only for a libpq_dir
        xb.write_certs(libpq_dir / "root.crt", [root])
        out.append(
            Written(libpq_dir / "root.crt", "client", "sslrootcert: the root CA that verifies the server")
        )
    return out


def revoke(ca: Authority, cert_path: Path) -> tuple[bool, list[Written]]:
    """Record the (first) certificate in ``cert_path`` as revoked; (newly revoked?, files)."""
    cert = read_certs(cert_path)[0]
    added = add_revoked(ca, cert)
    note = f'revocation database of {ca.crt_path.name}: run "pgtls cert crl --ca {ca.crt_path.with_suffix("")}" to publish'
    return added, [Written(ca.revoked_path, "offline", note)]


def crl(
    cas: Sequence[Authority], out_file: Path | None = None, out_dir: Path | None = None, days: int = 30
) -> list[Written]:
    """A CRL per CA (each listing every serial it revoked) as one PEM file and/or a hashed directory."""
    if days <= 0:
        raise CertError("--days must be positive")
    crls = [build_crl(ca, days) for ca in cas]
    out: list[Written] = []
    if out_file is not None:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        xb.write_crls(out_file, crls)
        out.append(
            Written(
                out_file,
                "server",
                f"ssl_crl_file ({sum(len(c) for c in crls)} revoked serial(s); next update in {days} days)",
            )
        )
    if out_dir is not None:
        for p in xb.write_crl_dir(out_dir, crls):
            out.append(Written(p, "server", f"in the ssl_crl_dir directory {out_dir} (OpenSSL hashed name)"))
    return out
