"""SET CONSTRAINTS (Django sends it when a migration adds a foreign key, and in check_constraints()):
the same tags, warning and syntax errors as PostgreSQL 15.  Constraint names are not looked up."""

from __future__ import annotations

from pathlib import Path

import psycopg

from tests.pgwire_util import postgres_and_session, tags

SCRIPT = [
    "SET CONSTRAINTS ALL IMMEDIATE",  # outside a block: WARNING 25P01, still done
    "SET CONSTRAINTS ALL",
    "SET CONSTRAINTS",
    "SET CONSTRAINTS ALL DEFERRED x",
    "BEGIN",
    "SET CONSTRAINTS ALL DEFERRED",
    "set constraints all immediate;",
    "COMMIT",
]


def _theirs(conn: psycopg.Connection, sql: str, notices: list[tuple[str, str]]) -> list[object]:
    notices.clear()
    try:
        cur = conn.execute(sql)
        return [*notices, cur.statusmessage]
    except psycopg.Error as e:
        return [(e.sqlstate, e.diag.message_primary, e.diag.statement_position)]


def test_set_constraints_as_postgres(tmp_path: Path) -> None:
    with postgres_and_session(tmp_path, []) as (conn, d):
        notices: list[tuple[str, str]] = []
        conn.add_notice_handler(
            lambda diag: notices.append((diag.sqlstate or "", diag.message_primary or ""))
        )
        for sql in SCRIPT:
            msgs = d.query(sql)
            ours: list[object] = []
            for m in msgs:
                if m.kind == "E":
                    ours.append((m.fields["C"], m.fields["M"], m.fields.get("P")))
                elif m.kind == "N":
                    ours.append((m.fields["C"], m.fields["M"]))
            ours += tags(msgs)
            assert ours == _theirs(conn, sql, notices), sql
