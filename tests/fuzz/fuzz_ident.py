"""pg_ident.conf: tokenizing and line parsing (pgtls.config.ident), then user-name mapping
(``check_usermap_log``) with regular expressions and ``\\1`` substitution.

Input: a control byte (bits 0-1: which system user name is mapped, bit 2: case-insensitive), then the
file's bytes.  ``include``/``@file`` inputs that could leave the scratch directory are skipped.

Expected: ``IdentError`` (the file is rejected, every bad line listed).  A bug: any other exception, an
error without a message, or mapping that raises.
"""

from __future__ import annotations

from tests.fuzz.common import auth_file_may_escape, instrumented, main, scratch

with instrumented(__name__):
    from pgtls.config.ident import IdentError, check_usermap_log, parse_ident_text


SYSTEM_USERS = ("alice", "CN=alice@example.com", "bob.smith@EXAMPLE.COM", "a" * 40 + "\udcff")
PG_USERS = ("alice", "bob", "bob.smith")


class Roles:
    def is_member(self, user: str, group: str) -> bool:
        return user == group or group == "staff"


def test_one_input(data: bytes) -> None:
    if not data:
        return
    control, body = data[0], data[1:]
    if auth_file_may_escape(body):
        return
    path = scratch() / "pg_ident.conf"
    try:
        maps = parse_ident_text(body.decode("utf-8", "replace"), str(path))
    except IdentError as e:
        assert e.errors, "IdentError without errors"
        assert all(err.message for err in e.errors), "an error without a message"
        str(e)
        return
    assert len(maps.rows()) == len(maps.lines)
    system_user = SYSTEM_USERS[control & 3]
    names = {line.map_name for line in maps.lines} | {"nomap"}
    for map_name in sorted(names)[:4]:
        for pg_user in PG_USERS:
            check_usermap_log(maps, map_name, pg_user, system_user, bool(control & 4), Roles())


if __name__ == "__main__":
    main(test_one_input)
