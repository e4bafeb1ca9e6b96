"""Differential: pg_hba_file_rules / pg_ident_file_mappings of a real PostgreSQL 15 vs pgtls.

The view re-reads the files on every query, so the (valid) running configuration is
left alone and the files are overwritten between queries.  Only syntax both PG15 and
pgtls share is compared (no regexes in pg_hba, no include directives: PG16+).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from pgtls.config.hba import hba_file_rules
from pgtls.config.ident import ident_file_mappings
from tests import prereq
from tests.pgserver import RealPostgres, have_postgres

pytestmark = [
    pytest.mark.pg,
    pytest.mark.skipif(not have_postgres() and not prereq.required(), reason="PostgreSQL 15 not installed"),
]

psycopg = prereq.importorskip("psycopg")


@pytest.fixture(scope="module")
def pg() -> Iterator[RealPostgres]:
    with RealPostgres() as server:
        yield server


def _connect(pg: RealPostgres, **kw: object) -> psycopg.Connection:  # type: ignore[type-arg]
    # RealPostgres.start() returns once the port accepts; recovery may still be running.
    deadline = time.monotonic() + 30
    while True:
        try:
            return psycopg.connect(
                host=str(pg.sockdir), port=pg.port, user="postgres", dbname="postgres", **kw
            )
        except psycopg.OperationalError as e:
            if "starting up" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _query(pg: RealPostgres, sql: str) -> list[tuple[object, ...]]:
    with _connect(pg) as conn:
        return [tuple(r) for r in conn.execute(sql).fetchall()]


HBA_CASES = [
    "local all all trust",
    'local "all",sameuser,samerole "+g",+h,bob trust',
    "host db u 192.168.1.5/24 scram-sha-256",
    "host db u 10.1.2.3 255.255.0.0 md5",
    "host db u fe80::1/64 password",
    "host db u .example.com reject",
    "host db u some.host.name trust",
    "host db u samehost trust",
    "hostnossl db u all trust",
    "hostssl all all samenet cert map=m clientname=DN",
    "hostssl all all all md5 clientcert=verify-ca",
    "hostssl all all all trust clientcert=verify-full",
    "foo all all trust",
    "local",
    "local all",
    "host all all",
    "host all all 1.2.3.4",
    "host all all 1.2.3.4 255.0.0.0,1 trust",
    "host all all 1.2.3.4 zzz trust",
    "host all all 1.2.3.4 ::1 trust",
    "host all all 1.2.3.4/33 trust",
    "host all all ::1/129 trust",
    "host all all 1.2.3.4/x trust",
    "host all all foo.example/24 trust",
    "host all all all",
    "local all all trust,md5",
    "local all all foo",
    "local all all cert",
    "host all all all cert",
    "host all all all peer",
    "host all all all trust foo",
    "host all all all trust foo=1",
    "host all all all trust map=x",
    "host all all all trust ldapserver=x",
    "host all all all trust clientcert=verify-ca",
    "hostnossl all all all trust clientname=CN",
    "hostssl all all all cert clientname=cn",
    "local,host all all trust",
    "host all all 1.2.3.4,1.2.3.5/32 trust",
    'local "a b","c""d" "x,y" trust  # comment',
    "host all all 127.1 255.255.255.255 trust",
]


def test_pg_hba_file_rules_match_postgres(pg: RealPostgres) -> None:
    text = "".join(line + "\n" for line in HBA_CASES)
    original = (pg.datadir / "pg_hba.conf").read_text()
    try:
        pg.write("pg_hba.conf", text)
        theirs = _query(
            pg,
            "SELECT line_number, type, database, user_name, address, netmask, auth_method, "
            "options, error FROM pg_hba_file_rules ORDER BY line_number",
        )
    finally:
        pg.write("pg_hba.conf", original)
    pg.write("pgtls_hba.conf", text)
    # The test cluster runs with ssl = off, so hostssl lines carry the warning there too.
    ours = [r[2:] for r in hba_file_rules(pg.datadir / "pgtls_hba.conf", ssl_enabled=False)]
    assert len(ours) == len(theirs)
    diffs = [(case, a, b) for case, a, b in zip(HBA_CASES, ours, theirs, strict=True) if a != b]
    # PostgreSQL forgets to set err_msg for a bad clientname value, so its row keeps the
    # earlier hostssl warning; pgtls reports the real problem.
    assert [d[0] for d in diffs] == ["hostssl all all all cert clientname=cn"]
    diffs = diffs[1:]
    assert not diffs


IDENT_CASES = [
    "m1 alice bob",
    "m2 /^(.*)@example\\.com$ \\1",
    'm3 "quoted user" +group',
    "m4 only_two",
    "m5 a,b c",
    "m6 x y,z",
    "m7",
]


def test_pg_ident_file_mappings_match_postgres(pg: RealPostgres) -> None:
    text = "".join(line + "\n" for line in IDENT_CASES)
    original = (pg.datadir / "pg_ident.conf").read_text()
    try:
        pg.write("pg_ident.conf", text)
        theirs = _query(
            pg,
            "SELECT line_number, map_name, sys_name, pg_username, error "
            "FROM pg_ident_file_mappings ORDER BY line_number",
        )
    finally:
        pg.write("pg_ident.conf", original)
    pg.write("pgtls_ident.conf", text)
    ours = [r[2:] for r in ident_file_mappings(pg.datadir / "pgtls_ident.conf")]
    assert ours == theirs


def test_scram_verifier_from_postgres_verifies(pg: RealPostgres) -> None:
    from pgtls.auth.passwords import parse_scram_secret, verify_plain_password

    with _connect(pg, autocommit=True) as conn:
        conn.execute("SET password_encryption = 'scram-sha-256'")
        conn.execute("DROP ROLE IF EXISTS x")
        conn.execute("CREATE ROLE x PASSWORD 'pass'")
        conn.execute("SET password_encryption = 'md5'")
        conn.execute("DROP ROLE IF EXISTS y")
        conn.execute("CREATE ROLE y PASSWORD 'pass'")
        rows = dict(
            conn.execute("SELECT rolname, rolpassword FROM pg_authid WHERE rolname IN ('x','y')").fetchall()
        )
    scram, md5 = rows["x"], rows["y"]
    assert parse_scram_secret(scram) is not None
    assert verify_plain_password("x", "pass", scram)[0]
    assert not verify_plain_password("x", "wrong", scram)[0]
    assert verify_plain_password("y", "pass", md5)[0]
    from pgtls.auth.passwords import encrypt_password

    assert encrypt_password("pass", "y", "md5") == md5
    assert encrypt_password(scram, "x", "scram-sha-256") == scram
