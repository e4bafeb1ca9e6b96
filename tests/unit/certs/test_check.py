"""pgtls check: a good setup reports nothing; each break reports exactly its finding."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pgtls.certs import x509build as xb
from pgtls.certs.check import exit_status
from pgtls.certs.checkdir import run_check
from pgtls.cli import main as pgtls_main
from tests import prereq

NOW = dt.datetime.now(dt.UTC)
GOOD_CONF = "ssl = on\nssl_ca_file = 'root.crt'\nssl_crl_file = 'root.crl'\nlisten_addresses = 'localhost'\n"
GOOD_HBA = "local all all trust\nhostssl all all 127.0.0.1/32 cert\n"
SANS = ("DNS:localhost", "IP:127.0.0.1")


def run_cli(*argv: str) -> int:
    return pgtls_main(list(argv))


class Pki:
    """CA material shared by the module (EC keys: fast)."""

    def __init__(self) -> None:
        self.root = xb.make_ca(xb.cn("check root"))
        self.inter = xb.make_ca(xb.cn("check intermediate"), issuer=self.root, path_length=0)
        self.leaf = xb.make_leaf(xb.cn("localhost"), self.inter, san=SANS)
        self.other_root = xb.make_ca(xb.cn("other root"))


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki()


@pytest.fixture
def good(tmp_path: Path, pki: Pki) -> Path:
    d = tmp_path / "data"
    d.mkdir(mode=0o700)
    xb.write_certs(d / "server.crt", [pki.leaf.cert, pki.inter.cert])
    xb.write_key(d / "server.key", pki.leaf.key)  # type: ignore[arg-type]
    xb.write_certs(d / "root.crt", [pki.root.cert])
    xb.write_crls(d / "root.crl", [xb.make_crl(pki.root)])
    (d / "postgresql.conf").write_text(GOOD_CONF)
    (d / "pg_hba.conf").write_text(GOOD_HBA)
    return d


def codes(d: Path, **kw: object) -> list[str]:
    return sorted(f.code for f in run_check(d, **kw))  # type: ignore[arg-type]


def conf(d: Path, extra: str) -> None:
    (d / "postgresql.conf").write_text(GOOD_CONF + extra)


def test_good_setup_reports_nothing(good: Path, capsys) -> None:
    assert run_check(good) == []
    assert run_cli("check", "-D", str(good)) == 0
    assert "no problems found" in capsys.readouterr().out


def test_good_setup_with_crl_dir(good: Path, pki: Pki) -> None:
    xb.write_crl_dir(good / "crls", [xb.make_crl(pki.root)])
    conf(good, "ssl_crl_file = ''\nssl_crl_dir = 'crls'\n")
    assert codes(good) == []


def test_selfsigned_server_is_fine(good: Path) -> None:
    ss = xb.make_selfsigned(xb.cn("localhost"), san=SANS)
    xb.write_certs(good / "server.crt", [ss.cert])
    xb.write_key(good / "server.key", ss.key)  # type: ignore[arg-type]
    assert codes(good) == []


# --- server certificate and key -------------------------------------------------------------


def test_key_mismatch(good: Path) -> None:
    xb.write_key(good / "server.key", xb.generate_key())
    assert codes(good) == ["key-mismatch"]


def test_leaf_not_first(good: Path, pki: Pki) -> None:
    xb.write_certs(good / "server.crt", [pki.inter.cert, pki.leaf.cert])
    [f] = run_check(good)
    assert (f.code, f.severity, f.file) == ("chain-order", "error", "server.crt")


def test_intermediates_out_of_order(good: Path, pki: Pki) -> None:
    inter2 = xb.make_ca(xb.cn("second intermediate"), issuer=pki.inter, path_length=0)
    inter1 = xb.make_ca(xb.cn("check intermediate"), issuer=pki.root, path_length=1, key=pki.inter.key)
    leaf = xb.make_leaf(xb.cn("localhost"), inter2, san=SANS)
    xb.write_certs(good / "server.crt", [leaf.cert, inter1.cert, inter2.cert])
    xb.write_key(good / "server.key", leaf.key)  # type: ignore[arg-type]
    [f] = run_check(good)
    assert (f.code, f.severity) == ("chain-order", "warning")


def test_chain_incomplete(good: Path, pki: Pki) -> None:
    xb.write_certs(good / "server.crt", [pki.leaf.cert])
    assert codes(good) == ["chain-incomplete"]


def test_chain_contains_root(good: Path, pki: Pki) -> None:
    xb.write_certs(good / "server.crt", [pki.leaf.cert, pki.inter.cert, pki.root.cert])
    assert codes(good) == ["chain-has-root"]


def test_intermediate_without_ca_true(good: Path, pki: Pki) -> None:
    bad = xb.make_ca(xb.cn("v1 intermediate"), issuer=pki.root, v3_ca=False)
    leaf = xb.make_leaf(xb.cn("localhost"), bad, san=SANS)
    xb.write_certs(good / "server.crt", [leaf.cert, bad.cert])
    xb.write_key(good / "server.key", leaf.key)  # type: ignore[arg-type]
    [f] = run_check(good)
    assert (f.code, f.severity, f.file) == ("ca-not-ca", "error", "server.crt")


def test_ca_file_with_non_ca_intermediate(good: Path, pki: Pki) -> None:
    bad = xb.make_ca(xb.cn("v1 intermediate"), issuer=pki.root, v3_ca=False)
    xb.write_certs(good / "root.crt", [pki.root.cert, bad.cert])
    [f] = run_check(good)
    assert (f.code, f.file) == ("ca-not-ca", "root.crt")


def _leaf_with(good: Path, pki: Pki, **kw: object) -> None:
    leaf = xb.make_leaf(xb.cn("localhost"), pki.inter, san=SANS, **kw)  # type: ignore[arg-type]
    xb.write_certs(good / "server.crt", [leaf.cert, pki.inter.cert])
    xb.write_key(good / "server.key", leaf.key)  # type: ignore[arg-type]


def test_expired(good: Path, pki: Pki) -> None:
    _leaf_with(good, pki, not_before=NOW - dt.timedelta(days=400), not_after=NOW - dt.timedelta(days=1))
    assert codes(good) == ["expired"]


def test_expiring_soon(good: Path, pki: Pki) -> None:
    _leaf_with(good, pki, days=10)
    [f] = run_check(good)
    assert (f.code, f.severity) == ("expiring", "warning")


def test_not_yet_valid(good: Path, pki: Pki) -> None:
    _leaf_with(good, pki, not_before=NOW + dt.timedelta(days=2), not_after=NOW + dt.timedelta(days=300))
    assert codes(good) == ["not-yet-valid"]


def test_listen_address_not_covered(good: Path) -> None:
    conf(good, "listen_addresses = 'localhost, db.example.com, 10.1.2.3, *'\n")
    found = run_check(good)
    assert [f.code for f in found] == ["hostname-mismatch", "hostname-mismatch"]
    assert "db.example.com" in found[0].message and "IP:10.1.2.3" in found[1].fix


def test_wildcard_san_covers_one_label(good: Path, pki: Pki) -> None:
    _leaf_with(good, pki)
    leaf = xb.make_leaf(xb.cn("db"), pki.inter, san=("DNS:*.example.com",))
    xb.write_certs(good / "server.crt", [leaf.cert, pki.inter.cert])
    xb.write_key(good / "server.key", leaf.key)  # type: ignore[arg-type]
    conf(good, "listen_addresses = 'db.example.com'\n")
    assert codes(good) == []
    conf(good, "listen_addresses = 'a.b.example.com'\n")
    assert codes(good) == ["hostname-mismatch"]


def test_key_world_readable(good: Path) -> None:
    (good / "server.key").chmod(0o644)
    [f] = run_check(good)
    assert (f.code, f.severity, f.file) == ("key-permissions", "error", "server.key")
    assert "group or world access" in f.message


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown")
def test_key_owned_by_someone_else(good: Path) -> None:
    os.chown(good / "server.key", 65534, 65534)
    [f] = run_check(good)
    assert f.code == "key-permissions" and "owned by the database user or root" in f.message


def test_key_permission_rule_is_postgresqls() -> None:
    from pgtls.certs.check import check_key_permissions

    reg = 0o100000
    assert check_key_permissions("k", reg | 0o600, 70, 70) == []
    assert check_key_permissions("k", reg | 0o640, 70, 70) != []
    assert check_key_permissions("k", reg | 0o640, 0, 70) == []  # root-owned, group read
    assert check_key_permissions("k", reg | 0o660, 0, 70) != []  # group write
    assert check_key_permissions("k", reg | 0o604, 0, 70) != []
    assert check_key_permissions("k", 0o040000 | 0o600, 70, 70)[0].message.endswith("not a regular file")


@pytest.mark.skipif(
    shutil.which("openssl") is None and not prereq.required(), reason="needs openssl to sign with SHA-1"
)
def test_sha1_signature(good: Path, tmp_path: Path, pki: Pki) -> None:
    key = tmp_path / "leaf.key"
    xb.write_key(key, xb.generate_key())
    xb.write_key(tmp_path / "inter.key", pki.inter.key)  # type: ignore[arg-type]
    xb.write_certs(tmp_path / "inter.crt", [pki.inter.cert])
    (tmp_path / "ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    subprocess.run(
        ["openssl", "req", "-new", "-key", key, "-subj", "/CN=localhost", "-out", tmp_path / "csr"],
        check=True,
    )
    subprocess.run(
        [
            "openssl",
            "x509",
            "-req",
            "-in",
            tmp_path / "csr",
            "-CA",
            tmp_path / "inter.crt",
            "-CAkey",
            tmp_path / "inter.key",
            "-sha1",
            "-days",
            "365",
            "-set_serial",
            "7",
            "-extfile",
            tmp_path / "ext",
            "-out",
            tmp_path / "leaf.crt",
        ],
        check=True,
        capture_output=True,
    )
    shutil.copy(tmp_path / "leaf.crt", good / "server.crt")
    with open(good / "server.crt", "ab") as f:
        f.write((tmp_path / "inter.crt").read_bytes())
    shutil.copy(key, good / "server.key")
    assert codes(good) == ["weak-signature"]


def test_small_rsa_key(good: Path, pki: Pki) -> None:
    _leaf_with(good, pki, key=rsa.generate_private_key(public_exponent=65537, key_size=1024))
    [f] = run_check(good)
    assert f.code == "weak-key" and "1024-bit RSA" in f.message


# --- ciphers -------------------------------------------------------------------------------------


def test_anull_ciphers(good: Path) -> None:
    conf(good, "ssl_ciphers = 'HIGH:MEDIUM:+3DES'\n")
    assert codes(good) == ["ciphers-anull"]


def test_null_ciphers(good: Path) -> None:
    conf(good, "ssl_ciphers = 'HIGH:!aNULL:NULL-SHA256'\n")
    assert codes(good) == ["ciphers-null"]


def test_invalid_cipher_string(good: Path) -> None:
    conf(good, "ssl_ciphers = 'NO-SUCH-CIPHER'\n")
    assert codes(good) == ["ciphers-invalid"]


# --- CRLs and pg_hba.conf ---------------------------------------------------------------------------


def test_crl_expired(good: Path, pki: Pki) -> None:
    old = xb.make_crl(
        pki.root, last_update=NOW - dt.timedelta(days=40), next_update=NOW - dt.timedelta(days=10)
    )
    xb.write_crls(good / "root.crl", [old])
    assert codes(good) == ["crl-expired"]


def test_crl_from_unconfigured_ca(good: Path, pki: Pki) -> None:
    xb.write_crls(good / "root.crl", [xb.make_crl(pki.root), xb.make_crl(pki.other_root)])
    [f] = run_check(good)
    assert (f.code, f.file) == ("crl-unknown-issuer", "root.crl")


def test_crl_same_name_other_key(good: Path, pki: Pki) -> None:
    impostor = xb.make_ca(xb.cn("check root"))
    xb.write_crls(good / "root.crl", [xb.make_crl(pki.root), xb.make_crl(impostor)])
    assert codes(good) == ["crl-unknown-issuer"]


def test_crl_missing_for_a_ca(good: Path, pki: Pki) -> None:
    xb.write_certs(good / "root.crt", [pki.root.cert, pki.inter.cert])
    [f] = run_check(good)
    assert (f.code, f.file) == ("crl-missing", "root.crt") and "check intermediate" in f.message


def test_crl_dir_misnamed(good: Path, pki: Pki) -> None:
    (good / "crls").mkdir()
    xb.write_crls(good / "crls" / "root.crl", [xb.make_crl(pki.root)])
    conf(good, "ssl_crl_file = ''\nssl_crl_dir = 'crls'\n")
    assert codes(good) == ["crl-dir-name"]


def test_crl_without_ca_file(good: Path) -> None:
    conf(good, "ssl_ca_file = ''\n")
    (good / "pg_hba.conf").write_text("hostssl all all 127.0.0.1/32 scram-sha-256\n")
    assert codes(good) == ["crl-without-ca"]


def test_hba_cert_without_ca_file(good: Path) -> None:
    conf(good, "ssl_ca_file = ''\nssl_crl_file = ''\n")
    [f] = run_check(good)
    assert (f.code, f.file, f.line) == ("hba-needs-ca", "pg_hba.conf", 2)


def test_hba_clientcert_without_ca_file(good: Path) -> None:
    conf(good, "ssl_ca_file = ''\nssl_crl_file = ''\n")
    (good / "pg_hba.conf").write_text("hostssl all all 0.0.0.0/0 scram-sha-256 clientcert=verify-ca\n")
    assert codes(good) == ["hba-needs-ca"]


def test_bad_hba_file(good: Path) -> None:
    (good / "pg_hba.conf").write_text("hostssl all all 127.0.0.1/32 nonsense\n")
    assert codes(good) == ["hba-invalid"]


def test_ssl_off(good: Path) -> None:
    conf(good, "ssl = off\n")
    assert codes(good) == ["ssl-off"]


# --- unreadable input: one line, exit 2, no traceback -------------------------------------------------


def test_encrypted_key_without_passphrase(good: Path, pki: Pki, tmp_path: Path) -> None:
    xb.write_key(good / "server.key", pki.leaf.key, b"s3cret-pass")  # type: ignore[arg-type]
    found = run_check(good)
    assert [f.code for f in found] == ["key-encrypted"] and exit_status(found) == 2
    (tmp_path / "pw").write_text("s3cret-pass\n")
    assert run_cli("check", "-D", str(good), "--passphrase", f"file:{tmp_path / 'pw'}") == 0


@pytest.mark.parametrize(
    "what", ["corrupt-cert", "der-cert", "der-key", "missing-cert", "corrupt-crl", "random-ca"]
)
def test_unreadable_files(good: Path, what: str, capsys) -> None:
    if what == "corrupt-cert":
        pem = (good / "server.crt").read_text().splitlines()
        (good / "server.crt").write_text("\n".join(pem[:3] + ["!!!!"] + pem[3:]) + "\n")
    elif what == "der-cert":
        from pgtls.certs.pemfiles import read_certs

        (good / "server.crt").write_bytes(read_certs(good / "server.crt")[0].public_bytes(Encoding.DER))
    elif what == "der-key":
        from pgtls.certs.pemfiles import read_key

        (good / "server.key").write_bytes(xb.key_bytes(read_key(good / "server.key"), der=True))
    elif what == "missing-cert":
        (good / "server.crt").unlink()
    elif what == "corrupt-crl":
        (good / "root.crl").write_text("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n")
    else:
        (good / "root.crt").write_bytes(os.urandom(300))
    assert run_cli("check", "-D", str(good)) == 2
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    first = [ln for ln in out.splitlines() if ln.startswith("error")]
    assert len(first) == 1 and "[unreadable]" in first[0]
    if what.startswith("der"):
        assert "DER format" in first[0]


def test_cli_json_and_exit_status(good: Path, capsys) -> None:
    conf(good, "listen_addresses = 'db.example.com'\n")
    assert run_cli("check", "-D", str(good), "--json") == 1
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == 1
    [f] = data["findings"]
    assert (
        f["severity"] == "warning"
        and f["code"] == "hostname-mismatch"
        and f["file"] == "server.crt"
        and f["fix"]
    )


def test_cli_missing_data_directory(tmp_path: Path, capsys) -> None:
    assert run_cli("check", "-D", str(tmp_path / "nope")) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and "does not exist" in err and not out


# --- fuzz: random bytes in every file never produce a traceback ---------------------------------------

_VALID_DER = Pki().leaf.cert.public_bytes(Encoding.DER)


def _pem(label: str, body: bytes) -> bytes:
    return (
        f"-----BEGIN {label}-----\n".encode() + base64.encodebytes(body) + f"-----END {label}-----\n".encode()
    )


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    raw = bytearray(_VALID_DER)
    for _ in range(draw(st.integers(1, 8))):
        raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
    return bytes(raw)


_blob = st.one_of(
    st.binary(max_size=600),
    st.binary(max_size=600).map(lambda b: _pem("CERTIFICATE", b)),
    st.binary(max_size=300).map(lambda b: _pem("PRIVATE KEY", b)),
    st.binary(max_size=300).map(lambda b: _pem("X509 CRL", b)),
    _mutated().map(lambda b: _pem("CERTIFICATE", b)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(target=st.sampled_from(["server.crt", "server.key", "root.crt", "root.crl"]), blob=_blob)
def test_random_file_contents_never_crash(good: Path, target: str, blob: bytes) -> None:
    saved = (good / target).read_bytes()
    try:
        (good / target).write_bytes(blob)
        found = run_check(good)
        assert all(f.message and f.fix for f in found)
    finally:
        (good / target).write_bytes(saved)


def test_bad_postgresql_conf_is_one_line(good: Path, capsys) -> None:
    conf(good, "ssl = maybe\n")
    assert run_cli("check", "-D", str(good)) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and "ssl" in err and "Traceback" not in err
