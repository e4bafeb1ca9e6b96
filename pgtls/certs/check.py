"""The rules of ``pgtls check``: pure functions from loaded certificates, keys and settings to findings.

Each rule returns :class:`Finding` values (severity, stable code, file, message,
one-line fix).  An *error* means PostgreSQL will refuse to start, connections
will fail, or the setup is insecure; a *warning* means it works today but
should be fixed.  The rules follow §19.9 of the manual and the reference
behaviours of ``be-secure-openssl.c`` / ``be-secure-common.c``:

- the key must match the first certificate of ssl_cert_file (``check of private key failed``);
- server.crt is the leaf, then intermediates, not the root (§19.9.1);
- intermediates need v3_ca extensions, i.e. CA:TRUE (§19.9.1, §19.9.3);
- key permissions: 0600 or less if owned by the server user, 0640 or less if owned by root;
- NULL ciphers are "not recommended" (§19.9.2), aNULL allows a man in the middle;
- with a CRL, OpenSSL's CRL_CHECK_ALL needs a valid CRL for every CA that verifies clients;
- clientcert/cert in pg_hba.conf need ssl_ca_file.

File reading lives in :mod:`pgtls.certs.checkdir`.
"""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
import ssl
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, rsa

from pgtls.certs.authority import is_ca, is_self_signed, issued_by
from pgtls.certs.pemfiles import same_public_key

EXPIRY_WARNING = dt.timedelta(days=30)
MIN_RSA_BITS = 2048
WEAK_HASHES = (hashes.SHA1, hashes.MD5)
WILDCARD_ADDRESSES = frozenset({"*", "0.0.0.0", "::", ""})


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    severity: Severity
    code: str
    file: str
    message: str
    fix: str
    line: int | None = None

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["severity"] = str(self.severity)
        return d


def error(code: str, file: str, message: str, fix: str, line: int | None = None) -> Finding:
    return Finding(Severity.ERROR, code, file, message, fix, line)


def warning(code: str, file: str, message: str, fix: str, line: int | None = None) -> Finding:
    return Finding(Severity.WARNING, code, file, message, fix, line)


def exit_status(findings: Iterable[Finding]) -> int:
    """0 clean, 1 warnings only, 2 any error."""
    sev = {f.severity for f in findings}
    return 2 if Severity.ERROR in sev else 1 if Severity.WARNING in sev else 0


def describe(cert: x509.Certificate) -> str:
    try:
        return f'"{cert.subject.rfc4514_string()}"'
    except Exception:
        return "(unreadable subject)"


# --- server certificate and key ------------------------------------------------------------------


def check_key_matches(
    cert_file: str, certs: Sequence[x509.Certificate], key_file: str, key: object
) -> list[Finding]:
    if same_public_key(key, certs[0].public_key()):
        return []
    for i, c in enumerate(certs[1:], 2):
        if same_public_key(key, c.public_key()):
            return [
                error(
                    "chain-order",
                    cert_file,
                    f"the key in {key_file} belongs to certificate #{i} {describe(c)}, but the server certificate must come first",
                    f"rewrite {cert_file} with the server certificate first, then its intermediates",
                )
            ]
    return [
        error(
            "key-mismatch",
            key_file,
            f"private key does not match the server certificate in {cert_file} (PostgreSQL: check of private key failed)",
            "use the key the certificate was issued for, or issue a new certificate for this key",
        )
    ]


