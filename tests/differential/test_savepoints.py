"""SAVEPOINT / RELEASE / ROLLBACK TO SAVEPOINT: the embedded backend against a real PostgreSQL 15.

Each script runs statement by statement on a fresh connection to both servers; every step must give the
same outcome (command tag and rows, or SQLSTATE and message) and leave the same transaction status.  Then
the drivers' own savepoint users: psycopg's nested ``transaction()``, asyncpg's nested transactions and
psql's ``ON_ERROR_ROLLBACK``.
"""

from __future__ import annotations

import asyncio
import subprocess

import asyncpg
import psycopg
import pytest

from tests.pgserver import PG_BIN, RealPostgres
from tests.pgtlsserver import PgtlsServer
from tests.pgwire_util import fresh_database

pytestmark = pytest.mark.pg

SCRIPTS: dict[str, list[str]] = {
    "rollback_to_undoes_later_rows": [
        "CREATE TABLE sp (a int PRIMARY KEY, b text)",
        "BEGIN",
        "INSERT INTO sp VALUES (1, 'one')",
        "SAVEPOINT s1",
        "INSERT INTO sp VALUES (2, 'two')",
        "SELECT a FROM sp ORDER BY a",
        "ROLLBACK TO SAVEPOINT s1",
        "SELECT a FROM sp ORDER BY a",
        "INSERT INTO sp VALUES (3, 'three')",
        "COMMIT",
        "SELECT a, b FROM sp ORDER BY a",
    ],
    "error_then_rollback_to_recovers": [
        "CREATE TABLE sp (a int PRIMARY KEY)",
        "BEGIN",
        "INSERT INTO sp VALUES (10)",
        "SAVEPOINT s",
        "INSERT INTO sp VALUES (11)",
        "INSERT INTO sp VALUES (10)",  # 23505: the transaction is aborted
        "SELECT 1",  # 25P02
        "SAVEPOINT t",  # 25P02
        "RELEASE s",  # 25P02
        "ROLLBACK TO nope",  # 3B001, still aborted
        "SELECT 1",
        "ROLLBACK TO s",
        "SELECT a FROM sp ORDER BY a",
        "INSERT INTO sp VALUES (12)",
        "COMMIT",
        "SELECT a FROM sp ORDER BY a",
    ],
    "nested_and_released": [
        "CREATE TABLE sp (a int)",
        "BEGIN",
        "SAVEPOINT a",
        "INSERT INTO sp VALUES (20)",
        "SAVEPOINT b",
        "INSERT INTO sp VALUES (21)",
        "ROLLBACK TO a",
        "SELECT count(*) FROM sp",
        "ROLLBACK TO b",  # b went with the rollback to a
        "ROLLBACK TO a",
        "INSERT INTO sp VALUES (22)",
        "SAVEPOINT c",
        "INSERT INTO sp VALUES (23)",
        "RELEASE c",
        "ROLLBACK TO c",  # released
        "ROLLBACK TO a",
        "SELECT count(*) FROM sp",
        "RELEASE SAVEPOINT a",
        "INSERT INTO sp VALUES (24)",
        "COMMIT",
        "SELECT a FROM sp ORDER BY a",
    ],
    "same_name_twice": [
        "CREATE TABLE sp (a int)",
        "BEGIN",
        "SAVEPOINT x",
        "INSERT INTO sp VALUES (40)",
        "SAVEPOINT x",
        "INSERT INTO sp VALUES (41)",
        "ROLLBACK TO x",
        "SELECT a FROM sp ORDER BY a",
        "RELEASE x",
        "ROLLBACK TO x",
        "SELECT a FROM sp ORDER BY a",
        "COMMIT",
    ],
    "outside_a_transaction_block": [
        "ROLLBACK TO SAVEPOINT s",
        "RELEASE SAVEPOINT s",
        "SAVEPOINT s",
        "ROLLBACK TRANSACTION TO s",
        "SELECT 1",
    ],
    "quoted_names_and_forms": [
        "BEGIN",
        'SAVEPOINT "Mixed"',
        "ROLLBACK TO mixed",  # 3B001: the quoted name keeps its case
        'ROLLBACK TO "Mixed"',
        "SAVEPOINT savepoint",
        "ROLLBACK WORK TO SAVEPOINT savepoint",
        "ROLLBACK TO savepoint",
        "ROLLBACK",
    ],
    "settings_come_back": [
        "SET application_name = 'before'",
        "BEGIN",
        "SET application_name = 'outer'",
        "SAVEPOINT s",
        "SET application_name = 'inner'",
        "SET LOCAL DateStyle = 'ISO, DMY'",
        "SHOW application_name",
        "ROLLBACK TO s",
        "SHOW application_name",
        "SHOW DateStyle",
        "COMMIT",
        "SHOW application_name",
    ],
    "ddl_and_updates": [
        "CREATE TABLE acct (id int PRIMARY KEY, balance int)",
        "INSERT INTO acct VALUES (1, 100), (2, 50)",
        "BEGIN",
        "UPDATE acct SET balance = balance - 10 WHERE id = 1",
        "SAVEPOINT s",
        "UPDATE acct SET balance = balance + 10 WHERE id = 2",
        "CREATE TABLE audit (x int)",
        "INSERT INTO audit VALUES (1)",
        "DELETE FROM acct WHERE id = 1",
        "ROLLBACK TO s",
        "SELECT * FROM audit",  # 42P01: the table went with the rollback
        "ROLLBACK TO s",
        "SELECT id, balance FROM acct ORDER BY id",
        "COMMIT",
        "SELECT id, balance FROM acct ORDER BY id",
    ],
    "cursors_declared_after_go": [
        "CREATE TABLE sp (a int)",
        "INSERT INTO sp VALUES (1), (2), (3)",
        "BEGIN",
        "DECLARE c1 CURSOR FOR SELECT a FROM sp ORDER BY a",
        "FETCH 1 FROM c1",
        "SAVEPOINT s",
        "DECLARE c2 CURSOR FOR SELECT a FROM sp ORDER BY a",
        "ROLLBACK TO s",
        "FETCH 1 FROM c2",  # 34000
        "ROLLBACK TO s",
        "FETCH 1 FROM c1",
        "COMMIT",
    ],
    "multi_statement_query": [
        "CREATE TABLE sp (a int)",
        "BEGIN; INSERT INTO sp VALUES (1); SAVEPOINT s; INSERT INTO sp VALUES (2); ROLLBACK TO s; "
        "INSERT INTO sp VALUES (3); COMMIT",
        "SELECT a FROM sp ORDER BY a",
    ],
}


