"""Role store: persistence, secrets only, membership, two-process safety, CLI."""

from __future__ import annotations

import argparse
import io
import multiprocessing
import stat
import sys
from pathlib import Path

import pytest

from pgtls.auth.passwords import parse_scram_secret, verify_plain_password
from pgtls.auth.roles import RoleError, RoleStore
from pgtls.role_cli import add_role_parser


def test_create_get_persist(tmp_path: Path) -> None:
    s = RoleStore(tmp_path)
    r = s.create("postgres", password="secret-pw", superuser=True)
    assert r.oid == 10 and r.password is not None and parse_scram_secret(r.password) is not None
    md5 = RoleStore(tmp_path, password_encryption="md5").create("md5user", password="pass")
    assert md5.password == "md5" + __import__("hashlib").md5(b"passmd5user").hexdigest() and md5.oid == 16384
    f = tmp_path / "global" / "pg_authid.json"
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert b"secret-pw" not in f.read_bytes() and b'pass"' not in f.read_bytes()
    s2 = RoleStore(tmp_path)
    assert [x.name for x in s2.list()] == ["postgres", "md5user"]
    assert s.get("md5user") is not None  # picks up the other instance's write
    assert verify_plain_password("postgres", "secret-pw", s2.get("postgres").password)[0]  # type: ignore[union-attr, arg-type]
    with pytest.raises(RoleError, match='role "postgres" already exists'):
        s.create("postgres")
    s.alter("postgres", login=False, valid_until="2000-01-01T00:00:00+00:00")
    assert s.get("postgres").password_expired() and not s.get("postgres").login  # type: ignore[union-attr]
    s.drop("md5user")
    assert s.get("md5user") is None
    with pytest.raises(RoleError, match='role "md5user" does not exist'):
        s.drop("md5user")
    with pytest.raises(TypeError):
        s.alter("postgres", bogus=1)


def test_membership(tmp_path: Path) -> None:
    s = RoleStore(tmp_path)
    for n in ("a", "b", "c", "d"):
        s.create(n)
    s.grant("a", "b")
    s.grant("b", "c")
    assert s.is_member("a", "c") and s.is_member("a", "a") and not s.is_member("c", "a")
    assert not s.is_member("a", "nosuch") and not s.is_member("nosuch", "nosuch")
    with pytest.raises(RoleError):
        s.grant("c", "a")  # would be a cycle
    s.revoke("b", "c")
    assert not s.is_member("a", "c")
    s.drop("b")
    assert s.get("a").member_of == ()  # type: ignore[union-attr]


def _worker(path: str, prefix: str, n: int) -> None:
    s = RoleStore(Path(path), scram_iterations=16)
    for i in range(n):
        s.create(f"{prefix}{i}", password="pw")


def test_two_processes(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_worker, args=(str(tmp_path), p, 25)) for p in ("x", "y")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    roles = RoleStore(tmp_path).list()
    assert len(roles) == 50 and len({r.oid for r in roles}) == 50


def run_cli(argv: list[str], stdin: str = "") -> int:
    parser = argparse.ArgumentParser()
    add_role_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        return int(args.func(args))
    finally:
        sys.stdin = old


def test_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    d = str(tmp_path)
    assert run_cli(["role", "add", "alice", "-D", d, "--password-stdin", "--superuser"], "s3cret\n") == 0
    s = RoleStore(tmp_path)
    assert s.get("alice").superuser and verify_plain_password("alice", "s3cret", s.get("alice").password)[0]  # type: ignore[union-attr, arg-type]
    monkeypatch.setenv("PGDATA", d)
    assert run_cli(["role", "add", "grp"]) == 0
    assert run_cli(["role", "alter", "alice", "--grant", "grp", "--no-superuser"]) == 0
    assert RoleStore(tmp_path).is_member("alice", "grp")
    assert run_cli(["role", "list"]) == 0
    out = capsys.readouterr().out
    assert "alice" in out and "s3cret" not in out
    assert run_cli(["role", "drop", "nosuch"]) == 1
    assert 'role "nosuch" does not exist' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_cli(["role", "add", "bob", "--password", "inline"])  # never from argv