def check_chain(
    cert_file: str,
    certs: Sequence[x509.Certificate],
    trusted: Sequence[x509.Certificate],
    check_unknown_issuer: bool = True,
) -> list[Finding]:
    """Order, completeness, the root in the bundle, and CA:TRUE on intermediates.

    ``trusted`` are the certificates known besides the bundle (ssl_ca_file, system roots);
    ``check_unknown_issuer=False`` (no ssl_ca_file) keeps quiet about a leaf whose issuer is unknown.
    """
    out: list[Finding] = []
    for i, c in enumerate(certs[1:], 2):
        if not is_self_signed(c) and not is_ca(c):
            out.append(
                error(
                    "ca-not-ca",
                    cert_file,
                    f"intermediate certificate #{i} {describe(c)} is not a CA (no basicConstraints CA:TRUE); clients reject the chain",
                    "reissue the intermediate with v3_ca extensions (pgtls cert intermediate)",
                )
            )
    if len(certs) > 1 and any(is_self_signed(c) for c in certs):
        out.append(
            warning(
                "chain-has-root",
                cert_file,
                "the bundle contains a self-signed root certificate; clients must trust the root themselves",
                f"remove the root certificate from {cert_file} and give it to clients as root.crt",
            )
        )
    for i in range(len(certs) - 1):
        c, nxt = certs[i], certs[i + 1]
        if is_self_signed(c) or issued_by(c, nxt):
            continue
        later = [j for j in range(len(certs)) if j != i + 1 and j != i and issued_by(c, certs[j])]
        if later:
            out.append(
                warning(
                    "chain-order",
                    cert_file,
                    f"certificate #{i + 1} {describe(c)} is followed by #{i + 2}, but its issuer is #{later[0] + 1}",
                    f"order {cert_file} as leaf, its issuer, that one's issuer, and so on",
                )
            )
            return out
    top = certs[-1]
    if is_self_signed(top):
        return out
    if any(is_self_signed(t) and issued_by(top, t) for t in trusted):
        return out
    if any(issued_by(top, c) for c in certs):
        return out  # out of order, already reported
    known_intermediate = any(issued_by(top, t) and not is_self_signed(t) for t in trusted)
    # A bundle ending in an intermediate normally stops just below the root the clients hold;
    # a bare leaf whose issuer nobody here knows is most likely missing its intermediate.
    if not known_intermediate and (is_ca(top) or not check_unknown_issuer):
        return out
    out.append(
        warning(
            "chain-incomplete",
            cert_file,
            f'the chain ends with {describe(top)}, issued by "{top.issuer.rfc4514_string()}", which is neither in the file nor a known root',
            f"append the missing intermediate certificate(s) to {cert_file}, after the server certificate",
        )
    )
    return out


def check_validity(
    file: str, certs: Sequence[x509.Certificate], now: dt.datetime, what: str = "certificate"
) -> list[Finding]:
    out: list[Finding] = []
    for i, c in enumerate(certs, 1):
        label = f"{what} #{i} {describe(c)}" if len(certs) > 1 else f"{what} {describe(c)}"
        if c.not_valid_after_utc <= now:
            out.append(
                error(
                    "expired",
                    file,
                    f"{label} expired on {c.not_valid_after_utc:%Y-%m-%d}",
                    "issue a new certificate (pgtls cert ...) and reload",
                )
            )
        elif c.not_valid_before_utc > now:
            out.append(
                error(
                    "not-yet-valid",
                    file,
                    f"{label} is not valid before {c.not_valid_before_utc:%Y-%m-%d %H:%M} UTC",
                    "check the system clock, or reissue the certificate with a current start date",
                )
            )
        elif c.not_valid_after_utc - now < EXPIRY_WARNING:
            out.append(
                warning(
                    "expiring",
                    file,
                    f"{label} expires on {c.not_valid_after_utc:%Y-%m-%d}",
                    "issue a new certificate before it expires and reload the server",
                )
            )
    return out


def check_weak(file: str, certs: Sequence[x509.Certificate], skip_roots: bool = False) -> list[Finding]:
    out: list[Finding] = []
    for i, c in enumerate(certs, 1):
        if skip_roots and is_self_signed(c):
            continue
        label = f"certificate #{i} {describe(c)}" if len(certs) > 1 else f"certificate {describe(c)}"
        try:
            alg = c.signature_hash_algorithm
        except Exception:
            alg = None
        if isinstance(alg, WEAK_HASHES):
            out.append(
                warning(
                    "weak-signature",
                    file,
                    f"{label} is signed with {alg.name.upper()}; clients may refuse it",
                    "reissue it with a SHA-256 signature (pgtls cert ...)",
                )
            )
        pub = c.public_key()
        if isinstance(pub, rsa.RSAPublicKey | dsa.DSAPublicKey) and pub.key_size < MIN_RSA_BITS:
            kind = "RSA" if isinstance(pub, rsa.RSAPublicKey) else "DSA"
            out.append(
                warning(
                    "weak-key",
                    file,
                    f"{label} has a {pub.key_size}-bit {kind} key",
                    "reissue it with an RSA key of 2048 bits or more, or ECDSA P-256 (--key-type ec)",
                )
            )
    return out


