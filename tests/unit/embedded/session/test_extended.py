"""Extended query protocol of the embedded backend (Parse/Bind/Describe/Execute/Sync/Close)."""

from __future__ import annotations

import struct

from tests.pgwire_util import errors, fe, rows, tags


def kinds(msgs):
    return [m.kind for m in msgs]


def test_unnamed_roundtrip(db):
    msgs = db.send(
        fe.parse("SELECT $1::int + 1 AS x, $2::text AS y"),
        fe.bind(["41", "hi"]),
        fe.describe("P"),
        fe.execute(),
        fe.sync(),
    )
    assert kinds(msgs) == ["1", "2", "T", "D", "C", "Z"]
    assert msgs[2]["columns"][0]["name"] == "x" and msgs[2]["columns"][0]["oid"] == 23
    assert rows(msgs) == [["42", "hi"]]
    assert tags(msgs) == ["SELECT 1"]


def test_describe_statement_infers_types(db):
    db.query("CREATE TABLE t (a int, b text, c timestamptz)")
    msgs = db.send(
        fe.parse("SELECT a, b FROM t WHERE a = $1 AND b = $2", "s1"), fe.describe("S", "s1"), fe.sync()
    )
    assert kinds(msgs) == ["1", "t", "T", "Z"]
    assert msgs[1]["oids"] == [23, 25]
    assert [c["oid"] for c in msgs[2]["columns"]] == [23, 25]
    msgs = db.send(fe.parse("INSERT INTO t (c, a) VALUES ($1, $2)", "s2"), fe.describe("S", "s2"), fe.sync())
    assert msgs[1]["oids"] == [1184, 23]
    assert msgs[2].kind == "n"
    msgs = db.send(
        fe.parse("INSERT INTO t VALUES ($1, $2) RETURNING a, b", "s3"), fe.describe("S", "s3"), fe.sync()
    )
    assert msgs[1]["oids"] == [23, 25]
    assert [c["name"] for c in msgs[2]["columns"]] == ["a", "b"]


def test_binary_params_and_results(db):
    db.query("CREATE TABLE t (a int, b float8, c bool)")
    msgs = db.send(
        fe.parse("INSERT INTO t VALUES ($1, $2, $3)", oids=[23, 701, 16]),
        fe.bind([struct.pack("!i", 7), struct.pack("!d", 2.5), b"\x01"], param_formats=[1]),
        fe.execute(),
        fe.parse("SELECT a, b, c FROM t"),
        fe.bind(result_formats=[1]),
        fe.describe("P"),
        fe.execute(),
        fe.sync(),
    )
    assert tags(msgs) == ["INSERT 0 1", "SELECT 1"]
    t = [m for m in msgs if m.kind == "T"][0]
    assert [c["format"] for c in t["columns"]] == [1, 1, 1]
    d = [m for m in msgs if m.kind == "D"][0]["values"]
    assert d == [struct.pack("!i", 7), struct.pack("!d", 2.5), b"\x01"]


def test_row_limit_and_portal_suspended(db):
    msgs = db.send(
        fe.parse("SELECT * FROM range(5)"),
        fe.bind(portal="p"),
        fe.execute("p", 2),
        fe.execute("p", 2),
        fe.execute("p", 2),
        fe.sync(),
    )
    assert kinds(msgs) == ["1", "2", "D", "D", "s", "D", "D", "s", "D", "C", "Z"]
    assert rows(msgs) == [["0"], ["1"], ["2"], ["3"], ["4"]]
    assert tags(msgs) == ["SELECT 5"]


def test_error_skips_to_sync(db):
    msgs = db.send(
        fe.parse("SELECT 1/0"),
        fe.bind(),
        fe.execute(),
        fe.parse("SELECT 1"),
        fe.bind(),
        fe.execute(),
        fe.sync(),
    )
    assert kinds(msgs) == ["1", "2", "E", "Z"]
    assert errors(msgs)[0]["C"] == "22012"
    msgs = db.send(fe.parse("SELECT 1"), fe.bind(), fe.execute(), fe.sync())
    assert kinds(msgs) == ["1", "2", "D", "C", "Z"]


def test_named_statements_and_close(db):
    msgs = db.send(fe.parse("SELECT $1::int", "st"), fe.sync())
    assert kinds(msgs) == ["1", "Z"]
    assert errors(db.send(fe.parse("SELECT 2", "st"), fe.sync()))[0]["C"] == "42P05"
    msgs = db.send(
        fe.bind(["5"], stmt="st"), fe.execute(), fe.bind(["6"], stmt="st"), fe.execute(), fe.sync()
    )
    assert rows(msgs) == [["5"], ["6"]]
    msgs = db.send(fe.close("S", "st"), fe.sync())
    assert kinds(msgs) == ["3", "Z"]
    assert errors(db.send(fe.bind(stmt="st"), fe.sync()))[0]["C"] == "26000"


def test_empty_query_and_nodata(db):
    msgs = db.send(fe.parse(""), fe.bind(), fe.describe("P"), fe.execute(), fe.sync())
    assert kinds(msgs) == ["1", "2", "n", "I", "Z"]
    msgs = db.send(fe.parse("CREATE TABLE x (a int)"), fe.bind(), fe.describe("P"), fe.execute(), fe.sync())
    assert kinds(msgs) == ["1", "2", "n", "C", "Z"]


