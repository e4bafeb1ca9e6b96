"""The point-lookup index of the embedded backend (pgtls/backends/embedded/fastpath/lookup.py).

In-process tests drive real EmbeddedBackend sessions: ``answer_inline`` (the event-loop path the
server tries first) must give byte for byte what ``handle`` (DuckDB) gives for the same query, must
decline whatever it cannot answer exactly, and must never show data older than the last commit.
The live tests run a real pgtls server with real clients over TLS: psql output through the index
equals PostgreSQL 15's for the same table, and a reader always sees a writer's committed value.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pgtls.backends.base import SessionInfo
from pgtls.backends.embedded import EmbeddedBackend, create_database
from pgtls.config.settings import load_settings
from tests import prereq
from tests.pgserver import PG_BIN, RealPostgres, have_postgres
from tests.pgtlsserver import tls_server
from tests.pgwire_util import Collector, SessionDriver, SimpleRegistry, errors, fe, parse_messages

SETUP = [
    "CREATE TABLE t (id int PRIMARY KEY, grp int, b bool, s smallint, big bigint, r real, d double precision, "
    "n numeric(10,2), nb numeric, txt text, vc varchar(5), dt date, ts timestamp, u uuid, bin bytea)",
    "INSERT INTO t VALUES (1, 1, true, -32768, 9223372036854775807, 1.5, 'NaN', 12.5, 1.25, 'héllo ☃', 'abc', "
    "'1969-07-20', '2150-01-01 12:34:56.789', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\\xdeadbeef'::bytea)",
    "INSERT INTO t VALUES (2, 1, false, 0, -1, 'Infinity', -0.1, -0.01, 0, 'it''s', '', "
    "'2000-02-29', '1900-01-01 00:00:00', NULL, '\\x'::bytea)",
    "INSERT INTO t (id, grp) VALUES (3, 2)",
    "INSERT INTO t (id, grp, txt) VALUES (-4, 2, 'x')",
    "INSERT INTO t (id, grp, dt, ts) VALUES (5, 3, 'infinity', '-infinity')",
    "CREATE TABLE k (code text PRIMARY KEY, v int)",
    "INSERT INTO k VALUES ('a', 1), ('é''x', 2), ('', 3), ('A', 4)",
    "CREATE TABLE tz (id int PRIMARY KEY, happened timestamptz)",
    "INSERT INTO tz VALUES (1, '2024-01-01 00:00:00+00')",
]

# Queries the index answers, and must answer exactly as DuckDB does.
ANSWERED = [
    "SELECT * FROM t WHERE id = 1",
    "SELECT * FROM t WHERE id = 2",
    "SELECT * FROM t WHERE id = 3",
    "select txt, id from t where id=-4;",
    "SELECT b, s, big, r, d, n, nb FROM t WHERE id = '1'",
    "SELECT dt, ts, u, bin FROM public.t WHERE id = 2",
    "SELECT txt FROM t WHERE id = 6",
    "SELECT dt, ts FROM t WHERE id = 5",
    "SELECT txt FROM t WHERE id = 99999999999",
    "SELECT id, txt FROM t WHERE grp = 2",
    "SELECT v FROM k WHERE code = 'a'",
    "SELECT v FROM k WHERE code = 'é''x'",
    "SELECT * FROM k WHERE code = ''",
    "SELECT v FROM k WHERE code = 'b'",
    "SELECT\n  v\nFROM k\tWHERE code = 'A' ;  ",
    # What ORMs send for a lookup by primary key: quoted, qualified, aliased, with a LIMIT
    'SELECT "t"."id", "t"."txt" FROM "t" WHERE "t"."id" = 1 LIMIT 21',  # Django's get()
    "SELECT t.id AS t_id, t.txt AS t_txt FROM t WHERE t.id = 2",  # SQLAlchemy's Session.get()
    'SELECT "v" AS "Value" FROM public."k" WHERE "code" = \'a\' LIMIT 1',
    "SELECT txt FROM t WHERE id = 1 LIMIT 0",
    "SELECT id, txt FROM t WHERE grp = 2 LIMIT 5",
]

# Queries it must leave to DuckDB, even with an index on the table.
DECLINED = [
    "SELECT txt FROM t WHERE id = 'abc'",  # 22P02 on the normal path
    "SELECT txt FROM t WHERE id = '99999999999'",  # 22003: out of range for integer
    "SELECT txt FROM t WHERE id = ' 1'",
    "SELECT v FROM k WHERE code = 1",  # text = integer: 42883
    "SELECT txt FROM t WHERE id = 1 LIMIT 1 OFFSET 0",
    "SELECT txt FROM t WHERE id = 1 LIMIT $1",
    "SELECT select FROM t WHERE id = 1",
    "SELECT txt FROM t WHERE id = 1 AND grp = 1",
    "SELECT txt FROM t WHERE id = 1; SELECT 1",
    "SELECT txt FROM t WHERE id = 1 -- c",
    "SELECT v FROM k WHERE code = E'a'",
    "SELECT v FROM k WHERE code = 'a\\'",
    "SELECT happened FROM tz WHERE id = 1",  # timestamptz depends on the session's TimeZone when fetched
    "SELECT txt FROM nosuch WHERE id = 1",
    "SELECT nosuch FROM t WHERE id = 1",
]


class Sess:
    """A real embedded session, queried through both paths."""

    def __init__(self, backend: EmbeddedBackend, pid: int) -> None:
        self.session = backend.open_session(
            SessionInfo(pid, "postgres", "postgres", None, None), SimpleRegistry()
        )
        self.driver = SessionDriver(self.session)

    def normal(self, sql: str) -> bytes:
        out = Collector()
        self.session.handle(b"Q", sql.encode() + b"\0", out)
        return b"".join(out.chunks)

    def fast(self, sql: str) -> bytes | None:
        return self.session.answer_inline([(b"Q", sql.encode() + b"\0")])

    def normal_batch(self, batch: list[tuple[bytes, bytes]]) -> bytes:
        out = Collector()
        for kind, body in batch:
            self.session.handle(kind, body, out)
        return b"".join(out.chunks)

    def fast_batch(self, batch: list[tuple[bytes, bytes]]) -> bytes | None:
        return self.session.answer_inline(batch)

    def ok(self, sql: str) -> None:
        msgs = self.driver.query(sql)
        assert not errors(msgs), (sql, errors(msgs))

    def warm(self, sql: str, timeout: float = 20) -> bytes:
        """Query as the server does (index first, else DuckDB) until the index answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.fast(sql)
            if got is not None:
                return got
            self.normal(sql)
            time.sleep(0.002)
        raise AssertionError(f"the index never answered {sql!r}")

    def close(self) -> None:
        self.session.close()


