"""``pgtls check --server HOST:PORT``: what a running server presents over PostgreSQL's SSLRequest.

Any PostgreSQL-protocol server (pgtls, PostgreSQL, PgBouncer): the certificate chain it sends (subjects,
issuers, names, expiry), the protocol, cipher and group it negotiates, which TLS versions and key-exchange
groups it accepts (one handshake each, offering only that one), and, with ``--rootcert``, whether the chain
verifies and the name matches as libpq's ``sslmode=verify-full`` would.  With ``--sni`` the name is sent as
SNI (a server with ``ssl_sni`` chooses its certificate by it).

Exit status as for the data directory check: 0 clean, 1 warnings (a certificate near its end, a version
older than TLS 1.2 accepted), 2 errors (no TLS, no handshake, the chain does not verify).
"""

from __future__ import annotations

import ctypes
import datetime as dt
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from pgtls.tls import ffi

SSL_REQUEST = b"\0\0\0\x08\x04\xd2\x16\x2f"
CONNECT_TIMEOUT = 10.0
EXPIRY_WARNING_DAYS = 30
SSL_CTRL_GET_NEGOTIATED_GROUP = 134
VERSIONS = (
    ("TLSv1", ssl.TLSVersion.TLSv1),
    ("TLSv1.1", ssl.TLSVersion.TLSv1_1),
    ("TLSv1.2", ssl.TLSVersion.TLSv1_2),
    ("TLSv1.3", ssl.TLSVersion.TLSv1_3),
)
GROUPS = ("X25519", "P-256", "P-384", "P-521", "X448", "ffdhe2048", "ffdhe3072")


@dataclass
class Report:
    server: str
    sni: str | None
    error: str | None = None
    protocol: str | None = None
    cipher: str | None = None
    group: str | None = None
    chain: list[dict[str, Any]] = field(default_factory=list)
    versions: dict[str, bool] = field(default_factory=dict)
    groups: dict[str, bool] = field(default_factory=dict)
    verified: str | None = None  # "ok" or the reason it does not verify (with --rootcert)
    warnings: list[str] = field(default_factory=list)

    @property
    def status(self) -> int:
        if self.error or (self.verified not in (None, "ok")):
            return 2
        return 1 if self.warnings else 0

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()} | {"status": self.status}


def parse_server(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f'invalid server "{value}" (HOST:PORT)')
    return host.strip("[]"), int(port)


def _handshake(host: str, port: int, ctx: ssl.SSLContext, sni: str | None) -> ssl.SSLObject:
    """SSLRequest then a TLS handshake over memory BIOs; the finished SSLObject (ssl.SSLError, OSError)."""
    with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT) as sock:
        sock.sendall(SSL_REQUEST)
        answer = sock.recv(1)
        if answer != b"S":
            raise ConnectionError(
                f"the server does not accept SSL connections (it answered the SSLRequest with {answer!r})"
            )
        inbio, outbio = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(inbio, outbio, server_side=False, server_hostname=sni)
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                out = outbio.read()
                if out:
                    sock.sendall(out)
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError("the server closed the connection during the handshake") from None
                inbio.write(data)
        out = outbio.read()
        if out:
            sock.sendall(out)
        return obj


def _open_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _chain(obj: ssl.SSLObject) -> list[bytes]:
    lib = ffi.libs()
    sk = lib.ssl.SSL_get_peer_cert_chain(ffi.ssl_ptr(obj))
    return [ffi.x509_der(x) for x in ffi.stack_items(sk)]


def _group(obj: ssl.SSLObject) -> str | None:
    lib = ffi.libs()
    nid = lib.ssl.SSL_ctrl(ffi.ssl_ptr(obj), SSL_CTRL_GET_NEGOTIATED_GROUP, 0, None)
    if nid <= 0:
        return None
    name = lib.crypto.OBJ_nid2sn(nid & 0xFFFFFFFF)
    return name.decode() if name else None


