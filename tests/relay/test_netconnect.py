"""The upstream leg to a network PostgreSQL (pgtls/backends/relay/netconnect.py) against a real PostgreSQL 15
with its own TLS: libpq's options, compared with libpq itself (psycopg) where both can refuse."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from pathlib import Path

import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pgtls.auth.passwords import parse_scram_secret
from pgtls.backends.relay.netconnect import connect_upstream, endpoints, send_cancel_upstream
from pgtls.backends.relay.upauth import Credentials
from pgtls.backends.relay.upstream import QueryError
from pgtls.certs import x509build as xb
from pgtls.errors import PgError
from pgtls.tls.client import client_tls
from tests.pgserver import RealPostgres
from tests.relay.recorder import Recorder


def base(pg: RealPostgres, certs, **kw: str) -> dict[str, str]:
    params = {
        "host": "localhost",
        "hostaddr": "127.0.0.1",
        "port": str(pg.port),
        "sslmode": "verify-full",
        "sslrootcert": certs.path("root_ca.crt"),
        "connect_timeout": "5",
    }
    params.update(kw)
    return params


def run(coro):  # noqa: ANN001, ANN201
    return asyncio.run(coro)


async def login(
    params: dict[str, str], user: str, password: str | None = None, **cred: object
) -> tuple[str, ...]:
    conn = await connect_upstream(
        params, {"user": user, "database": "postgres"}, Credentials(user, password=password, **cred)
    )  # type: ignore[arg-type]
    try:
        r = await conn.execute(
            "SELECT current_user, ssl::text, coalesce(version, '') FROM pg_stat_ssl "
            "WHERE pid = pg_backend_pid()"
        )
        return tuple(r.rows[0])  # type: ignore[arg-type]
    finally:
        conn.close()


def libpq_error(params: dict[str, str], user: str, password: str = "") -> str:
    try:
        psycopg.connect(**params, user=user, password=password, dbname="postgres").close()
    except psycopg.OperationalError as e:
        return str(e).rsplit("failed: ", 1)[-1].strip().removeprefix("FATAL:  ")
    return ""


def pgtls_error(params: dict[str, str], user: str, password: str | None = None, **cred: object) -> str:
    with pytest.raises(PgError) as e:
        run(login(params, user, password, **cred))
    return e.value.message.rsplit("failed: ", 1)[-1].strip()


# --- authentication methods over verify-full ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "password"),
    [("scramu", "scram-secret"), ("md5u", "md5-secret"), ("pwu", "clear-secret"), ("tru", None)],
)
def test_every_method_over_verify_full(upstream, certs, user, password):
    who, ssl_used, version = run(login(base(upstream, certs), user, password))
    assert (who, ssl_used) == (user, "true") and version.startswith("TLSv1.")


def test_wrong_password_gets_the_upstreams_fatal(upstream, certs):
    with pytest.raises(PgError) as e:
        run(login(base(upstream, certs), "scramu", "wrong"))
    assert e.value.sqlstate == "28P01", e.value.message
    assert 'password authentication failed for user "scramu"' in e.value.message
    assert libpq_error(base(upstream, certs), "scramu", "wrong") == e.value.message.rsplit("failed: ", 1)[-1]


def test_channel_binding_require_uses_scram_plus(upstream, certs):
    params = base(upstream, certs, channel_binding="require")
    assert run(login(params, "scramu", "scram-secret"))[0] == "scramu"
    # md5 and trust cannot bind a channel: libpq and pgtls refuse the same way
    for user, pw in (("md5u", "md5-secret"), ("tru", None)):
        assert pgtls_error(params, user, pw) == libpq_error(params, user, pw or "")


def test_scram_with_the_keys_alone(upstream, certs):
    """SCRAM pass-through's upstream half: ClientKey and ServerKey (from the verifier's salt and count), no password."""
    with psycopg.connect(
        host=str(upstream.sockdir), port=upstream.port, user="postgres", dbname="postgres"
    ) as c:
        secret = c.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'scramu'").fetchone()[0]
    parsed = parse_scram_secret(secret)
    assert parsed is not None
    from pgtls.auth.scram_client import keys_from_password

    keys = keys_from_password("scram-secret", parsed.salt, parsed.iterations)
    assert (
        run(login(base(upstream, certs, channel_binding="require"), "scramu", None, scram_keys=keys))[0]
        == "scramu"
    )
    wrong = keys_from_password("other", parsed.salt, parsed.iterations)
    with pytest.raises(PgError, match="password authentication failed"):
        run(login(base(upstream, certs), "scramu", None, scram_keys=wrong))


# --- TLS verification, differential with libpq ---------------------------------------------------------------


def test_wrong_host_name_refused_at_verify_full(upstream, certs):
    params = base(upstream, certs, host="wronghost.test")
    ours = pgtls_error(params, "tru")
    assert ours == libpq_error(params, "tru")
    assert 'does not match host name "wronghost.test"' in ours
    # verify-ca does not check the name
    assert run(login(base(upstream, certs, host="wronghost.test", sslmode="verify-ca"), "tru"))[0] == "tru"


def test_wrong_ca_refused(upstream, certs):
    params = base(upstream, certs, sslrootcert=certs.path("other_root.crt"))
    ours = pgtls_error(params, "tru")
    assert ours == libpq_error(params, "tru") == "SSL error: certificate verify failed"


def test_revoked_server_certificate_refused_with_sslcrl(upstream, certs, tmp_path):
    ca_cert = x509.load_pem_x509_certificate(Path(certs.path("server_ca.crt")).read_bytes())
    ca_key = serialization.load_pem_private_key(Path(certs.path("server_ca.key")).read_bytes(), None)
    leaf = x509.load_pem_x509_certificate(Path(certs.path("server.crt")).read_bytes())
    crl = tmp_path / "revoked.crl"
    xb.write_crls(
        crl,
        [
            xb.make_crl(xb.Issued(ca_cert, ca_key), [leaf.serial_number]),  # type: ignore[arg-type]
            xb.make_crl(
                xb.Issued(
                    x509.load_pem_x509_certificate(Path(certs.path("root_ca.crt")).read_bytes()),
                    serialization.load_pem_private_key(Path(certs.path("root_ca.key")).read_bytes(), None),
                )
            ),
        ],
    )  # type: ignore[arg-type]
    params = base(upstream, certs, sslcrl=str(crl))
    ours = pgtls_error(params, "tru")
    assert ours == libpq_error(params, "tru") == "SSL error: certificate verify failed"
    clean = tmp_path / "clean.crl"
    xb.write_crls(clean, [xb.make_crl(xb.Issued(ca_cert, ca_key))])  # type: ignore[arg-type]
    root = xb.Issued(
        x509.load_pem_x509_certificate(Path(certs.path("root_ca.crt")).read_bytes()),
        serialization.load_pem_private_key(Path(certs.path("root_ca.key")).read_bytes(), None),
    )  # type: ignore[arg-type]
    xb.write_crls(clean, [xb.make_crl(xb.Issued(ca_cert, ca_key)), xb.make_crl(root)])  # type: ignore[arg-type]
    assert run(login(base(upstream, certs, sslcrl=str(clean)), "tru"))[0] == "tru"


def test_protocol_range(upstream, certs):
    assert run(login(base(upstream, certs, ssl_min_protocol_version="TLSv1.3"), "tru"))[2] == "TLSv1.3"
    assert run(login(base(upstream, certs, ssl_max_protocol_version="TLSv1.2"), "tru"))[2] == "TLSv1.2"


def test_weaker_modes_only_when_written(upstream, certs):
    # plainu may only come without TLS: prefer falls back? No: the server accepts TLS, and plainu's host line
    # matches TLS connections too, so prefer/require use TLS; disable does not.
    p = base(upstream, certs, sslmode="disable")
    assert run(login(p, "plainu"))[1] == "false"
    assert run(login(base(upstream, certs, sslmode="prefer"), "plainu"))[1] == "true"
    assert run(login(base(upstream, certs, sslmode="allow"), "plainu"))[1] == "false"
    # allow: plaintext refused by the hostssl-only line, then TLS
    assert run(login(base(upstream, certs, sslmode="allow"), "tru"))[1] == "true"


# --- hosts, ports, target_session_attrs ----------------------------------------------------------------------


def test_host_lists_try_in_order_and_report_each_failure(upstream, certs):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead = closed.getsockname()[1]
    closed.close()
    p = base(
        upstream,
        certs,
        host="localhost,localhost",
        hostaddr="127.0.0.1,127.0.0.1",
        port=f"{dead},{upstream.port}",
    )
    assert run(login(p, "tru"))[0] == "tru"
    p = base(
        upstream, certs, host="localhost,localhost", hostaddr="127.0.0.1,127.0.0.1", port=f"{dead},{dead}"
    )
    with pytest.raises(PgError) as e:
        run(login(p, "tru"))
    lines = e.value.message.splitlines()
    assert len(lines) == 2 and all(f"port {dead} failed: Connection refused" in line for line in lines)


def test_endpoint_rules_match_libpq():
    assert [(e.host, e.hostaddr, e.port) for e in endpoints({"host": "a,b", "port": "1"})] == [
        ("a", "", 1),
        ("b", "", 1),
    ]
    assert [(e.port) for e in endpoints({"host": "a,b", "port": "1,"})] == [1, 5432]
    for params, message in (
        ({"host": "a,b", "port": "1,2,3"}, "could not match 3 port numbers to 2 hosts"),
        ({"host": "a,b", "hostaddr": "127.0.0.1"}, "could not match 2 host names to 1 hostaddr values"),
        ({"host": "a", "port": "5x"}, 'invalid integer value "5x" for connection option "port"'),
        ({"host": "a", "port": "70000"}, 'invalid port number: "70000"'),
        ({"host": "a", "port": "0"}, 'invalid port number: "0"'),
    ):
        with pytest.raises(PgError) as e:
            endpoints(params)
        assert e.value.message == message
        conninfo = " ".join(f"{k}={v}" for k, v in params.items()) + " connect_timeout=1"
        pgconn = psycopg.pq.PGconn.connect(conninfo.encode())  # libpq itself (psycopg.connect resolves first)
        assert message in pgconn.error_message.decode()
        pgconn.finish()


@pytest.mark.parametrize(
    ("attrs", "ok"),
    [
        ("any", True),
        ("read-write", True),
        ("primary", True),
        ("read-only", False),
        ("standby", False),
        ("prefer-standby", True),
    ],
)
def test_target_session_attrs_on_a_primary(upstream, certs, attrs, ok):
    p = base(upstream, certs, target_session_attrs=attrs)
    if ok:
        assert run(login(p, "tru"))[0] == "tru"
    else:
        assert pgtls_error(p, "tru") == libpq_error(p, "tru")


# --- SNI, direct TLS with ALPN: what a TLS listener sees -----------------------------------------------------


class Hello:
    """A TLS listener recording the SNI and ALPN of each ClientHello (it answers SSLRequest with 'S' unless
    ``direct``), then closes."""

    def __init__(self, certs, direct: bool, alpn: bool = True) -> None:
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(certs.path("server-chain.crt"), certs.path("server.key"))
        if alpn:
            self.ctx.set_alpn_protocols(["postgresql"])
        self.seen: list[tuple[str | None, str | None]] = []
        self.ctx.sni_callback = lambda obj, name, ctx: self.seen.append((name, None)) and None  # type: ignore[func-returns-value]
        self.direct = direct
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        self.sock.settimeout(10)
        with contextlib_suppress():
            conn, _ = self.sock.accept()
            with conn:
                if not self.direct:
                    conn.recv(8)
                    conn.sendall(b"S")
                with self.ctx.wrap_socket(conn, server_side=True) as tls:
                    self.alpn = tls.selected_alpn_protocol()
                    tls.recv(1)


class contextlib_suppress:  # noqa: N801 - a tiny local context manager
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


@pytest.mark.parametrize(
    ("host", "extra", "sni"),
    [("localhost", {}, "localhost"), ("localhost", {"sslsni": "0"}, None), ("127.0.0.1", {}, None)],
)
def test_sni_sent_in_every_sslmode_for_names_only(certs, host, extra, sni):
    hello = Hello(certs, direct=False)
    p = {"host": host, "hostaddr": "127.0.0.1", "port": str(hello.port), "sslmode": "require", **extra}
    with pytest.raises(PgError):
        run(login(p, "tru"))
    hello.thread.join(5)
    assert [s for s, _ in hello.seen] == ([sni] if sni else [None])


def test_direct_tls_offers_alpn_and_requires_it(certs):
    hello = Hello(certs, direct=True)
    p = {
        "host": "localhost",
        "hostaddr": "127.0.0.1",
        "port": str(hello.port),
        "sslmode": "require",
        "sslnegotiation": "direct",
    }
    with pytest.raises(PgError):
        run(login(p, "tru"))
    hello.thread.join(5)
    assert hello.alpn == "postgresql"
    no_alpn = Hello(certs, direct=True, alpn=False)
    p["port"] = str(no_alpn.port)
    with pytest.raises(PgError) as e:
        run(login(p, "tru"))
    assert (
        "direct SSL connection was established without ALPN protocol negotiation extension" in e.value.message
    )


# --- cancel over TLS -------------------------------------------------------------------------------------------


def test_cancel_goes_over_tls_with_the_sessions_verification(upstream, certs, tmp_path):
    rec = Recorder(upstream.port, tmp_path / "firsts")
    params = base(upstream, certs, port=str(rec.port))
    policy = client_tls(params)

    async def scenario() -> str:
        conn = await connect_upstream(
            params, {"user": "tru", "database": "postgres"}, Credentials("tru"), policy
        )
        try:
            task = asyncio.ensure_future(conn.execute("SELECT pg_sleep(20)"))
            await asyncio.sleep(0.5)
            await send_cancel_upstream(conn, policy)
            try:
                await asyncio.wait_for(task, 10)
            except QueryError as e:
                return e.fields.sqlstate
            return "not cancelled"
        finally:
            conn.close()

    try:
        assert run(scenario()) == "57014"
        firsts = rec.firsts
    finally:
        rec.close()
    ssl_request = (8).to_bytes(4, "big") + (80877103).to_bytes(4, "big")
    assert len(firsts) == 2 and all(f == ssl_request for f in firsts), firsts
