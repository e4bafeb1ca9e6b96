"""Foreign keys that pgtls keeps itself (foreignkeys.py: DEFERRABLE ones, those added by ALTER TABLE, those
with ON DELETE / ON UPDATE actions) against a real PostgreSQL 15.

Each script runs statement by statement on a fresh database of both servers; every step must give the same
outcome: command tag and rows, or SQLSTATE, message, detail and hint; the notices; and the transaction
status after it.  Then COPY FROM into a child table, and what pgtls refuses (ON UPDATE CASCADE).
"""

from __future__ import annotations

import psycopg
import pytest

from tests.pgserver import RealPostgres
from tests.pgtlsserver import PgtlsServer
from tests.pgwire_util import fresh_database

pytestmark = pytest.mark.pg

SHOP = [
    "CREATE TABLE cust (id int PRIMARY KEY, name text UNIQUE)",
    "CREATE TABLE ord (id int PRIMARY KEY, cust_id int, n int)",
    "INSERT INTO cust VALUES (1, 'a'), (2, 'b')",
]

SCRIPTS: dict[str, list[str]] = {
    "deferred_added_by_alter": [  # what Django does
        *SHOP,
        "ALTER TABLE ord ADD CONSTRAINT ord_cust_fk FOREIGN KEY (cust_id) REFERENCES cust (id) "
        "DEFERRABLE INITIALLY DEFERRED",
        "INSERT INTO ord VALUES (1, 1, 10)",
        "INSERT INTO ord VALUES (2, 99, 10)",  # fails at the implicit commit
        "INSERT INTO ord VALUES (2, 99, 10); SELECT 1",
        "BEGIN",
        "INSERT INTO ord VALUES (3, 98, 1)",
        "SELECT count(*) FROM ord",  # deferred: not yet
        "COMMIT",  # 23503, rolled back
        "BEGIN",
        "INSERT INTO ord VALUES (4, 3, 1)",
        "INSERT INTO cust VALUES (3, 'c')",  # the parent comes later in the transaction
        "COMMIT",
        "DELETE FROM cust WHERE id = 1",  # still referenced
        "BEGIN",
        "DELETE FROM ord WHERE cust_id = 1",
        "DELETE FROM cust WHERE id = 1",  # children first, as Django's delete() does
        "COMMIT",
        "UPDATE ord SET cust_id = NULL WHERE id = 4",  # NULL keys are not checked
        "UPDATE ord SET cust_id = 5 WHERE id = 4",
        "SELECT id, cust_id FROM ord ORDER BY id",
    ],
    "set_constraints": [
        *SHOP,
        "ALTER TABLE ord ADD CONSTRAINT ord_cust_fk FOREIGN KEY (cust_id) REFERENCES cust (id) "
        "DEFERRABLE INITIALLY DEFERRED",
        "BEGIN",
        "SET CONSTRAINTS ALL IMMEDIATE",
        "INSERT INTO ord VALUES (5, 50, 1)",  # checked at once now
        "ROLLBACK",
        "BEGIN",
        "INSERT INTO ord VALUES (6, 60, 1)",
        "SET CONSTRAINTS ord_cust_fk IMMEDIATE",  # checks what was deferred
        "ROLLBACK",
        "BEGIN",
        "INSERT INTO ord VALUES (7, 70, 1)",
        "UPDATE ord SET cust_id = 2 WHERE id = 7",
        "SET CONSTRAINTS ALL IMMEDIATE",  # fixed in time: fine
        "SET CONSTRAINTS nosuch DEFERRED",
        "ROLLBACK",
        "BEGIN",
        "SET CONSTRAINTS cust_pkey DEFERRED",
        "ROLLBACK",
        "SELECT count(*) FROM ord",
    ],
    "immediate_added_by_alter": [
        *SHOP,
        "ALTER TABLE ord ADD FOREIGN KEY (cust_id) REFERENCES cust",
        "INSERT INTO ord VALUES (1, 9, 1)",
        "BEGIN",
        "INSERT INTO ord VALUES (1, 1, 1)",
        "INSERT INTO ord VALUES (2, 9, 1)",  # fails at once: the block is aborted
        "SELECT 1",
        "ROLLBACK",
        "BEGIN",
        "SAVEPOINT s",
        "INSERT INTO ord VALUES (3, 9, 1)",
        "ROLLBACK TO SAVEPOINT s",
        "INSERT INTO ord VALUES (3, 2, 1)",
        "COMMIT",
        "DELETE FROM cust WHERE id = 2",
        "UPDATE cust SET id = 20 WHERE id = 2",
        "UPDATE cust SET id = 10 WHERE id = 1",  # not referenced: fine
        "WITH gone AS (DELETE FROM cust WHERE id = 2 RETURNING id) SELECT * FROM gone",
        "SELECT id, cust_id FROM ord ORDER BY id",
    ],
    "referential_actions": [
        "CREATE TABLE p (id int PRIMARY KEY)",
        "CREATE TABLE c (id int PRIMARY KEY, p_id int REFERENCES p ON DELETE CASCADE)",
        "CREATE TABLE g (id int PRIMARY KEY, c_id int REFERENCES c (id) ON DELETE CASCADE)",
        "CREATE TABLE n (id int, p_id int REFERENCES p (id) ON DELETE SET NULL ON UPDATE SET NULL)",
        "CREATE TABLE d (id int, p_id int DEFAULT 0 REFERENCES p (id) ON DELETE SET DEFAULT)",
        "CREATE TABLE r (id int, p_id int, CONSTRAINT r_fk FOREIGN KEY (p_id) REFERENCES p (id) ON DELETE RESTRICT "
        "DEFERRABLE INITIALLY DEFERRED)",
        "INSERT INTO p VALUES (0), (1), (2), (3), (4)",
        "INSERT INTO c VALUES (10, 1), (11, 1), (12, 2)",
        "INSERT INTO g VALUES (100, 10), (101, 12)",
        "INSERT INTO n VALUES (1, 1), (2, 2)",
        "INSERT INTO d VALUES (1, 1), (2, 3)",
        "INSERT INTO r VALUES (1, 4)",
        "INSERT INTO c VALUES (13, 7)",
        "DELETE FROM p WHERE id = 1",  # c 10, 11 and g 100 go; n 1 gets NULL; d 1 gets 0
        "SELECT id, p_id FROM c ORDER BY id",
        "SELECT id, c_id FROM g ORDER BY id",
        "SELECT id, p_id FROM n ORDER BY id",
        "SELECT id, p_id FROM d ORDER BY id",
        "UPDATE p SET id = 22 WHERE id = 2",  # c 12 refers to 2 with ON UPDATE NO ACTION
        "DELETE FROM p WHERE id = 4",  # RESTRICT is checked at once even when deferrable
        "BEGIN",
        "DELETE FROM p WHERE id = 0",  # d 1 refers to 0 with SET DEFAULT 0: the default is gone too
        "ROLLBACK",
        "DELETE FROM c",
        "SELECT count(*) FROM g",
        "UPDATE p SET id = 33 WHERE id = 3",  # d 2 refers to 3: ON UPDATE NO ACTION
        "DELETE FROM d WHERE p_id = 3",
        "UPDATE p SET id = 33 WHERE id = 3",
        "SELECT id FROM p ORDER BY id",
    ],
    "composite_and_nulls": [
        "CREATE TABLE pk2 (a int, b text, PRIMARY KEY (a, b))",
        "CREATE TABLE ck2 (x int, y text, FOREIGN KEY (x, y) REFERENCES pk2 (a, b) DEFERRABLE)",
        "INSERT INTO pk2 VALUES (1, 'one')",
        "INSERT INTO ck2 VALUES (1, 'one'), (NULL, 'zzz'), (5, NULL)",  # MATCH SIMPLE: a NULL part is fine
        "INSERT INTO ck2 VALUES (1, 'two')",
        "SELECT count(*) FROM ck2",
    ],
    "adding_and_dropping": [
        *SHOP,
        "INSERT INTO ord VALUES (1, 1, 1), (2, 7, 1)",
        "ALTER TABLE ord ADD CONSTRAINT ord_cust_fk FOREIGN KEY (cust_id) REFERENCES cust (id)",  # 7 is an orphan
        "ALTER TABLE ord ADD CONSTRAINT ord_cust_fk FOREIGN KEY (cust_id) REFERENCES cust (id) NOT VALID",
        "ALTER TABLE ord ADD CONSTRAINT ord_cust_fk FOREIGN KEY (cust_id) REFERENCES cust (id)",  # exists
        "INSERT INTO ord VALUES (3, 8, 1)",
        "ALTER TABLE ord ADD FOREIGN KEY (n) REFERENCES cust (name)",  # int vs text
        "ALTER TABLE ord ADD FOREIGN KEY (n) REFERENCES ord (n)",  # no unique constraint
        "ALTER TABLE ord ADD FOREIGN KEY (n) REFERENCES nosuch (id)",
        "ALTER TABLE ord ADD FOREIGN KEY (n) REFERENCES cust (nosuch)",
        "ALTER TABLE ord ADD FOREIGN KEY (nosuch) REFERENCES cust (id)",
        "ALTER TABLE ord ADD FOREIGN KEY (n, id) REFERENCES cust (id)",
        "CREATE TABLE nopk (v int)",
        "ALTER TABLE ord ADD FOREIGN KEY (n) REFERENCES nopk",
        "ALTER TABLE ord VALIDATE CONSTRAINT ord_cust_fk",  # 7 is still there
        "DELETE FROM ord WHERE id = 2",
        "ALTER TABLE ord VALIDATE CONSTRAINT ord_cust_fk",
        "ALTER TABLE ord ADD COLUMN c2 int REFERENCES cust (id) DEFERRABLE",
        "INSERT INTO ord VALUES (4, 1, 1, 9)",
        "ALTER TABLE ord DROP COLUMN c2",  # its foreign key goes with it
        "INSERT INTO ord VALUES (4, 1, 1)",
        "COMMENT ON TABLE ord IS 'orders'",
        "INSERT INTO ord VALUES (5, 9, 1)",  # still enforced
        "ALTER TABLE cust RENAME COLUMN id TO cid",
        "ALTER TABLE cust RENAME TO customers",
        "INSERT INTO ord VALUES (5, 9, 1)",
        "ALTER TABLE ord RENAME COLUMN cust_id TO customer",
        "INSERT INTO ord VALUES (5, 9, 1)",
        "ALTER TABLE customers DROP COLUMN cid",
        "DROP TABLE customers",
        "TRUNCATE customers",
        "ALTER TABLE ord DROP CONSTRAINT ord_cust_fk",
        "ALTER TABLE ord DROP CONSTRAINT ord_cust_fk",
        "ALTER TABLE ord DROP CONSTRAINT IF EXISTS ord_cust_fk",
        "INSERT INTO ord VALUES (5, 9, 1)",
        "SELECT id, customer FROM ord ORDER BY id",
    ],
    "drop_and_truncate_cascade": [
        "CREATE TABLE p (id int PRIMARY KEY)",
        "CREATE TABLE c (id int, p_id int REFERENCES p DEFERRABLE)",
        "CREATE TABLE c2 (id int, p_id int)",
        "ALTER TABLE c2 ADD CONSTRAINT c2_p FOREIGN KEY (p_id) REFERENCES p",
        "INSERT INTO p VALUES (1)",
        "INSERT INTO c VALUES (1, 1)",
        "INSERT INTO c2 VALUES (1, 1)",
        "TRUNCATE p",
        "TRUNCATE p, c",
        "TRUNCATE p CASCADE",
        "SELECT (SELECT count(*) FROM c) + (SELECT count(*) FROM c2)",
        "DROP TABLE c2 CASCADE",
        "DROP TABLE p",
        "DROP TABLE p CASCADE",
        "INSERT INTO c VALUES (2, 42)",
        "DROP TABLE c",
    ],
    "self_reference": [
        "CREATE TABLE emp (id int PRIMARY KEY, boss int REFERENCES emp (id) ON DELETE CASCADE)",
        "INSERT INTO emp VALUES (1, NULL), (2, 1), (3, 2)",
        "INSERT INTO emp VALUES (4, 9)",
        "DELETE FROM emp WHERE id = 1",
        "SELECT count(*) FROM emp",
    ],
    "returning_and_multi_statement": [
        *SHOP,
        "ALTER TABLE ord ADD FOREIGN KEY (cust_id) REFERENCES cust DEFERRABLE INITIALLY DEFERRED",
        "INSERT INTO ord VALUES (1, 1, 1) RETURNING id, cust_id",
        "INSERT INTO ord VALUES (2, 9, 1) RETURNING id",
        "INSERT INTO ord VALUES (2, 9, 1); INSERT INTO cust VALUES (9, 'z')",
        "DELETE FROM cust WHERE id = 9 RETURNING name",
        "SELECT id, cust_id FROM ord ORDER BY id",
    ],
}