def outcome(conn: psycopg.Connection, sql: str) -> tuple[object, ...]:
    res = conn.pgconn.exec_(sql.encode())
    status = psycopg.pq.TransactionStatus(conn.pgconn.transaction_status).name
    state = res.error_field(psycopg.pq.DiagnosticField.SQLSTATE)
    if state:
        msg = res.error_field(psycopg.pq.DiagnosticField.MESSAGE_PRIMARY)
        return ("error", state.decode(), msg.decode() if msg else None, status)
    values = [
        [None if res.get_value(r, c) is None else res.get_value(r, c).decode() for c in range(res.nfields)]
        for r in range(res.ntuples)
    ]
    return ("ok", (res.command_status or b"").decode(), values, status)


@pytest.fixture(scope="module")
def servers(pg_and_pgtls: tuple[RealPostgres, PgtlsServer]) -> tuple[RealPostgres, PgtlsServer]:
    return pg_and_pgtls


def _run(port: int, name: str, script: list[str]) -> list[tuple[object, ...]]:
    with psycopg.connect(fresh_database(port, name), autocommit=True) as conn:
        return [outcome(conn, sql) for sql in script]


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_savepoint_script_matches_postgres(servers, name):
    pg, ours = servers
    script = SCRIPTS[name]
    expected = _run(pg.port, name, script)
    got = _run(ours.port, name, script)
    for sql, want, have in zip(script, expected, got, strict=True):
        assert have == want, f"{sql!r}: PostgreSQL {want}, pgtls {have}"


def test_psycopg_nested_transaction_blocks(servers):
    def run(port: int) -> list[int]:
        with psycopg.connect(fresh_database(port, "nested_py")) as conn:
            conn.execute("CREATE TABLE t (a int)")
            conn.commit()
            with conn.transaction():
                conn.execute("INSERT INTO t VALUES (1)")
                with pytest.raises(psycopg.errors.DivisionByZero), conn.transaction():
                    conn.execute("INSERT INTO t VALUES (2)")
                    conn.execute("SELECT 1/0")
                with conn.transaction():
                    conn.execute("INSERT INTO t VALUES (3)")
                    with conn.transaction(force_rollback=True):
                        conn.execute("INSERT INTO t VALUES (4)")
            return [r[0] for r in conn.execute("SELECT a FROM t ORDER BY a").fetchall()]

    pg, ours = servers
    assert run(ours.port) == run(pg.port) == [1, 3]


