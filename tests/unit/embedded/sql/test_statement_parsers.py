"""The session's own statement parsers (savepoints, advisory-lock calls, LISTEN/NOTIFY) with malformed
input: a PgError with a SQLSTATE, or a clean result, never another exception (hypothesis).  Savepoint
statements are also generated from PostgreSQL's grammar, so that every example reaches the parser and
the name (or the 42601) it must give is known."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pgtls.backends.embedded.features import advisory
from pgtls.backends.embedded.rewrite import bytea_input
from pgtls.backends.embedded.sql import commands
from pgtls.backends.embedded.sql.lexer import words
from pgtls.errors import PgError

PIECES = st.sampled_from([
    "SAVEPOINT", "RELEASE", "ROLLBACK", "WORK", "TRANSACTION", "TO", "AND", "CHAIN", " ", ";", "s", '"S p"', '"',
    "'x'", "SELECT", "pg_advisory_lock", "pg_try_advisory_xact_lock_shared", "pg_advisory_unlock_all",
    "pg_catalog.", "(", ")", ",", "1", "-9223372036854775808", "NULL", "::int8", "CAST(", " AS ", "$1", "--",
    "/*", "*/", "é", "\\",
])  # fmt: skip


# --- savepoint statements: generated from PostgreSQL's grammar, with the name the parser must find ---------

_GAP = st.sampled_from([" ", "  ", "\t", "\n", " /* c */ ", "/**/", " -- c\n"])
# PostgreSQL 15's reserved and type/function-name keywords (Appendix C): not a savepoint name when bare.
_NOT_NAMES = set(
    """all analyse analyze and any array as asc asymmetric authorization binary both case cast check
    collate collation column concurrently constraint create cross current_catalog current_date current_role
    current_schema current_time current_timestamp current_user default deferrable desc distinct do else end except
    false fetch for foreign freeze from full grant group having ilike in initially inner intersect into is isnull
    join lateral leading left like limit localtime localtimestamp natural not notnull null offset on only or order
    outer overlaps placing primary references returning right select session_user similar some symmetric
    system_user table tablesample then to trailing true union unique user using variadic verbose when where window
    with""".split()
)
_BARE = st.from_regex(r"[A-Za-z_][A-Za-z0-9_$]{0,12}", fullmatch=True).filter(
    lambda n: n.lower() not in _NOT_NAMES | {"work", "transaction", "savepoint"}
)  # those three: drawn below
_KEYWORD_NAMES = st.sampled_from(["savepoint", "SavePoint", "work", "transaction"])  # unreserved: valid names


@st.composite
def _name(draw: st.DrawFn) -> tuple[str, str]:
    """(name as written, the name PostgreSQL makes of it): bare ones are lower-cased (ASCII: the test data
    stays ASCII, see test_savepoint_name_folds_only_ascii), quoted ones keep case, spaces and doubled quotes."""
    kind = draw(st.sampled_from(["bare", "bare", "keyword", "quoted"]))
    if kind == "quoted":
        inner = draw(st.text(alphabet='aB c"é;-/*', min_size=1, max_size=10))
        return '"' + inner.replace('"', '""') + '"', inner
    text = draw(_BARE if kind == "bare" else _KEYWORD_NAMES)
    return text, text.lower()


def _case(word: str) -> st.SearchStrategy[str]:
    return st.sampled_from([word.upper(), word.lower(), word.capitalize()])


@st.composite
def savepoint_statements(draw: st.DrawFn) -> tuple[str, str | None, str | None]:
    """(statement, expected name or None, expected syntax error message or None).

    SAVEPOINT name | RELEASE [SAVEPOINT] name | ROLLBACK [WORK | TRANSACTION] TO [SAVEPOINT] name, keywords in
    any case, whitespace and comments between tokens, an optional ';'; one in three made invalid by
    leaving the name out or adding a token after it; now and then a plain ROLLBACK (no savepoint: None).
    The expectations were checked against PostgreSQL 15 (3,000 examples, each run in a transaction there
    after creating the expected savepoint: the same name, or the same 42601 and message).
    """
    verb = draw(st.sampled_from(["SAVEPOINT", "RELEASE", "ROLLBACK"]))
    toks = [draw(_case(verb))]
    if (
        verb == "ROLLBACK" and draw(st.integers(0, 9)) == 0
    ):  # a plain ROLLBACK [WORK | TRANSACTION] [AND [NO] CHAIN]
        toks += [draw(_case(w)) for w in draw(st.sampled_from([[], ["WORK"], ["TRANSACTION"]]))]
        toks += [
            draw(_case(w)) for w in draw(st.sampled_from([[], ["AND", "CHAIN"], ["AND", "NO", "CHAIN"]]))
        ]
        return " ".join(toks), None, None
    if verb == "ROLLBACK":
        toks += [draw(_case(w)) for w in draw(st.sampled_from([[], ["WORK"], ["TRANSACTION"]]))]
        toks.append(draw(_case("TO")))
    sp_keyword = verb != "SAVEPOINT" and draw(st.booleans())
    if sp_keyword:
        toks.append(draw(_case("SAVEPOINT")))
    mutation = draw(st.sampled_from(["none"] * 4 + ["drop_name", "extra"]))
    written, name = draw(
        _name().filter(lambda n: mutation != "extra" or n[1] != "savepoint")
    )  # (or it is valid)
    expected: str | None = name
    error = None
    if mutation == "drop_name":
        # "RELEASE SAVEPOINT" / "ROLLBACK TO SAVEPOINT" alone name a savepoint called savepoint (as in PostgreSQL)
        expected, error = ("savepoint", None) if sp_keyword else (None, "syntax error at end of input")
    else:
        toks.append(written)
        if mutation == "extra":
            extra = draw(st.sampled_from(["x", "1", ",", "AND", "'s'", "(", "b"]))
            toks.append(extra)
            expected, error = None, f'syntax error at or near "{extra}"'
    sql = toks[0]
    for w in toks[1:]:
        sql += draw(_GAP) + w
    # a final ';' (the simple protocol's split drops it, a Parse message keeps it); not where the parser gets it
    # wrong (test_release_savepoint_named_savepoint_with_semicolon)
    keyword_last = (
        not sp_keyword and verb != "SAVEPOINT" and written.lower() == "savepoint" and mutation == "none"
    )
    if mutation != "drop_name" and not keyword_last and draw(st.booleans()):
        sql += draw(st.sampled_from(["", " ", "\n"])) + ";"
    return sql, expected, error


@settings(max_examples=500, deadline=None)
@given(savepoint_statements())
def test_savepoint_names(case: tuple[str, str | None, str | None]) -> None:
    """Every generated statement reaches the parser (the session hands it SAVEPOINT/RELEASE/ROLLBACK
    statements); a valid one gives its name as PostgreSQL folds it, an invalid one PostgreSQL's 42601."""
    sql, expected, error = case
    assert (words(sql, 1) or [""])[0] in ("SAVEPOINT", "RELEASE", "ROLLBACK")
    if error is None:
        assert commands.parse_savepoint_name(sql) == expected, sql
    else:
        with pytest.raises(PgError) as ei:
            commands.parse_savepoint_name(sql)
        assert (ei.value.sqlstate, ei.value.message) == ("42601", error), sql


