"""ClientAuthentication glue: rejects, clientcert pre-checks, method choice, cert name checks, logs."""

from __future__ import annotations

from pathlib import Path

import pytest
import scramp

from pgtls.auth.decide import AuthFlow, AuthSettings, TlsFacts, check_login
from pgtls.auth.exchange import Continue, Failure, Success
from pgtls.auth.passwords import md5_challenge_response
from pgtls.auth.roles import RoleStore
from pgtls.config.hba import ConnFacts, HbaLine, match, parse_hba_text
from pgtls.config.ident import parse_ident_text
from pgtls.protocol.messages import auth_ok

F = "/d/pg_hba.conf"
DN = "CN=ssltestuser,OU=Testing,O=PGDG"
CERT_TLS = TlsFacts(active=True, ca_loaded=True, peer_cert=True, peer_cn="ssltestuser", peer_dn=DN)


@pytest.fixture(scope="module")
def roles(tmp_path_factory: pytest.TempPathFactory) -> RoleStore:
    s = RoleStore(tmp_path_factory.mktemp("data"), scram_iterations=4096)
    s.create("ssltestuser", password="pass")
    s.create("anotheruser", password="pass")
    RoleStore(s.data_dir, password_encryption="md5").create("md5testuser", password="pass")
    s.create("nopw")
    s.create("expired", password="pass", valid_until="2001-01-01T00:00:00+00:00")
    return s


def line(text: str) -> HbaLine:
    return parse_hba_text(text + "\n", F).lines[0]


def conn(user: str = "ssltestuser", ssl: bool = True, local: bool = False, db: str = "certdb") -> ConnFacts:
    return ConnFacts(
        local=local, addr=None if local else "127.0.0.1", ssl=ssl, gss=False, user=user, database=db
    )


def fail(out: object) -> Failure:
    assert isinstance(out, Failure), out
    return out


def test_no_entry_and_reject(roles: RoleStore) -> None:
    f = fail(AuthFlow(None, conn(), CERT_TLS, roles=roles).start())
    assert (f.error.sqlstate, f.error.message) == (
        "28000",
        'no pg_hba.conf entry for host "127.0.0.1", user "ssltestuser", database "certdb", SSL encryption',
    )
    f = fail(AuthFlow(None, conn(ssl=False, local=True), TlsFacts(), roles=roles).start())
    assert (
        f.error.message
        == 'no pg_hba.conf entry for host "[local]", user "ssltestuser", database "certdb", no encryption'
    )
    repl = ConnFacts(
        local=False, addr="10.0.0.1", ssl=False, gss=False, user="u", database="x", replication=True
    )
    f = fail(AuthFlow(None, repl, TlsFacts(), roles=roles).start())
    assert (
        f.error.message
        == 'no pg_hba.conf entry for replication connection from host "10.0.0.1", user "u", no encryption'
    )
    f = fail(AuthFlow(line("host all all all reject"), conn(ssl=False), TlsFacts(), roles=roles).start())
    assert (
        f.error.message
        == 'pg_hba.conf rejects connection for host "127.0.0.1", user "ssltestuser", database "certdb", no encryption'
    )
    assert f.log[-1].level == "FATAL"


def test_clientcert_prechecks(roles: RoleStore) -> None:
    ln = line("hostssl all all all trust clientcert=verify-ca")
    f = fail(AuthFlow(ln, conn(), TlsFacts(active=True), roles=roles).start())
    assert (f.error.sqlstate, f.error.message) == (
        "F0000",
        "client certificates can only be checked if a root certificate store is available",
    )
    f = fail(AuthFlow(ln, conn(), TlsFacts(active=True, ca_loaded=True), roles=roles).start())
    assert (f.error.sqlstate, f.error.message) == ("28000", "connection requires a valid client certificate")
    ok = AuthFlow(ln, conn(user="anotheruser"), CERT_TLS, roles=roles).start()  # verify-ca: no name check
    assert isinstance(ok, Success) and ok.send == auth_ok()
    assert ok.log[-1].message == f'connection authenticated: user="anotheruser" method=trust ({F}:1)'


