"""PostgreSQL's answers for its regular expressions in pg_hba.conf and pg_ident.conf, read off a real
PostgreSQL 15 (``subject ~ pattern`` and ``(regexp_match(subject, pattern))[1]`` in a SQL_ASCII database with
the C collation).  tests/unit/config/test_auth_regex.py checks pgtls against them; tests/differential/
test_regex_semantics.py checks them (and many more) against a live server."""

from __future__ import annotations

# (pattern, subject, matches, first capture or None) -- PostgreSQL's answers.
SEMANTICS: list[tuple[str, str, bool, str | None]] = [
    # $ only at the very end, ^ only at the very start; . and [^x] match a newline
    ("^ssltestuser$", "ssltestuser\n", False, None),
    ("^ssltestuser$", "ssltestuser", True, None),
    ("^(.*)$", "ssltestuser\n", True, "ssltestuser\n"),
    ("^(.*)$", "ssl\ntestuser", True, "ssl\ntestuser"),
    ("^([^x]*)$", "a\nb", True, "a\nb"),
    ("^a.b$", "a\nb", True, None),
    ("a$", "a\n", False, None),
    ("^b", "a\nb", False, None),
    ("^(ssltestuser)\\Z", "ssltestuser\n", False, None),
    ("\\Aab\\Z", "ab", True, None),
    ("^[^\\d]+$", "ab\n", True, None),
    ("^(\\S+)\\s*$", "user\r", True, "user"),
    # the C locale's classes; one byte is one character
    ("^[[:alpha:]]+$", "ab\u00e9", False, None),
    ("^[[:alpha:]]+$", "abZ", True, None),
    ("^\\w+$", "a_1", True, None),
    ("^\\w+$", "a-1", False, None),
    ("^[[:space:]]$", "\v", True, None),
    ("^[[:cntrl:]]$", "\x7f", True, None),
    ("^[[:cntrl:]]$", "\x01", True, None),
    ("^[[:print:]]+$", "a b", True, None),
    ("^[[:upper:]]$", "a", False, None),
    ("(?i)^[[:upper:]]$", "a", True, None),
    ("(?i)^ABC$", "abc", True, None),
    ("^.$", "\u00e9", False, None),
    ("^..$", "\u00e9", True, None),
    ("^[[.space.]][[.hyphen.]]$", " -", True, None),
    # PostgreSQL's choice of the first capture (not a backtracking engine's)
    ("^(a*)(a*)$", "aaa", True, "aaa"),
    ("^(a*?)(a*)$", "aaa", True, ""),
    ("^(.*?)(@.*)?$", "user@example.com", True, "user"),
    ("^(.*)(@.*)?$", "user@example.com", True, "user@example.com"),
    ("^(.*)@example\\.com$", "alice@example.com", True, "alice"),
    ("(a|ab)(c|bcd)(d*)", "abcd", True, "ab"),
    ("^(a|ab)(c|bcd)(d*)$", "abcd", True, "ab"),
    ("(a+|b+)*", "ab", True, "b"),
    ("^(a|aa)+$", "aaa", True, "a"),
    ("(.*?)", "abc", True, ""),
    ("^(.*?)x?$", "abc", True, "abc"),
    ("(a*)+", "b", True, ""),
    ("(a*)*", "b", True, ""),
    ("(a*?)+?b", "aab", True, "aa"),
    ("((a)|b)*", "ab", True, "b"),
    ("(x)?y", "y", True, None),
    ("^(.+?)([0-9]*)$", "user42", True, "user"),
    ("^(a{2,3}?)(a*)$", "aaaa", True, "aa"),
    # prefixes, expanded syntax, escapes, bounds
    ("***=a.b", "a.b", True, None),
    ("***=a.b", "axb", False, None),
    ("(?x) ^ a b # c\n $", "ab", True, None),
    ("^\\x41\\101$", "AA", True, None),
    ("a{2,3}", "aaaa", True, None),
    ("[a-c]+", "xbcay", True, None),
]


POSTGRESQL_ERRORS = [
    ("(", "parentheses () not balanced"),
    ("a)", "parentheses () not balanced"),
    ("[", "brackets [] not balanced"),
    ("a{2,1}", "invalid repetition count(s)"),
    ("a{256}", "invalid repetition count(s)"),
    ("x{1", "braces {} not balanced"),
    ("*a", "quantifier operand invalid"),
    ("a**", "quantifier operand invalid"),
    ("\\", "invalid escape \\ sequence"),
    ("\\q", "invalid escape \\ sequence"),
    ("[[:foo:]]", "invalid character class"),
    ("[b-a]", "invalid character range"),
    ("(?z)a", "invalid embedded option"),
    ("[[.ab.]]", "invalid collating element"),
    ("***?", "invalid regexp (reg version 0.8)"),
]
