"""pg_hba.conf: the tokenizer (pgtls.config.authtokens), line parsing and checks (pgtls.config.hba), and
matching a few connections against the rules that loaded.

Input: the file's bytes (decoded as the server reads the file: UTF-8, bad bytes replaced).  ``include``
and ``@file`` resolve next to the file, in a scratch directory; inputs that could name a file outside it
are skipped (see ``common.may_escape``).

Expected: ``HbaError`` (the file is rejected, every bad line listed with a line number).  A bug: any other
exception, an error without a message, a rejected file whose rows show no error, or matching that raises.
"""

from __future__ import annotations

from tests.fuzz.common import auth_file_may_escape, instrumented, main, scratch

with instrumented(__name__):
    from pgtls.config.hba import ConnFacts, HbaError, match_detail, parse_hba_text
    from pgtls.config.hba_net import ResolveError


class Roles:
    def is_member(self, user: str, group: str) -> bool:
        return user == group or (user == "alice" and group == "staff")


class Resolver:
    """No DNS during fuzzing: a fixed table."""

    def reverse(self, ip: str) -> str:
        if ip == "10.0.0.1":
            return "db.example.com"
        raise ResolveError("Name or service not known")

    def forward(self, name: str) -> list[str]:
        if name.lower() == "db.example.com":
            return ["10.0.0.1"]
        raise ResolveError("Name or service not known")

    def interfaces(self) -> list[tuple[str, str]]:
        return [("127.0.0.1", "255.0.0.0"), ("10.0.0.2", "255.255.255.0"), ("::1", "ffff:ffff:ffff:ffff::")]


CONNECTIONS = (
    ConnFacts(local=True, addr=None, ssl=False, gss=False, user="alice", database="postgres"),
    ConnFacts(local=False, addr="127.0.0.1", ssl=True, gss=False, user="alice", database="app"),
    ConnFacts(local=False, addr="10.0.0.1", ssl=False, gss=False, user="bob", database="alice"),
    ConnFacts(local=False, addr="::1", ssl=True, gss=False, user="Alice\udcff", database="replication"),
)


def test_one_input(data: bytes) -> None:
    if auth_file_may_escape(data):
        return
    path = scratch() / "pg_hba.conf"
    text = data.decode("utf-8", "replace")
    try:
        rules = parse_hba_text(text, str(path), ssl_enabled=bool(data[:1] != b"#"))
    except HbaError as e:
        assert e.errors, "HbaError without errors"
        for err in e.errors:
            assert err.message, "an error without a message"
            err.format()
        return
    rows = rules.rows()
    assert len(rows) == len(rules.lines), "rows and loaded lines differ"
    for row in rows:
        assert row[3] is not None, f"loaded, but a row shows a refused line: {row!r}"
    resolver, roles = Resolver(), Roles()
    for conn in CONNECTIONS:
        match_detail(rules, conn, roles, resolver)


if __name__ == "__main__":
    main(test_one_input)
