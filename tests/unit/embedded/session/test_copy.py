"""COPY FROM STDIN / TO STDOUT of the embedded backend."""

from __future__ import annotations

import threading
import time

import pytest

from pgtls.backends.embedded.session import copy_out
from pgtls.backends.embedded.session.copy_protocol import CopyState
from tests.pgwire_util import errors, fe, rows, tags


def test_copy_in_text(db):
    db.query("CREATE TABLE t (a int, b text, c bytea)")
    msgs = db.query("COPY t FROM STDIN")
    assert [m.kind for m in msgs] == ["G"] and msgs[0]["column_formats"] == [0, 0, 0]
    assert db.status is None
    msgs = db.send(
        fe.copy_data("1\thello\\tworld\t\\\\x0102\n2\t\\N\t\\N\n"),
        fe.copy_data("3\tx"),
        fe.copy_data("y\t\\\\x\n"),
        fe.copy_done(),
    )
    assert [m.kind for m in msgs] == ["C", "Z"] and tags(msgs) == ["COPY 3"]
    assert db.rows("SELECT a, b, c FROM t ORDER BY a") == [
        ["1", "hello\tworld", "\\x0102"],
        ["2", None, None],
        ["3", "xy", "\\x"],
    ]


def test_copy_in_csv_header(db):
    db.query("CREATE TABLE t (a int, b text)")
    db.query("COPY t (a, b) FROM STDIN WITH (FORMAT csv, HEADER true)")
    msgs = db.send(fe.copy_data('a,b\n1,"x,y"\n2,\n3,""\n4,"multi\nline"\n'), fe.copy_done())
    assert tags(msgs) == ["COPY 4"]
    assert db.rows("SELECT a, b FROM t ORDER BY a") == [
        ["1", "x,y"],
        ["2", None],
        ["3", ""],
        ["4", "multi\nline"],
    ]


def test_copy_fail_rolls_back(db):
    db.query("CREATE TABLE t (a int)")
    db.query("COPY t FROM STDIN")
    msgs = db.send(fe.copy_data("1\n2\n"), fe.copy_fail("client gave up"))
    assert errors(msgs)[0]["C"] == "57014"
    assert errors(msgs)[0]["M"] == "COPY from stdin failed: client gave up"
    assert msgs[-1].kind == "Z"
    assert db.value("SELECT count(*) FROM t") == "0"


def test_copy_in_bad_data(db):
    db.query("CREATE TABLE t (a int)")
    db.query("COPY t FROM STDIN")
    msgs = db.send(fe.copy_data("1\nnot a number\n"), fe.copy_done())
    assert errors(msgs)[0]["C"] == "22P02"
    assert db.value("SELECT count(*) FROM t") == "0"


def test_copy_out_text_and_csv(db):
    db.query("CREATE TABLE t (a int, b text, c bool)")
    db.query("INSERT INTO t VALUES (1, 'a\tb', true), (2, NULL, false), (3, 'x,\"y\"', NULL)")
    msgs = db.query("COPY t TO STDOUT")
    assert [m.kind for m in msgs] == ["H", "d", "d", "d", "c", "C", "Z"]
    assert b"".join(m["data"] for m in msgs if m.kind == "d") == b'1\ta\\tb\tt\n2\t\\N\tf\n3\tx,"y"\t\\N\n'
    assert tags(msgs) == ["COPY 3"]
    msgs = db.query("COPY (SELECT a, b FROM t ORDER BY a) TO STDOUT WITH CSV HEADER")
    assert b"".join(m["data"] for m in msgs if m.kind == "d") == b'a,b\n1,a\tb\n2,\n3,"x,""y"""\n'


def test_copy_then_more_statements(db):
    db.query("CREATE TABLE t (a int)")
    msgs = db.query("COPY t FROM STDIN; SELECT count(*) FROM t")
    assert [m.kind for m in msgs] == ["G"]
    msgs = db.send(fe.copy_data("5\n6\n"), fe.copy_done())
    assert tags(msgs) == ["COPY 2", "SELECT 1"] and rows(msgs) == [["2"]]


def test_copy_in_extended(db):
    db.query("CREATE TABLE t (a int)")
    msgs = db.send(fe.parse("COPY t FROM STDIN"), fe.bind(), fe.execute())
    assert [m.kind for m in msgs] == ["1", "2", "G"]
    msgs = db.send(fe.copy_data("7\n"), fe.copy_done(), fe.sync())
    assert [m.kind for m in msgs] == ["C", "Z"]
    assert db.value("SELECT a FROM t") == "7"


