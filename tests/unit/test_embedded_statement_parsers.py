"""The session's own statement parsers (savepoints, advisory-lock calls, LISTEN/NOTIFY) with malformed
input: a PgError with a SQLSTATE, or a clean result, never another exception (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pgtls.backends.embedded import advisory, bytea_input, commands
from pgtls.backends.embedded.sqltext import words
from pgtls.errors import PgError

PIECES = st.sampled_from([
    "SAVEPOINT", "RELEASE", "ROLLBACK", "WORK", "TRANSACTION", "TO", "AND", "CHAIN", " ", ";", "s", '"S p"', '"',
    "'x'", "SELECT", "pg_advisory_lock", "pg_try_advisory_xact_lock_shared", "pg_advisory_unlock_all",
    "pg_catalog.", "(", ")", ",", "1", "-9223372036854775808", "NULL", "::int8", "CAST(", " AS ", "$1", "--",
    "/*", "*/", "é", "\\",
])  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(PIECES, min_size=1, max_size=14).map("".join))
def test_savepoint_names(sql):
    if (words(sql, 1) or [""])[0] not in ("SAVEPOINT", "RELEASE", "ROLLBACK"):
        return  # the session sends only these here
    try:
        name = commands.parse_savepoint_name(sql)
    except PgError as e:
        assert e.sqlstate == "42601"
    else:
        assert name is None or isinstance(name, str)


@settings(max_examples=500, deadline=None)
@given(st.lists(PIECES, min_size=1, max_size=14).map("".join))
def test_advisory_calls(sql):
    call = advisory.match(sql)
    if call is not None:
        assert call.function.startswith("pg_") and all(a.strip() for a in call.args)
        assert isinstance(call.returns_bool, bool)


def test_advisory_call_forms():
    call = advisory.match("SELECT pg_catalog.pg_try_advisory_xact_lock_shared(1, (2 + 3)) AS got;")
    assert call is not None
    assert (call.function, call.args, call.column, call.shared, call.xact, call.returns_bool) == (
        "pg_try_advisory_xact_lock_shared", ["1", "(2 + 3)"], "got", True, True, True
    )
    assert advisory.match("SELECT pg_advisory_lock(1), pg_advisory_lock(2)") is None  # two calls: not ours
    assert advisory.match("SELECT pg_advisory_lock((1)") is None
    assert advisory.match("SELECT pg_advisory_unlock_all()").args == []  # type: ignore[union-attr]


def test_savepoint_name_forms():
    assert commands.parse_savepoint_name("ROLLBACK") is None
    assert commands.parse_savepoint_name("ROLLBACK WORK TO SAVEPOINT \"A b\"") == "A b"
    assert commands.parse_savepoint_name("RELEASE savepoint") == "savepoint"
    assert commands.parse_savepoint_name("SAVEPOINT Mixed") == "mixed"


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="0123456789abcdefABCDEFgz \t\n'\\é", max_size=20))
def test_bytea_hex_input(text):
    try:
        digits = bytea_input.hex_digits(text)
    except PgError as e:
        assert e.sqlstate == "22023"
        assert e.message.startswith("invalid hexadecimal")
    else:
        assert len(digits) % 2 == 0
        assert bytes.fromhex(digits).hex() == digits.lower()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=16), st.lists(st.sampled_from(["", " ", "\t", "\n"]), max_size=17))
def test_bytea_hex_input_skips_whitespace_between_pairs(data, gaps):
    pairs = [data.hex()[k : k + 2] for k in range(0, 2 * len(data), 2)]
    text = "".join(p + (gaps[k] if k < len(gaps) else "") for k, p in enumerate(pairs))
    assert bytes.fromhex(bytea_input.hex_digits(text)) == data
