"""Cancel, concurrency, durability and catalog behaviour of the embedded backend."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from pgtls.backends.embedded import EmbeddedBackend, create_database
from tests.pgwire_util import FakeSettings, errors, open_driver, rows, tags

LONG_QUERY = "SELECT count(*) FROM range(100000000000) a"


def test_cancel_interrupts_running_query(db):
    result: dict[str, object] = {}

    def run() -> None:
        result["msgs"] = db.query(LONG_QUERY)

    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.5)
    started = time.monotonic()
    db.session.cancel()
    t.join(10)
    assert not t.is_alive()
    assert time.monotonic() - started < 5
    msgs = result["msgs"]
    err = errors(msgs)[0]
    assert (err["C"], err["M"]) == ("57014", "canceling statement due to user request")
    assert msgs[-1]["status"] == "I"
    assert db.value("SELECT 1") == "1"  # the session is usable afterwards


def test_cancel_when_idle_is_harmless(db):
    db.session.cancel()
    assert db.value("SELECT 42") == "42"


def test_concurrent_update_gives_serialization_failure(backend, registry):
    a = open_driver(backend, registry, pid=2001)
    b = open_driver(backend, registry, pid=2002)
    try:
        a.query("CREATE TABLE acct (id int PRIMARY KEY, balance int)")
        a.query("INSERT INTO acct VALUES (1, 100)")
        a.query("BEGIN")
        b.query("BEGIN")
        assert tags(a.query("UPDATE acct SET balance = balance - 10 WHERE id = 1")) == ["UPDATE 1"]
        msgs = b.query("UPDATE acct SET balance = balance - 20 WHERE id = 1")
        assert errors(msgs)[0]["C"] == "40001"
        assert msgs[-1]["status"] == "E"
        assert tags(a.query("COMMIT")) == ["COMMIT"]
        assert tags(b.query("COMMIT")) == ["ROLLBACK"]
        assert a.value("SELECT balance FROM acct") == "90"
    finally:
        a.session.close()
        b.session.close()


def test_sessions_are_isolated(backend, registry):
    a = open_driver(backend, registry, pid=2003)
    b = open_driver(backend, registry, pid=2004)
    try:
        a.query("CREATE TABLE iso (x int)")
        a.query("BEGIN; INSERT INTO iso VALUES (1)")
        assert b.value("SELECT count(*) FROM iso") == "0"
        a.query("COMMIT")
        assert b.value("SELECT count(*) FROM iso") == "1"
        a.query("SET TimeZone = 'Asia/Tokyo'")
        assert b.value("SHOW TimeZone") == "UTC"
    finally:
        a.session.close()
        b.session.close()


def test_committed_data_survives_kill_9(tmp_path: Path):
    create_database(tmp_path, "postgres")
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[4])!r})
        from pathlib import Path
        from pgtls.backends.base import SessionInfo
        from pgtls.backends.embedded import EmbeddedBackend
        from tests.pgwire_util import SessionDriver, SimpleRegistry
        be = EmbeddedBackend(Path({str(tmp_path)!r}))
        d = SessionDriver(be.open_session(SessionInfo(1, "u", "postgres", None, None), SimpleRegistry()))
        d.query("CREATE TABLE durable (x int)")
        d.query("INSERT INTO durable SELECT * FROM range(1000)")
        d.query("BEGIN; INSERT INTO durable VALUES (-1)")  # never committed
        print("ready", flush=True)
        sys.stdin.readline()
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"ready"
    proc.kill()  # SIGKILL: no close, no checkpoint
    proc.wait()
    be = EmbeddedBackend(tmp_path)
    try:
        from pgtls.backends.base import SessionInfo
        from tests.pgwire_util import SessionDriver, SimpleRegistry

        d = SessionDriver(be.open_session(SessionInfo(2, "u", "postgres", None, None), SimpleRegistry()))
        assert d.rows("SELECT count(*), min(x) FROM durable") == [["1000", "0"]]
        d.session.close()
    finally:
        be.close()


def test_pg_stat_activity(db):
    msgs = db.query("SELECT pid, usename, datname, client_addr, state, query FROM pg_stat_activity")
    assert rows(msgs) == [["1001", "alice", "postgres", "127.0.0.1", "active", "SELECT 1"]]


def test_psql_catalog_queries(db):
    db.query("CREATE TABLE t (a int PRIMARY KEY, b text NOT NULL DEFAULT 'x')")
    # \\l
    assert db.rows("""SELECT d.datname as "Name", pg_catalog.pg_get_userbyid(d.datdba) as "Owner",
        pg_catalog.pg_encoding_to_char(d.encoding) as "Encoding", d.datcollate as "Collate",
        pg_catalog.array_to_string(d.datacl, E'\\n') AS "Access privileges"
        FROM pg_catalog.pg_database d ORDER BY 1""") == [["postgres", "alice", "UTF8", "C", None]]
    # \\dt
    assert db.rows("""SELECT n.nspname as "Schema", c.relname as "Name",
        CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' END as "Type",
        pg_catalog.pg_get_userbyid(c.relowner) as "Owner"
        FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam
        WHERE c.relkind IN ('r','p','') AND n.nspname <> 'pg_catalog' AND n.nspname !~ '^pg_toast'
        AND n.nspname <> 'information_schema' AND pg_catalog.pg_table_is_visible(c.oid)
        ORDER BY 1,2""") == [["public", "t", "table", "alice"]]
    # \\d t
    oid = db.value("""SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c
        LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relname OPERATOR(pg_catalog.~) '^(t)$' COLLATE pg_catalog.default
        AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 2, 3""")
    assert db.rows(f"""SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),
        (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid, true) FROM pg_catalog.pg_attrdef d
         WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef), a.attnotnull
        FROM pg_catalog.pg_attribute a WHERE a.attrelid = '{oid}' AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum""") == [["a", "integer", None, "t"], ["b", "text", "'x'", "t"]]
    for catalog in ("pg_policy", "pg_inherits", "pg_publication", "pg_statistic_ext", "pg_trigger"):
        assert db.rows(f"SELECT count(*) FROM pg_catalog.{catalog}") == [["0"]]
    assert db.rows("SELECT rolname, rolsuper FROM pg_catalog.pg_roles") == [["alice", "t"]]
    # tab completion
    assert db.rows("""SELECT pg_catalog.quote_ident(c.relname) FROM pg_catalog.pg_class c
        WHERE c.relkind IN ('r', 'S', 'v', 'm', 'f', 'p')
        AND substring(pg_catalog.quote_ident(c.relname),1,1)='t' AND pg_catalog.pg_table_is_visible(c.oid)
        LIMIT 1000""") == [["t"]]
    assert db.value("SELECT current_schema()") == "public"


def _open_files_under(*dirs: Path) -> list[str]:
    """This process's open file descriptors on files inside ``dirs`` (from /proc/self/fd)."""
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if any(target.startswith(f"{d}/") for d in dirs):
            out.append(target)
    return out


