"""Constraints and indexes in the catalog (catalog/constraints.py) against PostgreSQL 15: pg_constraint, pg_index,
the index rows of pg_class, pg_indexes, pg_get_constraintdef, pg_get_indexdef, obj_description, psql's
``\\d TABLE`` and Django's introspection (get_constraints, get_relations).

The schema avoids what DuckDB does not keep (constraint names given with CONSTRAINT, DESC keys, the casts
PostgreSQL prints in expressions, varchar lengths): those differ, as docs/embedded.md says.  Foreign keys
DuckDB cannot hold (DEFERRABLE, ON DELETE CASCADE/SET NULL, added by ALTER TABLE) are real ones on
PostgreSQL and a ``pgtls:fk`` mark in the child table's comment on pgtls, which is what pgtls keeps for them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.types.string import TextLoader

from tests import prereq
from tests.conftest import run_psql
from tests.constraint_schema import MARKED_FKS, PG_FKS, SCHEMA, TABLES, USER_COMMENT, fk_mark
from tests.pgserver import RealPostgres
from tests.pgtlsserver import PgtlsServer
from tests.pgwire_util import error_outcome


def dsn(server: RealPostgres | PgtlsServer) -> str:
    return f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres"


def quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def setup_both(pg: RealPostgres, ours: PgtlsServer) -> None:
    with psycopg.connect(dsn(pg), autocommit=True) as c:
        for sql in SCHEMA + PG_FKS:
            c.execute(sql)
        c.execute(f"COMMENT ON TABLE r_marked IS {quote(USER_COMMENT)}")
    with psycopg.connect(dsn(ours), autocommit=True) as c:
        for sql in SCHEMA:
            c.execute(sql)
        c.execute(f"COMMENT ON TABLE r_marked IS {quote(fk_mark(MARKED_FKS, USER_COMMENT))}")


@pytest.fixture(scope="module")
def servers(pg_and_pgtls: tuple[RealPostgres, PgtlsServer]) -> Iterator[tuple[RealPostgres, PgtlsServer]]:
    pg, ours = pg_and_pgtls
    setup_both(pg, ours)
    yield pg, ours


# Every value as the text the server sent (PostgreSQL's bool, "char", int2vector, arrays, regclass, ...).
TEXT_OIDS = (16, 18, 19, 20, 21, 22, 23, 25, 26, 30, 1005, 1007, 1009, 1016, 1028, 2205)


def _rows(dsn: str, sql: str) -> object:
    with psycopg.connect(dsn, autocommit=True) as c:
        for oid in TEXT_OIDS:
            c.adapters.register_loader(oid, TextLoader)
        try:
            cur = c.execute(sql)
        except psycopg.Error as e:
            return error_outcome(e.sqlstate or "", e.diag.message_primary or "")
        return [d.name for d in cur.description or []], cur.fetchall()


_IN = "(" + ", ".join(quote(t) for t in TABLES) + ")"
_RELS = f"(SELECT oid FROM pg_class WHERE relname IN {_IN})"
QUERIES = [
    # the constraints, their columns and options
    "SELECT conname, contype, condeferrable, condeferred, convalidated, confupdtype, confdeltype, confmatchtype, "
    "array_to_string(conkey, ',') AS conkey, array_to_string(confkey, ',') AS confkey, conislocal, coninhcount, "
    "connoinherit, conrelid::regclass AS tbl, CASE WHEN confrelid <> 0 THEN confrelid::regclass END AS ref, "
    f"conindid <> 0 AS has_index FROM pg_constraint WHERE conrelid IN {_RELS} ORDER BY conname",
    "SELECT conname, pg_get_constraintdef(oid), pg_get_constraintdef(oid, true) "
    f"FROM pg_constraint WHERE conrelid IN {_RELS} ORDER BY conname",
    # a constraint's index is the index of the same name; a foreign key's is its parent's key
    "SELECT con.conname, ic.relname FROM pg_constraint con JOIN pg_class ic ON ic.oid = con.conindid "
    f"WHERE con.conrelid IN {_RELS} ORDER BY 1",
    # the indexes, with their constraints' ones
    "SELECT c.relname, t.relname AS tbl, i.indnatts, i.indnkeyatts, i.indisunique, i.indisprimary, i.indimmediate, "
    "i.indisvalid, array_to_string(i.indkey::int2[], ' ') AS indkey, i.indoption, i.indexprs IS NOT NULL AS expr, "
    "i.indpred IS NULL AS nopred, c.relkind, c.relnatts, am.amname FROM pg_index i JOIN pg_class c ON "
    "c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid JOIN pg_am am ON am.oid = c.relam "
    f"WHERE i.indrelid IN {_RELS} ORDER BY 1",
    "SELECT c.relname, pg_get_indexdef(i.indexrelid), pg_get_indexdef(i.indexrelid, 0, true), "
    "pg_get_indexdef(i.indexrelid, 1, true), pg_get_indexdef(i.indexrelid, 2, false) FROM pg_index i "
    f"JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid IN {_RELS} ORDER BY 1",
    f"SELECT tablename, indexname, indexdef FROM pg_indexes WHERE tablename IN {_IN} ORDER BY 2",
    # unnest(indkey) pairs with generate_subscripts(indkey, 1), which starts at 0 (SQLAlchemy's index query)
    "SELECT c.relname, x.k, x.ord FROM (SELECT indexrelid, unnest(indkey) AS k, generate_subscripts(indkey, 1) AS ord "
    f"FROM pg_index WHERE indrelid IN {_RELS}) x JOIN pg_class c ON c.oid = x.indexrelid ORDER BY 1, 3",
    # tables: foreign keys make PostgreSQL add triggers (psql's \d shows foreign keys only then)
    f"SELECT relname, relkind, relhasindex, relhastriggers, relchecks FROM pg_class WHERE relname IN {_IN} "
    "ORDER BY 1",
    # the mark is pgtls's, not the user's
    "SELECT obj_description('r_marked'::regclass, 'pg_class'), obj_description('r_item'::regclass, 'pg_class')",
    "SELECT d.description FROM pg_description d JOIN pg_class c ON c.oid = d.objoid AND d.objsubid = 0 "
    f"WHERE c.relname IN {_IN}",
    "SELECT generate_subscripts(ARRAY[5, 6, 7], 1)",
]


def test_catalog_rows_as_postgres(servers: tuple[RealPostgres, PgtlsServer]) -> None:
    pg, ours = servers
    for sql in QUERIES:
        assert _rows(dsn(ours), sql) == _rows(dsn(pg), sql), sql


def test_mark_alone_leaves_no_description(servers: tuple[RealPostgres, PgtlsServer]) -> None:
    pg, ours = servers
    with psycopg.connect(dsn(ours), autocommit=True) as c:
        c.execute("CREATE TABLE r_bare (id int PRIMARY KEY, item_id int)")
        c.execute(
            f"COMMENT ON TABLE r_bare IS {quote(fk_mark([{**MARKED_FKS[0], 'name': 'r_bare_item_id_fkey'}]))}"
        )
        assert c.execute("SELECT obj_description('r_bare'::regclass, 'pg_class')").fetchall() == [(None,)]
        assert c.execute("SELECT count(*) FROM pg_description d JOIN pg_class c ON c.oid = d.objoid "
                         "WHERE c.relname = 'r_bare' AND d.description IS NOT NULL").fetchall() == [(0,)]  # fmt: skip
        defs = c.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = "
                         "(SELECT oid FROM pg_class WHERE relname = 'r_bare') ORDER BY 1").fetchall()  # fmt: skip
        assert defs == [("r_bare_item_id_fkey", "FOREIGN KEY (item_id) REFERENCES r_item(id) ON DELETE CASCADE "
                         "DEFERRABLE INITIALLY DEFERRED"), ("r_bare_pkey", "PRIMARY KEY (id)")]  # fmt: skip
        c.execute("DROP TABLE r_bare")


def test_constraint_names_as_postgres_chooses_them(servers: tuple[RealPostgres, PgtlsServer]) -> None:
    """Unnamed constraints get PostgreSQL's names: numbered on a clash, cut to 63 characters."""
    pg, ours = servers
    table, col = "t" * 40, "c" * 40
    ddl = (f"CREATE TABLE {table} (id int PRIMARY KEY, {col} int CHECK ({col} > 0) CHECK ({col} < 9), d int, e int, "
           f"UNIQUE ({col}, d), CHECK (d > e), CHECK (d > 1), CHECK (d < 5))")  # fmt: skip
    sql = (
        f"SELECT conname, contype FROM pg_constraint WHERE conrelid = (SELECT oid FROM pg_class WHERE relname = "
        f"'{table}') ORDER BY 1"
    )
    for server in (ours, pg):
        with psycopg.connect(dsn(server), autocommit=True) as c:
            c.execute(ddl)
    try:
        assert _rows(dsn(ours), sql) == _rows(dsn(pg), sql)
    finally:
        for server in (ours, pg):
            with psycopg.connect(dsn(server), autocommit=True) as c:
                c.execute(f"DROP TABLE {table}")