def _cert_facts(der: bytes, now: dt.datetime) -> dict[str, Any]:
    cert = x509.load_der_x509_certificate(der)
    names: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(n.value) for n in san]
    except x509.ExtensionNotFound:
        pass
    not_after = cert.not_valid_after_utc
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "names": names,
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": not_after.isoformat(),
        "days_left": (not_after - now).days,
    }


def check_server(server: str, sni: str | None = None, rootcert: str | None = None) -> Report:
    try:
        host, port = parse_server(server)
    except ValueError as e:
        return Report(server, sni, error=str(e))
    rep = Report(server, sni)
    try:
        obj = _handshake(host, port, _open_context(), sni)
    except (OSError, ssl.SSLError, ConnectionError) as e:
        rep.error = f"no TLS handshake with {server}: {e}"
        return rep
    rep.protocol = obj.version()
    cipher = obj.cipher()
    rep.cipher = cipher[0] if cipher else None
    try:
        rep.group = _group(obj)
        ders = _chain(obj)
    except (ffi.FfiError, ValueError, ctypes.ArgumentError):
        ders = [obj.getpeercert(binary_form=True) or b""]
    now = dt.datetime.now(dt.UTC)
    rep.chain = [_cert_facts(d, now) for d in ders if d]
    for i, c in enumerate(rep.chain):
        what = "the server certificate" if i == 0 else f"chain certificate {i} ({c['subject']})"
        if c["days_left"] < 0:
            rep.warnings.append(f"{what} expired on {c['not_after']}")
        elif c["days_left"] < EXPIRY_WARNING_DAYS:
            rep.warnings.append(f"{what} expires in {c['days_left']} days, on {c['not_after']}")
    for name, version in VERSIONS:
        ctx = _open_context()
        try:
            ctx.minimum_version = ctx.maximum_version = version
            if version < ssl.TLSVersion.TLSv1_2:
                ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
            _handshake(host, port, ctx, sni)
            rep.versions[name] = True
        except (OSError, ssl.SSLError, ConnectionError, ValueError):
            rep.versions[name] = False
    old = [n for n in ("TLSv1", "TLSv1.1") if rep.versions.get(n)]
    if old:
        rep.warnings.append(f"the server accepts {', '.join(old)} (ssl_min_protocol_version)")
    for group in GROUPS:
        ctx = _open_context()
        try:
            ffi.set_groups(ctx, group)
            _handshake(host, port, ctx, sni)
            rep.groups[group] = True
        except (OSError, ssl.SSLError, ConnectionError, ValueError):
            rep.groups[group] = False
    if rootcert:
        ctx = ssl.create_default_context(cafile=rootcert)
        ctx.check_hostname = True
        try:
            _handshake(host, port, ctx, sni or host)
            rep.verified = "ok"
        except ssl.SSLCertVerificationError as e:
            rep.verified = e.verify_message or str(e)
        except (OSError, ssl.SSLError, ConnectionError) as e:
            rep.verified = str(e)
    return rep


def format_report(rep: Report) -> list[str]:
    if rep.error:
        return [f"error: {rep.error}"]
    out = [
        f"{rep.server}"
        + (f" (SNI {rep.sni})" if rep.sni else "")
        + f": {rep.protocol}, {rep.cipher}"
        + (f", group {rep.group}" if rep.group else "")
    ]
    for i, c in enumerate(rep.chain):
        out.append(f"  certificate {i}: {c['subject']}")
        out.append(f"    issuer {c['issuer']}; valid until {c['not_after']} ({c['days_left']} days)")
        if c["names"]:
            out.append(f"    names: {', '.join(c['names'])}")
    out.append("  protocols: " + ", ".join(f"{n} {'yes' if ok else 'no'}" for n, ok in rep.versions.items()))
    out.append("  groups: " + ", ".join(f"{n} {'yes' if ok else 'no'}" for n, ok in rep.groups.items()))
    if rep.verified is not None:
        out.append("  verify-full: " + ("ok" if rep.verified == "ok" else f"fails: {rep.verified}"))
    out += [f"warning: {w}" for w in rep.warnings]
    return out
