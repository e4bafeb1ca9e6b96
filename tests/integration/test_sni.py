"""Server-side SNI (ssl_sni, pg_hosts.conf) as PostgreSQL 19 defines it, with psql/libpq and raw TLS clients.

Two host names on one port, each with its own certificate from its own CA (psql verify-full against each),
a ``/no_sni/`` entry for clients that send no name, an unknown name refused with unrecognized_name, a
per-host client CA, the hosts file's errors at start, and a reload that changes a host's certificate.
"""

from __future__ import annotations

import hashlib
import os
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgtls.certs import x509build as xb
from pgtls.tls.sni import HostsFileError, parse_hosts_file
from tests.pgtlsserver import PgtlsServer

HBA = "local all all trust\nhostssl all ssltestuser 127.0.0.1/32 cert\nhostssl all all 127.0.0.1/32 trust\n"


@pytest.fixture(scope="module")
def hosts(tmp_path_factory) -> Path:
    """Two CAs, a leaf for example.org from one, a leaf for example.com from the other."""
    d = tmp_path_factory.mktemp("sni")
    for name, host in (("org", "example.org"), ("com", "example.com")):
        ca = xb.make_ca(xb.cn(f"CA for {host}"))
        leaf = xb.make_leaf(xb.cn(host), ca, san=(host,))
        xb.write_certs(d / f"{name}_ca.crt", [ca.cert])
        xb.write_certs(d / f"{name}.crt", [leaf.cert])
        xb.write_key(d / f"{name}.key", leaf.key)  # type: ignore[arg-type]
    return d


def sni_server(certs, hosts: Path, hosts_text: str, start: bool = True) -> PgtlsServer:
    s = PgtlsServer().init()
    s.copy_in(certs.path("server-chain.crt"), "server.crt", 0o644)
    s.copy_in(certs.path("server.key"), "server.key", 0o600)
    s.copy_in(certs.path("root+client_ca.crt"), "root+client_ca.crt", 0o644)
    for name in ("org", "com"):
        s.copy_in(str(hosts / f"{name}.crt"), f"{name}.crt", 0o644)
        s.copy_in(str(hosts / f"{name}.key"), f"{name}.key", 0o600)
    s.write("pg_hba.conf", HBA)
    s.write("pg_hosts.conf", hosts_text)
    s.conf(ssl="on", ssl_sni="on")
    s.create_role("ssltestuser")
    if start:
        s.start()
    return s


GOOD = """\
# host names                 certificate  key          client CA
example.org                  org.crt      org.key      root+client_ca.crt
example.com,www.example.com  com.crt      com.key
/no_sni/                     server.crt   server.key
"""


@pytest.fixture(scope="module")
def server(certs, hosts) -> Iterator[PgtlsServer]:
    s = sni_server(certs, hosts, GOOD)
    yield s
    print(s.full_log()[-3000:])
    s.cleanup()


def fingerprint(port: int, server_name: str | None) -> str:
    raw = socket.create_connection(("127.0.0.1", port))
    raw.sendall(b"\0\0\0\x08\x04\xd2\x16\x2f")
    assert raw.recv(1) == b"S"
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with ctx.wrap_socket(raw, server_hostname=server_name) as t:
        der = t.getpeercert(binary_form=True)
    assert der is not None
    return hashlib.sha256(der).hexdigest()