def outcome(conn: psycopg.Connection, sql: str, notices: list[tuple[str, ...]]) -> tuple[object, ...]:
    notices.clear()
    res = conn.pgconn.exec_(sql.encode())
    status = psycopg.pq.TransactionStatus(conn.pgconn.transaction_status).name
    field = psycopg.pq.DiagnosticField

    def get(f: psycopg.pq.DiagnosticField) -> str | None:
        v = res.error_field(f)
        return v.decode() if v else None

    state = get(field.SQLSTATE)
    if state:
        return ("error", state, get(field.MESSAGE_PRIMARY), get(field.MESSAGE_DETAIL), get(field.MESSAGE_HINT),
                list(notices), status)  # fmt: skip
    values = [[None if res.get_value(r, c) is None else res.get_value(r, c).decode() for c in range(res.nfields)]
              for r in range(res.ntuples)]  # fmt: skip
    return ("ok", (res.command_status or b"").decode(), values, list(notices), status)


def _run(port: int, name: str, script: list[str]) -> list[tuple[object, ...]]:
    notices: list[tuple[str, ...]] = []
    with psycopg.connect(fresh_database(port, name), autocommit=True) as conn:
        conn.add_notice_handler(lambda d: notices.append((d.sqlstate or "", d.message_primary or "",
                                                          d.message_detail or "")))  # fmt: skip
        return [outcome(conn, sql, notices) for sql in script]