def _backend(data: Path, conf: str = "") -> EmbeddedBackend:
    (data / "base").mkdir(parents=True, exist_ok=True)
    (data / "postgresql.conf").write_text(conf)
    create_database(data, "postgres")
    return EmbeddedBackend(data, load_settings(data))


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[EmbeddedBackend, Sess, Sess]]:
    be = _backend(tmp_path)
    a, b = Sess(be, 1), Sess(be, 2)
    for sql in SETUP:
        a.ok(sql)
    try:
        yield be, a, b
    finally:
        a.close()
        b.close()
        be.close()


def _sorted_rows(reply: bytes) -> list[Any]:
    msgs = parse_messages(reply)
    return [m.kind for m in msgs if m.kind != "D"] + sorted(str(m["values"]) for m in msgs if m.kind == "D")


def test_answers_byte_for_byte_as_duckdb(two: tuple[EmbeddedBackend, Sess, Sess]) -> None:
    _be, a, b = two
    for sql in ANSWERED:
        fast = b.warm(sql)
        normal = b.normal(sql)
        assert not errors(parse_messages(normal)), sql
        if "grp = 2" in sql:  # two rows: the order of an unordered query is free
            assert _sorted_rows(fast) == _sorted_rows(normal), sql
        else:
            assert fast == normal, sql
        assert a.fast(sql) == fast  # another session gets the same from the same index


