"""PostgreSQL's regular expressions in pg_hba.conf and pg_ident.conf (issue 12, findings 2 and 5).

Every expectation below was read off a real PostgreSQL 15 (``subject ~ pattern`` and
``(regexp_match(subject, pattern))[1]`` in a SQL_ASCII database with the C collation: the same
engine, ARE flags and byte-per-character matching as authentication);
tests/differential/test_regex_semantics.py runs these (tests/authregex_cases.py) and many more against a live
server.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pgtls.config.authregex import (
    DISSECT_BUDGET,
    REG_ETOOBIG,
    AuthRegexError,
    AuthRegexMatchError,
    compile_are,
)
from pgtls.config.authtokens import AuthToken, compile_auth_regex
from pgtls.config.hba import ConnFacts, match, parse_hba_text
from pgtls.config.ident import check_usermap, check_usermap_log, parse_ident_text
from tests.authregex_cases import POSTGRESQL_ERRORS, SEMANTICS


class NoRoles:
    def is_member(self, user: str, group: str) -> bool:
        return user == group


@pytest.mark.parametrize(("pattern", "subject", "matches", "group"), SEMANTICS)
def test_semantics_like_postgresql(pattern: str, subject: str, matches: bool, group: str | None) -> None:
    rx = compile_are(pattern)
    assert rx.search(subject) is matches
    got_match, got_group = rx.first_group(subject)
    assert got_match is matches
    if matches and rx.groups:
        assert got_group == group


def test_subjects_are_bytes() -> None:
    # names are str decoded with surrogateescape: the raw byte 0xE9 is one character, the UTF-8 "é" two
    raw = "caf\udce9"
    assert compile_are("^caf.$").search(raw)
    assert compile_are("^caf\\xe9$").search(raw)
    assert not compile_are("^caf.$").search("caf\u00e9")
    assert compile_are("^caf..$").search("caf\u00e9")
    assert compile_are("^(.*)$").first_group(raw) == (True, raw)
    assert compile_are("^(caf.)").first_group("caf\u00e9") == (True, "caf\udcc3")


# --- the findings, through pg_ident.conf and pg_hba.conf --------------------------------------------


def test_ident_newline_cn_refused() -> None:
    """Finding 2: a CN "ssltestuser\\n" must not log in as ssltestuser (Python's re let it)."""
    maps = parse_ident_text("m /^(.*)$ \\1\nm /^ssltestuser$ ssltestuser\n")
    for cn in ("ssltestuser\n", "ssltestuser\r\n"):
        ok, log = check_usermap_log(maps, "m", "ssltestuser", cn)
        assert not ok
        assert log == [f'no match in usermap "m" for user "ssltestuser" authenticated as "{cn}"']
    assert check_usermap(maps, "m", "ssltestuser", "ssltestuser")
    # \1 carries the newline: the CN maps to the role "ssltestuser\n"
    assert check_usermap(maps, "m", "ssltestuser\n", "ssltestuser\n")


def test_ident_dot_matches_newline() -> None:
    maps = parse_ident_text("m /^ssl.testuser$ ssltestuser\nm /^(ssl)[^x]testuser$ \\1\n")
    assert check_usermap(maps, "m", "ssltestuser", "ssl\ntestuser")
    assert check_usermap(maps, "m", "ssl", "ssl\ntestuser")


def test_ident_first_group_is_postgresqls() -> None:
    maps = parse_ident_text("m /^(a|ab)(c|bcd)(d*)$ \\1\n")
    assert check_usermap(maps, "m", "ab", "abcd")
    assert not check_usermap(maps, "m", "a", "abcd")


def test_hba_regex_user_and_database() -> None:
    rules = parse_hba_text(
        "host all /^ssltestuser$ 127.0.0.1/32 trust\nhost /^a.b$ all 127.0.0.1/32 reject\n"
    )

    def conn(user: str, db: str = "postgres") -> ConnFacts:
        return ConnFacts(local=False, addr="127.0.0.1", ssl=False, gss=False, user=user, database=db)

    assert match(rules, conn("ssltestuser"), NoRoles()) is not None
    assert match(rules, conn("ssltestuser\n"), NoRoles()) is None
    assert match(rules, conn("u", "a\nb"), NoRoles()).line_number == 2  # type: ignore[union-attr]


def test_slow_pattern_is_linear() -> None:
    """Finding 5: ``^(a|aa)+$`` against "aaa...ab" backtracks exponentially in Python's re (5 s for 39 a's)."""
    subject = "a" * 39 + "b"
    rules = parse_hba_text("host all /^(a|aa)+$ 127.0.0.1/32 trust\n")
    facts = ConnFacts(local=False, addr="127.0.0.1", ssl=False, gss=False, user=subject, database="d")
    t = time.perf_counter()
    assert match(rules, facts, NoRoles()) is None
    assert time.perf_counter() - t < 0.5
    maps = parse_ident_text("m /^(a|aa)+$ \\1\n")
    t = time.perf_counter()
    assert not check_usermap(maps, "m", "a", subject)
    assert time.perf_counter() - t < 0.5


@pytest.mark.parametrize("pattern", ["^(a|aa)+$", "^((a+)+)+x$", "^(a*)*b$", "(.*a){12}$"])
def test_engine_is_linear(pattern: str) -> None:
    rx = compile_are(pattern)
    for n in (39, 1000, 100_000):
        t = time.perf_counter()
        assert not rx.search("a" * n + "!")
        assert rx.first_group("a" * n + "!") == (False, None)
        assert time.perf_counter() - t < 0.5


def test_dissection_budget() -> None:
    rx = compile_are("(.*?)(.*?)(.*?)(.*?)$")
    assert rx.first_group("a" * 100) == (True, "")
    t = time.perf_counter()
    with pytest.raises(AuthRegexMatchError, match=REG_ETOOBIG):
        rx.first_group("a" * 5000)
    assert time.perf_counter() - t < 1.0
    assert DISSECT_BUDGET > 1000
    # through pg_ident.conf: PostgreSQL's LOG line for a failed match, and the map lookup stops
    maps = parse_ident_text("m /(.*?)(.*?)(.*?)(.*?)$ \\1\nm /^a+$ x\n")
    ok, log = check_usermap_log(maps, "m", "x", "a" * 5000)
    assert not ok
    assert log == [f'regular expression match for "(.*?)(.*?)(.*?)(.*?)$" failed: {REG_ETOOBIG}']
    # without \1 nothing is dissected: the plain match cannot run out
    assert check_usermap(parse_ident_text("m /(.*?)(.*?)(.*?)(.*?)$ x\n"), "m", "x", "a" * 5000)


# --- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("pattern", "reason"), POSTGRESQL_ERRORS)
def test_postgresql_error_texts(pattern: str, reason: str) -> None:
    with pytest.raises(AuthRegexError) as ei:
        compile_are(pattern)
    assert ei.value.message == reason and not ei.value.unsupported
    tok, err = compile_auth_regex(AuthToken("/" + pattern))
    assert tok.regex is None
    assert err == f'invalid regular expression "{pattern}": {reason}'


@pytest.mark.parametrize(
    "pattern", ["(a)\\1", "(?=a)", "(?!a)", "(?<=a)b", "\\ma", "a\\M", "[[:<:]]a", "(?b)a", "(?e)a"]
)
def test_unsupported_refused_at_load(pattern: str) -> None:
    """PostgreSQL accepts these; pgtls cannot match them in linear time, so the line is refused."""
    with pytest.raises(AuthRegexError) as ei:
        compile_are(pattern)
    assert ei.value.unsupported and ei.value.message.startswith("pgtls does not support ")
    _, err = compile_auth_regex(AuthToken("/" + pattern))
    assert err is not None and err.startswith(
        f'invalid regular expression "{pattern}": pgtls does not support '
    )


def test_unsupported_line_is_an_error_line() -> None:
    from pgtls.config.ident import IdentError

    with pytest.raises(IdentError) as ei:
        parse_ident_text("m /^(a)\\1$ x\n")
    assert [(e.lineno, e.message) for e in ei.value.errors] == [
        (
            1,
            'invalid regular expression "^(a)\\1$": pgtls does not support back references (\\N) inside a '
            "regular expression",
        )
    ]


# --- robustness ------------------------------------------------------------------------------------

REGEX_ALPHABET = list("ab.^$|()[]{}*+?\\-:=!<>,#0129xAZdswDSWmMyYnrtu ") + [
    "\n",
    "\u00e9",
    "(?",
    "[:",
    ":]",
    "***",
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pattern=st.one_of(
        st.lists(st.sampled_from(REGEX_ALPHABET), max_size=24).map("".join), st.text(max_size=24)
    ),
    subjects=st.lists(st.text(max_size=40), max_size=4),
)
def test_arbitrary_patterns_never_crash(pattern: str, subjects: list[str]) -> None:
    try:
        rx = compile_are(pattern)
    except AuthRegexError as e:
        assert e.message
        return
    for s in subjects:
        found = rx.search(s)
        try:
            matched, group = rx.first_group(s)
        except AuthRegexMatchError:
            continue
        assert matched is found
        assert group is None or isinstance(group, str)


@settings(max_examples=200, deadline=None)
@given(subject=st.text(max_size=200))
def test_arbitrary_subjects_never_crash(subject: str) -> None:
    for p in ("^(.*)$", "^(.*?)(@.*)?$", "^(a|aa)+$", "((a)|b)*", "^[[:alpha:]]+(x)?$"):
        rx = compile_are(p)
        matched, group = rx.first_group(subject)
        assert matched is rx.search(subject)
    assert compile_are("^(.*)$").first_group(subject) == (True, subject)
