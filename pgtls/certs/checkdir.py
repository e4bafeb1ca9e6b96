"""``pgtls check -D DIR``: read postgresql.conf, pg_hba.conf and the SSL files they name, run the rules.

Settings come from :func:`pgtls.config.settings.load_settings` (so includes,
postgresql.auto.conf and value syntax behave as in the server) and pg_hba.conf
from :func:`pgtls.config.hba.load_hba`.
Relative file names are relative to the data directory, as in PostgreSQL.  The
server user is the owner of the data directory (PostgreSQL refuses to run
otherwise), which is what the key-permission rule compares against.

Nothing here raises on bad file contents: every unreadable file becomes an
``unreadable`` finding with the loader's one-line message.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
import ssl
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

from cryptography import x509

from pgtls.certs import check as rules
from pgtls.certs.authority import is_self_signed, issued_by
from pgtls.certs.check import Finding, error, warning
from pgtls.certs.pemfiles import CertError, key_is_encrypted, read_certs, read_crls, read_key
from pgtls.certs.x509build import PrivateKey, name_hash
from pgtls.config.conffile import ConfigError
from pgtls.config.hba import HbaError, HbaLine, load_hba
from pgtls.config.settings import load_settings

DEFAULTS = {
    "ssl": "off",
    "ssl_cert_file": "server.crt",
    "ssl_key_file": "server.key",
    "ssl_ca_file": "",
    "ssl_crl_file": "",
    "ssl_crl_dir": "",
    "ssl_ciphers": "HIGH:MEDIUM:+3DES:!aNULL",
    "listen_addresses": "localhost",
    "hba_file": "",
}
_HASHED = re.compile(r"^[0-9a-f]{8}\.r[0-9]+$")


def read_settings(datadir: Path) -> dict[str, str]:
    """The settings the checker needs, as strings, from the data directory's postgresql.conf."""
    try:
        s = load_settings(datadir)
    except ConfigError as e:
        raise CertError(str(e).splitlines()[0] if str(e) else "postgresql.conf is invalid") from None
    out: dict[str, str] = {}
    for k, v in DEFAULTS.items():
        try:
            val = s[k]
        except Exception:  # a name this version of the settings module does not define
            val = v
        out[k] = ("on" if val else "off") if isinstance(val, bool) else ("" if val is None else str(val))
    return out


def _truthy(v: str) -> bool:
    return v.strip().lower() in ("on", "true", "yes", "1", "t", "y", "tr", "tru", "ye")


def _resolve(datadir: Path, name: str) -> Path:
    p = Path(name)
    return p if p.is_absolute() else datadir / p


def _display(datadir: Path, path: Path) -> str:
    """A path as the user would write it in postgresql.conf: relative to the data directory if inside it."""
    try:
        return str(path.resolve().relative_to(datadir.resolve()))
    except (ValueError, OSError):
        return str(path)


_system_roots_cache: list[x509.Certificate] | None = None


def system_roots() -> list[x509.Certificate]:
    """Self-signed roots of the system trust store (for "is this chain complete?")."""
    global _system_roots_cache
    if _system_roots_cache is None:
        paths = ssl.get_default_verify_paths()
        found: list[x509.Certificate] = []
        if paths.cafile:
            try:
                with warnings.catch_warnings():  # some distribution roots have non-positive serials
                    warnings.simplefilter("ignore")
                    found = read_certs(paths.cafile)
            except CertError:
                found = []
        _system_roots_cache = found
    return _system_roots_cache


def _guard(findings: list[Finding], file: str, fn: Callable[[], list[Finding]]) -> None:
    """Run one rule; no input may turn into a traceback."""
    try:
        findings.extend(fn())
    except CertError as e:
        findings.append(error("unreadable", file, str(e), f"replace {file} with a valid PEM file"))
    except Exception as e:  # a malformed field that parsed lazily
        findings.append(
            error(
                "unreadable",
                file,
                f"could not check {file}: {type(e).__name__}: {e}"[:300],
                f"replace {file} with a valid PEM file",
            )
        )


