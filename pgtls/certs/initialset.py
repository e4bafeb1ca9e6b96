"""``pgtls init --tls``: a complete certificate set so the first connection can be verify-full + cert.

Layout written into the data directory DATA::

    DATA/server.crt, DATA/server.key (0600)   ssl_cert_file / ssl_key_file
    DATA/root.crt                             ssl_ca_file (verifies client certificates)
    DATA/client/postgresql.crt|.key|root.crt  the initial role's client files (copy to ~/.postgresql/)
    DATA/offline/root.crt, root.key (0600)    the root CA; the server never reads this directory

The root key lives in ``offline/`` (mode 0700) rather than next to server.key so
that nothing the server is configured to read can sign certificates; the manual
says "root.key should be stored offline", and the operator is told to move the
directory off the machine.  ``pgtls cert server|client|revoke|crl --ca
DATA/offline/root`` keeps using it.
"""

from __future__ import annotations

import ipaddress
import secrets
from pathlib import Path

from pgtls.certs import x509build as xb
from pgtls.certs.pemfiles import CertError

OFFLINE_DIR = "offline"
CLIENT_DIR = "client"
DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1")


def _san_entry(name: str) -> str:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return f"DNS:{name}"
    return f"IP:{name}"


def server_names(hostnames: list[str]) -> list[str]:
    """The given host names followed by localhost, 127.0.0.1 and ::1, without duplicates."""
    out: list[str] = []
    for n in [*hostnames, *DEFAULT_NAMES]:
        n = n.strip()
        if n and n.lower() not in (o.lower() for o in out):
            out.append(n)
    return out


def init_tls(datadir: Path, *, role: str, hostnames: list[str]) -> dict[str, str]:
    """Create the root CA, server and client certificates in ``datadir``; return postgresql.conf settings.

    Raises :class:`CertError` (before writing anything) if any of the keys already exists.
    """
    datadir = Path(datadir)
    if not role:
        raise CertError("a role name is needed for the client certificate")
    offline, client_dir = datadir / OFFLINE_DIR, datadir / CLIENT_DIR
    keys = [datadir / "server.key", offline / "root.key", client_dir / "postgresql.key"]
    for k in keys:
        if k.exists():
            raise CertError(f'refusing to overwrite existing private key "{k}"')
    names = server_names(hostnames)
    for d in (offline, client_dir):
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        d.chmod(0o700)

    root = xb.make_ca(
        xb.make_name(("O", "pgtls"), ("CN", f"pgtls root CA {names[0]} {secrets.token_hex(4)}"))
    )
    srv = xb.make_leaf(xb.cn(names[0]), root, purpose="server", san=[_san_entry(n) for n in names])
    cli = xb.make_leaf(xb.cn(role), root, purpose="client")
    assert root.key is not None and srv.key is not None and cli.key is not None

    xb.write_certs(offline / "root.crt", [root.cert])
    xb.write_key(offline / "root.key", root.key)
    xb.write_certs(datadir / "root.crt", [root.cert])
    xb.write_certs(datadir / "server.crt", [srv.cert])
    xb.write_key(datadir / "server.key", srv.key)
    xb.write_certs(client_dir / "postgresql.crt", [cli.cert])
    xb.write_key(client_dir / "postgresql.key", cli.key)
    xb.write_certs(client_dir / "root.crt", [root.cert])
    return {
        "ssl": "on",
        "ssl_cert_file": "server.crt",
        "ssl_key_file": "server.key",
        "ssl_ca_file": "root.crt",
    }
