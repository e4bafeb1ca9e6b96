"""The upstream leg's TLS policy (pgtls/tls/client.py) against libpq itself.

Host-name checks: for certificates with every combination of dNSName, iPAddress and Common Name, a
real libpq client (psycopg, sslmode=verify-full, host=<name> hostaddr=127.0.0.1) connects to a small
TLS listener presenting that certificate; libpq's verdict and message must be pgtls's.
Parameters: libpq's refusals of bad sslmode/sslnegotiation/protocol-range/rootcert combinations."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from pgtls.certs import x509build as xb
from pgtls.tls.client import ClientTlsError, client_tls, peer_name_error

CERTS = {
    "dns+cn": (("localhost", "*.example.test"), "other.test"),
    "cn-wildcard": ((), "*.example.test"),
    "cn-plain": ((), "Example.Test"),
    "ip-only": (("IP:127.0.0.1",), "example.test"),
    "ip+dns": (("IP:127.0.0.1", "db.example.test"), "ignored.test"),
    "cn-ip": ((), "127.0.0.1"),
    "many-dns": (("a.test", "b.test", "c.test"), "d.test"),
    "one-dns": (("only.test",), "cn.test"),
    "star-only": (("*",), "cn.test"),
    "no-names": ((), None),
    "dns-ip-text": (("127.0.0.1",), "cn.test"),
    "ipv6": (("IP:::1", "IP:10.0.0.1"), "cn.test"),
}
HOSTS = [
    "localhost",
    "LOCALHOST",
    "a.example.test",
    "a.b.example.test",
    "example.test",
    "127.0.0.1",
    "::1",
    "db.example.test",
    "cn.test",
    "only.test",
    "c.test",
    "d.test",
    ".example.test",
    "x",
]


class Listener:
    """Answers SSLRequest with 'S' and completes a TLS handshake with the given chain, then closes."""

    def __init__(self, chain: Path, key: Path) -> None:
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(chain), str(key))
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    if conn.recv(8)[4:] != b"\x04\xd2\x16\x2f":
                        continue
                    conn.sendall(b"S")
                    with self.ctx.wrap_socket(conn, server_side=True) as tls:
                        tls.recv(1)
                except (OSError, ssl.SSLError):
                    pass

    def close(self) -> None:
        self.stop = True
        self.thread.join(2)
        self.sock.close()


@pytest.fixture(scope="module")
def chains(tmp_path_factory) -> Iterator[tuple[Path, dict[str, tuple[bytes, Listener]]]]:
    d = tmp_path_factory.mktemp("names")
    ca = xb.make_ca(xb.cn("name test CA"))
    xb.write_certs(d / "root.crt", [ca.cert])
    out: dict[str, tuple[bytes, Listener]] = {}
    for label, (san, cn) in CERTS.items():
        subject = xb.cn(cn) if cn else xb.make_name(("O", "no common name"))
        leaf = xb.make_leaf(subject, ca, san=san)
        xb.write_certs(d / f"{label}.crt", [leaf.cert])
        assert leaf.key is not None
        xb.write_key(d / f"{label}.key", leaf.key)
        out[label] = (leaf.cert.public_bytes(Encoding.DER), Listener(d / f"{label}.crt", d / f"{label}.key"))
    yield d / "root.crt", out
    for _, listener in out.values():
        listener.close()


def libpq_verdict(root: Path, port: int, host: str) -> str | None:
    try:
        psycopg.connect(
            host=host,
            hostaddr="127.0.0.1",
            port=port,
            user="x",
            dbname="x",
            sslmode="verify-full",
            sslrootcert=str(root),
            sslsni="0",
            connect_timeout=5,
        )
    except psycopg.OperationalError as e:
        text = str(e)
        if (
            "does not match host name" in text
            or "host name from server certificate" in text
            or "embedded null" in text
        ):
            return text.rsplit("failed: ", 1)[1].strip()
        return None  # verified; the stub then closed the connection
    raise AssertionError("the stub server never completes a login")


@pytest.mark.parametrize("label", list(CERTS))
def test_host_name_checks_agree_with_libpq(chains, label):
    root, by_label = chains
    der, listener = by_label[label]
    for host in HOSTS:
        assert peer_name_error(der, host) == libpq_verdict(root, listener.port, host), (label, host)


def test_a_mismatch_is_found_at_all(chains):
    """Guard against a vacuous comparison: some pairs fail and some pass, in libpq too."""
    root, by_label = chains
    der, listener = by_label["one-dns"]
    assert libpq_verdict(root, listener.port, "only.test") is None
    assert (
        libpq_verdict(root, listener.port, "cn.test")
        == 'server certificate for "only.test" does not match host name "cn.test"'
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"sslmode": "verify"}, 'invalid sslmode value: "verify"'),
        ({"sslnegotiation": "fast"}, 'invalid sslnegotiation value: "fast"'),
        (
            {"sslmode": "prefer", "sslnegotiation": "direct"},
            'weak sslmode "prefer" may not be used with sslnegotiation=direct (use "require", "verify-ca", or "verify-full")',
        ),
        (
            {"sslmode": "require", "sslrootcert": "system"},
            'weak sslmode "require" may not be used with sslrootcert=system (use "verify-full")',
        ),
        (
            {
                "sslmode": "require",
                "ssl_min_protocol_version": "TLSv1.3",
                "ssl_max_protocol_version": "TLSv1.2",
            },
            "invalid SSL protocol version range",
        ),
        (
            {"sslmode": "require", "ssl_min_protocol_version": "TLSv9"},
            'invalid "ssl_min_protocol_version" value: "TLSv9"',
        ),
    ],
)
def test_refused_parameters_agree_with_libpq(tmp_path, params, message):
    with pytest.raises(ClientTlsError) as e:
        client_tls(params, home_dir=tmp_path)
    assert e.value.message == message
    try:
        psycopg.connect(host="127.0.0.1", port=1, user="x", dbname="x", connect_timeout=2, **params)
    except psycopg.OperationalError as libpq_error:
        assert message in str(libpq_error)
    else:
        raise AssertionError("libpq accepted it")


def test_verify_full_without_a_root_file_is_refused(tmp_path):
    with pytest.raises(ClientTlsError, match='root certificate file ".*root.crt" does not exist'):
        client_tls({}, home_dir=tmp_path)  # pgtls's default is verify-full


def test_require_verifies_the_chain_when_a_root_file_exists(tmp_path, chains):
    root, _ = chains
    assert not client_tls({"sslmode": "require"}, home_dir=tmp_path).verify_chain
    (tmp_path / "root.crt").write_bytes(root.read_bytes())
    policy = client_tls({"sslmode": "require"}, home_dir=tmp_path)
    assert policy.verify_chain and not policy.verify_name


def test_sni_only_for_host_names(tmp_path):
    p = client_tls({"sslmode": "require"}, home_dir=tmp_path)
    assert p.server_hostname("db.example.test") == "db.example.test"
    assert p.server_hostname("127.0.0.1") is None and p.server_hostname("::1") is None
    assert (
        client_tls({"sslmode": "require", "sslsni": "0"}, home_dir=tmp_path).server_hostname("db.test")
        is None
    )
