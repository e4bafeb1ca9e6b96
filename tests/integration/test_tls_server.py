"""The server's TLS front door with real clients: direct TLS and ALPN, chains, key rules,
passphrases, reload (Table 19.2), protocol and cipher bounds."""

from __future__ import annotations

import hashlib
import os
import shutil
import ssl
import subprocess

import asyncpg
import psycopg
import pytest

from pgtls.protocol.startup import ssl_request_packet, startup_packet
from tests.conftest import run_psql
from tests.pgtlsserver import READY
from tests.pgtlsserver import tls_server as start_tls_server
from tests.rawclient import Raw, first_error

HBA = "local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n"


def tls_server(factory, certs, **kw):
    return start_tls_server(certs, factory(), hba=HBA, **kw)


def served_fingerprint(port: int) -> str:
    r = Raw(port)
    r.send(ssl_request_packet())
    assert r.recv_exact(1) == b"S"
    r.start_tls()
    assert r.tls is not None
    der = r.tls.getpeercert(binary_form=True)
    r.close()
    return hashlib.sha256(der).hexdigest()


def cert_fingerprint(path: str) -> str:
    pem = open(path).read()
    first = pem[: pem.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")]
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(first)).hexdigest()


def test_psycopg_direct_tls(pgtls_factory, certs):
    s = tls_server(pgtls_factory, certs)
    with psycopg.connect(
        s.dsn(
            host="localhost",
            hostaddr="127.0.0.1",
            sslmode="verify-full",
            sslrootcert=certs.path("root_ca.crt"),
            sslnegotiation="direct",
        )
    ) as c:
        assert c.pgconn.ssl_in_use
        assert c.execute("select 41 + 1").fetchone() == (42,)
    assert "SSL enabled (protocol=TLSv1.3" in s.log()


async def _asyncpg_direct(port: int, cafile: str) -> int:
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.set_alpn_protocols(["postgresql"])  # asyncpg leaves ALPN to a caller-supplied context
    conn = await asyncpg.connect(
        host="localhost", port=port, user="postgres", database="postgres", ssl=ctx, direct_tls=True
    )
    try:
        return await conn.fetchval("select 7")
    finally:
        await conn.close()


def test_asyncpg_direct_tls(pgtls_factory, certs):
    import asyncio

    s = tls_server(pgtls_factory, certs)
    assert asyncio.run(_asyncpg_direct(s.port, certs.path("root_ca.crt"))) == 7


def test_direct_tls_without_alpn_refused(pgtls_factory, certs):
    s = tls_server(pgtls_factory, certs, trace_connection_negotiation="on")
    r = Raw(s.port)
    r.start_tls(alpn=None)  # a TLS client that does not speak ALPN
    r.send(startup_packet({"user": "postgres"}))
    assert r.recv_all(2.0) == b""
    r.close()
    assert "received direct SSL connection request without ALPN protocol negotiation extension" in s.log()
    assert "connection authorized" not in s.log()


def test_direct_tls_wrong_alpn_refused(pgtls_factory, certs):
    s = tls_server(pgtls_factory, certs)
    r = Raw(s.port)
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        r.start_tls(alpn=["http/1.1"])
        r.send(startup_packet({"user": "postgres"}))
        if not r.recv_all(2.0):
            raise ssl.SSLError("closed")
    r.close()


def test_direct_tls_refused_when_ssl_off(pgtls_factory, certs):
    s = pgtls_factory().init()
    s.write("pg_hba.conf", HBA)
    s.start()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(s.dsn(sslmode="require", sslnegotiation="direct", connect_timeout=5))


def test_alpn_negotiated_after_sslrequest(pgtls_factory, certs):
    s = tls_server(pgtls_factory, certs)
    r = Raw(s.port)
    r.send(ssl_request_packet())
    assert r.recv_exact(1) == b"S"
    r.start_tls(alpn=["postgresql"])
    assert r.tls is not None and r.tls.selected_alpn_protocol() == "postgresql"
    r.close()


