"""TLS towards an upstream PostgreSQL, meaning what libpq's connection parameters mean.

pgtls is a *client* of an upstream server named in a libpq connection string, so the upstream leg
follows libpq (fe-secure-openssl.c, fe-secure-common.c), not Python's defaults:

* ``sslmode``: ``disable``, ``allow``, ``prefer``, ``require`` (verifies the chain like
  ``verify-ca`` when a root certificate file exists, as libpq does), ``verify-ca``, ``verify-full``.
  pgtls's default is ``verify-full`` (libpq's is ``prefer``): weaker modes only when written.
* ``sslrootcert``: a file of trusted certificates, or ``system`` (the system's store; forces
  ``verify-full``); by default ``~/.postgresql/root.crt`` of the OS user pgtls runs as.
* ``sslcert``/``sslkey`` (default ``~/.postgresql/postgresql.crt``/``.key`` when present),
  ``sslpassword`` for an encrypted key; ``sslcrl``/``sslcrldir``: revoked certificates refuse the
  server; ``ssl_min_protocol_version`` (default TLSv1.2)/``ssl_max_protocol_version``;
  ``sslsni`` (default 1: SNI is sent for a host name, never for an IP address);
  ``sslnegotiation=direct``: TLS at once, with ALPN ``postgresql`` (needs ``require`` or stronger).
* ``verify-full`` checks the host name with libpq's rules (:func:`peer_name_error`): the
  certificate's dNSName entries (a leading ``*.`` matches one label) for a host name, its
  iPAddress entries for an IP address, the Common Name only when there is no entry of that kind,
  and libpq's messages.

:func:`client_tls` returns the policy and the SSLContext; the connection code applies it.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
DEFAULT_SSLMODE = "verify-full"
ALPN_POSTGRESQL = "postgresql"
_VERSIONS = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}


class ClientTlsError(ValueError):
    """A connection parameter libpq would refuse, or a server the parameters refuse; libpq's text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ClientTls:
    sslmode: str
    direct: bool  # sslnegotiation=direct
    sni: bool
    verify_chain: bool
    verify_name: bool
    context: ssl.SSLContext | None  # None: sslmode=disable

    @property
    def tries_plain_first(self) -> bool:
        return self.sslmode == "allow"

    @property
    def may_fall_back_to_plain(self) -> bool:
        return self.sslmode in ("allow", "prefer")

    def server_hostname(self, host: str) -> str | None:
        """The SNI to send for ``host`` (libpq: only for a name, and only with sslsni=1)."""
        if not self.sni or not host or host.startswith("/") or _ip(host) is not None:
            return None
        return host


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _postgresql_dir() -> Path:
    return Path(os.path.expanduser("~")) / ".postgresql"


def client_tls(params: dict[str, str], home_dir: Path | None = None) -> ClientTls:
    """The upstream TLS policy of a route's libpq parameters."""
    pgdir = home_dir if home_dir is not None else _postgresql_dir()
    sslmode = params.get("sslmode", DEFAULT_SSLMODE)
    if sslmode not in SSLMODES:
        raise ClientTlsError(f'invalid sslmode value: "{sslmode}"')
    negotiation = params.get("sslnegotiation", "postgres")
    if negotiation not in ("postgres", "direct"):
        raise ClientTlsError(f'invalid sslnegotiation value: "{negotiation}"')
    direct = negotiation == "direct"
    if direct and sslmode in ("disable", "allow", "prefer"):
        raise ClientTlsError(
            f'weak sslmode "{sslmode}" may not be used with sslnegotiation=direct '
            '(use "require", "verify-ca", or "verify-full")'
        )
    rootcert = params.get("sslrootcert", "")
    if rootcert == "system" and sslmode != "verify-full":
        raise ClientTlsError(
            f'weak sslmode "{sslmode}" may not be used with sslrootcert=system (use "verify-full")'
        )
    sni = params.get("sslsni", "1") != "0"
    if sslmode == "disable":
        return ClientTls(sslmode, False, sni, False, False, None)

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # libpq's own name check (peer_name_error), also without SNI
    low = params.get("ssl_min_protocol_version", "TLSv1.2")
    high = params.get("ssl_max_protocol_version", "")
    for name, value in (("ssl_min_protocol_version", low), ("ssl_max_protocol_version", high)):
        if value and value not in _VERSIONS:
            raise ClientTlsError(f'invalid "{name}" value: "{value}"')
    if low and high and _VERSIONS[low] > _VERSIONS[high]:
        raise ClientTlsError("invalid SSL protocol version range")
    if low:
        ctx.minimum_version = _VERSIONS[low]
    if high:
        ctx.maximum_version = _VERSIONS[high]
    if direct:
        ctx.set_alpn_protocols([ALPN_POSTGRESQL])

    verify_chain = sslmode in ("verify-ca", "verify-full")
    if rootcert == "system":
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        verify_chain = True
    else:
        root = Path(rootcert) if rootcert else pgdir / "root.crt"
        if root.is_file():
            try:
                ctx.load_verify_locations(cafile=str(root))
            except (ssl.SSLError, OSError) as e:
                raise ClientTlsError(f'could not read root certificate file "{root}": {_reason(e)}') from None
            verify_chain = True  # libpq: with a root file, require verifies like verify-ca
        elif verify_chain:
            raise ClientTlsError(
                f'root certificate file "{root}" does not exist\nEither provide the file, use the system\'s '
                "trusted roots with sslrootcert=system, or change sslmode to disable server certificate "
                "verification."
            )
    if verify_chain:
        ctx.verify_mode = ssl.CERT_REQUIRED
        _load_crls(ctx, params, pgdir)
    else:
        ctx.verify_mode = ssl.CERT_NONE
    _load_client_cert(ctx, params, pgdir)
    return ClientTls(sslmode, direct, sni, verify_chain, sslmode == "verify-full", ctx)