_T = TypeVar("_T")


def _load(findings: list[Finding], file: str, fn: Callable[[], _T]) -> _T | None:
    try:
        return fn()
    except CertError as e:
        fix = f"replace {file} with a valid PEM file"
        if "DER format" in str(e):
            fix = f"convert {file} to PEM (e.g. openssl x509 -inform DER -in {file} -out {file}.pem)"
        findings.append(error("unreadable", file, str(e), fix))
    except Exception as e:
        findings.append(
            error(
                "unreadable",
                file,
                f"could not read {file}: {type(e).__name__}",
                f"replace {file} with a valid PEM file",
            )
        )
    return None


def run_check(
    datadir: Path,
    *,
    passphrase: Callable[[], bytes] | None = None,
    now: dt.datetime | None = None,
    settings: Mapping[str, str] | None = None,
) -> list[Finding]:
    """All findings for the data directory (settings may be given instead of read from postgresql.conf)."""
    datadir = Path(datadir)
    if not datadir.is_dir():
        raise CertError(f'data directory "{datadir}" does not exist or is not a directory')
    now = now or dt.datetime.now(dt.UTC)
    conf = dict(settings) if settings is not None else read_settings(datadir)

    def get(k: str) -> str:
        return conf.get(k, DEFAULTS[k])

    findings: list[Finding] = []

    hba_path = _resolve(datadir, get("hba_file") or "pg_hba.conf")
    hba_name = _display(datadir, hba_path)
    hba_lines = _hba_lines(findings, hba_path, hba_name, _truthy(get("ssl")))
    if not _truthy(get("ssl")):
        findings.append(
            warning(
                "ssl-off",
                "postgresql.conf",
                "ssl is off: the server accepts no SSL connections",
                "set ssl = on in postgresql.conf",
            )
        )
        return findings

    cert_name, key_name, ca_name = get("ssl_cert_file"), get("ssl_key_file"), get("ssl_ca_file")
    certs = _load(findings, cert_name, lambda: read_certs(_resolve(datadir, cert_name), "server certificate"))
    key = _load_key(findings, datadir, key_name, passphrase)
    ca_certs: list[x509.Certificate] = []
    if ca_name:
        ca_certs = (
            _load(findings, ca_name, lambda: read_certs(_resolve(datadir, ca_name), "root certificate")) or []
        )

    if isinstance(certs, list):
        leaf_first = True
        if key is not None:
            before = len(findings)
            _guard(findings, key_name, lambda: rules.check_key_matches(cert_name, certs, key_name, key))
            # the leaf is not first: order and host-name rules would only repeat that in other words
            leaf_first = not any(f.code == "chain-order" for f in findings[before:])
        if leaf_first:
            _guard(
                findings,
                cert_name,
                lambda: rules.check_chain(cert_name, certs, _trusted(certs, ca_certs), bool(ca_name)),
            )
            _guard(
                findings,
                cert_name,
                lambda: rules.check_hostnames(cert_name, certs[0], get("listen_addresses")),
            )
        _guard(findings, cert_name, lambda: rules.check_validity(cert_name, certs, now))
        _guard(findings, cert_name, lambda: rules.check_weak(cert_name, certs))
    if ca_certs:
        _guard(findings, ca_name, lambda: rules.check_ca_file(ca_name, ca_certs))
        _guard(findings, ca_name, lambda: rules.check_validity(ca_name, ca_certs, now, "CA certificate"))
        _guard(findings, ca_name, lambda: rules.check_weak(ca_name, ca_certs, skip_roots=True))
    _guard(findings, "postgresql.conf", lambda: rules.check_ciphers(get("ssl_ciphers")))
    crl_sources = _load_crls(findings, datadir, get("ssl_crl_file"), get("ssl_crl_dir"))
    if ca_certs or not ca_name:  # an unreadable CA file is already reported
        _guard(
            findings,
            get("ssl_crl_file") or get("ssl_crl_dir"),
            lambda: rules.check_crls(
                crl_sources, ca_name or None, ca_certs, now, certs[1:] if isinstance(certs, list) else []
            ),
        )
    if hba_lines is not None:
        _guard(findings, hba_name, lambda: rules.check_hba_needs_ca(hba_name, hba_lines, ca_name))
    return findings