def test_declines_what_it_cannot_answer_exactly(two: tuple[EmbeddedBackend, Sess, Sess]) -> None:
    be, a, b = two
    b.warm("SELECT txt FROM t WHERE id = 1")
    b.warm("SELECT v FROM k WHERE code = 'a'")
    for sql in DECLINED:
        for _ in range(40):  # enough lookups to start a build if one were possible
            assert b.fast(sql) is None, sql
            b.normal(sql)
    db = be.lookups.database("postgres")
    deadline = time.monotonic() + 5
    while db.building and time.monotonic() < deadline:
        time.sleep(0.01)
    assert b.fast("SELECT happened FROM tz WHERE id = 1") is None
    # A transaction block reads its own snapshot: the index stays out of it.
    b.ok("BEGIN")
    assert b.fast("SELECT txt FROM t WHERE id = 1") is None
    b.ok("COMMIT")
    assert b.fast("SELECT txt FROM t WHERE id = 1") is not None


def test_a_write_is_seen_at_once(two: tuple[EmbeddedBackend, Sess, Sess]) -> None:
    _be, a, b = two
    q = "SELECT txt FROM t WHERE id = 1"
    assert b"h\xc3\xa9llo" in b.warm(q)
    a.ok("UPDATE t SET txt = 'changed' WHERE id = 1")
    assert b.fast(q) is None  # the index is gone with the write
    assert b"changed" in b.normal(q)
    assert b"changed" in b.warm(q)  # rebuilt from the new data


def test_open_write_transaction_keeps_index_out(two: tuple[EmbeddedBackend, Sess, Sess]) -> None:
    _be, a, b = two
    q = "SELECT v FROM k WHERE code = 'a'"
    b.warm(q)
    a.ok("BEGIN")
    a.ok("SELECT 1")
    assert b.fast(q) is not None  # a reading transaction changes nothing
    a.ok("UPDATE k SET v = 100 WHERE code = 'a'")
    for _ in range(60):
        assert b.fast(q) is None  # not while a writer is open, even for its old data
        assert b"100" not in b.normal(q)
    time.sleep(0.2)
    assert b.fast(q) is None
    a.ok("COMMIT")
    assert b.fast(q) is None
    assert b"100" in b.warm(q)
    # A failed and rolled back write leaves nothing behind either.
    a.ok("BEGIN")
    a.ok("UPDATE k SET v = 7 WHERE code = 'a'")
    a.driver.query("SELECT 1/0")
    a.ok("ROLLBACK")
    assert b"100" in b.warm(q)


def test_session_specific_names_are_respected(two: tuple[EmbeddedBackend, Sess, Sess]) -> None:
    _be, a, b = two
    q = "SELECT v FROM k WHERE code = 'a'"
    a.warm(q)
    b.ok("CREATE TEMP TABLE k (code text, v int)")
    b.ok("INSERT INTO k VALUES ('a', -1)")
    for _ in range(40):
        assert b.fast(q) is None  # b's own TEMP table hides the shared one
        assert b"-1" in b.normal(q)
    a.ok("CREATE SCHEMA other")
    a.ok("CREATE TABLE other.k (code text, v int)")
    a.ok("INSERT INTO other.k VALUES ('a', 42)")
    a.ok("SET search_path = other")
    assert b"42" in a.normal(q)
    assert b"42" in a.warm(q)  # its own index, for its own search path
    a.ok("RESET search_path")
    assert b"\x00\x00\x00\x011" in a.warm(q)


def test_row_limit_setting(tmp_path: Path) -> None:
    be = _backend(tmp_path, "pgtls.point_lookup_rows = 3\n")
    a = Sess(be, 1)
    try:
        for sql in SETUP:
            a.ok(sql)
        q = "SELECT txt FROM t WHERE id = 1"  # t has 5 rows: more than the limit
        k = "SELECT v FROM k WHERE code = 'a'"  # k has 4 rows too
        for _ in range(200):
            assert a.fast(q) is None
            a.normal(q)
        db = be.lookups.database("postgres")
        assert not db.indexes
        a.ok("DELETE FROM k WHERE code <> 'a'")
        assert b"\x00\x00\x00\x011" in a.warm(k)  # one row now fits
        assert sum(ix.size for ix in db.indexes.values()) <= 3
    finally:
        a.close()
        be.close()