def _host_covered(cert: x509.Certificate, host: str) -> bool:
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = [n.lower() for n in sans.get_values_for_type(x509.DNSName)]
        ips = sans.get_values_for_type(x509.IPAddress)
    except x509.ExtensionNotFound:
        dns, ips = [], []
    cns = [str(a.value) for a in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        ip = None
    if ip is not None:  # libpq: iPAddress SANs, else the CN as text
        return ip in ips or (not ips and any(c == host for c in cns))
    h = host.lower().rstrip(".")
    for pattern in dns or [c.lower() for c in cns]:
        if pattern == h:
            return True
        # libpq: a leading "*." matches exactly one label
        if pattern.startswith("*.") and "." in h and h.split(".", 1)[1] == pattern[2:]:
            return True
    return False


def check_hostnames(cert_file: str, leaf: x509.Certificate, listen_addresses: str) -> list[Finding]:
    """Every specific name in listen_addresses must be covered by the server certificate (verify-full)."""
    out: list[Finding] = []
    for host in (h.strip() for h in listen_addresses.split(",")):
        if host in WILDCARD_ADDRESSES or _host_covered(leaf, host):
            continue
        kind = "IP" if _is_ip(host) else "DNS"
        out.append(
            warning(
                "hostname-mismatch",
                cert_file,
                f'the server certificate does not cover "{host}" from listen_addresses; clients using sslmode=verify-full with it fail',
                f"reissue the server certificate with --san {kind}:{host}",
            )
        )
    return out


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def check_key_permissions(key_file: str, st_mode: int, st_uid: int, server_uid: int) -> list[Finding]:
    """§19.9.1 / be-secure-common.c: regular file; 0600 or less if the server user owns it, 0640 or less if root does."""
    fix_user = f"chmod 0600 {key_file} (or own it by root with mode 0640)"
    if not stat.S_ISREG(st_mode):
        return [
            error(
                "key-permissions",
                key_file,
                "private key file is not a regular file",
                f"make {key_file} a regular file",
            )
        ]
    if st_uid not in (server_uid, 0):
        return [
            error(
                "key-permissions",
                key_file,
                "private key file must be owned by the database user or root",
                f"chown the file to the user that owns the data directory, then {fix_user}",
            )
        ]
    bad = (st_mode & 0o077) if st_uid == server_uid else (st_mode & 0o037)
    if bad:
        return [
            error(
                "key-permissions",
                key_file,
                f"private key file has group or world access (mode {stat.S_IMODE(st_mode):04o}); the server refuses to start",
                fix_user,
            )
        ]
    return []


def check_ciphers(ssl_ciphers: str) -> list[Finding]:
    """Ask OpenSSL (through ssl.SSLContext.set_ciphers) what the cipher string allows."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.set_ciphers(ssl_ciphers)
    except ssl.SSLError:
        return [
            error(
                "ciphers-invalid",
                "postgresql.conf",
                f'ssl_ciphers "{ssl_ciphers}" selects no valid cipher; the server will not start',
                "use the default ssl_ciphers = 'HIGH:MEDIUM:+3DES:!aNULL'",
            )
        ]
    ciphers = ctx.get_ciphers()
    out: list[Finding] = []
    null_enc = sorted(
        {c["name"] for c in ciphers if c.get("symmetric") in (None, "null") and "NULL" in c["name"]}
    )
    null_auth = sorted({c["name"] for c in ciphers if c.get("auth") == "auth-null"})
    if null_enc:
        out.append(
            error(
                "ciphers-null",
                "postgresql.conf",
                f"ssl_ciphers allows ciphers without encryption ({', '.join(null_enc[:3])}{', ...' if len(null_enc) > 3 else ''})",
                "add :!eNULL to ssl_ciphers (the default 'HIGH:MEDIUM:+3DES:!aNULL' excludes them)",
            )
        )
    if null_auth:
        out.append(
            error(
                "ciphers-anull",
                "postgresql.conf",
                f"ssl_ciphers allows anonymous ciphers, open to a man in the middle ({', '.join(null_auth[:3])}{', ...' if len(null_auth) > 3 else ''})",
                "add :!aNULL to ssl_ciphers",
            )
        )
    return out


# --- client-certificate side: CA file, CRLs, pg_hba.conf --------------------------------------------


def check_ca_file(ca_file: str, certs: Sequence[x509.Certificate]) -> list[Finding]:
    out: list[Finding] = []
    for i, c in enumerate(certs, 1):
        if not is_self_signed(c) and not is_ca(c):
            out.append(
                error(
                    "ca-not-ca",
                    ca_file,
                    f"certificate #{i} {describe(c)} is not a CA (no basicConstraints CA:TRUE); it cannot verify client certificates",
                    "reissue it with v3_ca extensions (pgtls cert intermediate) or remove it",
                )
            )
    return out


def check_crls(
    crl_sources: Mapping[str, Sequence[x509.CertificateRevocationList]],
    ca_file: str | None,
    ca_certs: Sequence[x509.Certificate],
    now: dt.datetime,
    intermediates: Sequence[x509.Certificate] = (),
) -> list[Finding]:
    """``crl_sources`` maps a display name (file, or dir/file) to its CRLs.

    A CRL must be signed by a CA of ssl_ca_file, or by one of ``intermediates``
    (e.g. from the server's bundle) that a CA of ssl_ca_file issued: clients may
    send such intermediates, and CRL_CHECK_ALL then wants their CRLs too.
    """
    signers = list(ca_certs) + [
        i for i in intermediates if is_ca(i) and any(issued_by(i, c) for c in ca_certs)
    ]
    out: list[Finding] = []
    if not ca_file:
        if crl_sources:
            out.append(
                warning(
                    "crl-without-ca",
                    "postgresql.conf",
                    "a CRL is configured but ssl_ca_file is empty, so no client certificate is ever checked against it",
                    "set ssl_ca_file, or remove ssl_crl_file/ssl_crl_dir",
                )
            )
        return out
    covered: set[int] = set()
    for name, crls in crl_sources.items():
        for crl in crls:
            issuer = next((c for c in signers if c.subject == crl.issuer and _crl_signed_by(crl, c)), None)
            if issuer is None:
                out.append(
                    error(
                        "crl-unknown-issuer",
                        name,
                        f'CRL of "{crl.issuer.rfc4514_string()}" is not signed by any CA in {ca_file}',
                        f"regenerate it with the CA in {ca_file} (pgtls cert crl --ca ...), or remove it",
                    )
                )
                continue
            covered.add(id(issuer))
            nxt = crl.next_update_utc
            if nxt is not None and nxt <= now:
                out.append(
                    error(
                        "crl-expired",
                        name,
                        f'CRL of "{crl.issuer.rfc4514_string()}" expired on {nxt:%Y-%m-%d}; every client certificate from that CA is refused',
                        "publish a fresh CRL (pgtls cert crl --ca ...) and reload",
                    )
                )
    if crl_sources:
        for c in ca_certs:
            # CRL_CHECK_ALL asks every issuer in a client's chain for its CRL; a non-CA issues nothing
            if id(c) not in covered and (is_ca(c) or is_self_signed(c)):
                out.append(
                    error(
                        "crl-missing",
                        ca_file,
                        f"CA {describe(c)} has no CRL in ssl_crl_file/ssl_crl_dir; with CRL checking its client certificates are refused",
                        "add a CRL for this CA (pgtls cert crl --ca ...)",
                    )
                )
    return out


def _crl_signed_by(crl: x509.CertificateRevocationList, ca: x509.Certificate) -> bool:
    try:
        return crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
    except Exception:
        return False


def check_crl_dir_name(
    display: str, filename: str, crl: x509.CertificateRevocationList, expected_hash: str
) -> list[Finding]:
    if filename.split(".", 1)[0] == expected_hash:
        return []
    return [
        error(
            "crl-dir-name",
            display,
            f"file is not named after its issuer's hash ({expected_hash}.r0), so OpenSSL never finds it",
            f"rename it to {expected_hash}.r0 (pgtls cert crl --dir writes the right names)",
        )
    ]


class HbaLineLike(Protocol):
    @property
    def conn_type(self) -> str: ...
    @property
    def method(self) -> str: ...
    @property
    def options(self) -> dict[str, str]: ...
    @property
    def line_number(self) -> int: ...


def check_hba_needs_ca(hba_file: str, lines: Sequence[HbaLineLike], ca_file: str) -> list[Finding]:
    if ca_file:
        return []
    out: list[Finding] = []
    for ln in lines:
        if ln.method == "cert" or ln.options.get("clientcert") in ("verify-ca", "verify-full"):
            what = "the cert method" if ln.method == "cert" else f"clientcert={ln.options.get('clientcert')}"
            out.append(
                error(
                    "hba-needs-ca",
                    hba_file,
                    f"line {ln.line_number} uses {what} but ssl_ca_file is empty; every such connection fails",
                    "set ssl_ca_file to the CA that issues client certificates",
                    line=ln.line_number,
                )
            )
    return out