def test_embedded_backend_close_releases_files(tmp_path: Path, registry):
    """After close(): no descriptor left on the database file or the catalog, the catalog's temporary
    directory gone, and another process can open the database read-write and sees the committed row."""
    create_database(tmp_path, "postgres")
    be = EmbeddedBackend(
        tmp_path, FakeSettings()
    )  # idle databases stay open (IDLE_CLOSE_SECONDS) until close()
    d = open_driver(be, registry)
    assert not errors(d.query("CREATE TABLE kept (a int); INSERT INTO kept VALUES (7)"))
    d.session.close()
    catalog_dir = Path(be._catalog_dir or "")
    assert be._catalog_dir is not None and catalog_dir.is_dir()
    held = _open_files_under(tmp_path.resolve(), catalog_dir.resolve())
    assert any(f.endswith(".duckdb") for f in held), held  # the check sees an open database file
    be.close()
    assert _open_files_under(tmp_path.resolve(), catalog_dir.resolve()) == []
    assert not catalog_dir.exists()
    [db_file] = (tmp_path / "base").glob("postgres.duckdb")
    code = "import duckdb, sys; c = duckdb.connect(sys.argv[1]); c.execute('INSERT INTO public.kept VALUES (8)'); " \
           "print(c.execute('SELECT list(a ORDER BY a) FROM public.kept').fetchone()[0])"  # fmt: skip
    p = subprocess.run([sys.executable, "-c", code, str(db_file)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[7, 8]"


def test_statement_timeout(db):
    db.query("SET statement_timeout = '300ms'")
    started = time.monotonic()
    err = db.error(LONG_QUERY)
    assert (err["C"], err["M"]) == ("57014", "canceling statement due to statement timeout")
    assert time.monotonic() - started < 5
    db.query("RESET statement_timeout")
    assert db.value("SELECT 1") == "1"


def test_set_is_transactional(db):
    db.query("BEGIN")
    db.query("SET TimeZone = 'Asia/Tokyo'")
    assert db.value("SHOW TimeZone") == "Asia/Tokyo"
    msgs = db.query("ROLLBACK")
    assert [(m.kind, m.fields.get("value")) for m in msgs if m.kind == "S"] == [("S", "UTC")]
    assert db.value("SHOW TimeZone") == "UTC"
    assert db.value("SELECT current_setting('TimeZone')") == "UTC"
    db.query("BEGIN; SET LOCAL application_name = 'tmp'; SET extra_float_digits = 3")
    assert db.value("SHOW application_name") == "tmp"
    db.query("COMMIT")
    assert db.value("SHOW application_name") == ""
    assert db.value("SHOW extra_float_digits") == "3"
    msgs = db.query("SET LOCAL application_name = 'x'")
    assert msgs[0].kind == "N" and msgs[0]["C"] == "25P01"
