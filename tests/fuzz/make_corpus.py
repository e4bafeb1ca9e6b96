"""Write the fixtures (tests/fuzz/fixtures) and the seed corpus (tests/fuzz/corpus/<target>/) once.

Run it again only to rebuild them (``python tests/fuzz/make_corpus.py``); the output is committed.  Keys and
certificates are fresh each run, so a rebuild changes the PEM files.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import shutil
import struct
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
CORPUS = HERE / "corpus"
SEP = b"\n%%\n"

START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
END = dt.datetime(2124, 1, 1, tzinfo=dt.UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, password: bytes | None = None) -> bytes:
    enc = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def make_fixtures() -> dict[str, bytes]:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("pgtls fuzz root"))
        .issuer_name(_name("pgtls fuzz root"))
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(START)
        .not_valid_after(END)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(START)
        .not_valid_after(END)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    revoked = x509.RevokedCertificateBuilder().serial_number(3).revocation_date(START).build()
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.subject)
        .last_update(START)
        .next_update(END)
        .add_revoked_certificate(revoked)
        .sign(ca_key, hashes.SHA256())
    )
    dh = subprocess.run(
        ["openssl", "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt", "group:ffdhe2048"],
        check=True,
        capture_output=True,
    ).stdout
    rsa_key = rsa.generate_private_key(65537, 2048)
    pem = serialization.Encoding.PEM
    return {
        "server.crt": cert.public_bytes(pem),
        "server.key": _pem_key(key),
        "root.crt": ca.public_bytes(pem),
        "root.crl": crl.public_bytes(pem),
        "dh.pem": dh,
        "pg_hba.conf": b"local all all trust\nhostssl all all 127.0.0.1/32 cert clientcert=verify-full\n",
        # seeds only
        "chain.crt": cert.public_bytes(pem) + ca.public_bytes(pem),
        "server.der": cert.public_bytes(serialization.Encoding.DER),
        "encrypted.key": _pem_key(key, b"passphrase"),
        "rsa.key": rsa_key.private_bytes(
            pem, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        ),
        "ec-sec1.key": key.private_bytes(
            pem, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        ),
    }


def _startup(params: dict[str, str], minor: int = 0) -> bytes:
    body = b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in params.items()) + b"\0"
    return struct.pack("!ii", len(body) + 8, (3 << 16) | minor) + body


SSL_REQUEST = struct.pack("!ii", 8, 80877103)
GSS_REQUEST = struct.pack("!ii", 8, 80877104)


def _msg(kind: bytes, body: bytes = b"") -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


def startup_seeds() -> dict[str, bytes]:
    su = _startup({"user": "alice", "database": "app", "application_name": "psql"})
    return {
        "startup": b"\x00" + su,
        "startup-chunked-eof": b"\x85" + su,
        "ssl-then-startup": b"\x40" + SSL_REQUEST + su,
        "ssl-refused": b"\x00" + SSL_REQUEST + su,
        "gss-ssl-startup": b"\x41" + GSS_REQUEST + SSL_REQUEST + su,
        "repeat-ssl": b"\x40" + SSL_REQUEST + SSL_REQUEST,
        "cancel": b"\x00" + struct.pack("!iiii", 16, 80877102, 1234, 5678),
        "direct-tls": b"\x00\x16\x03\x01\x00\x05hello",
        "protocol-3.2-pq": b"\x00" + _startup({"user": "bob", "_pq_.x": "1"}, minor=2),
        "protocol-2": b"\x00" + struct.pack("!ii", 8 + 2, 2 << 16) + b"\0\0",
        "long-user": b"\x00" + _startup({"user": "é" * 40}),
        "half-length": b"\x80\x00\x00",
    }


def frontend_seeds() -> dict[str, bytes]:
    q = _msg(b"Q", b"SELECT 1\0")
    parse = _msg(b"P", b"s1\0DROP DATABASE x\0\0\0")
    bind = _msg(b"B", b"\0s1\0\0\0\0\0\0\0")
    exe = _msg(b"E", b"\0\0\0\0\0")
    return {
        "query": b"\x80" + q,
        "query-chunked": b"\x93" + q + q,
        "extended": b"\x81" + parse + bind + exe + _msg(b"S"),
        "copy": b"\x05" + _msg(b"d", b"1\t2\n" * 20) + _msg(b"c"),
        "terminate": b"\x00" + q + _msg(b"X") + q,
        "bad-length": b"\x00" + b"Q\x00\x00\x00\x02",
        "watched-long": b"\xc7" + _msg(b"Q", b"   alter role bob set work_mem = '1MB'" + b" " * 300 + b"\0"),
    }


def txnwire_seeds() -> dict[str, bytes]:
    parse = _msg(b"P", b"s1\0SELECT $1\0\0\0")
    bind = _msg(b"B", b"\0s1\0\0\0\0\0\0\0")
    exe = _msg(b"E", b"\0\0\0\0\0")
    sync = _msg(b"S")
    client = parse + bind + exe + sync
    reply = _msg(b"1") + _msg(b"1") + _msg(b"2") + _msg(b"C", b"SELECT 1\0") + _msg(b"Z", b"I")
    error = _msg(b"E", b"SERROR\0C42P01\0Mx\0\0") + _msg(b"Z", b"I")

    def seed(control: int, c: bytes, r: bytes) -> bytes:
        return bytes([control, 255 * len(c) // max(1, len(c) + len(r))]) + c + r

    return {
        "extended": seed(0x00, client, reply),
        "extended-chunked": seed(0x13, client, reply),
        "warm": seed(0x85, client + _msg(b"C", b"Ss1\0") + sync, reply[5:] + _msg(b"Z", b"I")),
        "error": seed(0x07, client, error),
        "query": seed(0x02, _msg(b"Q", b"BEGIN\0"), _msg(b"C", b"BEGIN\0") + _msg(b"Z", b"T")),
    }


USER, PASSWORD = "alice", "secret"
SALT, ITERATIONS = b"0123456789abcdef", 4096
SERVER_NONCE = "c2VydmVybm9uY2VzZXJ2ZXJub25jZQ=="


def _scram_client(first_bare: str, gs2: str, cbind_input: bytes) -> bytes:
    nonce = first_bare.split("r=", 1)[1] + SERVER_NONCE
    server_first = f"r={nonce},s={base64.b64encode(SALT).decode()},i={ITERATIONS}"
    without_proof = f"c={base64.b64encode(cbind_input).decode()},r={nonce}"
    salted = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), SALT, ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    auth = f"{first_bare},{server_first},{without_proof}".encode()
    sig = hmac.new(hashlib.sha256(client_key).digest(), auth, hashlib.sha256).digest()
    proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, sig, strict=True))).decode()
    return f"{without_proof},p={proof}".encode()


def _sasl_initial(mech: bytes, data: bytes | None) -> bytes:
    return mech + b"\0" + (struct.pack("!i", -1) if data is None else struct.pack("!i", len(data)) + data)


def scram_seeds() -> dict[str, bytes]:
    bare = "n=,r=rOprNGfwEbeRWgbNEkqO"
    cb = hashlib.sha256(b"the server certificate").digest()
    plain_final = _scram_client(bare, "n,,", b"n,,")
    plus_final = _scram_client(bare, "p=tls-server-end-point,,", b"p=tls-server-end-point,," + cb)
    return {
        "ok": b"\x02" + _sasl_initial(b"SCRAM-SHA-256", b"n,," + bare.encode()) + SEP + plain_final,
        "ok-plus": b"\x03"
        + _sasl_initial(b"SCRAM-SHA-256-PLUS", b"p=tls-server-end-point," + b"," + bare.encode())
        + SEP
        + plus_final,
        "empty-initial": b"\x02"
        + _sasl_initial(b"SCRAM-SHA-256", None)
        + SEP
        + b"n,,"
        + bare.encode()
        + SEP
        + plain_final,
        "mock": b"\x00" + _sasl_initial(b"SCRAM-SHA-256", b"n,," + bare.encode()) + SEP + plain_final,
        "downgrade-y": b"\x01" + _sasl_initial(b"SCRAM-SHA-256", b"y,," + bare.encode()),
        "authzid": b"\x02" + _sasl_initial(b"SCRAM-SHA-256", b"n,a=bob," + bare.encode()),
        "extension": b"\x02" + _sasl_initial(b"SCRAM-SHA-256", b"n,,m=ext," + bare.encode()),
        "bad-mech": b"\x02" + _sasl_initial(b"SCRAM-SHA-1", b"n,,n=,r=x"),
    }


def password_seeds() -> dict[str, bytes]:
    md5_secret = "md5" + hashlib.md5(PASSWORD.encode() + USER.encode()).hexdigest()
    md5_resp = "md5" + hashlib.md5(md5_secret[3:].encode() + b"\x01\x02\x03\x04").hexdigest()
    return {
        "cleartext-scram": b"\x00secret\0",
        "cleartext-md5": b"\x01secret\0",
        "md5": b"\x02" + md5_resp.encode() + b"\0",
        "empty": b"\x00\0",
        "no-nul": b"\x01secret",
        "wrong-type": b"\x04secret\0",
        "scram-secret": b"\x00SCRAM-SHA-256$4096:MDEyMzQ1Njc4OWFiY2RlZg==$"
        + base64.b64encode(b"k" * 32)
        + b":"
        + base64.b64encode(b"s" * 32),
        "saslprep": "\x01pass\u00adword\u2003\uff21\0".encode(),
        "sasl-initial": b"\x00SCRAM-SHA-256\0\x00\x00\x00\x03n,,",
    }


def hba_seeds() -> dict[str, bytes]:
    return {
        "sample": b"# TYPE DATABASE USER ADDRESS METHOD\nlocal all all trust\n"
        b"host all all 127.0.0.1/32 scram-sha-256\nhost all all ::1/128 scram-sha-256\n"
        b"hostssl sameuser +staff 10.0.0.0 255.0.0.0 md5\n",
        "cert-map": b'hostssl "all",app alice,/^b.*$ samenet cert map=m clientname=DN\n'
        b"hostnossl replication all samehost reject\n",
        "hostname": b"host all all .example.com password\nhost all all db.example.com trust\n"
        b"hostgssenc all all all reject\nhostnogssenc all all all trust\n",
        "options": b"hostssl all all 0.0.0.0/0 scram-sha-256 clientcert=verify-ca\n"
        b"host all all all ldap ldapserver=x\nhost all all 1.2.3.4/33 trust\n",
        "include": b"include_if_exists missing.conf\n@users all all trust\ninclude_dir conf.d\n"
        b'local "a,b" "quoted ""x""" trust \\\n  # continued\n',
        "regex": b"local /^(db|app)[0-9]+$ /^(a|aa)+$ trust\nlocal all /[ trust\n",
    }