def test_drop_database_forgets_its_indexes(tmp_path: Path) -> None:
    be = _backend(tmp_path)
    a = Sess(be, 1)
    try:
        a.ok("CREATE DATABASE other")
        other = be.open_session(SessionInfo(2, "postgres", "other", None, None), SimpleRegistry())
        o = Sess.__new__(Sess)
        o.session, o.driver = other, SessionDriver(other)
        o.ok("CREATE TABLE x (id int PRIMARY KEY, v text)")
        o.ok("INSERT INTO x VALUES (1, 'old')")
        assert b"old" in o.warm("SELECT v FROM x WHERE id = 1")
        o.close()
        a.ok("DROP DATABASE other")
        a.ok("CREATE DATABASE other")
        other = be.open_session(SessionInfo(3, "postgres", "other", None, None), SimpleRegistry())
        o.session, o.driver = other, SessionDriver(other)
        o.ok("CREATE TABLE x (id int PRIMARY KEY, v text)")
        o.ok("INSERT INTO x VALUES (1, 'new')")
        assert b"new" in o.normal("SELECT v FROM x WHERE id = 1")
        assert b"new" in o.warm("SELECT v FROM x WHERE id = 1")
        o.close()
    finally:
        a.close()
        be.close()


# --- a real server, real clients ---------------------------------------------------------------

PSQL_QUERIES = [q for q in ANSWERED if "grp = 2" not in q]


def _psql(port: int, sql: str, env: dict[str, str], *, tls: bool = False) -> str:
    dsn = f"host=127.0.0.1 port={port} user=postgres dbname=postgres" + (" sslmode=require" if tls else "")
    r = subprocess.run([str(PG_BIN / "psql"), "-X", "-A", "-v", "ON_ERROR_STOP=1", dsn, "-c", sql],
                       env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 0, (sql, r.stderr)
    return r.stdout


def test_psql_through_the_index_matches_postgres(
    pg_and_pgtls: tuple[RealPostgres, Any], client_home: Path
) -> None:
    import psycopg

    pg, ours = pg_and_pgtls
    env = {"HOME": str(client_home), "PATH": "/usr/bin:/bin", "PGTZ": "UTC"}
    for port in (pg.port, ours.port):
        _psql(port, "DROP TABLE IF EXISTS t; DROP TABLE IF EXISTS k; DROP TABLE IF EXISTS tz", env)
        for sql in SETUP:
            _psql(port, sql, env)
    # ClientCursor: the simple query protocol, which is what the index answers.
    with psycopg.connect(host="127.0.0.1", port=ours.port, user="postgres", dbname="postgres",
                         autocommit=True, cursor_factory=psycopg.ClientCursor) as conn:  # fmt: skip
        for sql in PSQL_QUERIES:  # enough lookups that every shape gets its index (rows not loaded:
            for _ in range(80):  # psycopg has no Python date for 'infinity')
                conn.execute(sql)
        time.sleep(0.5)
        for sql in PSQL_QUERIES:
            for _ in range(5):
                conn.execute(sql)
    for sql in PSQL_QUERIES:
        assert _psql(ours.port, sql, env) == _psql(pg.port, sql, env), sql


DRIVER_QUERIES = [
    ("SELECT * FROM t WHERE id = $1", 1),
    ("SELECT * FROM t WHERE id = $1", 2),
    ("SELECT txt, id FROM t WHERE id = $1", -4),
    ("SELECT * FROM t WHERE id = $1", 77),
    ("SELECT v FROM k WHERE code = $1", "é'x"),
    ("SELECT * FROM k WHERE code = $1", "A"),
]


def test_drivers_through_the_index_match_postgres(pg_and_pgtls: tuple[RealPostgres, Any]) -> None:
    """psycopg (extended protocol, binary results) and asyncpg (named prepared statements, binary) get
    the same values from pgtls, with the index answering, as from PostgreSQL 15."""
    import asyncio

    import asyncpg
    import psycopg

    pg, ours = pg_and_pgtls
    for port in (pg.port, ours.port):
        with psycopg.connect(
            host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True
        ) as c:
            for sql in (
                "DROP TABLE IF EXISTS t",
                "DROP TABLE IF EXISTS k",
                "DROP TABLE IF EXISTS tz",
                *SETUP,
            ):
                c.execute(sql)

    def with_psycopg(port: int, rounds: int) -> list[Any]:
        got = []
        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                             autocommit=True) as c:  # fmt: skip
            for _ in range(rounds):
                got = [
                    c.execute(sql.replace("$1", "%s"), (v,), binary=True).fetchall()
                    for sql, v in DRIVER_QUERIES
                ]
        return got

    async def with_asyncpg(port: int, rounds: int) -> list[Any]:
        c = await asyncpg.connect(
            host="127.0.0.1", port=port, user="postgres", database="postgres", ssl=False
        )
        try:
            got: list[Any] = []
            for _ in range(rounds):
                got = [[tuple(r) for r in await c.fetch(sql, v)] for sql, v in DRIVER_QUERIES]
            return got
        finally:
            await c.close()

    ours.conf(log_min_messages="debug1")
    ours.reload()
    before = ours.full_log().count("point-lookup index on")
    with_psycopg(ours.port, 60)  # enough lookups for every shape to get its index
    time.sleep(0.5)
    assert repr(with_psycopg(ours.port, 1)) == repr(with_psycopg(pg.port, 1))  # repr: nan != nan
    assert repr(asyncio.run(with_asyncpg(ours.port, 40))) == repr(asyncio.run(with_asyncpg(pg.port, 1)))
    assert ours.full_log().count("point-lookup index on") > before
    ours.conf(log_min_messages="warning")
    ours.reload()