@settings(max_examples=300, deadline=None)
@given(st.lists(PIECES, min_size=1, max_size=14).map(" ".join))
def test_savepoint_garbage(sql):
    """Arbitrary token soup after one of the three verbs: a name, None or a 42601, never another exception."""
    sql = "ROLLBACK " + sql if (words(sql, 1) or [""])[0] not in ("SAVEPOINT", "RELEASE", "ROLLBACK") else sql
    try:
        name = commands.parse_savepoint_name(sql)
    except PgError as e:
        assert e.sqlstate == "42601"
    else:
        assert name is None or isinstance(name, str)


@pytest.mark.xfail(strict=True, raises=PgError, reason="the parser takes a final SAVEPOINT word before ';' as "
                   "the optional keyword, leaving no name: Parse('RELEASE savepoint;') fails with 42601 'syntax "
                   "error at or near \";\"'; PostgreSQL releases the savepoint named savepoint")  # fmt: skip
def test_release_savepoint_named_savepoint_with_semicolon():
    assert commands.parse_savepoint_name("RELEASE savepoint;") == "savepoint"
    assert commands.parse_savepoint_name("ROLLBACK TO SAVEPOINT;") == "savepoint"


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="pgtls lower-cases every letter of a bare "
                   "identifier (sqltext.unquote_ident: str.lower); PostgreSQL with UTF8 folds only A-Z, so there "
                   "'SAVEPOINT É; RELEASE é' fails with 3B001 and pgtls finds the savepoint")  # fmt: skip
def test_savepoint_name_folds_only_ascii():
    assert commands.parse_savepoint_name("SAVEPOINT É") == "É"


def test_savepoint_name_starting_with_non_ascii():
    # PostgreSQL's scanner takes é as an identifier's first character (ident_start includes \200-\377)
    # lower case already, so that only the tokenizing is tested here (the folding: the test above)
    assert commands.parse_savepoint_name("SAVEPOINT éa_b") == "éa_b"


def _outcome(sql: str) -> str | None | tuple[str, str]:
    try:
        return commands.parse_savepoint_name(sql)
    except PgError as e:
        return e.sqlstate, e.message


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="the parser takes any bare word as the name; "
                   "PostgreSQL refuses a reserved keyword there (ColId): 'SAVEPOINT select' fails with 42601 "
                   "'syntax error at or near \"select\"', pgtls makes a savepoint named select")  # fmt: skip
def test_savepoint_name_reserved_keyword():
    assert _outcome("SAVEPOINT select") == ("42601", 'syntax error at or near "select"')


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
        "pg_try_advisory_xact_lock_shared",
        ["1", "(2 + 3)"],
        "got",
        True,
        True,
        True,
    )
    assert advisory.match("SELECT pg_advisory_lock(1), pg_advisory_lock(2)") is None  # two calls: not ours
    assert advisory.match("SELECT pg_advisory_lock((1)") is None
    assert advisory.match("SELECT pg_advisory_unlock_all()").args == []  # type: ignore[union-attr]


def test_savepoint_name_forms():
    assert commands.parse_savepoint_name("ROLLBACK") is None
    assert commands.parse_savepoint_name('ROLLBACK WORK TO SAVEPOINT "A b"') == "A b"
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
