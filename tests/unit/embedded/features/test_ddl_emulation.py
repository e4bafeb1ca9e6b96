"""ddl.plan: ALTER TABLE forms DuckDB refuses, done by rebuilding the table in the caller's transaction, and
the text-only CREATE INDEX / CREATE TABLE rewrites.  Runs the planned statements on a plain DuckDB
connection, as the session does."""

from __future__ import annotations

import duckdb
import pytest

from pgtls.backends.embedded.features import ddl, foreignkeys
from pgtls.backends.embedded.rewrite.pipeline import rewrite
from pgtls.errors import PgError


@pytest.fixture
def con():
    c = duckdb.connect()
    c.execute("CREATE TABLE ct (id INTEGER PRIMARY KEY, name VARCHAR NOT NULL, app VARCHAR, model VARCHAR "
              "DEFAULT 'm', n INTEGER CHECK (n > 0))")  # fmt: skip
    c.execute("CREATE UNIQUE INDEX ct_uniq ON ct (app, model)")
    c.execute("CREATE INDEX ct_name ON ct (name)")
    c.execute("INSERT INTO ct VALUES (1, 'a', 'x', 'y', 1), (2, 'b', 'x', 'z', 2)")
    yield c
    c.close()


def run(c: duckdb.DuckDBPyConnection, sql: str) -> None:
    stmts = ddl.plan(c, rewrite(sql))
    for s in stmts if stmts is not None else [sql]:
        c.execute(s)


def shape(
    c: duckdb.DuckDBPyConnection,
) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]], list[str]]:
    cols = c.execute("SELECT column_name, data_type, is_nullable, column_default FROM duckdb_columns() "
                     "WHERE table_name = 'ct' ORDER BY column_index").fetchall()  # fmt: skip
    rows = c.execute("SELECT * FROM ct ORDER BY id").fetchall()
    idx = sorted(
        r[0] for r in c.execute("SELECT sql FROM duckdb_indexes() WHERE table_name = 'ct'").fetchall()
    )
    return cols, rows, idx


def test_duckdb_still_refuses_what_is_emulated(con):
    """If DuckDB learns these, the rebuilds can go."""
    with pytest.raises(duckdb.Error, match="an index depends on"):
        con.execute("ALTER TABLE ct DROP COLUMN name")


def test_drop_column_keeps_data_indexes_and_constraints(con):
    con.execute("BEGIN")
    run(con, "ALTER TABLE ct DROP COLUMN name CASCADE")
    cols, rows, idx = shape(con)
    assert [c[0] for c in cols] == ["id", "app", "model", "n"]
    assert rows == [(1, "x", "y", 1), (2, "x", "z", 2)]
    assert idx == ["CREATE UNIQUE INDEX ct_uniq ON ct(app, model);"]  # the index on "name" went with it
    con.execute("ROLLBACK")
    assert [c[0] for c in shape(con)[0]] == ["id", "name", "app", "model", "n"]  # ROLLBACK undoes it
    run(con, "ALTER TABLE ct DROP COLUMN name")
    with pytest.raises(duckdb.ConstraintException):
        con.execute("INSERT INTO ct VALUES (3, 'x', 'y', 1)")  # the unique index is enforced again
    with pytest.raises(duckdb.ConstraintException):
        con.execute("INSERT INTO ct VALUES (3, 'q', 'y', 0)")  # the CHECK survived the rebuild


def test_unique_index_of_a_table_rebuilt_in_the_transaction_is_checked_at_commit(con):
    """DuckDB checks a unique index created in the transaction that created its table only at COMMIT."""
    con.execute("BEGIN")
    run(con, "ALTER TABLE ct DROP COLUMN name")
    con.execute("INSERT INTO ct VALUES (3, 'x', 'y', 1)")
    with pytest.raises(duckdb.TransactionException, match="constraint"):
        con.execute("COMMIT")


def test_rename_type_not_null_and_defaults(con):
    con.execute("BEGIN")
    run(con, 'ALTER TABLE ct RENAME COLUMN "name" TO "label"')
    run(con, "ALTER TABLE ct ALTER COLUMN n TYPE bigint USING n * 10, ALTER COLUMN app SET NOT NULL")
    run(con, "ALTER TABLE ct ALTER COLUMN model DROP DEFAULT")
    run(con, "ALTER TABLE ct ADD COLUMN note text DEFAULT '' NOT NULL")
    con.execute("COMMIT")
    cols, rows, idx = shape(con)
    assert cols == [
        ("id", "INTEGER", False, None),
        ("label", "VARCHAR", False, None),
        ("app", "VARCHAR", False, None),
        ("model", "VARCHAR", True, None),
        ("n", "BIGINT", True, None),
        ("note", "VARCHAR", False, "''"),
    ]
    assert rows == [(1, "a", "x", "y", 10, ""), (2, "b", "x", "z", 20, "")]
    assert idx == ['CREATE INDEX ct_name ON ct("label");', "CREATE UNIQUE INDEX ct_uniq ON ct(app, model);"]


def test_same_duckdb_type_changes_nothing(con):
    assert ddl.plan(con, "ALTER TABLE ct ALTER COLUMN name TYPE varchar(150)") == [ddl.NOOP]


def test_unique_constraint_becomes_a_named_index_and_can_be_dropped(con):
    run(con, 'ALTER TABLE ct ADD CONSTRAINT "ct_name_uniq" UNIQUE ("name")')
    with pytest.raises(duckdb.ConstraintException):
        con.execute("INSERT INTO ct VALUES (3, 'a', 'q', 'q', 1)")
    run(con, "ALTER TABLE ct DROP CONSTRAINT ct_name_uniq")
    con.execute("INSERT INTO ct VALUES (3, 'a', 'q', 'q', 1)")
    with pytest.raises(PgError) as e:
        ddl.plan(con, "ALTER TABLE ct DROP CONSTRAINT nope")
    assert e.value.sqlstate == "42704"


