"""pgtls's libpq connection-string parser against libpq's own (PQconninfoParse, through psycopg)."""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pgtls.config.conninfo import LIBPQ_KEYWORDS, ConninfoError, parse_conninfo


def libpq(text: str) -> dict[str, str] | str:
    """PQconninfoParse's keywords and values; values that are not UTF-8 (``%db`` decodes to the byte 0xdb)
    decoded as pgtls keeps them, with surrogateescape (psycopg's conninfo_to_dict cannot decode them)."""
    try:
        options = psycopg.pq.Conninfo.parse(text.encode("utf-8", "surrogateescape"))
    except psycopg.OperationalError as e:
        return str(e).rstrip("\n")
    return {
        o.keyword.decode(): o.val.decode("utf-8", "surrogateescape") for o in options if o.val is not None
    }


def ours(text: str) -> dict[str, str] | str:
    try:
        return parse_conninfo(text)
    except ConninfoError as e:
        return e.message


CASES = [
    "",
    "   ",
    "host=a",
    "host = a  port= 5 ",
    "host='a b\\' c'",
    "host=a\\ b",
    "host='x",
    "host",
    "host x=1",
    "foo=1",
    "=5",
    "host=",
    "host=''",
    "host=a host=b",
    "requiressl=1",
    "requiressl=0",
    "dbname='\\\\'",
    "host=a\tport=1\nuser=u",
    "host=a\x00port=5",
    "application_name=\\'",
    "postgresql://",
    "postgres://h",
    "postgresql://u:p@h1:1,[::1]:2/db?sslmode=require&application_name=a%20b",
    "postgresql://h1,h2/db",
    "postgresql://h1:5,h2/db",
    "postgresql://@h",
    "postgresql://u:@h",
    "postgresql://:p@h",
    "postgresql://h/db?a=b=c",
    "postgresql://[::1",
    "postgresql://[]",
    "postgresql://[::1]x",
    "postgresql://h/%zz",
    "postgresql://h/%00",
    "postgresql://h/?requiressl=1",
    "postgresql://h?dbname=x&ssl=false",
    "postgres://h/?ssl=true",
    "postgresql://h/?x=1",
    "postgresql://h/db?a",
    "postgresql://h/?&",
    "postgresql://h/?a=1&&",
    "postgresql://h/d%C3%A9",
    "postgresql://u%40x:p%3a@h/d?host=o",
    "postgresql:///db",
    "postgresql://h:/db",
    "postgresql://h,/db",
    "postgresql://[::1]:5432,[fe80::1%25eth0]/db",
    "postgresql://a@b@c/d",
    "postgresql://h/db/x",
    "postgresql://h?",
    "postgresql://h/?sslmode",
    "POSTGRESQL://h",
    "postgresql:/h",
    "postgresql:// ",
    "postgresql://h x/db",
    "postgresql://h /db ",
    "postgresql://u v@h",
    "postgresql://h/db?application_name=a b",
    "postgresql://h:5 /x",
    "postgresql://h/%zz x",
    "postgresql://h/a b%zz",
    "postgresql://h/a%20b",
    "postgresql://%dbname",
    "postgresql://h/%db",
]


@pytest.mark.parametrize("text", CASES)
def test_cases_agree_with_libpq(text):
    assert ours(text) == libpq(text)


_ATOMS = [
    "host",
    "port",
    "user",
    "dbname",
    "sslmode",
    "ssl",
    "foo",
    "requiressl",
    "=",
    " ",
    "\t",
    "'",
    "\\",
    ",",
    ":",
    "@",
    "/",
    "?",
    "&",
    "[",
    "]",
    "%",
    "%20",
    "%4",
    "%zz",
    "%00",
    "%C3%A9",
    "::1",
    "true",
    "1",
    "a",
    "postgresql://",
    "postgres://",
]


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_ATOMS), max_size=14).map("".join))
def test_generated_strings_agree_with_libpq(text):
    assert ours(text) == libpq(text)


@settings(max_examples=1500, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=0x7F), max_size=40))
def test_arbitrary_ascii_agrees_with_libpq(text):
    assert ours(text) == libpq(text)


def test_every_libpq_keyword_is_known():
    known = {o.keyword.decode() for o in psycopg.pq.Conninfo.get_defaults()}
    assert known <= LIBPQ_KEYWORDS, known - LIBPQ_KEYWORDS