def file_fingerprint(path: Path | str) -> str:
    """The first certificate of a PEM file (a chain file holds several)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    first = x509.load_pem_x509_certificates(Path(path).read_bytes())[0]
    return hashlib.sha256(first.public_bytes(Encoding.DER)).hexdigest()


def psql(port: int, host: str, *extra: str, user: str = "postgres") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    dsn = f"host={host} hostaddr=127.0.0.1 port={port} user={user} dbname=postgres sslsni=1 " + " ".join(
        extra
    )
    return subprocess.run(
        ["psql", "-XAtq", dsn, "-c", "SELECT 1"], capture_output=True, text=True, env=env, timeout=30
    )


def test_two_names_two_certificates(server, hosts):
    org, com = fingerprint(server.port, "example.org"), fingerprint(server.port, "example.com")
    assert org == file_fingerprint(hosts / "org.crt") and com == file_fingerprint(hosts / "com.crt")
    assert fingerprint(server.port, "WWW.Example.COM") == com  # case-insensitive, any name of the line
    for host, ca in (("example.org", "org_ca.crt"), ("example.com", "com_ca.crt")):
        r = psql(server.port, host, "sslmode=verify-full", f"sslrootcert={hosts / ca}")
        assert r.returncode == 0 and r.stdout.strip() == "1", r.stderr
    # each name's certificate fails against the other's CA
    r = psql(server.port, "example.org", "sslmode=verify-full", f"sslrootcert={hosts / 'com_ca.crt'}")
    assert r.returncode != 0 and "certificate verify failed" in r.stderr


def test_no_sni_gets_the_no_sni_entry(server, certs):
    assert fingerprint(server.port, None) == file_fingerprint(certs.path("server-chain.crt"))
    # libpq sends no SNI for an IP address
    r = psql(server.port, "127.0.0.1", "sslmode=verify-full", f"sslrootcert={certs.path('root_ca.crt')}")
    assert r.returncode == 0, r.stderr


def test_unknown_name_is_refused(server, hosts):
    r = psql(server.port, "example.net", "sslmode=require")
    assert r.returncode != 0 and "unrecognized name" in r.stderr, r.stderr


def test_client_ca_per_host(server, hosts, certs, keys):
    cert = ("sslcert=" + str(keys / "client.crt"), "sslkey=" + str(keys / "client.key"))
    ok = psql(server.port, "example.org", "sslmode=require", *cert, user="ssltestuser")
    assert ok.returncode == 0, ok.stderr
    # example.com's line has no CA: no client certificate is asked for, and the cert line says why (A6.31a)
    r = psql(server.port, "example.com", "sslmode=require", *cert, user="ssltestuser")
    assert r.returncode != 0, r.stderr
    assert "client certificates can only be checked if a root certificate store is available" in r.stderr


def test_default_entry_and_missing_fallback(certs, hosts):
    s = sni_server(certs, hosts, "example.org org.crt org.key\n* com.crt com.key\n")
    try:
        assert fingerprint(s.port, "anything.test") == file_fingerprint(hosts / "com.crt")
        assert fingerprint(s.port, None) == file_fingerprint(hosts / "com.crt")
        # only example.org left: no name gets a handshake failure and the log line
        s.write("pg_hosts.conf", "example.org org.crt org.key\n")
        s.reload()
        with pytest.raises(ssl.SSLError, match="handshake failure"):
            fingerprint(s.port, None)
        assert "no hostname provided in callback, and no fallback configured" in s.log()
        assert fingerprint(s.port, "example.org") == file_fingerprint(hosts / "org.crt")
    finally:
        s.cleanup()


BAD_FILES = [
    ("example.org,* org.crt org.key\n", "default and non-SNI entries cannot be mixed with other entries"),
    ("example.org org.crt\n", "missing entry at end of line"),
    ("example.org org.crt,com.crt org.key\n", "multiple values specified for SSL certificate"),
    ("example.org org.crt org.key ca.crt cmd on extra\n", "extra fields at end of line"),
    (
        "example.org org.crt org.key ca.crt cmd maybe\n",
        "incorrect syntax for boolean value SSL_passphrase_cmd_reload",
    ),
    ("* org.crt org.key\n* com.crt com.key\n", "multiple default hosts specified"),
    ("/no_sni/ org.crt org.key\n/no_sni/ com.crt com.key\n", "multiple no_sni hosts specified"),
    (
        "example.org org.crt org.key\nExample.ORG com.crt com.key\n",
        'multiple entries for host "example.org" specified',
    ),
]


@pytest.mark.parametrize(
    "text,message", BAD_FILES, ids=[m.split(" ")[0] + str(i) for i, (_, m) in enumerate(BAD_FILES)]
)
def test_hosts_file_errors(tmp_path, text, message):
    (tmp_path / "pg_hosts.conf").write_text(text)
    with pytest.raises(HostsFileError) as e:
        parse_hosts_file(tmp_path / "pg_hosts.conf")
    assert any(message in m for m in e.value.messages), e.value.messages


@pytest.mark.parametrize("text,message", [BAD_FILES[1], BAD_FILES[7]], ids=["missing", "duplicate"])
def test_bad_hosts_file_refuses_to_start(certs, hosts, text, message):
    s = sni_server(certs, hosts, text, start=False)
    try:
        assert not s.start(check=False)
        assert message in s.full_log()
    finally:
        s.cleanup()


def test_off_ignores_the_file_and_reload_switches(certs, hosts):
    s = sni_server(certs, hosts, GOOD, start=False)
    s.conf(ssl_sni="off")
    s.start()
    try:
        plain = file_fingerprint(certs.path("server-chain.crt"))
        assert fingerprint(s.port, "example.org") == plain
        s.conf(ssl_sni="on")
        s.reload()
        assert fingerprint(s.port, "example.org") == file_fingerprint(hosts / "org.crt")
        s.write(
            "pg_hosts.conf",
            GOOD.replace(
                "example.org                  org.crt      org.key",
                "example.org                  com.crt      com.key",
            ),
        )
        s.reload()
        assert fingerprint(s.port, "example.org") == file_fingerprint(hosts / "com.crt")
    finally:
        s.cleanup()


def test_check_server_sees_what_each_name_presents(server, hosts, certs):
    import json
    import sys

    def check(*args: str) -> tuple[int, dict]:
        r = subprocess.run(
            [sys.executable, "-m", "pgtls", "check", "--server", f"127.0.0.1:{server.port}", "--json", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        return r.returncode, json.loads(r.stdout)

    code, rep = check("--sni", "example.org", "--rootcert", str(hosts / "org_ca.crt"))
    assert code == 0 and rep["verified"] == "ok" and rep["chain"][0]["subject"] == "CN=example.org"
    assert rep["protocol"] == "TLSv1.3" and rep["versions"] == {
        "TLSv1": False,
        "TLSv1.1": False,
        "TLSv1.2": True,
        "TLSv1.3": True,
    }
    assert rep["groups"]["X25519"] and rep["groups"]["P-256"] and not rep["groups"]["ffdhe2048"]
    code, rep = check("--sni", "example.com", "--rootcert", str(hosts / "org_ca.crt"))
    assert code == 2 and rep["chain"][0]["subject"] == "CN=example.com" and rep["verified"] != "ok"
    code, rep = check()  # no SNI: the /no_sni/ entry
    assert code == 0 and rep["chain"][0]["names"][0] == "localhost"


def test_a_bad_host_file_on_reload_keeps_every_host_as_it_was(certs, hosts):
    """Table 19.2 per host: a reload whose hosts-file entry cannot be loaded keeps the old configuration of
    every host (and says so); a good reload then takes."""
    s = sni_server(certs, hosts, GOOD)
    try:
        org, com = file_fingerprint(hosts / "org.crt"), file_fingerprint(hosts / "com.crt")
        s.write(
            "pg_hosts.conf",
            GOOD.replace(
                "example.com,www.example.com  com.crt      com.key",
                "example.com,www.example.com  missing.crt  com.key",
            ),
        )
        s.reload()
        assert "SSL configuration was not reloaded" in s.log()
        assert 'could not load server certificate file "missing.crt"' in s.log()
        assert fingerprint(s.port, "example.org") == org and fingerprint(s.port, "example.com") == com
        s.write(
            "pg_hosts.conf",
            GOOD.replace(
                "example.org                  org.crt      org.key",
                "example.org                  com.crt      com.key",
            ),
        )
        s.reload()
        assert fingerprint(s.port, "example.org") == com
    finally:
        s.cleanup()