def test_foreign_key_added_by_alter_is_checked_and_recorded(con):
    """ALTER TABLE ... ADD FOREIGN KEY becomes a mark in the child table's comment (foreignkeys.py), after
    PostgreSQL's checks of the names and of the rows already there."""
    con.execute("CREATE TABLE child (id INTEGER, ct_id INTEGER)")
    con.execute("COMMENT ON TABLE child IS 'mine'")
    run(con, 'ALTER TABLE "child" ADD CONSTRAINT "fk" FOREIGN KEY ("ct_id") REFERENCES "ct" ("id") '
             "DEFERRABLE INITIALLY DEFERRED")  # fmt: skip
    comment = con.execute("SELECT comment FROM duckdb_tables() WHERE table_name = 'child'").fetchone()[0]
    keys, user = foreignkeys.split_comment(comment)
    assert user == "mine"
    assert [(k.name, k.columns, k.ref_table, k.ref_columns, k.deferrable, k.deferred) for k in keys] == [
        ("fk", ("ct_id",), "ct", ("id",), True, True)
    ]
    for sql, state in [
        ("ALTER TABLE child ADD CONSTRAINT fk2 FOREIGN KEY (ct_id) REFERENCES missing (id)", "42P01"),
        ("ALTER TABLE child ADD CONSTRAINT fk3 FOREIGN KEY (nope) REFERENCES ct (id)", "42703"),
        ("ALTER TABLE child ADD CONSTRAINT fk4 FOREIGN KEY (ct_id) REFERENCES ct (name)", "42830"),
        ("ALTER TABLE child ADD CONSTRAINT fk FOREIGN KEY (ct_id) REFERENCES ct (id)", "42710"),
    ]:
        with pytest.raises(PgError) as e:
            ddl.plan(con, sql)
        assert e.value.sqlstate == state, sql
    con.execute("INSERT INTO child VALUES (1, 77)")
    with pytest.raises(PgError) as e:
        ddl.plan(con, "ALTER TABLE child ADD CONSTRAINT fk5 FOREIGN KEY (ct_id) REFERENCES ct (id)")
    assert (e.value.sqlstate, e.value.detail) == ("23503", 'Key (ct_id)=(77) is not present in table "ct".')


def test_missing_column_errors_are_postgres_ones(con):
    with pytest.raises(PgError) as e:
        ddl.plan(con, "ALTER TABLE ct DROP COLUMN nope")
    assert (e.value.sqlstate, e.value.message) == ("42703", 'column "nope" of relation "ct" does not exist')
    assert ddl.plan(con, "ALTER TABLE ct DROP COLUMN IF EXISTS nope") == [ddl.NOOP]
    assert ddl.plan(con, "ALTER TABLE IF EXISTS nope DROP COLUMN x") == [ddl.NOOP]


def test_table_referenced_by_a_duckdb_foreign_key_is_not_rebuilt(con):
    con.execute("CREATE TABLE p (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER)")
    con.execute("CREATE INDEX p_b ON p (b)")
    con.execute("CREATE TABLE c (id INTEGER REFERENCES p (id))")
    with pytest.raises(PgError) as e:
        ddl.plan(con, "ALTER TABLE p DROP COLUMN a")
    assert e.value.sqlstate == "0A000"


def test_text_rewrites():
    assert (
        rewrite('CREATE INDEX "i" ON "t" ("name" varchar_pattern_ops)') == 'CREATE INDEX "i" ON "t" ("name" )'
    )
    assert rewrite("CREATE INDEX i ON t USING btree (a)") == "CREATE INDEX i ON t  (a)"
    assert rewrite("CREATE TABLE q (a int REFERENCES p (id) DEFERRABLE INITIALLY DEFERRED NOT NULL)") == (
        "CREATE TABLE q (a int  NOT NULL)"
    )
    assert rewrite("CREATE TABLE q (a int REFERENCES p (id) ON DELETE CASCADE)") == "CREATE TABLE q (a int )"
    assert rewrite("CREATE TABLE q (a int REFERENCES p (id) ON DELETE RESTRICT NOT DEFERRABLE)") == (
        "CREATE TABLE q (a int REFERENCES p (id) ON DELETE RESTRICT )"
    )
    assert rewrite("SELECT * FROM unnest(ARRAY[1,2], ARRAY['a']) AS u(n, s)") == (
        "SELECT * FROM (SELECT unnest(ARRAY[1,2]), unnest(ARRAY['a'])) AS u(n, s)"
    )
    con = duckdb.connect()
    assert con.execute(rewrite("SELECT * FROM unnest(ARRAY[1,2], ARRAY['a']) AS u(n, s)")).fetchall() == [
        (1, "a"),
        (2, None),
    ]


def test_alter_actions_split_outside_brackets(con):
    """An ARRAY[...] default holds commas that do not separate ALTER TABLE actions (DuckDB takes one action
    per statement, so the plan must see two here)."""
    stmts = ddl.plan(
        con, "ALTER TABLE ct ADD COLUMN x INTEGER[] DEFAULT ARRAY[1, 2], ADD COLUMN y INTEGER DEFAULT 3"
    )
    assert stmts is not None
    for sql in stmts:
        con.execute(sql)
    assert con.execute("SELECT x, y FROM ct WHERE id = 1").fetchone() == ([1, 2], 3)