def test_reader_sees_every_commit_over_tls(certs: Any, client_home: Path) -> None:
    """A writer commits new values; a reader on another connection, hammering the indexed shape, must
    see each one as soon as the writer's COMMIT (or autocommit UPDATE) has returned."""
    import psycopg

    if not have_postgres():
        prereq.missing("PostgreSQL 15 client tools are not installed")
    server = tls_server(certs, log_min_messages="debug1", backend="duckdb")
    try:
        dsn = (f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres sslmode=verify-full "
               f"sslrootcert={certs.path('root_ca.crt')}")  # fmt: skip
        simple = {"autocommit": True, "cursor_factory": psycopg.ClientCursor}  # the simple query protocol
        with psycopg.connect(dsn, **simple) as w, psycopg.connect(dsn, **simple) as r:
            w.execute("CREATE TABLE acc (aid int PRIMARY KEY, bal int)")
            w.execute("INSERT INTO acc SELECT i, 0 FROM generate_series(1, 5000) AS g(i)")
            q = "SELECT bal FROM acc WHERE aid = 42"
            stop = threading.Event()
            seen: list[int] = []

            def other_reader() -> None:  # keeps the index busy from a third connection
                with psycopg.connect(dsn, **simple) as c:
                    while not stop.is_set():
                        seen.append(c.execute(q).fetchone()[0])  # type: ignore[index]

            t = threading.Thread(target=other_reader)
            t.start()
            try:
                for i in range(1, 16):
                    if i % 3:
                        w.execute("UPDATE acc SET bal = %s WHERE aid = 42", (i,))
                    else:
                        with w.transaction():
                            w.execute("UPDATE acc SET bal = %s WHERE aid = 42", (i,))
                            w.execute("UPDATE acc SET bal = bal + 0 WHERE aid = 1")
                    for _ in range(120):  # long enough for the index to be rebuilt in between
                        assert r.execute(q).fetchone() == (i,)
            finally:
                stop.set()
                t.join()
            assert seen == sorted(seen)  # never an older value after a newer one
        # The reads above did go through the index: it was built again after most of the writes.
        assert server.full_log().count('point-lookup index on "acc" ("aid")') >= 5
    finally:
        print(f"--- pgtls server log ---\n{server.full_log()[-4000:]}")
        server.cleanup()


# --- the extended query protocol ----------------------------------------------------------------