# --- COPY TO with DuckDB making the lines (session/copy_out.py) --------------------------------------------------------

COPY_TABLE = (
    "CREATE TABLE ct (k int, i2 int2, i4 int4, i8 int8, n numeric(12,3), nf numeric, f8 float8, f4 float4, b bool,"
    " t text, vc varchar(20), d date, tm time, ts timestamp, tz timestamptz, u uuid, bt bytea, j json,"
    " iv interval, ia int[], ta text[])"
)
# Values both PostgreSQL 15 and pgtls take, and whose text the Python encoders (the path COPY took before
# session/copy_out.py) print as PostgreSQL does: escapes, quotes, delimiters, unicode, empty string vs NULL, '\.'.
COPY_ROWS = [
    "INSERT INTO ct VALUES (1, -32768, 2147483647, -9223372036854775808, 123456789.125, 1.5, 1.5, 1.5, true, 'plain',"
    " 'v', '2024-01-02', '12:34:56.789', '2024-01-02 03:04:05.123456', '2024-01-02 03:04:05.5+00',"
    " 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\\x00ff5c0a'::bytea, '{\"a\": [1, \"x\\ty\"]}',"
    " '1 year 2 mons 3 days 04:05:06.789', ARRAY[1,2,NULL], ARRAY['a b', 'x,y', 'q\"z', NULL, ''])",
    "INSERT INTO ct (k) VALUES (2)",
    "INSERT INTO ct (k, t, vc, f8, f4, nf, bt, iv, b) VALUES (3, E'tab\\there\\nnl\\rcr\\\\bs', '', 'NaN', 'NaN', 100,"
    " '\\x01'::bytea, '-1 days', false)",
    "INSERT INTO ct (k, t, vc, f8, f4, nf) VALUES (4, 'q\"uo,te|pipe''s', '\\.', 'Infinity', '-Infinity', -0.00000001)",
    "INSERT INTO ct (k, t, vc, f8, f4, n) VALUES (5, 'ünïcödé 😀 €', '\\N', 1e20, 1234567, 0)",
    "INSERT INTO ct (k, t, vc, f8, f4, n, d, ts, tz) VALUES (6, E'\\b\\f\\v-x 1:2', 'NULL', 1e-5, 0.1, -0.001,"
    " '0001-01-01', '1999-12-31 23:59:59', '1970-01-01 00:00:00+00')",
    "INSERT INTO ct (k, t, vc, f8, f4) VALUES (7, '', ' ', 1e15, 1e6)",
    "INSERT INTO ct (k, t, vc, f8, f4) VALUES (8, '\\.', 'a\\b', 1234567890123456.7, 3.4028235e38)",
    "INSERT INTO ct (k, t, f8, f4) VALUES (9, '1', -0.0, -0.0)",
    "INSERT INTO ct (k, t, f8, f4) VALUES (10, '\"', 5e-324, 1e-40)",
    "INSERT INTO ct (k, t, f8) VALUES (11, '!', 1.7976931348623157e308)",
    "INSERT INTO ct (k, t, f8) VALUES (12, '!\"', 100)",
    "INSERT INTO ct (k, t, f8) VALUES (13, E'x\\r\\ny', 0.1)",
]
# Where the Python encoders are not PostgreSQL's: infinite dates and timestamps (Python has no infinity) and
# shortest float digits exactly half-way between two floats (PostgreSQL's ryu never takes an interval bound).
COPY_ROWS_PG_ONLY = [
    "INSERT INTO ct (k, d, ts, tz, f8, f4) VALUES (20, 'infinity', 'infinity', 'infinity', 2.0034855448587448e16,"
    " 83166384)",
    "INSERT INTO ct (k, d, ts, tz, f8, f4) VALUES (21, '-infinity', '-infinity', '-infinity', -4.5756674615126723e18,"
    " 1209111.25)",
]
COPY_OPTIONS = [
    "", "(HEADER)", "(DELIMITER '|', NULL 'NULL')", "(DELIMITER ',')", "(DELIMITER '-')", "(DELIMITER ' ')",
    "(DELIMITER ':')", "(FORMAT csv)", "(FORMAT csv, HEADER)", "(FORMAT csv, DELIMITER '|', QUOTE '''')",
    "(FORMAT csv, ESCAPE '\\')", "(FORMAT csv, QUOTE '!', ESCAPE '\"')", "(FORMAT csv, NULL 'NULL', FORCE_QUOTE *)",
    "(FORMAT csv, FORCE_QUOTE (t, i4, f8, d))", "(FORMAT csv, NULL '1')", "(FORMAT csv, DELIMITER '-')",
    "(FORMAT csv, DELIMITER ' ', NULL 'x')", "(FORMAT csv, DELIMITER ':', HEADER)", "(FORMAT csv, NULL '\\N')",
    "CSV HEADER FORCE QUOTE t, k", "WITH DELIMITER AS ';' NULL AS 'nil'",
]  # fmt: skip
# Column sets: all of them (interval and arrays are Python-formatted between DuckDB-made segments), only
# DuckDB-made ones (whole CopyData messages from DuckDB), and one column (CSV quotes a lone '\.').
COPY_COLUMNS = [
    "*",
    "k, i2, i4, i8, n, nf, f8, f4, b, t, vc, d, tm, ts, tz, u, bt, j",
    "t",
    "vc",
    "f8, f4",
    "tz",
]


