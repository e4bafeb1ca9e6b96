"""bytea hex input in string constants without a cast (psql users write INSERT ... VALUES ('\\x…')):
the same bytes, comparisons and errors as PostgreSQL 15."""

from __future__ import annotations

from pathlib import Path

import psycopg

from tests.pgwire_util import errors, postgres_and_session, rows

SETUP = ["CREATE TABLE b (id int, x bytea, t text)"]
SCRIPT = [
    "INSERT INTO b VALUES (1, '\\xdeadbeef', '\\xdeadbeef')",
    "INSERT INTO b VALUES (2, '\\x', '\\x'), (3, '\\xDE AD\tbe ef', 'x')",
    "INSERT INTO b (x, id) VALUES ('\\x00ff', 4)",
    "INSERT INTO b VALUES (5, 'abc', NULL)",
    "UPDATE b SET x = '\\x0102' WHERE id = 4",
    "INSERT INTO b VALUES (6, '\\xzz', NULL)",
    "INSERT INTO b VALUES (7, '\\xabc', NULL)",
    "SELECT id, x, t, length(x) FROM b ORDER BY id",
    "SELECT id FROM b WHERE x = '\\xdeadbeef' ORDER BY id",
    "SELECT id FROM b WHERE '\\x0102' = x",
    "DELETE FROM b WHERE x <> '\\xdeadbeef'",
    "SELECT id, x FROM b ORDER BY id",
]


def _theirs(conn: psycopg.Connection, sql: str) -> object:
    try:
        cur = conn.execute(sql)
        if cur.description is None:
            return cur.statusmessage
        return [[None if v is None else str(v) for v in r] for r in cur.fetchall()]
    except psycopg.Error as e:
        return (e.sqlstate, e.diag.message_primary)


def test_bytea_strings_as_postgres(tmp_path: Path) -> None:
    with postgres_and_session(tmp_path, SETUP) as (conn, d):
        conn.execute("SET bytea_output = 'hex'")
        # psycopg returns bytea as bytes; compare the text form both ways instead.
        conn.adapters.register_loader("bytea", psycopg.types.string.TextLoader)
        for sql in SCRIPT:
            msgs = d.query(sql)
            errs = errors(msgs)
            if errs:
                ours: object = (errs[0]["C"], errs[0]["M"])
            elif any(m.kind == "T" for m in msgs):
                ours = rows(msgs)
            else:
                ours = [m["tag"] for m in msgs if m.kind == "C"][0]
            assert ours == _theirs(conn, sql), sql
