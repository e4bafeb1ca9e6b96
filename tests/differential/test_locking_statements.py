"""Row and table locking statements DuckDB does not have (SELECT ... FOR UPDATE/SHARE, LOCK TABLE) and
TRUNCATE's options: the same tags, rows and errors as PostgreSQL 15.  Nothing is locked (docs/embedded.md:
DuckDB's optimistic concurrency answers a conflicting write with 40001 instead of a wait)."""

from __future__ import annotations

from pathlib import Path

import psycopg
from hypothesis import given, settings
from hypothesis import strategies as st

from pgtls.backends.embedded.rewrite.pipeline import locking_edits
from pgtls.backends.embedded.sql.lexer import tokens
from tests.pgwire_util import errors, postgres_and_session, rows, tags

SETUP = [
    "CREATE TABLE t (id serial PRIMARY KEY, v int)",
    "CREATE TABLE u (id int)",
    "INSERT INTO t (v) VALUES (1), (2)",
    "INSERT INTO u VALUES (1)",
]
SCRIPT = [
    "LOCK TABLE t",  # 25P01 outside a block
    "LOCK t IN SHARE MODE",
    "BEGIN",
    "LOCK TABLE t IN ACCESS EXCLUSIVE MODE NOWAIT",
    "LOCK TABLE ONLY t, public.u",
    "LOCK TABLE nosuch",
    "ROLLBACK",
    "TRUNCATE nosuch",
    "TRUNCATE TABLE t RESTART IDENTITY CASCADE",
    "INSERT INTO t (v) VALUES (3) RETURNING id",
    "INSERT INTO t (v) VALUES (4)",
    "TRUNCATE ONLY t, u CONTINUE IDENTITY RESTRICT",
    "SELECT count(*) FROM u",
    "INSERT INTO t (v) VALUES (5) RETURNING id",
    "SELECT 1 FOR UPDATE",
    "SELECT id FROM t FOR UPDATE OF t SKIP LOCKED",
    "SELECT * FROM t FOR NO KEY UPDATE NOWAIT",
    "SELECT v FROM t FOR SHARE OF t FOR UPDATE",
    "SELECT substring('abcdef' FROM 2 FOR 3)",
    "BEGIN",
    "SELECT v FROM t WHERE id = 3 FOR UPDATE",
    "UPDATE t SET v = v + 1 WHERE id = 3",
    "COMMIT",
    "SELECT v FROM t",
]


def test_locking_statements_as_postgres(tmp_path: Path) -> None:
    with postgres_and_session(tmp_path, SETUP) as (conn, d):
        for sql in SCRIPT:
            msgs = d.query(sql)
            errs = errors(msgs)
            ours: object = ("ERR", errs[0]["C"], errs[0]["M"]) if errs else (tags(msgs), rows(msgs))
            try:
                cur = conn.execute(sql)
                theirs: object = ([cur.statusmessage],
                                  [[str(v) for v in r] for r in cur.fetchall()] if cur.description else [])  # fmt: skip
            except psycopg.Error as e:
                theirs = ("ERR", e.sqlstate, e.diag.message_primary)
            assert ours == theirs, sql


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(["SELECT", "1", "FOR", "UPDATE", "SHARE", "NO", "KEY", "OF", "t", ".", ",",
                                 "NOWAIT", "SKIP", "LOCKED", "FROM", "(", ")"]), max_size=14).map(" ".join))  # fmt: skip
def test_locking_clause_removal_never_raises(sql: str) -> None:
    for start, end, text in locking_edits(tokens(sql)):
        assert text == "" and 0 <= start < end <= len(sql)
        assert sql[start:end].upper().startswith("FOR")