def _copy_bytes(d, sql: str) -> bytes | str:
    msgs = d.query(sql)
    errs = errors(msgs)
    if errs:
        return f"ERROR {errs[0]['C']} {errs[0]['M']}"
    assert msgs[0].kind == "H" and msgs[-1].kind == "Z" and msgs[-3].kind == "c"
    return b"".join(m["data"] for m in msgs if m.kind == "d")


def _copy_statements(columns: str) -> list[str]:
    """COPY (query) with every option (FORCE_QUOTE ones where their columns are there), and COPY table for
    the wide column sets (the table's order is insertion order in both servers)."""
    table = "ct" if columns == "*" else f"ct ({columns})"
    out = []
    for opts in COPY_OPTIONS:
        if "FORCE" in opts and columns != "*" and not {"t", "k", "i4", "f8", "d"} <= set(columns.split(", ")):
            continue
        out.append(f"COPY (SELECT {columns} FROM ct ORDER BY k) TO STDOUT {opts}")
        if "," in columns or columns == "*":
            out.append(f"COPY {table} TO STDOUT {opts}")
    return out


@pytest.fixture
def copy_db(db):
    db.query(COPY_TABLE)
    for sql in COPY_ROWS:
        assert not errors(db.query(sql)), sql
    return db


def test_copy_out_duckdb_lines_equal_python_formatting(copy_db, monkeypatch):
    """Every option and column set: the bytes DuckDB makes are the bytes the Python encoders make."""
    plans: list[copy_out.Plan] = []
    real_plan = copy_out.plan
    monkeypatch.setattr(copy_out, "plan", lambda *a: plans.append(real_plan(*a)) or plans[-1])
    statements = [s for c in COPY_COLUMNS for s in _copy_statements(c)]
    fast = [_copy_bytes(copy_db, s) for s in statements]
    assert len(plans) == len(statements) and any(p.framed for p in plans) and not all(p.framed for p in plans)
    monkeypatch.setattr(CopyState, "_describe", lambda self, sql: None)  # the Python path for everything
    for sql, got in zip(statements, fast, strict=True):
        assert isinstance(got, bytes), (sql, got)
        assert got == _copy_bytes(copy_db, sql), sql


def test_copy_out_one_copydata_per_row(copy_db):
    """PostgreSQL sends one row per CopyData message, and psycopg's Copy.rows() relies on it."""
    for sql in ("COPY (SELECT k, t FROM ct ORDER BY k) TO STDOUT (FORMAT csv, HEADER)",
                "COPY (SELECT k, t, iv FROM ct ORDER BY k) TO STDOUT (FORMAT csv, HEADER)"):  # fmt: skip
        msgs = copy_db.query(sql)
        data = [m["data"] for m in msgs if m.kind == "d"]
        assert len(data) == len(COPY_ROWS) + 1 and tags(msgs) == [f"COPY {len(COPY_ROWS)}"]
        assert data[0].startswith(b"k,t") and all(x.endswith(b"\n") for x in data)
        assert data[3] == b'3,"tab\there\nnl\rcr\\bs"' + (b",-1 days\n" if b"iv" in data[0] else b"\n")


