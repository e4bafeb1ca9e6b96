"""A named certificate set for the whole suite, made fresh with pgtls's own builder.

Shaped like PostgreSQL's SSL test suite (shared reference, section C): a root CA,
a server CA and a client CA under it, server leaves, client leaves (valid, revoked,
expired, not yet valid, DN-carrying, from a wrong CA), CRL files and hashed CRL
directories, a passphrase-protected server key.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

from pgtls.certs import x509build as xb

PASSPHRASE = b"secret1"
SERVER_NAMES = ("localhost", "IP:127.0.0.1", "IP:::1", "common-name.pg-ssltest.test")


@dataclass
class CertSet:
    dir: Path

    def path(self, name: str) -> str:
        return str(self.dir / name)

    def install_server(self, datadir: Path, cert: str = "server-chain.crt", key: str = "server.key") -> None:
        """Copy a server cert/key (as server.crt/server.key, key 0600) and CA/CRL files into a data directory."""
        shutil.copy(self.dir / cert, datadir / "server.crt")
        shutil.copy(self.dir / key, datadir / "server.key")
        (datadir / "server.key").chmod(0o600)
        for extra in ("root+client_ca.crt", "root+client.crl", "root_ca.crt"):
            shutil.copy(self.dir / extra, datadir / extra)
        if (datadir / "root+client-crldir").exists():
            shutil.rmtree(datadir / "root+client-crldir")
        shutil.copytree(self.dir / "root+client-crldir", datadir / "root+client-crldir")


def build(directory: Path) -> CertSet:
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    root = xb.make_ca(xb.cn("Test root CA for pgtls"))
    server_ca = xb.make_ca(xb.cn("Test CA for pgtls server certs"), issuer=root, path_length=0)
    client_ca = xb.make_ca(xb.cn("Test CA for pgtls client certs"), issuer=root, path_length=0)
    other_root = xb.make_ca(xb.cn("Unrelated root CA"))
    other_client_ca = xb.make_ca(xb.cn("Test CA for pgtls client certs"), issuer=other_root)

    server = xb.make_leaf(
        xb.make_name(("OU", "pgtls test suite"), ("CN", "localhost")), server_ca, san=SERVER_NAMES
    )
    server2 = xb.make_leaf(
        xb.make_name(("OU", "pgtls test suite"), ("CN", "localhost")), server_ca, san=SERVER_NAMES
    )
    server_rsa = xb.make_leaf(xb.cn("localhost"), server_ca, san=SERVER_NAMES, key_kind="rsa2048")
    server_wrongname = xb.make_leaf(xb.cn("wronghost.test"), server_ca, san=("wronghost.test",))

    client = xb.make_leaf(xb.cn("ssltestuser"), client_ca, purpose="client")
    client_revoked = xb.make_leaf(xb.cn("ssltestuser"), client_ca, purpose="client")
    client_expired = xb.make_leaf(
        xb.cn("ssltestuser"),
        client_ca,
        purpose="client",
        not_before=now - dt.timedelta(days=30),
        not_after=now - dt.timedelta(days=1),
    )
    client_future = xb.make_leaf(
        xb.cn("ssltestuser"),
        client_ca,
        purpose="client",
        not_before=now + dt.timedelta(days=1),
        not_after=now + dt.timedelta(days=30),
    )
    client_dn = xb.make_leaf(
        xb.make_name(("O", "PGDG"), ("OU", "Engineering"), ("OU", "Testing"), ("CN", "ssltestuser-dn")),
        client_ca,
        purpose="client",
    )
    client_other = xb.make_leaf(xb.cn("anotheruser"), client_ca, purpose="client")
    client_wrongca = xb.make_leaf(xb.cn("ssltestuser"), other_client_ca, purpose="client")

    for name, issued in {
        "root_ca": root,
        "server_ca": server_ca,
        "client_ca": client_ca,
        "server": server,
        "server2": server2,
        "server-rsa": server_rsa,
        "server-wrongname": server_wrongname,
        "client": client,
        "client-revoked": client_revoked,
        "client-expired": client_expired,
        "client-future": client_future,
        "client-dn": client_dn,
        "anotheruser": client_other,
        "client-wrongca": client_wrongca,
        "other_root": other_root,
    }.items():
        xb.write_certs(d / f"{name}.crt", [issued.cert])
        assert issued.key is not None
        xb.write_key(d / f"{name}.key", issued.key)

    xb.write_key(d / "server-password.key", server.key, PASSPHRASE)  # type: ignore[arg-type]
    xb.write_certs(d / "server-chain.crt", [server.cert, server_ca.cert])
    xb.write_certs(d / "server2-chain.crt", [server2.cert, server_ca.cert])
    xb.write_certs(d / "server-rsa-chain.crt", [server_rsa.cert, server_ca.cert])
    xb.write_certs(d / "server-wrongname-chain.crt", [server_wrongname.cert, server_ca.cert])
    xb.write_certs(d / "root+server_ca.crt", [root.cert, server_ca.cert])
    xb.write_certs(d / "root+client_ca.crt", [root.cert, client_ca.cert])
    xb.write_certs(d / "client+client_ca.crt", [client.cert, client_ca.cert])
    xb.write_certs(d / "client-wrongca+ca.crt", [client_wrongca.cert, other_client_ca.cert])

    root_crl = xb.make_crl(root)
    client_crl = xb.make_crl(client_ca, [client_revoked.cert.serial_number])
    server_ca_crl = xb.make_crl(server_ca)
    xb.write_crls(d / "root.crl", [root_crl])
    xb.write_crls(d / "client.crl", [client_crl])
    xb.write_crls(d / "root+client.crl", [root_crl, client_crl, server_ca_crl])
    xb.write_crl_dir(d / "root+client-crldir", [root_crl, client_crl, server_ca_crl])
    return CertSet(d)