def test_chain_leaf_plus_intermediate_verify_full(pgtls_factory, certs, client_home):
    s = tls_server(pgtls_factory, certs)
    r = run_psql(
        s.dsn(
            host="localhost",
            hostaddr="127.0.0.1",
            sslmode="verify-full",
            sslrootcert=certs.path("root_ca.crt"),
        ),
        home=client_home,
    )
    assert r.ok, r.stderr


def test_leaf_only_cert_fails_verify_with_root_only(pgtls_factory, certs, client_home):
    s = tls_server(pgtls_factory, certs, cert="server.crt")
    r = run_psql(
        s.dsn(
            host="localhost", hostaddr="127.0.0.1", sslmode="verify-ca", sslrootcert=certs.path("root_ca.crt")
        ),
        home=client_home,
    )
    assert not r.ok and "certificate verify failed" in r.stderr


def test_key_world_readable_refuses_start(pgtls_factory, certs):
    s = tls_server(pgtls_factory, certs, start=False)
    os.chmod(s.datadir / "server.key", 0o644)
    assert not s.start(check=False)
    assert s.proc is not None and s.proc.returncode != 0
    log = s.log()
    assert (
        'private key file "server.key" has group or world access' in log
    )  # the configured name, as PostgreSQL
    assert "File must have permissions u=rw (0600) or less if owned by the database user" in log
    os.chmod(s.datadir / "server.key", 0o600)
    assert s.start()


@pytest.mark.parametrize("command,ok", [("echo secret1", True), ("echo wrongpassword", False)])
def test_passphrase_command(pgtls_factory, certs, command, ok):
    s = tls_server(
        pgtls_factory, certs, key="server-password.key", start=False, ssl_passphrase_command=command
    )
    assert s.start(check=False) is ok
    if not ok:
        assert "could not load private key file" in s.log()
        assert "wrongpassword" not in s.log()


def test_passphrase_reload_rules(pgtls_factory, certs, client_home):
    s = tls_server(pgtls_factory, certs, key="server-password.key", ssl_passphrase_command="echo secret1")
    s.reload()
    assert "cannot be reloaded because it requires a passphrase" in s.log()
    assert "SSL configuration was not reloaded" in s.log()
    assert run_psql(s.dsn(sslmode="require"), home=client_home).ok
    s.conf(ssl_passphrase_command_supports_reload="on")
    s.reload()
    s.reload()
    assert s.log().count("cannot be reloaded because it requires a passphrase") == 1
    assert run_psql(s.dsn(sslmode="require"), home=client_home).ok


def test_reload_new_cert_keeps_open_session(pgtls_factory, certs):
    s = tls_server(pgtls_factory, certs)
    assert served_fingerprint(s.port) == cert_fingerprint(certs.path("server-chain.crt"))
    with psycopg.connect(s.dsn(sslmode="require")) as open_conn:
        shutil.copy(certs.path("server2-chain.crt"), s.datadir / "server.crt")
        shutil.copy(certs.path("server2.key"), s.datadir / "server.key")
        os.chmod(s.datadir / "server.key", 0o600)
        s.reload()
        assert served_fingerprint(s.port) == cert_fingerprint(certs.path("server2-chain.crt"))
        assert open_conn.execute("select 5").fetchone() == (5,)

        # A corrupt certificate: the old one keeps serving, the error is logged.
        (s.datadir / "server.crt").write_text(
            "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n"
        )
        s.reload()
        assert "could not load server certificate file" in s.log()
        assert "SSL configuration was not reloaded" in s.log()
        assert served_fingerprint(s.port) == cert_fingerprint(certs.path("server2-chain.crt"))
        assert open_conn.execute("select 6").fetchone() == (6,)
    # ... and a restart with the corrupt certificate is refused.
    assert not s.restart(check=False)
    assert "could not load server certificate file" in s.log()


def test_sslrequest_and_startup_in_one_write_is_refused(pgtls_factory, certs):
    """CVE-2021-23214 with ssl=on: the pipelined plaintext is fed to TLS, which fails; nothing processed."""
    s = tls_server(pgtls_factory, certs)
    r = Raw(s.port)
    r.send(ssl_request_packet() + startup_packet({"user": "postgres", "database": "postgres"}))
    data = r.recv_all(3.0)
    r.close()
    assert data[:1] == b"S"
    assert first_error(data[1:]) is None  # no plaintext ErrorResponse, no processing
    assert b"R\x00\x00\x00\x08" not in data  # never an AuthenticationOk
    assert "connection authorized" not in s.log()


