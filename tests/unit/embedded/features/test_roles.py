"""Roles over SQL (CREATE/ALTER/DROP ROLE, GRANT/REVOKE), pg_roles & co. from the role store,
pg_hba_file_rules and pg_ident_file_mappings, through the session driver."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgtls.auth.passwords import password_type, verify_plain_password
from pgtls.auth.roles import RoleStore
from pgtls.backends.base import SessionInfo
from pgtls.backends.embedded import EmbeddedBackend, create_database
from tests.pgwire_util import FakeSettings, SessionDriver, SimpleRegistry, errors, tags

SECRET = "Tr0ub4dor&3-not-logged"


class Settings(FakeSettings):
    def __init__(self, **values: str) -> None:
        super().__init__()
        self.values.update({"password_encryption": "scram-sha-256", "scram_iterations": "4096", **values})


@pytest.fixture
def data(tmp_path: Path) -> Path:
    create_database(tmp_path, "postgres")
    RoleStore(tmp_path).create("postgres", superuser=True)  # the bootstrap superuser, oid 10
    return tmp_path


@pytest.fixture
def backend(data: Path):
    be = EmbeddedBackend(data, Settings())
    yield be
    be.close()


@pytest.fixture
def opened(backend):
    made: list[SessionDriver] = []

    def open_(user: str = "postgres", su: bool | None = None, pid: int = 1) -> SessionDriver:
        role = backend.roles.get(user)
        is_su = su if su is not None else bool(role and role.superuser)
        d = SessionDriver(backend.open_session(SessionInfo(pid, user, "postgres", None, None, is_superuser=is_su),
                                               SimpleRegistry()))  # fmt: skip
        made.append(d)
        return d

    yield open_
    for d in made:
        d.session.close()


def notices(msgs) -> list[tuple[str, str]]:
    return [(m["C"], m["M"]) for m in msgs if m.kind == "N"]


def err(d: SessionDriver, sql: str) -> tuple[str, str]:
    e = d.error(sql)
    return e["C"], e["M"]


def test_create_role_stores_a_scram_verifier_never_the_password(opened, data):
    su = opened()
    assert tags(su.query(f"CREATE ROLE app LOGIN PASSWORD '{SECRET}'")) == ["CREATE ROLE"]
    role = RoleStore(data).get("app")
    assert role is not None and role.login and not role.superuser
    assert password_type(role.password) == "scram-sha-256"
    assert verify_plain_password("app", SECRET, role.password)[0]
    stored = (data / "global" / "pg_authid.json").read_text()
    assert SECRET not in stored
    # pg_authid shows the verifier to superusers; pg_roles never shows it
    assert su.value("SELECT rolpassword FROM pg_authid WHERE rolname = 'app'").startswith(
        "SCRAM-SHA-256$4096:"
    )
    assert su.value("SELECT rolpassword FROM pg_roles WHERE rolname = 'app'") == "********"


def test_create_user_defaults_and_options(opened, data):
    su = opened()
    assert tags(su.query("CREATE USER u1")) == ["CREATE ROLE"]  # PostgreSQL's tag for CREATE USER
    assert tags(su.query("CREATE ROLE r1")) == ["CREATE ROLE"]
    su.query("CREATE GROUP g1")
    su.query("CREATE ROLE r2 WITH SUPERUSER CREATEDB CREATEROLE NOINHERIT LOGIN CONNECTION LIMIT 5 "
             "VALID UNTIL '2031-02-03 04:05:06+00' IN ROLE g1")  # fmt: skip
    got = su.rows(
        "SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, "
        "CAST(rolvaliduntil AS VARCHAR) FROM pg_roles WHERE rolname IN ('u1', 'r1', 'g1', 'r2') ORDER BY 1"
    )
    assert got == [
        ["g1", "f", "t", "f", "f", "f", None],
        ["r1", "f", "t", "f", "f", "f", None],
        ["r2", "t", "f", "t", "t", "t", "2031-02-03 04:05:06+00"],
        ["u1", "f", "t", "f", "f", "t", None],
    ]
    assert RoleStore(data).is_member("r2", "g1")
    su.query("CREATE ROLE r3 ENCRYPTED PASSWORD 'x' ROLE u1, r1")
    assert RoleStore(data).is_member("u1", "r3") and RoleStore(data).is_member("r1", "r3")
    # an already encrypted verifier is stored as given
    md5 = "md5" + "0" * 32
    su.query(f"CREATE ROLE r4 PASSWORD '{md5}'")
    assert RoleStore(data).get("r4").password == md5
    su.query("ALTER ROLE r4 PASSWORD NULL")
    assert RoleStore(data).get("r4").password is None
    msgs = su.query("ALTER ROLE r4 PASSWORD ''")
    assert notices(msgs) == [("00000", "empty string is not a valid password, clearing password")]


def test_password_encryption_md5_follows_the_session_setting(opened, data):
    su = opened()
    su.query("SET password_encryption = 'md5'")
    su.query("CREATE ROLE m LOGIN PASSWORD 'pw'")
    assert RoleStore(data).get("m").password.startswith("md5")
    msgs = su.query("ALTER ROLE m RENAME TO m2")
    assert tags(msgs) == ["ALTER ROLE"]
    assert notices(msgs) == [("00000", "MD5 password cleared because of role rename")]
    assert RoleStore(data).get("m2").password is None and RoleStore(data).get("m") is None


def test_errors_like_postgresql(opened):
    su = opened()
    su.query("CREATE ROLE a")
    assert err(su, "CREATE ROLE a") == ("42710", 'role "a" already exists')
    assert err(su, "ALTER ROLE nope LOGIN") == ("42704", 'role "nope" does not exist')
    assert err(su, "DROP ROLE nope") == ("42704", 'role "nope" does not exist')
    assert err(su, "GRANT nope TO a") == ("42704", 'role "nope" does not exist')
    assert err(su, "CREATE ROLE b IN ROLE nope") == ("42704", 'role "nope" does not exist')
    assert err(su, "CREATE ROLE pg_mine") == ("42939", 'role name "pg_mine" is reserved')
    assert err(su, "CREATE ROLE c LOGIN NOLOGIN") == ("42601", "conflicting or redundant options")
    assert err(su, "ALTER ROLE a RENAME TO postgres") == ("42710", 'role "postgres" already exists')
    assert err(su, "DROP ROLE postgres") == ("55006", "current user cannot be dropped")
    assert err(su, "ALTER ROLE postgres RENAME TO boss") == ("0A000", "session user cannot be renamed")
    assert err(su, "CREATE ROLE d UNENCRYPTED PASSWORD 'x'")[0] == "0A000"
    msgs = su.query("DROP ROLE IF EXISTS nope, a")
    assert tags(msgs) == ["DROP ROLE"] and notices(msgs) == [
        ("00000", 'role "nope" does not exist, skipping')
    ]
    su.query("BEGIN")
    assert err(su, "CREATE ROLE e") == ("25001", "CREATE ROLE cannot run inside a transaction block")
    su.query("ROLLBACK")


def test_syntax_errors_never_echo_the_password(opened):
    su = opened()
    for sql in (f"CREATE ROLE x PASSWORD '{SECRET}' '{SECRET}'", f"CREATE ROLE x PASSWORD '{SECRET}' BOGUS",
                f"ALTER ROLE postgres PASSWORD '{SECRET}' VALID '{SECRET}'", f"CREATE ROLE x PASWORD '{SECRET}'",
                f"ALTER USER postgres WITH PASSWORD '{SECRET}' LOGIN LOGIN",
                f"CREATE ROLE pg_x PASSWORD '{SECRET}'", f"ALTER ROLE nope PASSWORD '{SECRET}'"):  # fmt: skip
        msgs = su.query(sql)
        (e,) = errors(msgs)
        assert SECRET not in str(e), (sql, e)
        assert e["C"] in ("42601", "22007", "42939", "42704"), e
    e = su.error(f"CREATE ROLE x PASSWORD '{SECRET}' '{SECRET}'")
    assert e["M"] == "syntax error at or near a string constant"
    assert int(e["P"]) == len(f"CREATE ROLE x PASSWORD '{SECRET}' ") + 1  # PostgreSQL's position


def test_permissions(opened, data):
    su = opened()
    su.query("CREATE ROLE alice LOGIN PASSWORD 'a'")
    su.query("CREATE ROLE mgr LOGIN CREATEROLE")
    su.query("CREATE ROLE grp")
    alice = opened("alice", pid=2)
    assert err(alice, "CREATE ROLE x") == ("42501", "permission denied to create role")
    assert alice.error("CREATE ROLE x")["D"] == "Only roles with the CREATEROLE attribute may create roles."
    # a role may change its own password, and nothing else about itself
    before = RoleStore(data).get("alice").password
    assert tags(alice.query("ALTER ROLE alice PASSWORD 'new'")) == ["ALTER ROLE"]
    assert tags(alice.query("ALTER USER CURRENT_USER WITH PASSWORD 'newer'")) == ["ALTER ROLE"]
    assert RoleStore(data).get("alice").password != before
    assert err(alice, "ALTER ROLE alice CREATEDB") == ("42501", "permission denied to alter role")
    assert err(alice, "ALTER ROLE grp PASSWORD 'x'") == ("42501", "permission denied to alter role")
    assert err(alice, "ALTER ROLE postgres PASSWORD 'x'") == ("42501", "permission denied to alter role")
    assert err(alice, "DROP ROLE grp") == ("42501", "permission denied to drop role")
    assert err(alice, "GRANT grp TO alice") == ("42501", 'permission denied to grant role "grp"')
    # CREATEROLE: manage non-superusers, but no superuser powers
    mgr = opened("mgr", pid=3)
    assert tags(mgr.query("CREATE ROLE made_by_mgr")) == ["CREATE ROLE"]
    assert err(mgr, "CREATE ROLE s SUPERUSER") == ("42501", "permission denied to create role")
    assert err(mgr, "ALTER ROLE alice SUPERUSER") == ("42501", "permission denied to alter role")
    assert err(mgr, "ALTER ROLE postgres PASSWORD 'x'") == ("42501", "permission denied to alter role")
    assert err(mgr, "DROP ROLE postgres") == ("42501", "permission denied to drop role")
    assert tags(mgr.query("GRANT grp TO alice")) == ["GRANT ROLE"]
    assert tags(mgr.query("ALTER ROLE made_by_mgr RENAME TO renamed")) == ["ALTER ROLE"]
    assert tags(mgr.query("DROP ROLE renamed")) == ["DROP ROLE"]
    # superuser-only catalogs
    assert err(alice, "SELECT * FROM pg_authid") == ("42501", "permission denied for table pg_authid")
    assert err(alice, "SELECT * FROM pg_hba_file_rules") == (
        "42501",
        "permission denied for view pg_hba_file_rules",
    )
    assert err(alice, "SELECT * FROM pg_ident_file_mappings") == (
        "42501",
        "permission denied for view pg_ident_file_mappings",
    )
    # the role store decides, not the flag at login: a role made superuser now may read pg_authid
    su.query("ALTER ROLE alice SUPERUSER")
    assert alice.rows("SELECT count(*) FROM pg_authid WHERE rolname = 'alice'") == [["1"]]


def test_grant_revoke_and_pg_auth_members(opened, data):
    su = opened()
    su.query("CREATE ROLE admins")
    su.query("CREATE ROLE alice LOGIN")
    su.query("CREATE ROLE bob LOGIN")
    assert tags(su.query("GRANT admins TO alice, bob")) == ["GRANT ROLE"]
    assert RoleStore(data).is_member("bob", "admins")
    msgs = su.query("GRANT admins TO alice")
    assert notices(msgs) == [("00000", 'role "alice" has already been granted membership in role "admins" by role '
                                       '"postgres"')]  # fmt: skip
    assert err(su, "GRANT alice TO admins")[0] == "0LP01"  # circular
    rows = su.rows("""SELECT r.rolname, ARRAY(SELECT b.rolname FROM pg_catalog.pg_auth_members m
        JOIN pg_catalog.pg_roles b ON (m.roleid = b.oid) WHERE m.member = r.oid) AS memberof
        FROM pg_catalog.pg_roles r WHERE r.rolname !~ '^pg_' ORDER BY 1""")  # psql 15's \\du
    assert rows == [["admins", "{}"], ["alice", "{admins}"], ["bob", "{admins}"], ["postgres", "{}"]]
    assert tags(su.query("REVOKE admins FROM bob")) == ["REVOKE ROLE"]
    assert not RoleStore(data).is_member("bob", "admins")
    msgs = su.query("REVOKE admins FROM bob")
    assert [m["S"] for m in msgs if m.kind == "N"] == ["WARNING"]
    su.query("DROP ROLE admins")
    assert RoleStore(data).get("alice").member_of == ()


def test_current_user_and_pg_roles_from_the_store(opened):
    su = opened()
    su.query("CREATE ROLE alice LOGIN CREATEDB VALID UNTIL 'infinity'")
    alice = opened("alice", pid=2)
    assert alice.rows("SELECT current_user, session_user, user") == [["alice", "alice", "alice"]]
    assert su.rows("SELECT current_user, session_user") == [["postgres", "postgres"]]
    got = alice.rows("SELECT oid, rolname, rolsuper, rolcreatedb, rolcanlogin FROM pg_roles ORDER BY oid")
    assert got == [["10", "postgres", "t", "f", "t"], ["16384", "alice", "f", "t", "t"]]
    assert alice.rows("SELECT usename FROM pg_user ORDER BY 1") == [["alice"], ["postgres"]]
    assert alice.value("SELECT pg_get_userbyid(10)") == "postgres"


def test_pg_hba_file_rules_and_ident_mappings_are_read_fresh(opened, data):
    su = opened()
    (data / "pg_hba.conf").write_text("local all all trust\nhostssl all +admins 10.0.0.0/8 scram-sha-256\n")
    (data / "pg_ident.conf").write_text("# comment\nm1 /^(.*)@example$ \\1\n")
    rows = su.rows("SELECT * FROM pg_hba_file_rules ORDER BY line_number")
    hba = str((data / "pg_hba.conf").absolute())
    assert rows == [["1", hba, "1", "local", "{all}", "{all}", None, None, "trust", None, None],
                    ["2", hba, "2", "hostssl", "{all}", "{+admins}", "10.0.0.0", "255.0.0.0", "scram-sha-256", None,
                     None]]  # fmt: skip
    cols = [c["name"] for c in su.query("SELECT * FROM pg_hba_file_rules")[0]["columns"]]
    assert cols == ["rule_number", "file_name", "line_number", "type", "database", "user_name", "address", "netmask",
                    "auth_method", "options", "error"]  # fmt: skip
    (data / "pg_hba.conf").write_text("host all all 127.0.0.1/32 md5 bogus=1\nhost\n")  # edited, not reloaded
    rows = su.rows(
        "SELECT rule_number, line_number, error IS NOT NULL FROM pg_hba_file_rules ORDER BY line_number"
    )
    assert [r[1:] for r in rows] == [["1", "t"], ["2", "t"]]
    assert su.rows(
        "SELECT map_number, map_name, sys_name, pg_username, error FROM pg_ident_file_mappings"
    ) == [["1", "m1", "/^(.*)@example$", "\\1", None]]
    cols = [c["name"] for c in su.query("SELECT * FROM pg_ident_file_mappings")[0]["columns"]]
    assert cols == ["map_number", "file_name", "line_number", "map_name", "sys_name", "pg_username", "error"]


def test_hba_file_setting_is_honoured(data):
    other = data / "conf" / "my_hba.conf"
    other.parent.mkdir()
    other.write_text("local all all md5\n")
    be = EmbeddedBackend(data, Settings(hba_file=str(other)))
    try:
        d = SessionDriver(
            be.open_session(SessionInfo(1, "postgres", "postgres", None, None), SimpleRegistry())
        )
        assert d.rows("SELECT file_name, auth_method FROM pg_hba_file_rules") == [[str(other), "md5"]]
        d.session.close()
    finally:
        be.close()


def test_a_view_over_pg_authid_shows_no_verifier_to_a_non_superuser(opened):
    su = opened()
    su.query("CREATE ROLE alice LOGIN PASSWORD 'pw'")
    su.query("CREATE VIEW leak AS SELECT rolname, rolpassword FROM pg_authid")
    assert su.value("SELECT rolpassword FROM leak WHERE rolname = 'alice'").startswith("SCRAM-SHA-256$")
    alice = opened("alice", pid=2)
    got = alice.rows("SELECT l.rolname, l.rolpassword FROM leak l JOIN pg_roles r USING (rolname) ORDER BY 1")
    assert got == [["alice", None], ["postgres", None]]