def test_asyncpg_nested_transactions(servers):
    async def run(port: int) -> list[int]:
        fresh_database(port, "nested_apg")
        conn = await asyncpg.connect(
            host="127.0.0.1", port=port, user="postgres", database="nested_apg", ssl=False
        )
        try:
            await conn.execute("CREATE TABLE t (a int PRIMARY KEY)")
            async with conn.transaction():
                await conn.execute("INSERT INTO t VALUES (1)")
                try:
                    async with conn.transaction():
                        await conn.execute("INSERT INTO t VALUES (2)")
                        await conn.execute("INSERT INTO t VALUES (1)")
                except asyncpg.UniqueViolationError:
                    pass
                async with conn.transaction():
                    await conn.execute("INSERT INTO t VALUES (3)")
            return [r["a"] for r in await conn.fetch("SELECT a FROM t ORDER BY a")]
        finally:
            await conn.close()

    pg, ours = servers
    assert asyncio.run(run(ours.port)) == asyncio.run(run(pg.port)) == [1, 3]


def test_psql_on_error_rollback(servers):
    script = (
        "\\set ON_ERROR_ROLLBACK on\n"
        "CREATE TABLE t (a int PRIMARY KEY);\n"
        "BEGIN;\n"
        "INSERT INTO t VALUES (1);\n"
        "INSERT INTO t VALUES (1);\n"
        "SELECT 1/0;\n"
        "INSERT INTO t VALUES (2);\n"
        "COMMIT;\n"
        "SELECT string_agg(a::text, ',' ORDER BY a) FROM t;\n"
    )

    def run(port: int) -> tuple[str, list[str]]:
        dsn = fresh_database(port, "psql_oer")
        p = subprocess.run([str(PG_BIN / "psql"), "-X", "-A", "-t", "-d", dsn], input=script, capture_output=True,
                           text=True, timeout=60)  # fmt: skip
        errs = [line.split(":  ", 1)[0] for line in p.stderr.splitlines() if "ERROR" in line]
        return p.stdout, errs

    pg, ours = servers
    want = run(pg.port)
    assert want[0].splitlines()[-1] == "1,2"
    assert run(ours.port) == want


def test_unique_violation_names_match_postgres(servers):
    """The constraint name and key detail of 23505, in and out of a transaction block, one and two columns."""
    script = [
        "CREATE TABLE u (a int PRIMARY KEY, b int, c int, UNIQUE (b, c))",
        "INSERT INTO u VALUES (1, 2, 3)",
        "INSERT INTO u VALUES (1, 5, 5)",
        "INSERT INTO u VALUES (2, 2, 3)",
        "BEGIN",
        "INSERT INTO u VALUES (7, 8, 9)",
        "INSERT INTO u VALUES (7, 0, 0)",
        "ROLLBACK",
        "BEGIN",
        "INSERT INTO u VALUES (8, 8, 9)",
        "INSERT INTO u VALUES (9, 8, 9)",
        "ROLLBACK",
    ]

    def run(port: int) -> list[tuple[object, ...]]:
        with psycopg.connect(fresh_database(port, "uniq"), autocommit=True) as conn:
            out = []
            for sql in script:
                res = conn.pgconn.exec_(sql.encode())
                fields = (psycopg.pq.DiagnosticField.SQLSTATE, psycopg.pq.DiagnosticField.MESSAGE_PRIMARY,
                          psycopg.pq.DiagnosticField.MESSAGE_DETAIL)  # fmt: skip
                out.append(tuple((res.error_field(f) or b"").decode() for f in fields))
            return out

    pg, ours = servers
    want = run(pg.port)
    assert [w[0] for w in want].count("23505") == 4
    assert run(ours.port) == want


def test_copy_from_before_and_after_a_savepoint(servers):
    """COPY FROM STDIN rows before the savepoint are replayed, rows after it are rolled back."""

    def run(port: int) -> list[tuple[int, str]]:
        with psycopg.connect(fresh_database(port, "sp_copy")) as conn:
            conn.execute("CREATE TABLE c (a int PRIMARY KEY, b text)")
            conn.commit()
            with conn.cursor().copy("COPY c (a, b) FROM STDIN") as cp:
                for i in range(1, 1001):
                    cp.write_row((i, f"row {i}\twith tab"))
            conn.execute("SAVEPOINT s")
            with conn.cursor().copy("COPY c (a, b) FROM STDIN") as cp:
                cp.write_row((5000, "after"))
            with (
                pytest.raises(psycopg.errors.UniqueViolation),
                conn.cursor().copy("COPY c (a) FROM STDIN") as cp,
            ):
                cp.write_row((1,))
            conn.execute("ROLLBACK TO SAVEPOINT s")
            conn.execute("INSERT INTO c VALUES (2000, 'x')")
            conn.commit()
            return conn.execute("SELECT count(*), max(a), min(b) FROM c").fetchall()

    pg, ours = servers
    assert run(ours.port) == run(pg.port) == [(1001, 2000, "row 1\twith tab")]
