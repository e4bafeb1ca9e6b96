"""The relay is transparent: SQL through pgtls (TLS, verify-full, client certificate under ``cert``) gives
exactly what the same PostgreSQL 18 gives directly.

psql scripts run on both sides with ON_ERROR_STOP off (errors are compared too), VERBOSITY verbose (the
SQLSTATE and the server's source location are part of every error) and SHOW_CONTEXT always; stdout,
stderr and the exit status must be identical.  The scripts cover what the embedded DuckDB backend could
not do: PL/pgSQL and SQL functions, DO blocks, declarative partitions, arrays of two dimensions in a
column, unnamed indexes, numeric scale, materialized views, savepoints, psql's ``\\d``.  psycopg covers
rows of any size (to 50 MB), pipelined extended-protocol queries and the ParameterStatus messages a client
sees, across the pooled reuse of an upstream session.

Both sides use the same role (``ssltestuser``, not a superuser) owning a database of the same name, so
owners in ``\\d`` output agree.
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.pgserver import RealPostgres
from tests.pgtlsserver import PgtlsServer
from tests.relay.sidebyside import (
    ROLE,
    client_env,
    conninfo,
    direct_params,
    side_by_side,
    tls_params,
)

DB = "relaydiff"
SETTINGS_DB = "relaysettings"  # for ALTER ROLE/DATABASE ... SET (pools are per role and database)


@dataclass
class Pair:
    ours: PgtlsServer
    pg: RealPostgres
    certs: object
    keys: Path
    home: Path

    def params(self, side: str, dbname: str = DB, **extra: object) -> dict[str, object]:
        if side == "pgtls":
            return tls_params(self.ours, self.certs, self.keys, dbname, **extra)
        return direct_params(self.pg, dbname, **extra)


@pytest.fixture(scope="module")
def pair(certs, client_home) -> Iterator[Pair]:
    with side_by_side(certs, (DB, SETTINGS_DB), (DB, SETTINGS_DB)) as (ours, pg, keys):
        yield Pair(ours, pg, certs, keys, client_home)


def psql_script(p: Pair, side: str, script: str) -> tuple[int, str, str]:
    params = p.params(side)
    proc = subprocess.run(
        [
            "psql",
            "-X",
            "-a",
            "-v",
            "ON_ERROR_STOP=0",
            "-v",
            "VERBOSITY=verbose",
            "-v",
            "SHOW_CONTEXT=always",
            "-d",
            conninfo(params),
            "-f",
            "-",
        ],
        input=script,
        capture_output=True,
        text=True,
        env=client_env(p.home),
        timeout=60,
    )
    return proc.returncode, normalise(proc.stdout, params), normalise(proc.stderr, params)


def normalise(text: str, params: dict[str, object]) -> str:
    """Only what must differ: the two servers listen on different ports and are reached under different
    names (pgtls as localhost for verify-full, PostgreSQL by address), and psql names them in connection
    messages.  Nothing else is touched."""
    return text.replace(f"port {params['port']}", "port <port>").replace(f'"{params["host"]}"', '"<host>"')


def same_output(p: Pair, script: str) -> tuple[int, str, str]:
    ours = psql_script(p, "pgtls", script)
    theirs = psql_script(p, "direct", script)
    assert ours[2] == theirs[2], f"stderr differs\n--- pgtls ---\n{ours[2]}\n--- PostgreSQL ---\n{theirs[2]}"
    assert ours[1] == theirs[1], f"stdout differs\n--- pgtls ---\n{ours[1]}\n--- PostgreSQL ---\n{theirs[1]}"
    assert ours[0] == theirs[0]
    assert "psql: error" not in ours[2] and ours[1], "psql did not run the script"
    return theirs


# --- psql scripts ----------------------------------------------------------------------------------------


def test_functions_and_do_blocks(pair):
    out = same_output(
        pair,
        r"""