def test_copy_out_values_needing_escapes(db):
    """Expected bytes as PostgreSQL 15 gives them for the same table."""
    db.query("CREATE TABLE e (a text, b int, c float8)")
    db.query("INSERT INTO e VALUES (E'a\\tb\\nc\\rd\\\\e', 1, 1.5), ('', NULL, NULL), (NULL, -2, 'NaN'), "
             "('ünï,\"q\"', 3, 1e16), ('\\.', 4, 100)")  # fmt: skip
    assert _copy_bytes(db, "COPY e TO STDOUT") == (
        b'a\\tb\\nc\\rd\\\\e\t1\t1.5\n\t\\N\t\\N\n\\N\t-2\tNaN\n\xc3\xbcn\xc3\xaf,"q"\t3\t1e+16\n\\\\.\t4\t100\n'
    )
    assert _copy_bytes(db, "COPY e (a) TO STDOUT (FORMAT csv)") == (
        b'"a\tb\nc\rd\\e"\n""\n\n"\xc3\xbcn\xc3\xaf,""q"""\n"\\."\n'
    )
    assert _copy_bytes(db, "COPY e TO STDOUT (FORMAT csv, QUOTE '''', ESCAPE '\\', NULL 'NULL', HEADER)") == (
        b"a,b,c\n'a\tb\nc\rd\\\\e',1,1.5\n,NULL,NULL\nNULL,-2,NaN\n'\xc3\xbcn\xc3\xaf,\"q\"',3,1e+16\n\\.,4,100\n"
    )
    assert _copy_bytes(db, "COPY e TO STDOUT (DELIMITER '-', NULL '')") == (
        b'a\\tb\\nc\\rd\\\\e-1-1.5\n--\n-\\-2-NaN\n\xc3\xbcn\xc3\xaf,"q"-3-1e+16\n\\\\.-4-100\n'
    )
    assert _copy_bytes(db, "COPY e (b, a) TO STDOUT (FORMAT csv, FORCE_QUOTE *, NULL 'x')") == (
        b'"1","a\tb\nc\rd\\e"\nx,""\n"-2",x\n"3","\xc3\xbcn\xc3\xaf,""q"""\n"4","\\."\n'
    )
    assert _copy_bytes(db, "COPY e TO STDOUT (HEADER, DELIMITER '|')").startswith(b"a|b|c\na\\tb\\nc")


def test_copy_out_without_arrow_stream(copy_db, monkeypatch):
    """When the Arrow stream cannot be read, the CopyData messages DuckDB made come through fetchmany."""
    sql = "COPY (SELECT k, t, f8, d FROM ct ORDER BY k) TO STDOUT (FORMAT csv)"
    expected = _copy_bytes(copy_db, sql)

    def no_stream(self, capsule):
        raise copy_out.StreamError("test")

    monkeypatch.setattr(copy_out.BlobStream, "__init__", no_stream)
    assert _copy_bytes(copy_db, sql) == expected and expected.startswith(b"1,plain,1.5,2024-01-02\n2,,,\n")


def test_copy_out_errors(db):
    msgs = db.query("COPY (SELECT CASE WHEN i = 250000 THEN CAST('x' || i AS int) ELSE i END FROM range(300000) t(i))"
                    " TO STDOUT")  # fmt: skip
    kinds = [m.kind for m in msgs]
    # rows (as many as DuckDB's threads made before one of them failed), then the error ends COPY
    assert kinds[-2:] == ["E", "Z"] and "c" not in kinds and (kinds[0] == "H" or kinds == ["E", "Z"])
    assert errors(msgs)[0]["C"] == "22P02"
    assert db.value("SELECT 42") == "42"
    assert db.error("COPY (SELECT * FROM nope) TO STDOUT")["C"] == "42P01"
    assert (
        db.error("COPY (SELECT 1 AS a) TO STDOUT (FORMAT csv, FORCE_QUOTE (zz))")["M"]
        == 'column "zz" does not exist'
    )
    db.query("CREATE TABLE ft (a int, b text)")
    assert db.error("COPY ft (a) TO STDOUT (FORMAT csv, FORCE_QUOTE (b))")["C"] == "42P10"
    for opts, state, message in (
        ("(DELIMITER 'ab')", "0A000", "COPY delimiter must be a single one-byte character"),
        ("(DELIMITER 'é')", "0A000", "COPY delimiter must be a single one-byte character"),
        ("(QUOTE '''')", "0A000", "COPY quote available only in CSV mode"),
        ("(FORMAT text, FORCE_QUOTE (a))", "0A000", "COPY force quote available only in CSV mode"),
        ("(FORMAT csv, DELIMITER 'x', NULL 'axb')", "0A000", "COPY delimiter must not appear in the NULL specification"),
        ("(DELIMITER 'a')", "22023", 'COPY delimiter cannot be "a"'),
        ("(FORMAT csv, FORCE_QUOTE a)", "22023", 'argument to option "force_quote" must be a list of column names'),
    ):  # fmt: skip
        err = db.error(f"COPY ft TO STDOUT {opts}")
        assert (err["C"], err["M"]) == (state, message), opts