def ident_seeds() -> dict[str, bytes]:
    return {
        "sample": b"\x00# MAPNAME SYSTEM-USERNAME PG-USERNAME\nm alice alice\nm bob +staff\n",
        "regex": b"\x01m /^CN=([a-z]+)@example\\.com$ \\1\nm /^(.*)@EXAMPLE\\.COM$ \\1\nn /x /^b\n",
        "case": b'\x06m BOB.SMITH@example.com bob.smith\nm "quoted name" all\n',
        "bad": b"\x00m onlytwo\nm a,b c\nm /( x\n",
        "include": b"\x00include_if_exists other.conf\nm @list alice\n",
    }


def conf_seeds() -> dict[str, bytes]:
    return {
        "initdb": b"listen_addresses = 'localhost'\nport = 5432\nmax_connections = 100\n"
        b"shared_buffers = 128MB\ndynamic_shared_memory_type = posix\nmax_wal_size = 1GB\n"
        b"log_timezone = 'Etc/UTC'\ndatestyle = 'iso, mdy'\nlc_messages = 'C.UTF-8'\n"
        b"default_text_search_config = 'pg_catalog.english'\n",
        "ssl": b"ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"
        b"ssl_min_protocol_version = 'TLSv1.2'\nssl_ciphers = 'HIGH:!aNULL'\npassword_encryption = md5\n",
        "units": b"authentication_timeout = 1min\nwork_mem = '4MB'\nstatement_timeout = 1.5s\n"
        b"unix_socket_permissions = 0777\nlog_connections = 'receipt,authorization'\nseq_page_cost=0.5\n",
        "syntax": b"port 5433 # no equals sign\nx.y = 1\nbad = 'unterminated\nssl_ca_file = root.crt\n"
        b"'quoted' = 1\nport = 0x1F90\nmax_connections = 1e3\n",
        "escapes": b"application_name = 'it''s \\'q\\' \\101\\t'\ncustom.setting = on\n",
        "include": b"include_if_exists 'missing.conf'\ninclude_dir 'conf.d'\n",
    }


