"""pgtls cert ... and init_tls: the files, their extensions, modes, refusals and one-line errors."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from pgtls.certs.checkdir import run_check
from pgtls.certs.initialset import init_tls
from pgtls.certs.pemfiles import CertError, read_certs, read_crls, read_key
from pgtls.cli import main as pgtls_main
from tests import prereq

needs_openssl = pytest.mark.skipif(
    shutil.which("openssl") is None and not prereq.required(), reason="needs the openssl CLI"
)


def run_cli(*argv: object) -> int:
    return pgtls_main([str(a) for a in argv])


def days(cert: x509.Certificate) -> int:
    return round((cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds() / 86400)


def ext(cert: x509.Certificate, cls: type) -> x509.Extension:  # type: ignore[type-arg]
    return cert.extensions.get_extension_for_class(cls)


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    """root -> intermediate CA, made through the CLI."""
    assert run_cli("cert", "ca", "--cn", "Test Root", "--out-dir", tmp_path) == 0
    assert (
        run_cli(
            "cert",
            "intermediate",
            "--ca",
            tmp_path / "root",
            "--cn",
            "Test Intermediate",
            "--out-dir",
            tmp_path,
        )
        == 0
    )
    return tmp_path


def test_ca_profile(pki: Path, capsys) -> None:
    [root] = read_certs(pki / "root.crt")
    bc = ext(root, x509.BasicConstraints)
    assert bc.critical and bc.value.ca
    ku = ext(root, x509.KeyUsage).value
    assert ku.key_cert_sign and ku.crl_sign and not ku.digital_signature
    ext(root, x509.SubjectKeyIdentifier)
    assert days(root) == 3650 and root.subject == root.issuer
    assert (pki / "root.key").stat().st_mode & 0o777 == 0o600
    assert isinstance(read_key(pki / "root.key"), ec.EllipticCurvePrivateKey)
    assert 0 < root.serial_number < 2**159


def test_intermediate_profile(pki: Path) -> None:
    [root] = read_certs(pki / "root.crt")
    [inter] = read_certs(pki / "intermediate.crt")
    bc = ext(inter, x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    assert ext(inter, x509.KeyUsage).value.key_cert_sign
    assert days(inter) == 1825
    inter.verify_directly_issued_by(root)
    assert (pki / "intermediate.key").stat().st_mode & 0o777 == 0o600


@needs_openssl
def test_server_chain_verifies_with_openssl(pki: Path, capsys) -> None:
    out = pki / "srv"
    assert (
        run_cli(
            "cert",
            "server",
            "--ca",
            pki / "intermediate",
            "--cn",
            "db.example.com",
            "--san",
            "DNS:db.example.com,IP:127.0.0.1",
            "--san",
            "localhost",
            "--out-dir",
            out,
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "ssl_cert_file" in printed and "ssl_key_file" in printed and str(out / "server.key") in printed
    leaf, inter = read_certs(out / "server.crt")  # leaf first, then the intermediate, never the root
    assert inter == read_certs(pki / "intermediate.crt")[0]
    assert ext(leaf, x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
    assert not ext(leaf, x509.BasicConstraints).value.ca
    san = ext(leaf, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["db.example.com", "localhost"]
    assert [str(i) for i in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert days(leaf) == 365 and (out / "server.key").stat().st_mode & 0o777 == 0o600
    r = subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            pki / "root.crt",
            "-untrusted",
            pki / "intermediate.crt",
            out / "server.crt",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(
        [
            "openssl",
            "verify",
            "-purpose",
            "sslserver",
            "-CAfile",
            pki / "root.crt",
            "-untrusted",
            out / "server.crt",
            out / "server.crt",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr


@needs_openssl
def test_selfsigned(tmp_path: Path) -> None:
    assert run_cli("cert", "selfsigned", "--cn", "dbhost.example.com", "--out-dir", tmp_path) == 0
    [c] = read_certs(tmp_path / "server.crt")
    assert c.subject == c.issuer and days(c) == 365
    assert ext(c, x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName) == [
        "dbhost.example.com"
    ]
    r = subprocess.run(
        ["openssl", "verify", "-CAfile", tmp_path / "server.crt", tmp_path / "server.crt"],
        capture_output=True,
    )
    assert r.returncode == 0


def test_client_and_libpq_layout(pki: Path, tmp_path: Path, monkeypatch) -> None:
    assert run_cli("cert", "client", "--ca", pki / "root", "--cn", "alice", "--out-dir", pki) == 0
    [c] = read_certs(pki / "client.crt")
    assert c.subject.rfc4514_string() == "CN=alice"
    assert ext(c, x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    assert run_cli("cert", "client", "--ca", pki / "intermediate", "--cn", "bob", "--libpq") == 0
    d = home / ".postgresql"
    leaf, inter = read_certs(d / "postgresql.crt")
    assert leaf.subject.rfc4514_string() == "CN=bob" and inter == read_certs(pki / "intermediate.crt")[0]
    assert read_certs(d / "root.crt") == read_certs(pki / "root.crt")
    assert (d / "postgresql.key").stat().st_mode & 0o777 == 0o600
    assert d.stat().st_mode & 0o777 == 0o700


def test_subject_serial_and_validity(pki: Path) -> None:
    nb = "2030-01-02T00:00:00+00:00"
    assert (
        run_cli(
            "cert",
            "client",
            "--ca",
            pki / "root",
            "--subj",
            "/O=PGDG/OU=Engineering/OU=Testing",
            "--cn",
            "ssltestuser-dn",
            "--serial",
            "12345",
            "--not-before",
            nb,
            "--days",
            "10",
            "--out-dir",
            pki,
            "--out",
            "dn",
        )
        == 0
    )
    [c] = read_certs(pki / "dn.crt")
    assert c.subject.rfc4514_string() == "CN=ssltestuser-dn,OU=Testing,OU=Engineering,O=PGDG"
    assert c.serial_number == 12345 and days(c) == 10
    assert c.not_valid_before_utc == dt.datetime(2030, 1, 2, tzinfo=dt.UTC)
    serials = set()
    for i in range(3):
        run_cli("cert", "client", "--ca", pki / "root", "--cn", "u", "--out-dir", pki, "--out", f"u{i}")
        serials.add(read_certs(pki / f"u{i}.crt")[0].serial_number)
    assert len(serials) == 3 and all(s.bit_length() <= 159 for s in serials)


@pytest.mark.parametrize(
    "kind,cls",
    [
        ("rsa2048", rsa.RSAPrivateKey),
        ("ed25519", ed25519.Ed25519PrivateKey),
        ("ec", ec.EllipticCurvePrivateKey),
    ],
)
def test_key_types(pki: Path, kind: str, cls: type) -> None:
    assert (
        run_cli(
            "cert", "server", "--ca", pki / "root", "--cn", "localhost", "--key-type", kind, "--out-dir", pki
        )
        == 0
    )
    assert isinstance(read_key(pki / "server.key"), cls)
    if kind == "rsa2048":
        assert read_key(pki / "server.key").key_size == 2048  # type: ignore[union-attr]
    [leaf] = read_certs(pki / "server.crt")
    leaf.verify_directly_issued_by(read_certs(pki / "root.crt")[0])
    (pki / "server.key").unlink()


def test_refuses_to_overwrite_keys(pki: Path, capsys) -> None:
    before = (pki / "root.key").read_bytes()
    assert run_cli("cert", "ca", "--cn", "again", "--out-dir", pki) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "refusing to overwrite" in err and "--force" in err
    assert (pki / "root.key").read_bytes() == before
    assert run_cli("cert", "ca", "--cn", "again", "--out-dir", pki, "--force") == 0
    assert (pki / "root.key").read_bytes() != before
    assert (pki / "root.key").stat().st_mode & 0o777 == 0o600


def test_encrypted_key_output_and_encrypted_ca(tmp_path: Path, monkeypatch, capsys) -> None:
    secret = "correct horse battery"
    (tmp_path / "pw").write_text(secret + "\n")
    assert (
        run_cli(
            "cert", "ca", "--cn", "R", "--out-dir", tmp_path, "--key-passphrase", f"file:{tmp_path / 'pw'}"
        )
        == 0
    )
    assert b"ENCRYPTED PRIVATE KEY" in (tmp_path / "root.key").read_bytes()
    read_key(tmp_path / "root.key", secret.encode())
    with pytest.raises(CertError, match="encrypted"):
        read_key(tmp_path / "root.key")
    # signing with it needs the passphrase: one error line without it, success with it
    assert run_cli("cert", "server", "--ca", tmp_path / "root", "--cn", "h", "--out-dir", tmp_path) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "encrypted" in err and "Traceback" not in err
    monkeypatch.setenv("PGTLS_TEST_PW", secret)
    assert (
        run_cli(
            "cert",
            "server",
            "--ca",
            tmp_path / "root",
            "--cn",
            "h",
            "--out-dir",
            tmp_path,
            "--ca-passphrase",
            "env:PGTLS_TEST_PW",
        )
        == 0
    )
    out, err = capsys.readouterr()
    assert secret not in out + err


def test_passphrase_never_from_argv(tmp_path: Path, capsys) -> None:
    assert run_cli("cert", "ca", "--cn", "R", "--out-dir", tmp_path, "--key-passphrase", "pass:hunter2") == 2
    err = capsys.readouterr().err
    assert "hunter2" not in err and "command line" in err
    assert not (tmp_path / "root.key").exists()


@needs_openssl
def test_revoke_and_crl(pki: Path, capsys) -> None:
    for user in ("alice", "bob", "carol"):
        assert (
            run_cli("cert", "client", "--ca", pki / "root", "--cn", user, "--out-dir", pki, "--out", user)
            == 0
        )
    for user in ("bob", "carol"):
        assert run_cli("cert", "revoke", "--ca", pki / "root", pki / f"{user}.crt") == 0
    assert run_cli("cert", "revoke", "--ca", pki / "root", pki / "bob.crt") == 0
    assert "already revoked" in capsys.readouterr().out
    db = json.loads((pki / "root.revoked.json").read_text())
    assert len(db["revoked"]) == 2
    assert (
        run_cli(
            "cert",
            "crl",
            "--ca",
            pki / "root",
            "--ca",
            pki / "intermediate",
            "--out-dir",
            pki,
            "--dir",
            pki / "crldir",
        )
        == 0
    )
    assert run_cli("cert", "crl", "--ca", pki / "root", "--out-dir", pki) == 0
    serials = {read_certs(pki / f"{u}.crt")[0].serial_number for u in ("bob", "carol")}
    [crl] = read_crls(pki / "root.crl")
    assert {r.serial_number for r in crl} == serials
    text = subprocess.run(
        ["openssl", "crl", "-in", pki / "root.crl", "-noout", "-text"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for s in serials:
        assert f"{s:X}".rjust(40, "0")[-20:] in text.replace(":", "").upper()
    names = sorted(p.name for p in (pki / "crldir").iterdir())
    hashes = sorted(
        subprocess.run(
            ["openssl", "crl", "-hash", "-noout", "-in", p], capture_output=True, text=True, check=True
        ).stdout.strip()
        + ".r0"
        for p in (pki / "crldir").iterdir()
    )
    assert names == hashes and len(names) == 2
    # a certificate from another CA cannot be revoked here
    assert run_cli("cert", "revoke", "--ca", pki / "intermediate", pki / "alice.crt") == 2


@pytest.mark.parametrize("damage", ["corrupt", "der", "no-key", "not-a-ca", "missing"])
def test_bad_ca_input_is_one_line(pki: Path, damage: str, capsys) -> None:
    crt = pki / "root.crt"
    if damage == "corrupt":
        lines = crt.read_text().splitlines()
        crt.write_text("\n".join([lines[0], "MIIBgarbage" + lines[1][11:], *lines[2:]]) + "\n")
    elif damage == "der":
        crt.write_bytes(read_certs(crt)[0].public_bytes(Encoding.DER))
    elif damage == "no-key":
        (pki / "root.key").unlink()
    elif damage == "not-a-ca":
        run_cli("cert", "client", "--ca", pki / "root", "--cn", "x", "--out-dir", pki, "--out", "leaf")
        shutil.copy(pki / "leaf.crt", crt)
    else:
        crt.unlink()
    assert run_cli("cert", "server", "--ca", pki / "root", "--cn", "h", "--out-dir", pki / "o") == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.startswith("pgtls cert: error:") and "Traceback" not in err
    assert {
        "corrupt": "corrupt",
        "der": "DER",
        "no-key": "no private key",
        "not-a-ca": "not a CA",
        "missing": "does not exist",
    }[damage] in err
    assert not (pki / "o" / "server.key").exists()


def test_ca_found_in_out_dir(pki: Path, monkeypatch) -> None:
    monkeypatch.chdir(pki.parent)
    assert run_cli("cert", "server", "--ca", "root", "--cn", "h", "--out-dir", pki) == 0


# --- init --tls -----------------------------------------------------------------------------------


@needs_openssl
def test_init_tls(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    settings = init_tls(data, role="alice", hostnames=["db.example.com", "10.0.0.5"])
    assert settings == {
        "ssl": "on",
        "ssl_cert_file": "server.crt",
        "ssl_key_file": "server.key",
        "ssl_ca_file": "root.crt",
    }
    assert not (data / "root.key").exists() and (data / "offline" / "root.key").exists()
    for key in (data / "server.key", data / "offline" / "root.key", data / "client" / "postgresql.key"):
        assert key.stat().st_mode & 0o777 == 0o600
    assert (data / "offline").stat().st_mode & 0o777 == 0o700
    [leaf] = read_certs(data / "server.crt")
    san = ext(leaf, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["db.example.com", "localhost"]
    assert [str(i) for i in san.get_values_for_type(x509.IPAddress)] == ["10.0.0.5", "127.0.0.1", "::1"]
    [cli] = read_certs(data / "client" / "postgresql.crt")
    assert cli.subject.rfc4514_string() == "CN=alice"
    for c, purpose in ((data / "server.crt", "sslserver"), (data / "client" / "postgresql.crt", "sslclient")):
        r = subprocess.run(
            ["openssl", "verify", "-purpose", purpose, "-CAfile", data / "client" / "root.crt", c],
            capture_output=True,
            text=True,
        )
        assert r.returncode == 0, r.stdout + r.stderr
    (data / "postgresql.conf").write_text("".join(f"{k} = '{v}'\n" for k, v in settings.items()))
    (data / "pg_hba.conf").write_text("hostssl all all 127.0.0.1/32 cert\n")
    assert run_check(data) == []
    with pytest.raises(CertError, match="refusing to overwrite"):
        init_tls(data, role="alice", hostnames=[])
    # the offline CA keeps working with the cert commands
    assert (
        run_cli("cert", "client", "--ca", data / "offline" / "root", "--cn", "bob", "--out-dir", tmp_path)
        == 0
    )