def _trusted(certs: list[x509.Certificate], ca_certs: list[x509.Certificate]) -> list[x509.Certificate]:
    top = certs[-1]
    if is_self_signed(top) or any(issued_by(top, c) for c in ca_certs):
        return ca_certs
    return ca_certs + system_roots()


def _load_key(
    findings: list[Finding], datadir: Path, key_name: str, passphrase: Callable[[], bytes] | None
) -> PrivateKey | None:
    path = _resolve(datadir, key_name)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        findings.append(
            error(
                "unreadable",
                key_name,
                f'private key file "{path}" does not exist',
                "set ssl_key_file to the server's private key",
            )
        )
        return None
    except OSError as e:
        findings.append(
            error(
                "unreadable",
                key_name,
                f'could not access private key file "{path}": {e.strerror}',
                "fix the file's location or permissions",
            )
        )
        return None
    findings.extend(rules.check_key_permissions(key_name, st.st_mode, st.st_uid, datadir.stat().st_uid))
    if key_is_encrypted(path) and passphrase is None:
        findings.append(
            error(
                "key-encrypted",
                key_name,
                "private key is passphrase-protected and no passphrase was given, so it cannot be checked",
                "run pgtls check with --passphrase prompt|file:PATH|env:VAR|stdin",
            )
        )
        return None
    pw: bytes | None = None
    if passphrase is not None and key_is_encrypted(path):
        pw = _load(findings, key_name, passphrase)
        if pw is None:
            return None
    return _load(findings, key_name, lambda: read_key(path, pw))


def _load_crls(
    findings: list[Finding], datadir: Path, crl_file: str, crl_dir: str
) -> dict[str, list[x509.CertificateRevocationList]]:
    sources: dict[str, list[x509.CertificateRevocationList]] = {}
    if crl_file:
        crls = _load(findings, crl_file, lambda: read_crls(_resolve(datadir, crl_file)))
        if isinstance(crls, list):
            sources[crl_file] = crls
    if crl_dir:
        d = _resolve(datadir, crl_dir)
        try:
            entries = sorted(p for p in d.iterdir() if p.is_file())
        except OSError as e:
            findings.append(
                error(
                    "unreadable",
                    crl_dir,
                    f'could not read CRL directory "{d}": {e.strerror}',
                    "create the directory with pgtls cert crl --dir, or fix ssl_crl_dir",
                )
            )
            return sources
        for p in entries:
            display = f"{crl_dir.rstrip('/')}/{p.name}"
            if not _HASHED.match(p.name):
                try:
                    stray = read_crls(p)
                except CertError:
                    continue  # OpenSSL ignores files that are not hash-named; so do we
                findings.extend(
                    rules.check_crl_dir_name(display, p.name, stray[0], name_hash(stray[0].issuer))
                )
                continue
            crls = _load(findings, display, functools.partial(read_crls, p))
            if not isinstance(crls, list):
                continue
            mismatch = rules.check_crl_dir_name(display, p.name, crls[0], name_hash(crls[0].issuer))
            findings.extend(mismatch)
            if not mismatch:
                sources[display] = crls
    return sources


def _hba_lines(findings: list[Finding], path: Path, display: str, ssl_on: bool) -> list[HbaLine] | None:
    if not path.exists():
        return None
    try:
        loaded = load_hba(path, ssl_enabled=ssl_on)
    except HbaError as e:
        first = e.errors[0] if getattr(e, "errors", None) else None
        msg = first.message if first is not None else str(e).splitlines()[0]
        line = first.lineno if first is not None and first.lineno else None
        findings.append(
            error(
                "hba-invalid",
                display,
                f"pg_hba.conf is rejected: {msg}",
                "fix the line; PostgreSQL will not load the file",
                line=line,
            )
        )
        return None
    return list(loaded.lines)