def test_cert_method(roles: RoleStore) -> None:
    ok = AuthFlow(line("hostssl all all all cert"), conn(), CERT_TLS, roles=roles).start()
    assert isinstance(ok, Success) and ok.authn_id == DN
    assert [x.message for x in ok.log] == [f'connection authenticated: identity="{DN}" method=cert ({F}:1)']
    f = fail(AuthFlow(line("hostssl all all all cert"), conn("anotheruser"), CERT_TLS, roles=roles).start())
    assert (f.error.sqlstate, f.error.message) == (
        "28000",
        'certificate authentication failed for user "anotheruser"',
    )
    msgs = [x.message for x in f.log]
    assert msgs[0].startswith("connection authenticated: identity=")  # logged before the mapping
    assert (
        msgs[1] == "provided user name (anotheruser) and authenticated user name (ssltestuser) do not match"
    )
    assert f.log_detail == f'Connection matched file "{F}" line 1: "hostssl all all all cert"'
    # clientname=DN with a map
    ident = parse_ident_text('dnmap "/^CN=([^,]*),OU=Testing,O=PGDG$" \\1\n')  # commas need quotes
    ok = AuthFlow(
        line("hostssl all all all cert clientname=DN map=dnmap"), conn(), CERT_TLS, roles=roles, ident=ident
    ).start()
    assert isinstance(ok, Success)
    f = fail(
        AuthFlow(
            line("hostssl all all all cert map=none"), conn(), CERT_TLS, roles=roles, ident=ident
        ).start()
    )
    assert 'no match in usermap "none" for user "ssltestuser" authenticated as "ssltestuser"' in [
        x.message for x in f.log
    ]
    f = fail(
        AuthFlow(
            line("hostssl all all all cert"), conn(), TlsFacts(True, True, True, None, DN), roles=roles
        ).start()
    )
    assert f.log[0].message == (
        'certificate authentication failed for user "ssltestuser": client certificate contains no user name'
    )


def test_verify_full_with_trust_and_scram(roles: RoleStore) -> None:
    f = fail(
        AuthFlow(
            line("hostssl all all all trust clientcert=verify-full"),
            conn("anotheruser"),
            CERT_TLS,
            roles=roles,
        ).start()
    )
    assert (f.error.sqlstate, f.error.message) == (
        "28000",
        '"trust" authentication failed for user "anotheruser"',
    )
    assert 'certificate validation (clientcert=verify-full) failed for user "anotheruser": CN mismatch' in [
        x.message for x in f.log
    ]
    f = fail(
        AuthFlow(
            line("hostssl all all all trust clientcert=verify-full clientname=DN"),
            conn(),
            CERT_TLS,
            roles=roles,
        ).start()
    )
    assert any(x.message.endswith(": DN mismatch") for x in f.log)
    # scram succeeds first, then the CN check fails with the method's message, after SASLFinal
    flow = AuthFlow(
        line("hostssl all all all scram-sha-256 clientcert=verify-full"),
        conn("anotheruser"),
        CERT_TLS,
        roles=roles,
    )
    out = scram_login(flow, "pass")
    f = fail(out)
    assert (f.error.sqlstate, f.error.message) == (
        "28P01",
        'password authentication failed for user "anotheruser"',
    )
    assert f.send.startswith(b"R") and f.send[5:9] == b"\x00\x00\x00\x0c"


def scram_login(flow: AuthFlow, password: str) -> object:
    out = flow.start()
    assert isinstance(out, Continue) and b"SCRAM-SHA-256" in out.send
    c = scramp.ScramClient(["SCRAM-SHA-256"], "x", password)
    first = c.get_client_first().encode()
    out = flow.step(b"SCRAM-SHA-256\0" + len(first).to_bytes(4, "big") + first)
    assert isinstance(out, Continue)
    c.set_server_first(out.send[9:].decode())
    return flow.step(c.get_client_final().encode())