INT4, INT8, INT2, TEXT, NUMERIC = 23, 20, 21, 25, 1700


def _i4(v: int) -> bytes:
    return v.to_bytes(4, "big", signed=True)


def _i8(v: int) -> bytes:
    return v.to_bytes(8, "big", signed=True)


# (statement, declared parameter types, parameters, parameter formats, result formats)
EXT_ANSWERED: list[tuple[str, list[int], list[Any], list[int], list[int]]] = [
    ("SELECT * FROM t WHERE id = $1", [], ["1"], [], []),  # libpq PQexecParams, pgbench -M extended
    ("SELECT txt, n FROM t WHERE id = $1", [INT4], [_i4(2)], [1], [1]),  # asyncpg: binary both ways
    ("SELECT txt FROM t WHERE id = $1", [INT8], [_i8(-4)], [1], []),
    ("SELECT txt FROM t WHERE id = $1", [INT2], ["3"], [0], [0]),
    ("SELECT * FROM t WHERE id = $1", [INT8], ["99999999999"], [], [1]),  # an int8 finds nothing in int4
    ("SELECT v FROM k WHERE code = $1", [], ["é'x"], [], []),
    ("SELECT v FROM k WHERE code = $1", [TEXT], [b"A"], [1], [1]),
    ("SELECT * FROM k WHERE code = 'a'", [], [], [], []),
    ("SELECT id FROM t WHERE grp = $1", [], ["2"], [], []),
    (
        'SELECT "t"."id", "t"."txt" FROM "t" WHERE "t"."id" = $1 LIMIT 21',
        [INT8],
        [_i8(1)],
        [1],
        [1],
    ),  # Django
]

EXT_DECLINED: list[tuple[str, list[int], list[Any], list[int], list[int]]] = [
    ("SELECT txt FROM t WHERE id = $1", [], ["abc"], [], []),  # 22P02
    ("SELECT txt FROM t WHERE id = $1", [INT4], ["99999999999"], [], []),  # 22003
    ("SELECT txt FROM t WHERE id = $1", [NUMERIC], ["1"], [], []),
    ("SELECT txt FROM t WHERE id = $1", [], [None], [], []),
    ("SELECT txt FROM t WHERE id = $1", [INT4], [_i8(1)], [1], []),  # 8 bytes for an int4
    ("SELECT v FROM k WHERE code = $1", [INT4], ["1"], [], []),
    ("SELECT txt FROM t WHERE id = $1", [], ["1", "2"], [], []),  # 08P01: too many parameters
    ("SELECT txt FROM t WHERE id = $2", [], ["1", "2"], [], []),
    ("SELECT txt FROM t WHERE id = $1", [], ["1"], [0, 0], []),
    ("SELECT txt FROM t WHERE id = $1", [], ["1"], [], [0, 0]),  # 08P01: two result formats, one column
]


def _round_trip(sql: str, oids: list[int], args: list[Any], pf: list[int], rf: list[int], *, name: str = "",
                portal: str = "", describe: bool = True, limit: int = 0) -> list[tuple[bytes, bytes]]:  # fmt: skip
    batch = [fe.parse(sql, name, oids), fe.bind(args, portal, name, pf, rf)]
    if describe:
        batch.append(fe.describe("P", portal))
    return batch + [fe.execute(portal, limit), fe.sync()]


def _shape_query(sql: str, args: list[Any]) -> str:
    """The simple-query twin that warms the same index."""
    return sql.replace("$1", "1" if "code" not in sql else "'a'")


