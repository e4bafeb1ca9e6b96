"""Certificate, key, CRL and DH-parameter files: pgtls's own loaders (pgtls.certs.pemfiles: ``read_certs``,
``read_key``, ``read_crls``) and the server's OpenSSL loading through ctypes (pgtls.tls.build_tls_config:
certificate chain, private key, CA file, CRL file, DH parameters).

Input: one control byte whose value modulo 5 picks the file being fuzzed (0 server.crt, 1 server.key,
2 root.crt, 3 root.crl, 4 dh.pem), then that file's bytes; the other files are the valid fixtures in
tests/fuzz/fixtures.  Files are written to a scratch directory (the key with mode 0600).

Expected: ``CertError`` from the Python loaders (one line naming the file) and ``TlsConfigError`` from the
server's loading.  A bug: any other exception, a crash inside OpenSSL, an error text that carries the file's
bytes, or a good load that has no certificate chain.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.fuzz.common import instrumented, main, scratch

with instrumented(__name__):
    from pgtls.certs.pemfiles import CertError, key_is_encrypted, read_certs, read_crls, read_key
    from pgtls.tls import TlsConfigError, build_tls_config


FIXTURES = Path(__file__).resolve().parent / "fixtures"
FILES = ("server.crt", "server.key", "root.crt", "root.crl", "dh.pem")
FIXED = {name: (FIXTURES / name).read_bytes() for name in FILES}
SETTINGS = {"ssl_ca_file": "root.crt", "ssl_crl_file": "root.crl", "ssl_dh_params_file": "dh.pem"}


def _write(d: Path, name: str, content: bytes) -> Path:
    path = d / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(content)
    return path


def _python_loaders(path: Path, slot: int, content: bytes) -> None:
    try:
        if slot in (0, 2):
            assert read_certs(path)
        elif slot == 1:
            key_is_encrypted(path)
            read_key(path, b"passphrase")
        elif slot == 3:
            assert read_crls(path)
    except CertError as e:
        msg = str(e).replace(str(path), "")
        assert msg and "\n" not in msg, f"not one line: {msg!r}"
        assert len(content) < 16 or content[:16].decode("latin-1") not in msg, "the error echoes the file"


def test_one_input(data: bytes) -> None:
    if not data:
        return
    slot, content = data[0] % len(FILES), data[1:]
    d = scratch()
    for i, name in enumerate(FILES):
        path = _write(d, name, content if i == slot else FIXED[name])
    path = d / FILES[slot]
    _python_loaders(path, slot, content)
    try:
        config = build_tls_config(SETTINGS, d, is_start=False, interactive=False)
    except TlsConfigError as e:
        assert str(e), "TlsConfigError without a message"
        return
    assert config.cert_chain and config.leaf_der == config.cert_chain[0]


if __name__ == "__main__":
    main(test_one_input)
