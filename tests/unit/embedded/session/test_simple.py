"""Simple query protocol of the embedded backend, driven through Session.handle()."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgtls.backends.base import SessionInfo
from pgtls.backends.embedded import list_databases
from pgtls.errors import PgError
from tests.pgwire_util import errors, open_driver, rows, tags


def test_databases(tmp_path: Path, backend, registry):
    assert list_databases(tmp_path) == ["postgres"]
    with pytest.raises(PgError) as e:
        backend.open_session(SessionInfo(1, "u", "nope", None, None), registry)
    assert e.value.sqlstate == "3D000" and e.value.severity == "FATAL"
    assert e.value.message == 'database "nope" does not exist'


def test_select_and_tags(db):
    msgs = db.query("SELECT 1")
    assert [m.kind for m in msgs] == ["T", "D", "C", "Z"]
    assert msgs[0]["columns"][0] == {"name": "?column?", "oid": 23, "typlen": 4, "typmod": -1, "format": 0}
    assert tags(db.query("CREATE TABLE t (a int PRIMARY KEY, b text)")) == ["CREATE TABLE"]
    assert tags(db.query("INSERT INTO t VALUES (1, 'x'), (2, NULL)")) == ["INSERT 0 2"]
    assert tags(db.query("UPDATE t SET b = 'y' WHERE a = 2")) == ["UPDATE 1"]
    assert tags(db.query("DELETE FROM t WHERE a = 3")) == ["DELETE 0"]
    assert tags(db.query("INSERT INTO t VALUES (3, 'z') RETURNING a")) == ["INSERT 0 1"]
    assert tags(db.query("CREATE VIEW v AS SELECT * FROM t")) == ["CREATE VIEW"]
    assert tags(db.query("DROP VIEW v")) == ["DROP VIEW"]
    assert tags(db.query("CREATE TABLE t2 AS SELECT * FROM t")) == ["SELECT 3"]
    assert db.rows("SELECT a, b FROM t ORDER BY a") == [["1", "x"], ["2", "y"], ["3", "z"]]


def test_multi_statement_and_empty(db):
    msgs = db.query("SELECT 1; SELECT 2, 3")
    assert tags(msgs) == ["SELECT 1", "SELECT 1"]
    assert rows(msgs) == [["1"], ["2", "3"]]
    assert [m.kind for m in db.query("")] == ["I", "Z"]
    assert [m.kind for m in db.query(" ; -- nothing")] == ["I", "Z"]


def test_multi_statement_is_one_transaction(db):
    db.query("CREATE TABLE m (a int)")
    msgs = db.query("INSERT INTO m VALUES (1); SELECT 1/0; INSERT INTO m VALUES (2)")
    assert tags(msgs) == ["INSERT 0 1"]
    assert errors(msgs)[0]["C"] == "22012"
    assert msgs[-1]["status"] == "I"
    assert db.value("SELECT count(*) FROM m") == "0"


def test_errors_have_sqlstate_and_position(db):
    db.query("CREATE TABLE t (a int PRIMARY KEY, b text NOT NULL)")
    e = db.error("selec 1")
    assert (e["C"], e["M"], e["P"]) == ("42601", 'syntax error at or near "selec"', "1")
    e = db.error("SELECT * FROM nope")
    assert (e["C"], e["M"], e["P"]) == ("42P01", 'relation "nope" does not exist', "15")
    e = db.error("SELECT zz FROM t")
    assert (e["C"], e["M"], e["P"]) == ("42703", 'column "zz" does not exist', "8")
    db.query("INSERT INTO t VALUES (1, 'a')")
    e = db.error("INSERT INTO t VALUES (1, 'b')")
    assert e["C"] == "23505" and e["D"] == "Key (a)=(1) already exists."
    assert db.error("INSERT INTO t VALUES (2, NULL)")["C"] == "23502"
    assert db.error("SELECT 1/0")["C"] == "22012"
    assert db.error("SELECT 'a'::int")["C"] == "22P02"
    msgs = db.query("SELECT 1; SELECT * FROM nope")
    assert errors(msgs)[0]["P"] == "25"  # position counts from the start of the query string


def test_transaction_states(db):
    db.query("CREATE TABLE t (a int)")
    assert db.query("BEGIN")[-1]["status"] == "T"
    db.query("INSERT INTO t VALUES (1)")
    msgs = db.query("SELECT 1/0")
    assert msgs[-1]["status"] == "E"
    e = db.error("SELECT 1")
    assert e["C"] == "25P02"
    assert e["M"] == "current transaction is aborted, commands ignored until end of transaction block"
    msgs = db.query("COMMIT")
    assert tags(msgs) == ["ROLLBACK"] and msgs[-1]["status"] == "I"
    assert db.value("SELECT count(*) FROM t") == "0"
    db.query("BEGIN; INSERT INTO t VALUES (2); COMMIT")
    assert db.value("SELECT count(*) FROM t") == "1"
    msgs = db.query("COMMIT")
    assert [m.kind for m in msgs] == ["N", "C", "Z"] and msgs[0]["C"] == "25P01"


def test_pg_stat_ssl(backend, registry, db):
    other = open_driver(backend, registry, pid=1002, tls=None)
    try:
        msgs = db.query("SELECT * FROM pg_stat_ssl ORDER BY pid")
        cols = [(c["name"], c["oid"]) for c in msgs[0]["columns"]]
        assert cols == [
            ("pid", 23),
            ("ssl", 16),
            ("version", 25),
            ("cipher", 25),
            ("bits", 23),
            ("client_dn", 25),
            ("client_serial", 1700),
            ("issuer_dn", 25),
        ]
        assert rows(msgs) == [
            [
                "1001",
                "t",
                "TLSv1.3",
                "TLS_AES_256_GCM_SHA384",
                "256",
                "/CN=alice",
                "12345",
                "/CN=Test Root CA",
            ],
            ["1002", "f", None, None, None, None, None, None],
        ]
        assert other.rows("SELECT pid, ssl FROM pg_catalog.pg_stat_ssl WHERE pid = pg_backend_pid()") == [
            ["1002", "f"]
        ]
    finally:
        other.session.close()


def test_show_set_reset(db):
    msgs = db.query("SHOW DateStyle")
    assert msgs[0]["columns"][0]["name"] == "DateStyle"
    assert rows(msgs) == [["ISO, MDY"]] and tags(msgs) == ["SHOW"]
    assert db.value("SHOW port") == "5432"
    assert db.value("SHOW ssl") == "on"
    assert db.value("SELECT current_setting('server_version')") == "17.0"
    msgs = db.query("SET TimeZone = 'America/New_York'")
    assert [(m.kind, m.fields.get("name")) for m in msgs] == [("C", None), ("S", "TimeZone"), ("Z", None)]
    assert db.value("SHOW timezone") == "America/New_York"
    assert db.value("SELECT current_setting('TimeZone')") == "America/New_York"
    assert db.value("SELECT TIMESTAMPTZ '2024-01-02 03:04:05.123+00'") == "2024-01-01 22:04:05.123-05"
    db.query("RESET TimeZone")
    assert db.value("SHOW TimeZone") == "UTC"
    db.query("SET application_name TO 'psql'")
    assert db.value("SHOW application_name") == "psql"
    assert db.error("SHOW no_such_thing")["C"] == "42704"
    assert db.error("SET no_such_thing = 1")["C"] == "42704"
    all_rows = db.rows("SHOW ALL")
    assert ["server_version", "17.0", None] in all_rows


def test_functions(db):
    r = db.rows("SELECT pg_backend_pid(), version(), current_user, current_database()")[0]
    assert r[0] == "1001"
    assert r[1].startswith("PostgreSQL 17.0 (pgtls 0.1.0) on x86_64-pc-linux-gnu, compiled by ")
    assert r[2:] == ["alice", "postgres"]
    assert db.rows(
        "SELECT ssl_is_used(), ssl_version(), ssl_cipher(), ssl_client_cert_present(), "
        "ssl_client_serial(), ssl_client_dn(), ssl_issuer_dn(), ssl_client_dn_field('CN'), "
        "ssl_client_dn_field('commonName'), ssl_issuer_field('CN')"
    ) == [
        [
            "t",
            "TLSv1.3",
            "TLS_AES_256_GCM_SHA384",
            "t",
            "12345",
            "/CN=alice",
            "/CN=Test Root CA",
            "alice",
            "alice",
            "Test Root CA",
        ]
    ]


def test_create_database(tmp_path: Path, backend, registry, db):
    assert tags(db.query("CREATE DATABASE other")) == ["CREATE DATABASE"]
    assert "other" in list_databases(tmp_path)
    assert db.error("CREATE DATABASE other")["C"] == "42P04"
    d2 = open_driver(backend, registry, pid=1003, database="other")
    assert d2.value("SELECT current_database()") == "other"
    d2.session.close()
    assert tags(db.query("DROP DATABASE other")) == ["DROP DATABASE"]
    assert "other" not in list_databases(tmp_path)


def test_serial_identity_and_jsonb(db):
    assert tags(db.query("CREATE TABLE s (id serial PRIMARY KEY, big bigserial, x jsonb)")) == [
        "CREATE TABLE"
    ]
    assert tags(db.query("CREATE TABLE i (id int GENERATED ALWAYS AS IDENTITY (START WITH 1), y text)")) == [
        "CREATE TABLE"
    ]
    msgs = db.query("""INSERT INTO s (x) VALUES ('{"a": 1}'), ('[]') RETURNING id, big, x""")
    assert rows(msgs) == [["1", "1", '{"a": 1}'], ["2", "2", "[]"]]
    assert [c["oid"] for c in msgs[0]["columns"]] == [
        23,
        20,
        3802,
    ]  # a jsonb column is jsonb (jsonb/operators.py)
    assert db.rows("INSERT INTO i (y) VALUES ('a') RETURNING id") == [["1"]]
    assert db.value("SELECT nextval('s_id_seq')") == "3"
