"""pg_ident.conf parsing, user-map checks and pg_ident_file_mappings rows."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pgtls.config.hba import HbaError, parse_hba_text
from pgtls.config.ident import (
    IdentError,
    check_usermap,
    check_usermap_log,
    ident_file_mappings,
    load_ident,
    parse_ident_text,
)


class Roles:
    def is_member(self, user: str, group: str) -> bool:
        return user == group or (user, group) in {("carol", "admins")}


MAPS = parse_ident_text(
    "certmap alice alice_db\n"
    "certmap /^(.*)@example\\.com$ \\1\n"
    "certmap /^svc-.*$ +admins\n"
    "certmap root all\n"
    "certmap /^x(y)?z$ \\1q\n"
    'other "Quoted Name" bob\n'
    "nogroup /^(.*)$ /^adm\n"
)


def test_literal_regex_group_all() -> None:
    assert check_usermap(MAPS, "certmap", "alice_db", "alice")
    assert not check_usermap(MAPS, "certmap", "alice", "alice")
    assert check_usermap(MAPS, "certmap", "bob", "bob@example.com")
    assert not check_usermap(MAPS, "certmap", "bob", "bob@example.org")
    assert check_usermap(MAPS, "certmap", "carol", "svc-1", roles=Roles())
    assert not check_usermap(MAPS, "certmap", "dave", "svc-1", roles=Roles())
    assert check_usermap(MAPS, "certmap", "anyone", "root")
    assert check_usermap(MAPS, "other", "bob", "Quoted Name")
    assert check_usermap(MAPS, "other", "bob", "quoted name", case_insensitive=True)
    assert check_usermap(MAPS, "nogroup", "admin", "whatever")


def test_failure_log_lines() -> None:
    ok, log = check_usermap_log(MAPS, "certmap", "mallory", "eve")
    assert not ok and log == ['no match in usermap "certmap" for user "mallory" authenticated as "eve"']
    ok, log = check_usermap_log(None, None, "a", "b")
    assert not ok and log == ["provided user name (a) and authenticated user name (b) do not match"]
    assert check_usermap_log(None, "", "a", "a") == (True, [])
    ok, log = check_usermap_log(MAPS, "certmap", "q", "xz")  # \1 did not participate
    assert not ok and "has no subexpressions as requested by backreference" in log[0]


def test_errors_and_rows(tmp_path: Path) -> None:
    p = tmp_path / "pg_ident.conf"
    p.write_text("m1 alice bob\nm2 only\nm3 a,b c\nm4 /( x\n")
    with pytest.raises(IdentError) as ei:
        load_ident(p)
    assert [(e.lineno, e.message) for e in ei.value.errors] == [
        (2, "missing entry at end of line"),
        (3, "multiple values in ident field"),
        (4, 'invalid regular expression "(": parentheses () not balanced'),
    ]
    assert f'CONTEXT:  line 2 of configuration file "{p}"' in str(ei.value)
    rows = ident_file_mappings(p)
    assert rows[0] == (1, str(p), 1, "m1", "alice", "bob", None)
    assert rows[1] == (None, str(p), 2, None, None, None, "missing entry at end of line")
    p.write_text("m1 alice bob\n")
    assert load_ident(p).rows() == [(1, str(p), 1, "m1", "alice", "bob", None)]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            list('ab ,"#@\\/+=\n\t\r\0.^$()[]1')
            + [
                "all",
                "host",
                "local",
                "trust",
                "127.0.0.1/8",
                "include x",
                "\u00e9",
                " md5",
                "hostssl",
                "cert",
                "map=m",
                "clientcert=verify-ca",
                "255.0.0.0",
                "::1",
            ]
        ),
        max_size=40,
    ).map("".join)
)
def test_fuzz_parsers_only_documented_errors(text: str) -> None:
    for parse, err in ((parse_hba_text, HbaError), (parse_ident_text, IdentError)):
        try:
            parse(text, "/nonexistent/dir/file.conf")
        except err as e:
            assert e.errors and all(x.message for x in e.errors)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_random_bytes(data: bytes) -> None:
    text = data.decode("utf-8", errors="replace")
    for parse, err in ((parse_hba_text, HbaError), (parse_ident_text, IdentError)):
        try:
            parse(text, "/nonexistent/dir/file.conf")
        except err:
            pass
