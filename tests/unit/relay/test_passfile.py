"""libpq's password file (.pgpass) as pgtls reads it for upstream logins."""

from __future__ import annotations

import io
import sys

from pgtls import log
from pgtls.backends.relay.passfile import lookup


def write(tmp_path, text: str, mode: int = 0o600):  # noqa: ANN001, ANN201
    p = tmp_path / "pgpass"
    p.write_text(text)
    p.chmod(mode)
    return p


def test_first_matching_line_wins_with_wildcards_and_escapes(tmp_path):
    p = write(
        tmp_path,
        "# comment\n"
        "db1:5432:app:alice:first\n"
        "*:*:app:alice:second\n"
        "db\\:x:*:*:bob:pa\\:ss:word\\\\\n"
        "*:*:*:*:fallback\n",
    )
    assert lookup(str(p), "db1", 5432, "app", "alice") == "first"
    assert lookup(str(p), "db2", 6432, "app", "alice") == "second"
    assert lookup(str(p), "db:x", 1, "any", "bob") == "pa:ss:word\\"
    assert lookup(str(p), "h", 1, "d", "carol") == "fallback"
    assert lookup(str(p), "/var/run/postgresql", 5432, "app", "alice") == "second"  # a socket is "localhost"


def test_socket_directory_matches_localhost(tmp_path):
    p = write(tmp_path, "localhost:5432:*:u:sock\n")
    assert lookup(str(p), "/tmp", 5432, "x", "u") == "sock"


def test_loose_permissions_or_missing_file_give_nothing(tmp_path):
    p = write(tmp_path, "*:*:*:*:secret\n", 0o644)
    out = io.StringIO()
    log.configure(out)
    try:
        assert lookup(str(p), "h", 1, "d", "u") is None
    finally:
        log.configure(sys.stderr)
    assert "has group or world access; permissions should be u=rw (0600) or less" in out.getvalue()
    assert "secret" not in out.getvalue()
    assert lookup(str(tmp_path / "missing"), "h", 1, "d", "u") is None
    assert lookup(str(tmp_path), "h", 1, "d", "u") is None  # a directory is not a plain file


def test_short_lines_are_skipped(tmp_path):
    p = write(tmp_path, "h:1:d\n*:*:*:u:ok\n")
    assert lookup(str(p), "h", 1, "d", "u") == "ok"