def test_pipelined_client_hello_after_sslrequest_works(pgtls_factory, certs):
    """PostgreSQL 17+: a ClientHello sent together with SSLRequest is the start of the TLS stream."""
    s = tls_server(pgtls_factory, certs)
    import socket

    sock = socket.create_connection(("127.0.0.1", s.port), timeout=5)
    ctx = ssl._create_unverified_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    sock.sendall(ssl_request_packet() + outgoing.read())
    assert sock.recv(1) == b"S"
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            out = outgoing.read()
            if out:
                sock.sendall(out)
            data = sock.recv(65536)
            assert data
            incoming.write(data)
    sock.sendall(outgoing.read())
    assert obj.version() in ("TLSv1.3", "TLSv1.2")
    sock.close()


def _client_ctx(min_v=None, max_v=None) -> ssl.SSLContext:
    ctx = ssl._create_unverified_context()
    if min_v:
        ctx.minimum_version = min_v
    if max_v:
        ctx.maximum_version = max_v
    return ctx


def _handshake(port: int, ctx: ssl.SSLContext) -> str:
    import socket

    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(ssl_request_packet())
    assert sock.recv(1) == b"S"
    t = ctx.wrap_socket(sock)
    t.sendall(startup_packet({"user": "postgres"}))
    data = t.recv(1)
    version = t.version() or ""
    t.close()
    assert data
    return version


def test_min_protocol_tls13_refuses_tls12_client(pgtls_factory, certs):
    s = tls_server(pgtls_factory, certs, ssl_min_protocol_version="TLSv1.3")
    with pytest.raises(ssl.SSLError):
        _handshake(s.port, _client_ctx(max_v=ssl.TLSVersion.TLSv1_2))
    assert _handshake(s.port, _client_ctx()) == "TLSv1.3"


def test_ssl_ciphers_refuses_client_offering_only_excluded(pgtls_factory, certs):
    s = tls_server(
        pgtls_factory,
        certs,
        cert="server-rsa-chain.crt",
        key="server-rsa.key",
        ssl_ciphers="ECDHE-RSA-AES256-GCM-SHA384",
    )
    ctx = _client_ctx(max_v=ssl.TLSVersion.TLSv1_2)
    ctx.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256")
    with pytest.raises(ssl.SSLError):
        _handshake(s.port, ctx)
    ok = _client_ctx(max_v=ssl.TLSVersion.TLSv1_2)
    ok.set_ciphers("ECDHE-RSA-AES256-GCM-SHA384")
    assert _handshake(s.port, ok) == "TLSv1.2"


def test_ssl_tls13_ciphers_refuses_client_offering_only_excluded(pgtls_factory, certs):
    from pgtls.tls import ffi

    s = tls_server(pgtls_factory, certs, ssl_tls13_ciphers="TLS_AES_256_GCM_SHA384")
    ctx = _client_ctx(min_v=ssl.TLSVersion.TLSv1_3)
    ffi.set_tls13_ciphersuites(ctx, "TLS_CHACHA20_POLY1305_SHA256")
    with pytest.raises(ssl.SSLError):
        _handshake(s.port, ctx)
    ok = _client_ctx(min_v=ssl.TLSVersion.TLSv1_3)
    ffi.set_tls13_ciphersuites(ok, "TLS_AES_256_GCM_SHA384")
    assert _handshake(s.port, ok) == "TLSv1.3"


def test_ssl_groups_refuses_client_offering_only_excluded(pgtls_factory, certs):
    from pgtls.tls import ffi

    s = tls_server(pgtls_factory, certs, ssl_groups="prime256v1")
    ctx = _client_ctx()
    ffi.set_groups(ctx, "X25519")
    with pytest.raises(ssl.SSLError):
        _handshake(s.port, ctx)
    ok = _client_ctx()
    ffi.set_groups(ok, "P-256")
    assert _handshake(s.port, ok)