CREATE FUNCTION add_one(i int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  IF i IS NULL THEN
    RAISE EXCEPTION 'null input' USING ERRCODE = '22004', HINT = 'pass a number';
  END IF;
  RETURN i + 1;
END $$;
CREATE FUNCTION twice(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 * 2';
CREATE FUNCTION squares(n int) RETURNS TABLE(i int, sq int) LANGUAGE sql
  AS $$ SELECT g, g * g FROM generate_series(1, n) g $$;
CREATE FUNCTION body_sql(a int, b int) RETURNS int LANGUAGE sql RETURN a + b;
SELECT add_one(41), twice(21), body_sql(1, 2);
SELECT * FROM squares(3);
SELECT add_one(NULL);
SELECT add_one('x');
CREATE FUNCTION broken() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN nosuchcolumn; END $$;
SELECT broken();
DO $$ BEGIN RAISE NOTICE 'notice from DO: %', 42; RAISE WARNING 'warning from DO'; RAISE INFO 'info'; END $$;
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT * FROM squares(2) LOOP RAISE NOTICE 'row % %', r.i, r.sq; END LOOP;
END $$;
DO $$ BEGIN RAISE EXCEPTION 'boom %', 1 USING DETAIL = 'some detail'; END $$;
DO $$ BEGIN PERFORM 1 / 0; EXCEPTION WHEN division_by_zero THEN RAISE NOTICE 'caught %', SQLSTATE; END $$;
SET client_min_messages = warning;
DO $$ BEGIN RAISE NOTICE 'hidden'; RAISE WARNING 'shown'; END $$;
RESET client_min_messages;
CREATE OR REPLACE FUNCTION add_one(i int) RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN i + 100; END $$;
SELECT add_one(1);
\df add_one|twice|squares|body_sql|broken
\sf twice
DROP FUNCTION add_one(int), twice(int), squares(int), body_sql(int, int), broken();
""",
    )
    assert "notice from DO: 42" in out[2] and "caught 22012" in out[2] and "hidden" not in out[2]


def test_partitions(pair):
    same_output(
        pair,
        r"""
CREATE TABLE measurement (city_id int NOT NULL, logdate date NOT NULL, peaktemp int)
  PARTITION BY RANGE (logdate);
CREATE TABLE measurement_y2025 PARTITION OF measurement FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE measurement_y2026 PARTITION OF measurement FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE measurement_bad PARTITION OF measurement FOR VALUES FROM ('2025-06-01') TO ('2025-07-01');
INSERT INTO measurement VALUES (1, '2025-06-01', 30), (2, '2026-02-01', 5), (3, '2026-12-31', -3);
INSERT INTO measurement VALUES (4, '2030-01-01', 1);
SELECT tableoid::regclass AS part, * FROM measurement ORDER BY logdate;
UPDATE measurement SET logdate = '2025-01-05' WHERE city_id = 2;
SELECT tableoid::regclass AS part, count(*) FROM measurement GROUP BY 1 ORDER BY 1;
CREATE INDEX ON measurement (city_id);
EXPLAIN (COSTS OFF) SELECT * FROM measurement WHERE logdate = '2025-06-01';
CREATE TABLE lst (k text, v int) PARTITION BY LIST (k);
CREATE TABLE lst_ab PARTITION OF lst FOR VALUES IN ('a', 'b');
CREATE TABLE lst_def PARTITION OF lst DEFAULT;
CREATE TABLE hsh (id int) PARTITION BY HASH (id);
CREATE TABLE hsh_0 PARTITION OF hsh FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE hsh_1 PARTITION OF hsh FOR VALUES WITH (MODULUS 2, REMAINDER 1);
INSERT INTO lst VALUES ('a', 1), ('z', 2);
INSERT INTO hsh SELECT generate_series(1, 10);
SELECT tableoid::regclass AS part, * FROM lst ORDER BY k;
SELECT tableoid::regclass AS part, count(*) FROM hsh GROUP BY 1 ORDER BY 1;
ALTER TABLE lst DETACH PARTITION lst_def;
INSERT INTO lst VALUES ('q', 3);
\d measurement
\d+ lst
\d measurement_y2025
DROP TABLE measurement, lst, lst_def, hsh;
""",
    )


def test_arrays_numeric_and_text_functions(pair):
    same_output(
        pair,
        r"""
CREATE TABLE arr (id int, tags text[], grid int[][], "by" text);
INSERT INTO arr VALUES (1, '{a,b}', '{{1,2},{3,4}}', 'alice'),
                       (2, ARRAY['c', NULL, 'd e'], ARRAY[[5,6,7],[8,9,10]], 'bob');
SELECT id, tags, tags[1] AS first, grid, grid[2][1] AS g21, array_dims(grid), "by" FROM arr ORDER BY id;
SELECT by FROM arr ORDER BY by;
SELECT id FROM arr WHERE tags @> '{a}' OR 'd e' = ANY (tags) ORDER BY id;
SELECT unnest(grid) FROM arr WHERE id = 1;
INSERT INTO arr VALUES (3, '{a,b', NULL, NULL);
INSERT INTO arr (id, grid) VALUES (4, '{{1,2},{3}}');
INSERT INTO arr (id, grid) VALUES (5, '{{{1}}}');
SELECT id, array_ndims(grid) FROM arr ORDER BY id;
CREATE INDEX ON arr ("by");
CREATE INDEX ON arr (by, id);
CREATE INDEX ON arr USING gin (tags);
\d arr
CREATE TABLE num (a numeric(40,10), b numeric);
INSERT INTO num VALUES (123456789012345678901234567890.0123456789, 1.50), (-1.5, 0.000000000000000000001);
SELECT a, b, a * 2 AS a2, b + 1 AS b1, scale(b) FROM num ORDER BY a;
SELECT 1.50::numeric, 1.50::numeric * 2, 10::numeric / 3, scale(1.50::numeric), 1.50::numeric(5,1);
SELECT 12345678901234567890123456789012345678.0::numeric(40,10);
SELECT 'NaN'::numeric, 'Infinity'::numeric, 2::numeric ^ 200;
SELECT to_char(1234.5::numeric, 'FM9,999.00'), to_char(date '2026-01-02', 'YYYY-MM-DD Day'),
       to_char(interval '1 day 03:04:05', 'HH24:MI:SS'), to_char(-0.1, '99.99'), to_char(12, 'RN');
SELECT format('%s and %s', 'a', 42), format('%I.%L', 'My Table', E'it''s'), format('%2$s %1$s', 'x', 'y');
SELECT format('%s');
SELECT regexp_matches('foo1bar22baz333', '\d+', 'g');
SELECT regexp_matches('key=val; k2=v2', '(\w+)=(\w+)', 'g');
SELECT regexp_matches('abc', '(', 'g');
DROP TABLE arr, num;
""",
    )


def test_materialized_views_and_drop_lists(pair):
    same_output(
        pair,
        r"""
CREATE TABLE sales (region text, amount numeric(10,2));
INSERT INTO sales VALUES ('n', 10.50), ('s', 3), ('n', 1.25);
CREATE MATERIALIZED VIEW sales_by_region AS SELECT region, sum(amount) AS total FROM sales GROUP BY region;
SELECT * FROM sales_by_region ORDER BY region;
INSERT INTO sales VALUES ('e', 7);
SELECT * FROM sales_by_region ORDER BY region;
REFRESH MATERIALIZED VIEW sales_by_region;
SELECT * FROM sales_by_region ORDER BY region;
REFRESH MATERIALIZED VIEW CONCURRENTLY sales_by_region;
CREATE UNIQUE INDEX ON sales_by_region (region);
REFRESH MATERIALIZED VIEW CONCURRENTLY sales_by_region;
CREATE MATERIALIZED VIEW later AS SELECT 1 AS one WITH NO DATA;
SELECT * FROM later;
\d sales_by_region
\dm
DROP TABLE sales;
DROP MATERIALIZED VIEW sales_by_region, later;
CREATE TABLE a1 (i int);
CREATE TABLE b1 (i int);
CREATE TABLE IF NOT EXISTS a1 (i int);
DROP TABLE a1, b1;
DROP TABLE a1, b1;
DROP TABLE IF EXISTS a1, b1;
DROP TABLE sales;
""",
    )


def test_transactions_savepoints_and_errors(pair):
    same_output(
        pair,
        r"""
CREATE TABLE tx (i int PRIMARY KEY, CONSTRAINT small CHECK (i < 1000));
BEGIN;
INSERT INTO tx VALUES (1);
SAVEPOINT s1;
INSERT INTO tx VALUES (1);
SELECT 1;
ROLLBACK TO SAVEPOINT s1;
INSERT INTO tx VALUES (2);
SAVEPOINT s2;
INSERT INTO tx VALUES (3);
RELEASE SAVEPOINT s2;
ROLLBACK TO SAVEPOINT s2;
ROLLBACK TO s1;
SELECT i FROM tx ORDER BY i;
COMMIT;
SELECT i FROM tx ORDER BY i;
BEGIN;
INSERT INTO tx VALUES (10);
SELECT 1 / 0;
COMMIT;
SELECT i FROM tx ORDER BY i;
COMMIT;
BEGIN;
BEGIN;
INSERT INTO tx VALUES (5000);
ROLLBACK;
SET TRANSACTION ISOLATION LEVEL SERIALIZABLE;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SHOW transaction_isolation;
SET TRANSACTION ISOLATION LEVEL SERIALIZABLE;
COMMIT;
CREATE TABLE parent (id int PRIMARY KEY);
CREATE TABLE child (pid int REFERENCES parent DEFERRABLE INITIALLY DEFERRED);
BEGIN;
INSERT INTO child VALUES (7);
SAVEPOINT x;
SET CONSTRAINTS ALL IMMEDIATE;
ROLLBACK TO x;
COMMIT;
BEGIN READ ONLY;
INSERT INTO tx VALUES (11);
ROLLBACK;
PREPARE TRANSACTION 'nope';
SELECT i FROM tx ORDER BY i;
DROP TABLE child, parent, tx;
""",
    )


def test_describe_output(pair):
    same_output(
        pair,
        r"""
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posint AS int CHECK (VALUE > 0);
CREATE SEQUENCE ticket_seq START 100;
CREATE TABLE owners (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE pets (
  id bigserial PRIMARY KEY,
  owner_id int REFERENCES owners (id) ON DELETE CASCADE,
  name varchar(40) NOT NULL DEFAULT 'rex',
  feeling mood,
  legs posint,
  weight numeric(6,2) CHECK (weight > 0),
  born timestamptz DEFAULT now(),
  name_len int GENERATED ALWAYS AS (length(name)) STORED,
  ticket int DEFAULT nextval('ticket_seq'),
  UNIQUE (owner_id, name)
);
COMMENT ON TABLE pets IS 'animals';
COMMENT ON COLUMN pets.name IS 'what it answers to';
CREATE INDEX pets_lower_name ON pets (lower(name)) WHERE legs > 2;
CREATE VIEW pet_names AS SELECT p.name, o.name AS owner FROM pets p JOIN owners o ON o.id = p.owner_id;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.born := now(); RETURN NEW; END $$;
CREATE TRIGGER pets_touch BEFORE UPDATE ON pets FOR EACH ROW EXECUTE FUNCTION touch();
\d
\d pets
\d+ pets
\d owners
\d pet_names
\d+ pet_names
\di
\ds
\dT
\dD
\df touch
\dt nothing_matches
\d nothing_matches
DROP VIEW pet_names;
DROP TABLE pets, owners;
DROP FUNCTION touch();
DROP SEQUENCE ticket_seq;
DROP TYPE mood;
DROP DOMAIN posint;
\d
""",
    )


def test_notice_and_warning_forwarding(pair):
    out = same_output(
        pair,
        r"""
DROP TABLE IF EXISTS never_there;
CREATE TABLE IF NOT EXISTS nt (i int);
CREATE TABLE IF NOT EXISTS nt (i int);
COMMIT;
ROLLBACK;
SELECT set_config('client_min_messages', 'debug1', false);
DO $$ BEGIN RAISE DEBUG 'debug line'; RAISE LOG 'log line'; RAISE NOTICE 'n1'; RAISE WARNING 'w1'; END $$;
RESET client_min_messages;
CREATE FUNCTION noisy() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  RAISE NOTICE 'from noisy' USING DETAIL = 'a detail', HINT = 'a hint';
  RAISE WARNING 'careful' USING ERRCODE = '01000';
  RETURN 1;
END $$;
SELECT noisy() FROM generate_series(1, 3);
ALTER TABLE nt ADD COLUMN j int;
ALTER TABLE nt ADD COLUMN IF NOT EXISTS j int;
DROP FUNCTION noisy();
DROP TABLE nt;
""",
    )
    assert out[2].count("from noisy") == 3 and "debug line" in out[2]


# --- psycopg: big rows, pipelines, ParameterStatus --------------------------------------------------------

SIZES = (0, 1, 8191, 65536, (1 << 20) + 1, 50 << 20)


def _payload(size: int) -> str:
    block = hashlib.sha256(str(size).encode()).hexdigest()  # 64 characters, varied between sizes
    return (block * (size // 64 + 1))[:size]


def _big_rows(params: dict[str, object]) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    with psycopg.connect(**params, autocommit=True) as c:  # type: ignore[arg-type]
        c.execute("CREATE TEMP TABLE big (n int, t text, b bytea)")
        for n, size in enumerate(SIZES):
            text = _payload(size)
            c.execute("INSERT INTO big VALUES (%s, %s, %b)", [n, text, text.encode()])  # bytea in binary
            t, length, md5 = c.execute("SELECT t, length(t), md5(t) FROM big WHERE n = %s", [n]).fetchone()
            assert t == text and length == size
            out.append((size, length, md5))
        cur = c.cursor(binary=True)
        (b,) = cur.execute("SELECT b FROM big WHERE n = %s", [len(SIZES) - 1]).fetchone()
        assert b == _payload(SIZES[-1]).encode()
        (made,) = c.execute("SELECT repeat('x', 50 * 1024 * 1024) || 'end'").fetchone()
        out.append((len(made), made[-4:], c.execute("SELECT 1").fetchone()))
    return out


def test_rows_of_any_size(pair):
    assert _big_rows(pair.params("pgtls")) == _big_rows(pair.params("direct"))


def _pipeline(params: dict[str, object]) -> list[object]:
    out: list[object] = []
    with psycopg.connect(**params, autocommit=True) as c:  # type: ignore[arg-type]
        c.execute("CREATE TEMP TABLE p (i int PRIMARY KEY, s text)")
        with c.pipeline() as p:
            c.cursor().executemany("INSERT INTO p VALUES (%s, %s)", [(i, f"s{i}") for i in range(500)])
            curs = [
                c.execute("SELECT count(*), sum(i) FROM p"),
                c.execute("SELECT s FROM p WHERE i = %s", [7]),
                c.execute("SELECT %s::int + %s::int, %s::text[]", [1, 2, ["a", "b"]]),
            ]
            p.sync()
            out += [cur.fetchall() for cur in curs]
            curs = [c.execute("SELECT i FROM p WHERE i %% %s = 0 ORDER BY i", [100 + k]) for k in range(20)]
            out += [cur.fetchall() for cur in curs]
        try:
            with c.pipeline():
                c.execute("INSERT INTO p VALUES (%s, 'dup')", [1])
                c.execute("SELECT 1")
        except psycopg.Error as e:
            out.append((type(e).__name__, e.sqlstate, str(e)))
        try:
            with c.pipeline():
                first = c.execute("SELECT 'ok'")
                c.execute("SELECT 1 / %s", [0])
                c.execute("SELECT 2")
        except psycopg.Error as e:
            out.append((type(e).__name__, e.sqlstate, str(e)))
        out.append(first.fetchall())
        with c.transaction(), c.pipeline():
            c.execute("UPDATE p SET s = 'changed' WHERE i < 10")
            cur = c.execute("SELECT count(*) FROM p WHERE s = 'changed'")
        out.append(cur.fetchall())
        for _ in range(8):  # past psycopg's prepare threshold: named prepared statements
            out.append(c.execute("SELECT s FROM p WHERE i = %s", [9]).fetchone())
        out.append(c.execute("SELECT count(*) FROM p").fetchone())
    return out


def test_pipelined_extended_protocol(pair):
    ours = _pipeline(pair.params("pgtls"))
    assert ours == _pipeline(pair.params("direct"))
    assert ("UniqueViolation", "23505") in [
        tuple(x[:2]) for x in ours if isinstance(x, tuple) and len(x) == 3
    ]


REPORTED = (
    "application_name",
    "client_encoding",
    "DateStyle",
    "default_transaction_read_only",
    "in_hot_standby",
    "integer_datetimes",
    "IntervalStyle",
    "is_superuser",
    "scram_iterations",
    "search_path",
    "server_encoding",
    "server_version",
    "session_authorization",
    "standard_conforming_strings",
    "TimeZone",
)


def _status(c: psycopg.Connection) -> dict[str, str | None]:
    return {n: c.info.parameter_status(n) for n in REPORTED}


def _parameter_status(params: dict[str, object], pooled: bool) -> tuple[list[object], list[int]]:
    out: list[object] = []
    pids: list[int] = []
    with psycopg.connect(**params, application_name="first", autocommit=True) as c:  # type: ignore[arg-type]
        pids.append(c.execute("SELECT pg_backend_pid()").fetchone()[0])
        out.append(_status(c))
        c.execute("SET application_name = 'relay-test'")
        c.execute("SET TimeZone = 'America/New_York'")
        c.execute("SET DateStyle = 'SQL, DMY'")
        c.execute("SET search_path = pg_catalog, public")
        out.append(_status(c))
        out.append(c.execute("SELECT timestamptz '2026-07-01 12:00:00+00'::text").fetchone())
        with c.transaction():
            c.execute("SET TimeZone = 'Asia/Tokyo'")
            out.append(c.info.parameter_status("TimeZone"))
            c.execute("SET LOCAL IntervalStyle = 'iso_8601'")
            out.append(c.info.parameter_status("IntervalStyle"))
        out.append(_status(c))
        try:
            with c.transaction():
                c.execute("SET TimeZone = 'Europe/Berlin'")
                c.execute("SELECT 1 / 0")
        except psycopg.errors.DivisionByZero:
            pass
        out.append(_status(c))
    if pooled:
        time.sleep(0.5)  # the session goes back to the pool after its reset
    # the next client with the same startup parameters gets the same upstream session: it must look fresh
    with psycopg.connect(**params, application_name="first", autocommit=True) as c:  # type: ignore[arg-type]
        pids.append(c.execute("SELECT pg_backend_pid()").fetchone()[0])
        out.append(_status(c))
        out.append(c.execute("SHOW TimeZone").fetchone())
        out.append(
            c.execute("SELECT current_setting('DateStyle'), current_setting('search_path')").fetchone()
        )
    with psycopg.connect(
        **params,
        options="-c TimeZone=Europe/Paris -c DateStyle=German",  # type: ignore[arg-type]
        application_name="third",
    ) as c:
        out.append(_status(c))
        out.append(c.execute("SHOW TimeZone").fetchone())
    return out, pids


def test_parameter_status_seen_by_client(pair):
    ours, pids = _parameter_status(pair.params("pgtls"), True)
    theirs, _ = _parameter_status(pair.params("direct"), False)
    assert ours == theirs
    assert ours[1]["application_name"] == "relay-test" and ours[1]["TimeZone"] == "America/New_York"  # type: ignore[index]
    # the second client got the first one's upstream session back from the pool, reset
    assert pids[0] == pids[1], pids


# --- startup parameters and role/database settings -------------------------------------------------------

STARTUP_SETTINGS_BUG = (
    "pgtls bug: the relay applies the client's startup parameters with set_config() on a "
    "pooled session (RelayBackend._apply), so a parameter PostgreSQL accepts only at "
    "connection start is refused with FATAL"
)


def _startup(params: dict[str, object], options: str, show: str) -> tuple[object, ...]:
    try:
        with psycopg.connect(**params, options=options) as c:  # type: ignore[arg-type]
            return "ok", c.execute(f"SHOW {show}").fetchone(), _status(c)
    except psycopg.OperationalError as e:
        # the one thing that must differ: libpq names the server's address and port in the message
        return "refused", str(e).replace(f"port {params['port']} failed", "port <port> failed").replace(
            f'"{params.get("hostaddr", params["host"])}"', '"<host>"'
        )


@pytest.mark.parametrize(
    "options,show",
    [
        ("-c TimeZone=Europe/Paris --DateStyle=German", "DateStyle"),
        ("-c work_mem=64kB -c myapp.flag=1", "myapp.flag"),
        ("--statement-timeout=5s -c search_path=pg_catalog", "statement_timeout"),
        ("-c default_transaction_read_only=on", "default_transaction_read_only"),
        ("-c TimeZone=Nowhere", "TimeZone"),
        ("-c nosuch=1", "TimeZone"),
        ("-c log_min_messages=debug1", "TimeZone"),
        ("-c shared_buffers=1MB", "TimeZone"),
        ("-c session_authorization=postgres", "TimeZone"),
        ("-c role=postgres", "TimeZone"),
        ("-x", "TimeZone"),
        ("-c ignore_system_indexes=on", "ignore_system_indexes"),  # PGC_BACKEND: only at connection start
        ("-c transaction_isolation=serializable", "transaction_isolation"),
    ],
)
def test_startup_options(pair, options, show):
    ours = _startup(pair.params("pgtls"), options, show)
    assert ours == _startup(pair.params("direct"), options, show)


def _reset_values(params: dict[str, object]) -> list[object]:
    out: list[object] = []
    with psycopg.connect(
        **params,
        options="-c work_mem=64kB",
        application_name="startapp",  # type: ignore[arg-type]
        autocommit=True,
    ) as c:
        out.append(
            c.execute(
                "SELECT name, setting, source FROM pg_settings"
                " WHERE name IN ('application_name', 'work_mem') ORDER BY name"
            ).fetchall()
        )
        c.execute("SET work_mem = '128kB'")
        c.execute("RESET work_mem")
        out.append(c.execute("SHOW work_mem").fetchone())
        c.execute("RESET ALL")
        out.append(
            (c.execute("SHOW application_name").fetchone(), c.info.parameter_status("application_name"))
        )
        c.execute("DISCARD ALL")
        out.append((c.execute("SHOW work_mem").fetchone(), c.info.parameter_status("application_name")))
    return out


def test_startup_parameters_are_reset_values(pair):
    assert _reset_values(pair.params("pgtls")) == _reset_values(pair.params("direct"))


def _role_database_settings(params: dict[str, object], pooled: bool) -> list[object]:
    out: list[object] = []
    show = "SELECT current_setting('lock_timeout'), current_setting('statement_timeout')"
    with psycopg.connect(**params, autocommit=True) as c:  # type: ignore[arg-type]
        out.append(c.execute(show).fetchone())
        c.execute(f"ALTER ROLE {ROLE} IN DATABASE {SETTINGS_DB} SET lock_timeout = '3s'")
        c.execute(f"ALTER DATABASE {SETTINGS_DB} SET statement_timeout = '7s'")
    if pooled:
        time.sleep(0.5)  # back in the pool
    with psycopg.connect(**params, autocommit=True) as c:  # type: ignore[arg-type]
        out.append(c.execute(show).fetchone())
        c.execute(f"ALTER ROLE {ROLE} IN DATABASE {SETTINGS_DB} RESET lock_timeout")
        c.execute(f"ALTER DATABASE {SETTINGS_DB} RESET statement_timeout")
    if pooled:
        time.sleep(0.5)
    with psycopg.connect(**params, autocommit=True) as c:  # type: ignore[arg-type]
        out.append(c.execute(show).fetchone())
    return out


def test_role_and_database_settings_reach_the_next_connection(pair):
    ours = _role_database_settings(pair.params("pgtls", SETTINGS_DB), True)
    assert ours == _role_database_settings(pair.params("direct", SETTINGS_DB), False)
