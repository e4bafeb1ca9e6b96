"""Which statements leave session state in transaction mode (pgtls.backends.relay.sessionstate)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pgtls.backends.relay import sessionstate as ss

CASES = [
    ("SET work_mem = '1MB'", {ss.SETTINGS}, set()),
    ("set session work_mem to 1", {ss.SETTINGS}, set()),
    ("SET LOCAL work_mem = '1MB'", set(), set()),
    ("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", set(), set()),
    ("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", {ss.SETTINGS}, set()),
    ("/* a comment first */ SET search_path = app", {ss.SETTINGS}, set()),
    ("BEGIN; SET search_path = app; COMMIT", {ss.SETTINGS}, set()),
    ("RESET work_mem", set(), set()),
    ("RESET ALL", set(), {ss.SETTINGS}),
    ("SET a.b = 1; RESET ALL", set(), {ss.SETTINGS}),
    ("RESET ALL; SET a.b = 1", {ss.SETTINGS}, set()),
    ("SELECT set_config('a.b', 'c', false)", {ss.SETTINGS}, set()),
    ("SELECT set_config('a.b', 'c', true)", set(), set()),
    ("SELECT set_config('a.b', 'c', $1)", {ss.SETTINGS}, set()),  # not known to be local: pin
    ("LISTEN chan", {ss.LISTENING}, set()),
    ("UNLISTEN chan", set(), set()),  # one of several channels: still listening, maybe
    ("UNLISTEN *", set(), {ss.LISTENING}),
    ("SELECT pg_advisory_lock(1)", {ss.LOCKS}, set()),
    ("SELECT pg_try_advisory_lock_shared(1, 2)", {ss.LOCKS}, set()),
    ("SELECT pg_advisory_xact_lock(1)", set(), set()),
    ("SELECT pg_advisory_unlock_all()", set(), {ss.LOCKS}),
    ("DECLARE c CURSOR WITH HOLD FOR SELECT 1", {ss.HELD_CURSORS}, set()),
    ("DECLARE c CURSOR FOR SELECT 1", set(), set()),
    ("CLOSE ALL", set(), {ss.HELD_CURSORS}),
    ("CREATE TEMP TABLE t (a int)", {ss.TEMP_TABLES}, set()),
    ("CREATE TEMPORARY VIEW v AS SELECT 1", {ss.TEMP_TABLES}, set()),
    ("CREATE TEMP SEQUENCE s", {ss.TEMP_TABLES}, set()),
    ("CREATE TEMP TABLE t AS SELECT 1", {ss.TEMP_TABLES}, set()),
    ("CREATE TABLE t (a int)", set(), set()),
    ("DISCARD TEMP", set(), {ss.TEMP_TABLES}),
    ("PREPARE p AS SELECT 1", {ss.PREPARED}, set()),
    ("DEALLOCATE p", set(), set()),
    ("DEALLOCATE ALL", set(), {ss.PREPARED}),
    ("LOAD 'auto_explain'", {ss.LOADED}, set()),
    ("DISCARD ALL", set(), set(ss.EVERYTHING)),
    ("UPDATE t SET a = 1", set(), set()),
    ("SELECT 'SET x = 1'", set(), set()),
    ("SELEC broken", set(), set()),  # PostgreSQL refuses it: nothing is left
]


@pytest.mark.parametrize("sql,pins,releases", CASES, ids=[c[0] for c in CASES])
def test_effects(sql, pins, releases):
    v = ss.inspect(sql.encode())
    assert set(v.pins) == pins and set(v.releases) == releases


def test_forgets_statements():
    assert ss.inspect(b"DISCARD ALL").forget_statements and ss.inspect(b"deallocate all").forget_statements
    assert not ss.inspect(b"DEALLOCATE p").forget_statements


def test_too_long_to_inspect_pins():
    assert ss.inspect(b"SET a.b = '" + b"x" * ss.MAX_INSPECTED + b"'").pins == {ss.TOO_LONG}


def test_plain():
    assert ss.plain(b"SELECT $1::int") and ss.plain(b"UPDATE t SET a = $1")
    assert not ss.plain(b"SELEC 1") and not ss.plain(b"SET a.b = 1") and not ss.plain(b"\xff\xfe")


@settings(max_examples=200)
@given(st.binary(max_size=80))
def test_any_text_gets_an_answer(data):
    v = ss.inspect(data)
    assert isinstance(v.pins, frozenset) and isinstance(v.releases, frozenset)
    ss.plain(data)