@pytest.mark.parametrize(
    "conf,needle",
    [
        ({"ssl_groups": "bad:value"}, "could not set group names specified in ssl_groups"),
        (
            {"ssl_min_protocol_version": "TLSv1.2", "ssl_max_protocol_version": "TLSv1.1"},
            "could not set SSL protocol version range",
        ),
        ({"ssl_ciphers": "NOTACIPHER"}, "could not set the TLSv1.2 cipher list (no valid ciphers available)"),
        (
            {"ssl_tls13_ciphers": "NOTACIPHER"},
            "could not set the TLSv1.3 cipher suites (no valid ciphers available)",
        ),
        ({"ssl_ca_file": "missing.crt"}, "could not load root certificate file"),
        ({"ssl_crl_file": "missing.crl"}, "could not load SSL certificate revocation list file"),
    ],
)
def test_bad_ssl_settings_refuse_start(pgtls_factory, certs, conf, needle):
    s = tls_server(pgtls_factory, certs, start=False, **conf)
    assert not s.start(check=False)
    assert needle in s.log()
    assert "no SSL error reported" not in s.log()


def test_show_every_ssl_setting(pgtls_factory, certs, client_home):
    # SHOW through the relay answers the managed PostgreSQL's own settings (its ssl is off: it serves only a
    # private socket); the door's ssl_* values are what the embedded backend shows.
    s = tls_server(pgtls_factory, certs, ssl_ca_file="root+client_ca.crt", start=False, backend="duckdb")
    s.copy_in(certs.path("root+client_ca.crt"), mode=0o644)
    s.start()
    expected = {
        "ssl": "on",
        "ssl_cert_file": "server.crt",
        "ssl_key_file": "server.key",
        "ssl_ca_file": "root+client_ca.crt",
        "ssl_crl_file": "",
        "ssl_crl_dir": "",
        "ssl_ciphers": "HIGH:MEDIUM:+3DES:!aNULL",
        "ssl_prefer_server_ciphers": "on",
        "ssl_groups": "X25519:prime256v1",
        "ssl_ecdh_curve": "X25519:prime256v1",
        "ssl_tls13_ciphers": "",
        "ssl_min_protocol_version": "TLSv1.2",
        "ssl_max_protocol_version": "",
        "ssl_dh_params_file": "",
        "ssl_passphrase_command": "",
        "ssl_passphrase_command_supports_reload": "off",
        "ssl_library": "OpenSSL",
    }
    with psycopg.connect(s.dsn(sslmode="require")) as c:
        for name, value in expected.items():
            assert c.execute(f"SHOW {name}").fetchone() == (value,), name


def test_unix_socket_psql(pgtls_factory, certs, client_home):
    s = tls_server(pgtls_factory, certs)
    r = run_psql(
        f"host={s.sockdir} port={s.port} user=postgres dbname=postgres", r"\conninfo", home=client_home
    )
    assert r.ok, r.stderr
    assert f'via socket in "{s.sockdir}"' in r.stdout
    assert "SSL" not in r.stdout  # no TLS on Unix-domain sockets


def test_too_many_clients(pgtls_factory, certs):
    s = tls_server(pgtls_factory, certs, max_connections="2", superuser_reserved_connections="0")
    a = psycopg.connect(s.dsn(sslmode="require"))
    b = psycopg.connect(s.dsn(sslmode="disable"))
    with pytest.raises(psycopg.OperationalError) as ei:
        psycopg.connect(s.dsn(sslmode="require"))
    assert "sorry, too many clients already" in str(ei.value)
    import asyncio

    async def third() -> None:
        await asyncpg.connect(host="127.0.0.1", port=s.port, user="postgres", database="postgres", ssl=False)

    with pytest.raises(asyncpg.TooManyConnectionsError) as ai:
        asyncio.run(third())
    assert ai.value.sqlstate == "53300"
    a.close()
    b.close()


def test_authentication_timeout_drops_staller(pgtls_factory, certs):
    s = tls_server(pgtls_factory, certs, authentication_timeout="1s")
    r = Raw(s.port)
    r.send(ssl_request_packet())
    assert r.recv_exact(1) == b"S"
    # Stall: never send a ClientHello.
    assert r.closed_by_server(timeout=5)
    r.close()
    with psycopg.connect(s.dsn(sslmode="require")) as c:
        assert c.execute("select 1").fetchone() == (1,)


