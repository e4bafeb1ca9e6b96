"""pg_hba.conf: tokenizer, parser messages, pg_hba_file_rules rows, matching."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from pgtls.config.authtokens import MAX_TOKEN_LENGTH, next_token, tokenize_text
from pgtls.config.hba import (
    ConnFacts,
    HbaError,
    hba_file_rules,
    load_hba,
    match,
    match_detail,
    parse_hba_text,
)
from pgtls.config.hba_net import ResolveError


class Roles:
    def __init__(self, groups: dict[str, set[str]] | None = None) -> None:
        self.groups = groups or {}

    def is_member(self, user: str, group: str) -> bool:
        return user == group or group in self.groups.get(user, set())


class FakeResolver:
    def __init__(
        self,
        rev: dict[str, str] | None = None,
        fwd: dict[str, list[str]] | None = None,
        ifaces: list[tuple[str, str]] | None = None,
    ) -> None:
        self.rev, self.fwd, self.ifaces = rev or {}, fwd or {}, ifaces or []
        self.calls: list[str] = []

    def reverse(self, ip: str) -> str:
        self.calls.append(f"rev {ip}")
        if ip not in self.rev:
            raise ResolveError("Name or service not known")
        return self.rev[ip]

    def forward(self, name: str) -> list[str]:
        self.calls.append(f"fwd {name}")
        if name not in self.fwd:
            raise ResolveError("Name or service not known")
        return self.fwd[name]

    def interfaces(self) -> list[tuple[str, str]]:
        return self.ifaces


def tcp(
    addr: str = "127.0.0.1", user: str = "alice", db: str = "db", ssl: bool = False, **kw: bool
) -> ConnFacts:
    return ConnFacts(local=False, addr=addr, ssl=ssl, gss=False, user=user, database=db, **kw)


def local(user: str = "alice", db: str = "db") -> ConnFacts:
    return ConnFacts(local=True, addr=None, ssl=False, gss=False, user=user, database=db)


def errors_of(text: str, **kw: bool) -> list[str]:
    with pytest.raises(HbaError) as ei:
        parse_hba_text(text, "/x/pg_hba.conf", **kw)
    return [e.message for e in ei.value.errors]


# --- tokenizer ----------------------------------------------------------------------------


def test_next_token_quotes_commas_comments() -> None:
    assert next_token('"a b"c rest', 0)[:3] == ("a bc", 6, True)
    assert next_token('x"y"', 0)[0] == "xy" and next_token('x"y"', 0)[2] is False
    assert next_token('"a""b"', 0)[0] == 'a"b'
    assert next_token('""', 0)[0] == ""
    tok, pos, _, comma, _ = next_token("a,b", 0)
    assert (tok, pos, comma) == ("a", 1, True)
    assert next_token("   # comment", 0)[0] is None
    assert next_token('"#not comment"', 0)[0] == "#not comment"


def test_fields_and_lists() -> None:
    (line,) = tokenize_text('host a,b, "c d" all ,x  127.0.0.1/32 trust # hi\n')
    assert [[t.string for t in f] for f in line.fields] == [
        ["host"],
        ["a", "b", "c d"],
        ["all"],
        ["x"],
        ["127.0.0.1/32"],
        ["trust"],
    ]
    assert line.fields[1][2].quoted and not line.fields[2][0].quoted


def test_continuation_and_line_numbers() -> None:
    lines = tokenize_text("# c\nlocal all \\\n all trust\n\nlocal db u trust\n")
    assert [(tl.line_num, len(tl.fields)) for tl in lines] == [(2, 4), (5, 4)]
    assert lines[0].raw_line == "local all  all trust"


def test_token_too_long() -> None:
    text = "local " + "a" * (MAX_TOKEN_LENGTH + 1) + " all trust\n"
    assert errors_of(text) == ["authentication file token too long"]
    ok = "local " + "a" * MAX_TOKEN_LENGTH + " all trust\n"
    assert parse_hba_text(ok).lines[0].databases[0].string == "a" * MAX_TOKEN_LENGTH


def test_at_file_and_includes(tmp_path: Path) -> None:
    (tmp_path / "dbs").write_text("d1, d2\nd3 # x\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.conf").write_text("local b all trust\n")
    (tmp_path / "sub" / "a.conf").write_text("local a all trust\n")
    (tmp_path / "sub" / "ignored.txt").write_text("garbage\n")
    (tmp_path / "inc.conf").write_text("host all all 10.0.0.0/8 md5\n")
    hba = tmp_path / "pg_hba.conf"
    hba.write_text(
        'local @dbs,x all trust\nlocal "@dbs" all trust\ninclude inc.conf\ninclude_dir sub\n'
        "include_if_exists missing.conf\nlocal all all reject\n"
    )
    rules = load_hba(hba)
    assert [t.string for t in rules.lines[0].databases] == ["d1", "d2", "d3", "x"]
    assert rules.lines[1].databases[0].string == "@dbs"
    assert [(Path(ln.filename).name, ln.line_number) for ln in rules.lines] == [
        ("pg_hba.conf", 1),
        ("pg_hba.conf", 2),
        ("inc.conf", 1),
        ("a.conf", 1),
        ("b.conf", 1),
        ("pg_hba.conf", 6),
    ]
    assert any("skipping missing authentication file" in w for w in rules.warnings)
    assert [r[0] for r in rules.rows()] == [1, 2, 3, 4, 5, 6]


def test_include_errors(tmp_path: Path) -> None:
    hba = tmp_path / "pg_hba.conf"
    hba.write_text("include nope.conf\nlocal @missing all trust\ninclude_dir nodir\nlocal all all trust\n")
    with pytest.raises(HbaError) as ei:
        load_hba(hba)
    msgs = [e.message for e in ei.value.errors]
    assert msgs == [
        f'could not open file "{tmp_path}/nope.conf": No such file or directory',
        f'could not open file "{tmp_path}/missing": No such file or directory',
        f'could not open directory "{tmp_path}/nodir"',
    ]
    assert 'CONTEXT:  line 2 of configuration file "' in str(ei.value)


def test_include_loop(tmp_path: Path) -> None:
    hba = tmp_path / "pg_hba.conf"
    hba.write_text("include pg_hba.conf\n")
    with pytest.raises(HbaError) as ei:
        load_hba(hba)
    assert "maximum nesting depth exceeded" in ei.value.errors[0].message


# --- parser messages -------------------------------------------------------------------------

BAD = [
    ("foo all all trust", 'invalid connection type "foo"'),
    ("local,host all all trust", "multiple values specified for connection type"),
    ("local", "end-of-line before database specification"),
    ("local all", "end-of-line before role specification"),
    ("host all all", "end-of-line before IP address specification"),
    ("host all all 1.2.3.4,1.2.3.5/32 trust", "multiple values specified for host address"),
    ("host all all 1.2.3.4", "end-of-line before netmask specification"),
    ("host all all 1.2.3.4 255.0.0.0,1 trust", "multiple values specified for netmask"),
    ("host all all 1.2.3.4 zzz trust", 'invalid IP mask "zzz": Name or service not known'),
    ("host all all 1.2.3.4 ::1 trust", "IP address and mask do not match"),
    ("host all all 1.2.3.4/33 trust", 'invalid CIDR mask in address "1.2.3.4/33"'),
    ("host all all ::1/129 trust", 'invalid CIDR mask in address "::1/129"'),
    ("host all all 1.2.3.4/x trust", 'invalid CIDR mask in address "1.2.3.4/x"'),
    (
        "host all all foo.example/24 trust",
        'specifying both host name and CIDR mask is invalid: "foo.example/24"',
    ),
    ("host all all all", "end-of-line before authentication method"),
    ("local all all trust,md5", "multiple values specified for authentication type"),
    ("local all all foo", 'invalid authentication method "foo"'),
    ("local all all cert", "cert authentication is only supported on hostssl connections"),
    ("host all all all cert", "cert authentication is only supported on hostssl connections"),
    ("host all all all peer", "peer authentication is only supported on local sockets"),
    ("local all all gss", "gssapi authentication is not supported on local sockets"),
    ("local all all ident", 'authentication method "ident" is not supported by pgtls'),
    ("host all all all ldap", 'authentication method "ldap" is not supported by pgtls'),
    ("host all all all oauth", 'authentication method "oauth" is not supported by pgtls'),
    ("host all all all radius", 'authentication method "radius" is not supported by pgtls'),
    ("host all all all trust foo", "authentication option not in name=value format: foo"),
    ("host all all all trust foo=1", 'unrecognized authentication option name: "foo"'),
    (
        "host all all all trust map=x",
        'authentication option "map" is only valid for authentication methods ident, peer, gssapi, sspi, and cert',
    ),
    (
        "host all all all trust ldapserver=x",
        'authentication option "ldapserver" is only valid for authentication methods ldap',
    ),
    (
        "host all all all trust krb_realm=x",
        'authentication option "krb_realm" is only valid for authentication methods gssapi and sspi',
    ),
    ("host all all all trust clientcert=verify-ca", 'clientcert can only be configured for "hostssl" rows'),
    ("hostssl all all all trust clientcert=1", 'invalid value for clientcert: "1"'),
    (
        "hostssl all all all cert clientcert=verify-ca",
        'clientcert only accepts "verify-full" when using "cert" authentication',
    ),
    ("hostnossl all all all trust clientname=CN", 'clientname can only be configured for "hostssl" rows'),
    ("hostssl all all all cert clientname=cn", 'invalid value for clientname: "cn"'),
    ("local /( all trust", 'invalid regular expression "(": parentheses () not balanced'),
    ("local all /[ trust", 'invalid regular expression "[": brackets [] not balanced'),
]


@pytest.mark.parametrize(("line", "message"), BAD)
def test_parse_errors(line: str, message: str) -> None:
    assert errors_of(line + "\n") == [message]


def test_every_bad_line_reported_and_rows() -> None:
    text = "local all all trust\nfoo\nhost all all 1.2.3.4/40 md5\nhostssl all all all cert map=m clientname=DN\n"
    with pytest.raises(HbaError) as ei:
        parse_hba_text(text, "/x/pg_hba.conf")
    assert [(e.lineno, e.message) for e in ei.value.errors] == [
        (2, 'invalid connection type "foo"'),
        (3, 'invalid CIDR mask in address "1.2.3.4/40"'),
    ]
    assert str(ei.value).startswith(
        'invalid connection type "foo"\nCONTEXT:  line 2 of configuration file "/x/pg_hba.conf"'
    )


def test_rows(tmp_path: Path) -> None:
    hba = tmp_path / "pg_hba.conf"
    hba.write_text(
        'local "all",sameuser +g,"+h" trust\n'
        "host db u 192.168.1.5/24 scram-sha-256\n"
        "host db u 10.1.2.3 255.255.0.0 md5\n"
        "host db u fe80::1/64 password\n"
        "host db u .example.com reject\n"
        "hostssl all all samenet cert map=m clientname=DN\n"
        "hostssl all all all md5 clientcert=verify-ca\n"
        "bogus\n"
    )
    rows = hba_file_rules(hba)
    f = str(hba)
    assert rows == [
        (1, f, 1, "local", ["all", "sameuser"], ["+g", "+h"], None, None, "trust", None, None),
        (2, f, 2, "host", ["db"], ["u"], "192.168.1.5", "255.255.255.0", "scram-sha-256", None, None),
        (3, f, 3, "host", ["db"], ["u"], "10.1.2.3", "255.255.0.0", "md5", None, None),
        (4, f, 4, "host", ["db"], ["u"], "fe80::1", "ffff:ffff:ffff:ffff::", "password", None, None),
        (5, f, 5, "host", ["db"], ["u"], ".example.com", None, "reject", None, None),
        (
            6,
            f,
            6,
            "hostssl",
            ["all"],
            ["all"],
            "samenet",
            None,
            "cert",
            ["map=m", "clientcert=verify-full"],
            None,
        ),
        (7, f, 7, "hostssl", ["all"], ["all"], "all", None, "md5", ["clientcert=verify-ca"], None),
        (None, f, 8, None, None, None, None, None, None, None, 'invalid connection type "bogus"'),
    ]
    assert hba_file_rules(tmp_path / "none")[0][10].startswith("could not open file")


def test_hostssl_with_ssl_off_is_warning() -> None:
    rules = parse_hba_text(
        "hostssl all all all trust\nlocal all all trust\n", "/x/pg_hba.conf", ssl_enabled=False
    )
    assert len(rules.lines) == 2
    assert rules.warnings == [
        'hostssl record cannot match because SSL is disabled\nHINT:  Set "ssl = on" in '
        'postgresql.conf.\nCONTEXT:  line 1 of configuration file "/x/pg_hba.conf"'
    ]
    assert (
        rules.rows()[0][0] is None
        and rules.rows()[0][10].startswith("hostssl record")
        and rules.rows()[1][0] == 1
    )


def test_empty_file() -> None:
    assert errors_of("# nothing\n") == ['configuration file "/x/pg_hba.conf" contains no entries']


def test_address_forms() -> None:
    rules = parse_hba_text("host all all 127.1 255.255.255.255 trust\nhost all all 10.0.0.0/+8 trust\n")
    assert rules.lines[0].addr == ipaddress.ip_address("127.0.0.1")
    assert str(rules.lines[1].mask) == "255.0.0.0"


# --- matching -----------------------------------------------------------------------------


def test_first_match_wins_and_conn_types() -> None:
    rules = parse_hba_text(
        "local all all md5\nhostssl all all all cert\nhostnossl all all all password\n"
        "hostgssenc all all all trust\nhost all all all reject\n"
    )
    r = Roles()
    assert match(rules, local(), r).line_number == 1  # type: ignore[union-attr]
    assert match(rules, tcp(ssl=True), r).method == "cert"  # type: ignore[union-attr]
    assert match(rules, tcp(), r).method == "password"  # type: ignore[union-attr]
    gss = ConnFacts(local=False, addr="1.2.3.4", ssl=False, gss=True, user="u", database="d")
    assert match(rules, gss, r).method == "password"  # type: ignore[union-attr]
    only_local = parse_hba_text("local all all trust\n")
    assert match(only_local, tcp(), r) is None
    nogss = parse_hba_text("hostnogssenc all all all trust\n")
    assert match(nogss, gss, r) is None and match(nogss, tcp(), r) is not None


def test_database_and_user_keywords() -> None:
    rules = parse_hba_text(
        'local sameuser all trust\nlocal samerole all password\nlocal "all" all md5\n'
        "local replication all scram-sha-256\nlocal /^pre_ all reject\nlocal x +admins,/^svc_,bob cert_never\n".replace(
            " cert_never", " trust"
        )
    )
    r = Roles({"carol": {"staff"}, "dave": {"admins"}})
    assert match(rules, local("bob", "bob"), r).line_number == 1  # type: ignore[union-attr]
    assert match(rules, local("carol", "staff"), r).line_number == 2  # type: ignore[union-attr]
    assert match(rules, local("carol", "all"), r).line_number == 3  # type: ignore[union-attr]
    assert match(rules, local("carol", "replication"), r) is None  # keyword never matches normal conns
    repl = ConnFacts(
        local=True, addr=None, ssl=False, gss=False, user="x", database="whatever", replication=True
    )
    assert match(rules, repl, r).line_number == 4  # type: ignore[union-attr]
    assert match(rules, local("z", "pre_db"), r).line_number == 5  # type: ignore[union-attr]
    for user in ("dave", "svc_1", "bob"):
        assert match(rules, local(user, "x"), r).line_number == 6  # type: ignore[union-attr]
    assert match(rules, local("eve", "x"), r) is None


def test_quoted_keywords_are_names() -> None:
    rules = parse_hba_text('local all "+g" trust\nlocal all "all" md5\n')
    assert match(rules, local("+g"), Roles()).line_number == 1  # type: ignore[union-attr]
    assert match(rules, local("bob"), Roles({"bob": {"g"}})) is None


def test_ip_matching() -> None:
    rules = parse_hba_text(
        "host all all 10.0.0.0/8 md5\nhost all all 192.168.0.7 255.255.255.0 password\n"
        "host all all ::1/128 trust\nhost all all 0.0.0.0/0 reject\n"
    )
    r = Roles()
    assert match(rules, tcp("10.9.8.7"), r).method == "md5"  # type: ignore[union-attr]
    assert match(rules, tcp("192.168.0.200"), r).method == "password"  # type: ignore[union-attr]
    assert match(rules, tcp("::1"), r).method == "trust"  # type: ignore[union-attr]
    assert match(rules, tcp("::ffff:10.0.0.1"), r) is None  # no v4->v6 promotion (PG >= 12)
    assert match(rules, tcp("11.0.0.1"), r).method == "reject"  # type: ignore[union-attr]


def test_hostname_forward_and_reverse() -> None:
    rules = parse_hba_text("host all all .example.com md5\nhost all all db.other trust\n")
    res = FakeResolver(
        rev={"10.0.0.1": "a.EXAMPLE.com", "10.0.0.2": "b.example.com", "10.0.0.3": "db.other"},
        fwd={"a.EXAMPLE.com": ["10.0.0.1"], "b.example.com": ["10.0.0.99"], "db.other": ["10.0.0.3"]},
    )
    r = Roles()
    assert match(rules, tcp("10.0.0.1"), r, res).method == "md5"  # type: ignore[union-attr]
    mr = match_detail(rules, tcp("10.0.0.2"), r, res)
    assert mr.line is None
    assert (
        mr.hostname_detail == 'Client IP address resolved to "b.example.com", forward lookup does not match.'
    )
    assert match(rules, tcp("10.0.0.3"), r, res).method == "trust"  # type: ignore[union-attr]
    mr = match_detail(rules, tcp("10.0.0.4"), r, res)
    assert (
        mr.hostname_detail == "Could not resolve client IP address to a host name: Name or service not known."
    )
    # the reverse lookup is done once per connection
    res.calls.clear()
    match_detail(rules, tcp("10.0.0.4"), r, res)
    assert res.calls == ["rev 10.0.0.4"]


def test_samehost_samenet() -> None:
    rules = parse_hba_text("host all all samehost trust\nhost all all samenet md5\n")
    res = FakeResolver(ifaces=[("192.168.1.10", "255.255.255.0"), ("fe80::1", "ffff:ffff:ffff:ffff::")])
    r = Roles()
    assert match(rules, tcp("192.168.1.10"), r, res).method == "trust"  # type: ignore[union-attr]
    assert match(rules, tcp("192.168.1.77"), r, res).method == "md5"  # type: ignore[union-attr]
    assert match(rules, tcp("fe80::abcd"), r, res).method == "md5"  # type: ignore[union-attr]
    assert match(rules, tcp("192.168.2.1"), r, res) is None


def test_hostssl_line_with_ssl_off_never_matches_plain() -> None:
    rules = parse_hba_text("hostssl all all all trust\n", ssl_enabled=False)
    assert match(rules, tcp(), Roles()) is None