@pytest.mark.parametrize("table", TABLES)
def test_psql_describe_table_as_postgres(servers: tuple[RealPostgres, PgtlsServer], client_home: Path,
                                         table: str) -> None:  # fmt: skip
    pg, ours = servers
    r_ours = run_psql(dsn(ours), f"\\d {table}", home=client_home)
    r_pg = run_psql(dsn(pg), f"\\d {table}", home=client_home)
    assert r_ours.ok, r_ours.stderr
    assert r_ours.stdout == r_pg.stdout


DJANGO_SCRIPT = """
import json, sys
import django
from django.conf import settings
ports = json.loads(sys.argv[1])
common = {"ENGINE": "django.db.backends.postgresql", "NAME": "postgres", "USER": "postgres", "HOST": "127.0.0.1"}
settings.configure(DATABASES={a: {**common, "PORT": p} for a, p in ports.items()} | {"default": {**common, "PORT": ports["ours"]}},
                   INSTALLED_APPS=[], USE_TZ=True)
django.setup()
from django.db import connections
out = {}
for alias in ports:
    c = connections[alias]
    with c.cursor() as cur:
        out[alias] = {t: [c.introspection.get_constraints(cur, t), c.introspection.get_relations(cur, t)]
                      for t in sys.argv[2:]}
print(json.dumps(out))
"""


def test_django_introspection_as_postgres(servers: tuple[RealPostgres, PgtlsServer]) -> None:
    """Django's get_constraints and get_relations (run in a child process: Django is configured once per
    process, and test_orm_django.py configures it its own way)."""
    prereq.importorskip("django")
    pg, ours = servers
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    p = subprocess.run([sys.executable, "-c", DJANGO_SCRIPT, json.dumps({"ours": ours.port, "pg": pg.port}), *TABLES],
                       capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    assert got["ours"]["r_marked"][1] == {"item_id": ["id", "r_item"], "pa": ["a", "r_parent"]}
    assert got["ours"] == got["pg"]