def test_scram_flow_logs(roles: RoleStore) -> None:
    ln = line("host all all all scram-sha-256")
    ok = scram_login(AuthFlow(ln, conn(ssl=False), TlsFacts(), roles=roles), "pass")
    assert isinstance(ok, Success) and ok.send.endswith(auth_ok())
    assert (
        ok.log[-1].message == f'connection authenticated: identity="ssltestuser" method=scram-sha-256 ({F}:1)'
    )
    f = fail(scram_login(AuthFlow(ln, conn("ghost", ssl=False), TlsFacts(), roles=roles), "pass"))
    assert f.error.message == 'password authentication failed for user "ghost"'
    assert (
        f.log_detail
        == f'Role "ghost" does not exist.\nConnection matched file "{F}" line 1: "host all all all scram-sha-256"'
    )
    for user, detail in (
        ("nopw", 'User "nopw" has no password assigned.'),
        ("expired", 'User "expired" has an expired password.'),
    ):
        f = fail(scram_login(AuthFlow(ln, conn(user, ssl=False), TlsFacts(), roles=roles), "pass"))
        assert f.log_detail.startswith(detail)  # type: ignore[union-attr]
    # PLUS is offered on TLS when the caller has channel-binding data
    out = AuthFlow(ln, conn(), TlsFacts(active=True, channel_binding=b"h" * 32), roles=roles).start()
    assert isinstance(out, Continue) and b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0" in out.send


def test_md5_line_method_choice(roles: RoleStore) -> None:
    ln = line("host all all all md5")
    flow = AuthFlow(ln, conn("md5testuser", ssl=False), TlsFacts(), roles=roles)
    out = flow.start()
    assert isinstance(out, Continue) and out.send[5:9] == b"\x00\x00\x00\x05"
    salt = out.send[9:13]
    secret = roles.get("md5testuser").password  # type: ignore[union-attr]
    ok = flow.step(md5_challenge_response(secret, salt).encode() + b"\0")  # type: ignore[arg-type]
    assert isinstance(ok, Success) and ok.log[-1].message.endswith(
        f'identity="md5testuser" method=md5 ({F}:1)'
    )
    flow = AuthFlow(ln, conn("md5testuser", ssl=False), TlsFacts(), roles=roles)
    flow.start()
    f = fail(flow.step(b"md5" + b"0" * 32 + b"\0"))
    assert f.log_detail.startswith('Password does not match for user "md5testuser".')  # type: ignore[union-attr]
    # a SCRAM secret on an md5 line: SCRAM is used
    ok = scram_login(AuthFlow(ln, conn(ssl=False), TlsFacts(), roles=roles), "pass")
    assert isinstance(ok, Success)
    # unknown user: blends in with password_encryption
    out = AuthFlow(
        ln,
        conn("ghost", ssl=False),
        TlsFacts(),
        roles=roles,
        settings=AuthSettings(password_encryption="md5"),
    ).start()
    assert isinstance(out, Continue) and out.send[5:9] == b"\x00\x00\x00\x05"


def test_password_method(roles: RoleStore) -> None:
    ln = line("host all all all password")
    flow = AuthFlow(ln, conn(ssl=False), TlsFacts(), roles=roles)
    out = flow.start()
    assert isinstance(out, Continue) and out.send == b"R\x00\x00\x00\x08\x00\x00\x00\x03"
    assert flow.blocking
    assert isinstance(flow.step(b"pass\0"), Success)
    for body, kind, msg in (
        (b"\0", b"p", "empty password returned by client"),
        (b"pa\0ss\0", b"p", "invalid password packet size"),
        (b"pass", b"p", "invalid password packet size"),
        (b"pass\0", b"Q", "expected password response, got message type 81"),
    ):
        flow = AuthFlow(ln, conn(ssl=False), TlsFacts(), roles=roles)
        flow.start()
        assert fail(flow.step(body, kind)).error.message == msg
    flow = AuthFlow(ln, conn(ssl=False), TlsFacts(), roles=roles)
    flow.start()
    assert fail(flow.too_long()).silent


def test_check_login(roles: RoleStore) -> None:
    assert check_login(None, "x").message == 'role "x" does not exist'  # type: ignore[union-attr]
    roles.create("nologin", login=False)
    assert check_login(roles.get("nologin"), "nologin").message == 'role "nologin" is not permitted to log in'  # type: ignore[union-attr]
    assert check_login(roles.get("ssltestuser"), "ssltestuser") is None


def test_match_then_flow(roles: RoleStore, tmp_path: Path) -> None:
    rules = parse_hba_text("hostssl certdb all all cert\nhost all all all reject\n", F)
    c = conn()
    ln = match(rules, c, roles)
    assert ln is not None and isinstance(AuthFlow(ln, c, CERT_TLS, roles=roles).start(), Success)