def test_protocol_32_gets_negotiate_protocol_version(pgtls_factory, certs):
    s = tls_server(pgtls_factory, certs)
    with psycopg.connect(s.dsn(sslmode="require", max_protocol_version="3.2")) as c:
        assert c.pgconn.protocol_version == 3
        assert c.execute("select 2").fetchone() == (2,)


def test_cancel_request_packet_is_harmless(pgtls_factory, certs):
    from pgtls.protocol.startup import cancel_request_packet

    s = tls_server(pgtls_factory, certs)
    r = Raw(s.port)
    r.send(cancel_request_packet(12345, 678))
    assert r.closed_by_server()
    r.close()
    with psycopg.connect(s.dsn(sslmode="require")) as c:
        assert c.execute("select 3").fetchone() == (3,)


def test_log_lines_and_no_secrets(pgtls_factory, certs):
    s = tls_server(pgtls_factory, certs, key="server-password.key", ssl_passphrase_command="echo secret1")
    with psycopg.connect(s.dsn(sslmode="require", application_name="tester")) as c:
        c.execute("select 1")
    log = s.log()
    assert "connection received: host=127.0.0.1 port=" in log
    assert (
        "connection authorized: user=postgres database=postgres application_name=tester SSL enabled (protocol="
        in log
    )
    assert "secret1" not in log
    key_pem = open(certs.path("server.key")).read().splitlines()[1]
    assert key_pem not in log


def test_psql_openssl_cli_sees_chain(pgtls_factory, certs):
    """openssl s_client -starttls postgres sees leaf and intermediate."""
    s = tls_server(pgtls_factory, certs)
    p = subprocess.run(
        [
            "openssl",
            "s_client",
            "-starttls",
            "postgres",
            "-connect",
            f"127.0.0.1:{s.port}",
            "-showcerts",
            "-CAfile",
            certs.path("root_ca.crt"),
        ],
        input=b"",
        capture_output=True,
        timeout=20,
    )
    out = p.stdout.decode()
    assert out.count("BEGIN CERTIFICATE") == 2
    assert "Verify return code: 0 (ok)" in out


def test_passphrase_prompt_on_terminal(pgtls_factory, certs):
    """With a terminal on stdin and no ssl_passphrase_command, the server asks for the passphrase."""
    import pty
    import time

    s = tls_server(pgtls_factory, certs, key="server-password.key", start=False)
    master, slave = pty.openpty()
    try:
        s.start(check=False, stdin=slave, timeout=0.5)
    except RuntimeError:
        pass  # still waiting for the passphrase
    deadline = time.monotonic() + 15
    seen = b""
    while (
        b"Enter PEM pass phrase:" not in seen
        and "Enter PEM pass phrase:" not in s.log()
        and time.monotonic() < deadline
    ):
        import select

        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            seen += os.read(master, 1024)
    assert b"Enter PEM pass phrase:" in seen or "Enter PEM pass phrase:" in s.log()
    os.write(master, b"secret1\n")
    deadline = time.monotonic() + 15
    # pgtls's own line: the managed cluster's "cluster: LOG:  database system is ready" comes earlier.
    while READY not in s.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert READY in s.log()
    assert "secret1" not in s.log()
    with psycopg.connect(s.dsn(sslmode="require")) as c:
        assert c.execute("select 1").fetchone() == (1,)
    os.close(master)
    os.close(slave)


def test_listen_on_ipv4_and_ipv6(pgtls_factory, certs, client_home):
    s = tls_server(pgtls_factory, certs, start=False, listen_addresses="127.0.0.1,::1")
    s.write("pg_hba.conf", HBA)
    s.start()
    assert 'listening on IPv6 address "::1"' in s.log()
    assert 'listening on IPv4 address "127.0.0.1"' in s.log()
    r = run_psql(
        f"host=::1 port={s.port} user=postgres dbname=postgres sslmode=require",
        r"\conninfo",
        home=client_home,
    )
    assert r.ok and "SSL connection" in r.stdout, r.stderr