@pytest.fixture(scope="module")
def servers(pg_and_pgtls: tuple[RealPostgres, PgtlsServer]) -> tuple[RealPostgres, PgtlsServer]:
    return pg_and_pgtls


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_foreign_key_script_matches_postgres(servers, name):
    pg, ours = servers
    script = SCRIPTS[name]
    expected = _run(pg.port, f"fk_{name}", script)
    got = _run(ours.port, f"fk_{name}", script)
    for k, (sql, want, have) in enumerate(zip(script, expected, got, strict=True)):
        assert have == want, f"step {k} {sql!r}: PostgreSQL {want}, pgtls {have}"


def test_copy_into_a_child_table_is_checked(servers):
    def run(port: int) -> list[object]:
        out: list[object] = []
        with psycopg.connect(fresh_database(port, "fk_copy"), autocommit=True) as conn:
            for sql in SHOP:
                conn.execute(sql)
            conn.execute(
                "ALTER TABLE ord ADD FOREIGN KEY (cust_id) REFERENCES cust DEFERRABLE INITIALLY DEFERRED"
            )
            for rows in (["1\t1\t1", "2\t2\t2"], ["3\t1\t1", "4\t77\t1"]):
                try:
                    with conn.cursor().copy("COPY ord FROM STDIN") as cp:
                        cp.write("\n".join(rows) + "\n")
                    out.append("ok")
                except psycopg.Error as e:
                    out.append((e.sqlstate, e.diag.message_primary, e.diag.message_detail))
            with conn.transaction():
                with conn.cursor().copy("COPY ord FROM STDIN") as cp:
                    cp.write("5\t66\t1\n")
                conn.execute("INSERT INTO cust VALUES (66, 'late')")
            out.append(conn.execute("SELECT count(*) FROM ord").fetchone())
        return out

    pg, ours = servers
    want = run(pg.port)
    assert want[1][0] == "23503"
    assert run(ours.port) == want


def test_on_update_cascade_is_refused(servers):
    """The one referential action pgtls cannot follow: a clear 0A000 instead of a key that silently stays."""
    _, ours = servers
    with psycopg.connect(fresh_database(ours.port, "fk_upd"), autocommit=True) as conn:
        conn.execute("CREATE TABLE p (id int PRIMARY KEY)")
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="ON UPDATE CASCADE"):
            conn.execute("CREATE TABLE c (p_id int REFERENCES p ON UPDATE CASCADE)")
        conn.execute("CREATE TABLE c (p_id int)")
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="ON UPDATE CASCADE"):
            conn.execute("ALTER TABLE c ADD FOREIGN KEY (p_id) REFERENCES p ON UPDATE CASCADE")