def test_extended_transaction_block(db):
    db.query("CREATE TABLE t (a int)")
    msgs = db.send(
        fe.parse("BEGIN"),
        fe.bind(),
        fe.execute(),
        fe.parse("INSERT INTO t VALUES (1)"),
        fe.bind(),
        fe.execute(),
        fe.sync(),
    )
    assert msgs[-1]["status"] == "T"
    msgs = db.send(fe.parse("SELECT 1/0"), fe.bind(), fe.execute(), fe.sync())
    assert msgs[-1]["status"] == "E"
    msgs = db.send(fe.parse("ROLLBACK"), fe.bind(), fe.execute(), fe.sync())
    assert msgs[-1]["status"] == "I"
    assert db.value("SELECT count(*) FROM t") == "0"


def test_set_through_extended(db):
    msgs = db.send(fe.parse("SET TimeZone = 'Europe/Paris'"), fe.bind(), fe.execute(), fe.sync())
    assert [m.kind for m in msgs] == ["1", "2", "C", "S", "Z"]
    msgs = db.send(fe.parse("SHOW TimeZone"), fe.bind(), fe.describe("P"), fe.execute(), fe.sync())
    assert rows(msgs) == [["Europe/Paris"]]
    assert [m.kind for m in msgs] == ["1", "2", "T", "D", "C", "Z"]


def test_interleaved_suspended_portals(db):
    msgs = db.send(
        fe.parse("SELECT * FROM range(3)", "a"),
        fe.parse("SELECT * FROM range(10, 13)", "b"),
        fe.bind(portal="pa", stmt="a"),
        fe.bind(portal="pb", stmt="b"),
        fe.execute("pa", 1),
        fe.execute("pb", 1),
        fe.execute("pa", 0),
        fe.execute("pb", 0),
        fe.sync(),
    )
    assert rows(msgs) == [["0"], ["10"], ["1"], ["2"], ["11"], ["12"]]
    assert tags(msgs) == ["SELECT 3", "SELECT 3"]


def test_sql_cursors(db):
    db.query("BEGIN")
    assert tags(db.query("DECLARE c CURSOR FOR SELECT * FROM range(5)")) == ["DECLARE CURSOR"]
    msgs = db.query("FETCH 2 FROM c")
    assert rows(msgs) == [["0"], ["1"]] and tags(msgs) == ["FETCH 2"] and msgs[0].kind == "T"
    assert db.value("SELECT 42") == "42"  # another statement in between
    assert tags(db.query("MOVE 1 IN c")) == ["MOVE 1"]
    msgs = db.query("FETCH ALL FROM c")
    assert rows(msgs) == [["3"], ["4"]] and tags(msgs) == ["FETCH 2"]
    assert tags(db.query("FETCH NEXT FROM c")) == ["FETCH 0"]
    assert tags(db.query("CLOSE c")) == ["CLOSE CURSOR"]
    assert errors(db.query("FETCH c"))[0]["C"] == "34000"
    db.query("ROLLBACK")
    assert errors(db.query("DECLARE d CURSOR FOR SELECT 1"))[0]["C"] == "25P01"
    db.query("DECLARE h CURSOR WITH HOLD FOR SELECT * FROM range(3)")
    assert rows(db.query("FETCH FORWARD 5 FROM h")) == [["0"], ["1"], ["2"]]


def test_sql_cursor_extended_describe(db):
    db.query("BEGIN")
    db.send(fe.parse('DECLARE "cur" CURSOR FOR SELECT 1 AS x, 2 AS y'), fe.bind(), fe.execute(), fe.sync())
    msgs = db.send(fe.describe("P", "cur"), fe.sync())
    assert [c["name"] for c in msgs[0]["columns"]] == ["x", "y"]
    msgs = db.send(
        fe.parse('FETCH FORWARD 10 FROM "cur"'), fe.bind(), fe.describe("P"), fe.execute(), fe.sync()
    )
    assert [m.kind for m in msgs] == ["1", "2", "T", "D", "C", "Z"]
    assert tags(msgs) == ["FETCH 1"]


def test_pipeline_is_one_implicit_transaction(db):
    db.query("CREATE TABLE t (a int)")
    msgs = db.send(
        fe.parse("INSERT INTO t VALUES (1)"),
        fe.bind(),
        fe.execute(),
        fe.parse("SELECT 1/0"),
        fe.bind(),
        fe.execute(),
        fe.sync(),
    )
    assert tags(msgs) == ["INSERT 0 1"] and errors(msgs)[0]["C"] == "22012"
    assert db.value("SELECT count(*) FROM t") == "0"
    msgs = db.send(fe.parse("INSERT INTO t VALUES (2)"), fe.bind(), fe.execute(), fe.sync())
    assert db.value("SELECT count(*) FROM t") == "1"


def test_describe_show_statement(db):
    msgs = db.send(
        fe.parse("SHOW TimeZone", "sh"), fe.describe("S", "sh"), fe.bind(stmt="sh"), fe.execute(), fe.sync()
    )
    assert [m.kind for m in msgs] == ["1", "t", "T", "2", "D", "C", "Z"]
    assert msgs[2]["columns"][0]["name"] == "TimeZone"
    assert rows(msgs) == [["UTC"]]