def check_seeds(fx: dict[str, bytes]) -> dict[str, bytes]:
    return {
        "fixtures": b"",
        "wildcard-listen": b"listen_addresses = '*'\nssl_ciphers = 'NULL'\n",
        "chain-hba": SEP.join([b"ssl_crl_dir = 'crls'\n", b"hostssl all all all cert\n", fx["chain.crt"]]),
        "der-cert": SEP.join([b"", b"", fx["server.der"], fx["rsa.key"]]),
        "encrypted-key": SEP.join([b"", b"", b"", fx["encrypted.key"]]),
        "swapped": SEP.join([b"", b"", fx["root.crt"], b"", fx["server.crt"], fx["root.crt"]]),
    }


def pem_seeds(fx: dict[str, bytes]) -> dict[str, bytes]:
    return {
        "cert": b"\x00" + fx["server.crt"],
        "chain": b"\x00" + fx["chain.crt"],
        "der": b"\x00" + fx["server.der"],
        "key": b"\x01" + fx["server.key"],
        "key-rsa": b"\x01" + fx["rsa.key"],
        "key-sec1": b"\x01" + fx["ec-sec1.key"],
        "key-encrypted": b"\x01" + fx["encrypted.key"],
        "ca": b"\x02" + fx["root.crt"],
        "crl": b"\x03" + fx["root.crl"],
        "dh": b"\x04" + fx["dh.pem"],
    }


def main() -> None:
    fx = make_fixtures()
    shutil.rmtree(FIXTURES, ignore_errors=True)
    FIXTURES.mkdir()
    for name in ("server.crt", "server.key", "root.crt", "root.crl", "dh.pem", "pg_hba.conf"):
        (FIXTURES / name).write_bytes(fx[name])
    (FIXTURES / "server.key").chmod(0o600)
    seeds = {
        "startup": startup_seeds(),
        "frontend": frontend_seeds(),
        "scram": scram_seeds(),
        "password": password_seeds(),
        "hba": hba_seeds(),
        "ident": ident_seeds(),
        "conf": conf_seeds(),
        "pem": pem_seeds(fx),
        "check": check_seeds(fx),
        "txnwire": txnwire_seeds(),
    }
    for target, files in seeds.items():
        d = CORPUS / target
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        for name, content in files.items():
            (d / name).write_bytes(content)


if __name__ == "__main__":
    main()
