"""COPY FROM STDIN / TO STDOUT of the embedded backend."""

from __future__ import annotations

from tests.pgwire_util import errors, fe, rows, tags
from tests.unit.test_embedded_simple import backend, db, registry  # noqa: F401 - fixtures


def test_copy_in_text(db):
    db.query("CREATE TABLE t (a int, b text, c bytea)")
    msgs = db.query("COPY t FROM STDIN")
    assert [m.kind for m in msgs] == ["G"] and msgs[0]["column_formats"] == [0, 0, 0]
    assert db.status is None
    msgs = db.send(fe.copy_data("1\thello\\tworld\t\\\\x0102\n2\t\\N\t\\N\n"), fe.copy_data("3\tx"),
                   fe.copy_data("y\t\\\\x\n"), fe.copy_done())
    assert [m.kind for m in msgs] == ["C", "Z"] and tags(msgs) == ["COPY 3"]
    assert db.rows("SELECT a, b, c FROM t ORDER BY a") == [
        ["1", "hello\tworld", "\\x0102"], ["2", None, None], ["3", "xy", "\\x"]]


def test_copy_in_csv_header(db):
    db.query("CREATE TABLE t (a int, b text)")
    db.query("COPY t (a, b) FROM STDIN WITH (FORMAT csv, HEADER true)")
    msgs = db.send(fe.copy_data('a,b\n1,"x,y"\n2,\n3,""\n4,"multi\nline"\n'), fe.copy_done())
    assert tags(msgs) == ["COPY 4"]
    assert db.rows("SELECT a, b FROM t ORDER BY a") == [["1", "x,y"], ["2", None], ["3", ""], ["4", "multi\nline"]]


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