def test_copy_out_cancel(db):
    """A cancel request (the session's _running event, cur.interrupt()) stops COPY TO while it streams."""
    session = db.session
    sent = []

    def send(data: bytes) -> None:
        sent.append(data)
        time.sleep(0.001)  # a slow client

    done: list[str | None] = []
    kind, body = fe.query("SELECT 1")  # warm up
    session.handle(kind, body, lambda b: None)
    kind, body = fe.query("COPY (SELECT i, repeat('x', 100) FROM range(20000000) t(i)) TO STDOUT")
    worker = threading.Thread(target=lambda: done.append(session.handle(kind, body, send)))
    worker.start()
    deadline = time.monotonic() + 10
    while not sent and time.monotonic() < deadline:
        time.sleep(0.01)
    session.cancel()
    worker.join(10)
    assert not worker.is_alive() and done == ["I"]
    assert b"C57014\x00Mcanceling statement due to user request" in b"".join(sent[-3:])
    assert db.value("SELECT 43") == "43"


# --- the same COPY TO statements against PostgreSQL 15 ---------------------------------------------------------


@pytest.fixture(scope="module")
def pg_and_ours(tmp_path_factory):
    from tests.pgwire_util import postgres_and_session

    setup = ["SET TimeZone = 'UTC'", COPY_TABLE, *COPY_ROWS, *COPY_ROWS_PG_ONLY]
    with postgres_and_session(tmp_path_factory.mktemp("copyout"), setup) as pair:
        yield pair


def _pg_copy(conn, sql: str) -> bytes | str:
    import psycopg

    try:
        with conn.cursor().copy(sql) as cp:
            return b"".join(bytes(chunk) for chunk in cp)
    except psycopg.Error as e:
        return f"ERROR {e.sqlstate} {e.diag.message_primary}"


@pytest.mark.pg
@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata"])
def test_copy_out_same_bytes_as_postgres(pg_and_ours, zone):
    """Text and CSV COPY TO of every type the embedded backend formats, with every option, byte for byte as
    PostgreSQL 15 (timestamptz outside UTC is Python-formatted; infinity included)."""
    conn, d = pg_and_ours
    conn.execute(f"SET TimeZone = '{zone}'")
    d.query(f"SET TimeZone = '{zone}'")
    columns = COPY_COLUMNS if zone == "UTC" else ["*", "tz", "k, tz, t"]
    mismatches = []
    for sql in [s for c in columns for s in _copy_statements(c)]:
        ours, theirs = _copy_bytes(d, sql), _pg_copy(conn, sql)
        if sql.startswith("COPY ct") and isinstance(ours, bytes) and isinstance(theirs, bytes):
            ours, theirs = sorted(ours.split(b"\n")), sorted(theirs.split(b"\n"))  # CSV rows may span lines
        if ours != theirs:
            mismatches.append((sql, theirs, ours))
    assert not mismatches, mismatches[:3]


@pytest.mark.pg
def test_copy_out_floats_as_postgres(pg_and_ours):
    """float8/float4 text: shortest digits, exponent layout, and PostgreSQL's choice at half-way points."""
    conn, d = pg_and_ours
    doubles = [1.5, 0.1, 1e15, 1e16, 123456.0, 1234567.0, 9007199254740993.0, 2.0**60, 4.5756674615126723e18,
               2.003485544858745e16, 3.14159265358979, 1e-4, 1.2e-5, 1e-320, 1e300, 7.5e37, 4.3e37]  # fmt: skip
    singles = [
        1.5,
        0.1,
        123456.0,
        1234567.0,
        83166384.0,
        1209111.25,
        3.4028235e38,
        1e-40,
        1e-4,
        1.2e-5,
        16777217.0,
    ]
    sqls = []
    for values, cast in ((doubles, "x"), (singles, "CAST(x AS float4)")):
        arr = "ARRAY[" + ", ".join(repr(v) for v in values + [-v for v in values]) + "]::float8[]"
        sqls += [f"COPY (SELECT {cast}, x FROM unnest({arr}) AS u(x)) TO STDOUT",
                 f"COPY (SELECT {cast} FROM unnest({arr}) AS u(x)) TO STDOUT (FORMAT csv, FORCE_QUOTE *)"]  # fmt: skip
    for sql in sqls:
        assert _copy_bytes(d, sql) == _pg_copy(conn, sql)
