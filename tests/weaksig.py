"""Server certificates signed with SHA-1 or MD5, made with the openssl CLI (``cryptography`` refuses to
sign with either).  They are self-signed: OpenSSL's security level exempts a self-signed certificate's
own signature, so a server (pgtls or PostgreSQL) still loads them at the default level, and a client
with sslmode=require does not verify them.  What they exercise is SCRAM's tls-server-end-point channel
binding, where MD5 and SHA-1 are replaced by SHA-256 (RFC 5929 §4.1)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from pgtls.certs import x509build as xb

DIGESTS = ("sha1", "md5")
# What `openssl x509 -text` calls each signature algorithm.
SIGNATURE_NAMES = {"sha1": "sha1WithRSAEncryption", "md5": "md5WithRSAEncryption"}


def make(directory: Path, digest: str) -> tuple[Path, Path]:
    """``directory/<digest>.crt`` (self-signed, CN and SAN localhost/127.0.0.1, signed with ``digest``) and
    its RSA key ``directory/<digest>.key``; fails (not skips) when the openssl CLI is missing."""
    assert shutil.which("openssl"), "the openssl CLI is needed to sign with SHA-1 or MD5"
    key, crt = directory / f"{digest}.key", directory / f"{digest}.crt"
    xb.write_key(key, xb.generate_key("rsa2048"))
    subprocess.run(["openssl", "req", "-x509", "-new", "-key", str(key), f"-{digest}", "-days", "30",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-out", str(crt)], check=True, capture_output=True)  # fmt: skip
    text = subprocess.run(["openssl", "x509", "-in", str(crt), "-noout", "-text"], check=True, capture_output=True,
                          text=True).stdout  # fmt: skip
    assert f"Signature Algorithm: {SIGNATURE_NAMES[digest]}" in text, text
    return crt, key