def _reason(e: BaseException) -> str:
    return getattr(e, "reason", None) or getattr(e, "strerror", None) or str(e)


def _load_crls(ctx: ssl.SSLContext, params: dict[str, str], pgdir: Path) -> None:
    crl_file = params.get("sslcrl", "")
    crl_dir = params.get("sslcrldir", "")
    default = pgdir / "root.crl"
    if not crl_file and not crl_dir and default.is_file():
        crl_file = str(default)
    loaded = False
    if crl_file:
        if not Path(crl_file).is_file():
            raise ClientTlsError(
                f'could not load SSL certificate revocation list file "{crl_file}": No such file or directory'
            )
        try:
            ctx.load_verify_locations(cafile=crl_file)  # PEM CRLs load into the same store
        except ssl.SSLError as e:
            raise ClientTlsError(
                f'could not load SSL certificate revocation list file "{crl_file}": {_reason(e)}'
            ) from None
        loaded = True
    if crl_dir:
        ctx.load_verify_locations(capath=crl_dir)  # looked up by hash, as OpenSSL's hashed directory
        loaded = True
    if loaded:  # libpq: X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL
        ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF | ssl.VERIFY_CRL_CHECK_CHAIN


def _load_client_cert(ctx: ssl.SSLContext, params: dict[str, str], pgdir: Path) -> None:
    cert = params.get("sslcert", "")
    key = params.get("sslkey", "")
    cert_path = Path(cert) if cert else pgdir / "postgresql.crt"
    if not cert_path.is_file():
        if cert:
            raise ClientTlsError(f'could not open certificate file "{cert_path}": No such file or directory')
        return  # libpq: no default certificate file, no client certificate
    key_path = Path(key) if key else pgdir / "postgresql.key"
    if not key_path.is_file():
        raise ClientTlsError(f'certificate present, but not private key file "{key_path}"')
    st = key_path.stat()
    loose = st.st_mode & 0o077 if st.st_uid == os.geteuid() else st.st_mode & 0o037
    if loose:  # libpq: 0600 or less when owned by the user, 0640 or less when owned by root
        raise ClientTlsError(
            f'private key file "{key_path}" has group or world access; file must have '
            "permissions u=rw (0600) or less if owned by the current user, or permissions "
            "u=rw,g=r (0640) or less if owned by root"
        )
    password = params.get("sslpassword", "")
    try:
        ctx.load_cert_chain(str(cert_path), str(key_path), password=password.encode() if password else "")
    except ssl.SSLError as e:
        raise ClientTlsError(f'could not load private key file "{key_path}": {_reason(e)}') from None


# --- verify-full: libpq's host name check (fe-secure-common.c, fe-secure-openssl.c) -------------------------


def _name_matches(pattern: str, host: str) -> bool:
    """pq_verify_peer_name_matches_certificate_name(): exact (case-insensitive), or ``*.rest`` where the
    host's first label is the wildcard's."""
    pattern_l, host_l = pattern.lower(), host.lower()
    if pattern_l == host_l:
        return True
    if len(pattern_l) > 2 and pattern_l.startswith("*.") and "." in host_l:
        first, rest = host_l.split(".", 1)
        return bool(first) and rest == pattern_l[2:]
    return False


def peer_name_error(cert_der: bytes, host: str) -> str | None:
    """None when the certificate names ``host`` as libpq's verify-full requires, else libpq's message.

    Every subjectAltName entry is examined in order (dNSName entries match a host name, iPAddress
    entries an IP address) and named in the message; the Common Name is examined only when there is
    no subjectAltName entry of the host's kind."""
    cert = x509.load_der_x509_certificate(cert_der)
    ip = _ip(host)
    try:
        entries = list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        entries = []
    names: list[str] = []
    same_kind = False
    for entry in entries:
        if isinstance(entry, x509.DNSName):
            names.append(entry.value)
            if ip is None:
                same_kind = True
                if _name_matches(entry.value, host):
                    return None
        elif isinstance(entry, x509.IPAddress):
            names.append(str(entry.value))
            if ip is not None:
                same_kind = True
                if entry.value == ip:
                    return None
    if not same_kind:
        for attr in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
            cn = attr.value if isinstance(attr.value, str) else attr.value.decode("utf-8", "replace")
            if "\0" in cn:
                return "SSL certificate's name contains embedded null"
            names.append(cn)
            if _name_matches(cn, host):
                return None
    if not names:
        return "could not get server's host name from server certificate"
    if len(names) == 1:
        return f'server certificate for "{names[0]}" does not match host name "{host}"'
    others = len(names) - 1
    plural = "name" if others == 1 else "names"
    return (
        f'server certificate for "{names[0]}" (and {others} other {plural}) does not match host name "{host}"'
    )