def test_extended_round_trips_answer_as_duckdb(two: tuple[EmbeddedBackend, Sess, Sess]) -> None:
    _be, a, b = two
    for sql, oids, args, pf, rf in EXT_ANSWERED:
        b.warm(_shape_query(sql, args))
        for describe in (True, False):
            for name, portal in (("", ""), ("st", "po")):
                batch = _round_trip(sql, oids, args, pf, rf, name=name, portal=portal, describe=describe)
                fast = b.fast_batch(batch)
                assert fast is not None, (sql, args)
                normal = a.normal_batch(batch)
                assert not errors(parse_messages(normal)), (sql, args, errors(parse_messages(normal)))
                if "grp" in sql:
                    assert _sorted_rows(fast) == _sorted_rows(normal)
                else:
                    assert fast == normal, (sql, args, describe)
                if name:
                    # The statement the fast path stored is the one the normal path stores: same
                    # ParameterDescription, and it binds again (here: Bind/Execute/Sync only, as asyncpg does).
                    desc = [fe.describe("S", name), fe.sync()]
                    assert b.normal_batch(desc) == a.normal_batch(desc)
                    again = [fe.bind(args, "", name, pf, rf), fe.execute(), fe.sync()]
                    fast_again = b.fast_batch(again)
                    assert fast_again is not None
                    if "grp" not in sql:
                        assert fast_again == a.normal_batch(again)
                    close = [fe.close("S", name), fe.sync()]
                    b.normal_batch(close)
                    a.normal_batch(close)


def test_extended_declines_what_it_cannot_answer_exactly(two: tuple[EmbeddedBackend, Sess, Sess]) -> None:
    _be, _a, b = two
    b.warm("SELECT txt FROM t WHERE id = 1")
    b.warm("SELECT v FROM k WHERE code = 'a'")
    for sql, oids, args, pf, rf in EXT_DECLINED:
        assert b.fast_batch(_round_trip(sql, oids, args, pf, rf)) is None, (sql, args)
    ok = ("SELECT txt FROM t WHERE id = $1", [], ["1"], [], [])
    assert b.fast_batch(_round_trip(*ok)) is not None
    assert b.fast_batch(_round_trip(*ok, limit=1)) is None  # a row limit the row count reaches
    assert b.fast_batch(_round_trip(*ok, limit=2)) is not None
    assert b.fast_batch(_round_trip(*ok)[:-1]) is None  # no Sync
    assert b.fast_batch([*_round_trip(*ok)[:-1], fe.flush(), fe.sync()]) is None
    # A statement name already taken: the normal path's 42P05, not an answer.
    b.normal_batch([fe.parse("SELECT 1", "taken"), fe.sync()])
    assert b.fast_batch(_round_trip(*ok, name="taken")) is None
    # A Bind naming a statement that does not exist: the normal path's 26000.
    assert b.fast_batch([fe.bind(["1"], "", "nosuch"), fe.execute(), fe.sync()]) is None
    # Parameters are not literals: $1 in a simple query is an error there.
    assert b.fast("SELECT txt FROM t WHERE id = $1") is None


def test_malformed_extended_batches_are_left_to_the_normal_path(
    two: tuple[EmbeddedBackend, Sess, Sess],
) -> None:
    """answer_inline never raises on a malformed batch: it answers, or leaves it (and its error) to handle()."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    _be, a, b = two
    b.warm("SELECT txt FROM t WHERE id = 1")
    good = _round_trip("SELECT txt FROM t WHERE id = $1", [INT4], [_i4(1)], [1], [0])
    assert b.fast_batch(good) is not None

    @settings(max_examples=400, deadline=None)
    @given(st.integers(0, len(good) - 1), st.binary(max_size=40), st.integers(0, 60), st.integers(0, 60))
    def mangle(k: int, junk: bytes, cut: int, at: int) -> None:
        kind, body = good[k]
        bad = body[: min(cut, len(body))] + junk + body[min(at, len(body)) :]
        batch = [*good[:k], (kind, bad), *good[k + 1 :]]
        got = b.fast_batch(batch)
        if got is not None:  # still well formed: it must then be what the normal path says
            assert got == a.normal_batch(batch)

    mangle()


def test_invented_shapes_cost_no_memory(two: tuple[EmbeddedBackend, Sess, Sess]) -> None:
    from pgtls.backends.embedded.fastpath.lookup import MAX_SHAPES

    be, _a, b = two
    for k in range(MAX_SHAPES + 500):
        assert b.fast(f"SELECT v FROM nosuch{k} WHERE id = 1") is None
    db = be.lookups.database("postgres")
    assert len(db.misses) <= MAX_SHAPES
    assert len(db.refused) <= MAX_SHAPES
