"""``pgtls role add|alter|drop|list -D DIR``: manage roles from the shell.

With the managed PostgreSQL (the default) the roles are PostgreSQL's own: the
command runs CREATE/ALTER/DROP ROLE in the cluster over its private socket
(starting the cluster for the duration if pgtls is not running).  With the
embedded DuckDB backend it edits pgtls's role store.

Passwords are read from the terminal (twice, without echo) or, with
``--password-stdin``, from the first line of standard input — never from the command
line, where other users could read them in the process list.  Only the resulting
secret (SCRAM verifier or md5 hash) is written or sent.  ``-D`` defaults to ``$PGDATA``.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pgtls.auth.passwords import PASSWORD_METHODS, SCRAM_DEFAULT_ITERATIONS
from pgtls.auth.roles import Role, RoleError, RoleStore

if TYPE_CHECKING:
    from pgtls.backends.relay.upstream import Result


def _read_password(args: argparse.Namespace) -> str | None:
    if args.password_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    if not args.password:
        return None
    first = getpass.getpass("Enter password for new role: ")
    second = getpass.getpass("Enter it again: ")
    if first != second:
        raise RoleError("Passwords didn't match.")
    return first


def _data_dir(args: argparse.Namespace) -> Path:
    data = args.datadir or os.environ.get("PGDATA")
    if not data:
        raise RoleError("no data directory specified (use -D or set PGDATA)")
    return Path(data)


def _store(args: argparse.Namespace) -> RoleStore | ClusterRoles:
    data = _data_dir(args)
    from pgtls.backends.relay.cluster import has_cluster

    if has_cluster(data):
        return ClusterRoles(data, args.password_encryption, args.scram_iterations)
    return RoleStore(
        data, password_encryption=args.password_encryption, scram_iterations=args.scram_iterations
    )


def _flags(args: argparse.Namespace) -> dict[str, object]:
    out: dict[str, object] = {}
    for name in ("superuser", "login", "createdb", "createrole", "inherit"):
        v = getattr(args, name, None)
        if v is not None:
            out[name] = v
    if getattr(args, "valid_until", None) is not None:
        out["valid_until"] = args.valid_until or None
    return out


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class ClusterRoles:
    """The role commands as SQL in the managed cluster (same interface as RoleStore's mutations)."""

    _ATTRS = {
        "superuser": ("SUPERUSER", "NOSUPERUSER"),
        "login": ("LOGIN", "NOLOGIN"),
        "createdb": ("CREATEDB", "NOCREATEDB"),
        "createrole": ("CREATEROLE", "NOCREATEROLE"),
        "inherit": ("INHERIT", "NOINHERIT"),
    }

    def __init__(self, data_dir: Path, password_encryption: str, scram_iterations: int) -> None:
        self.data_dir = data_dir
        self.password_encryption = password_encryption
        self.scram_iterations = scram_iterations

    def _run(self, *statements: str) -> list[Result]:
        from pgtls.backends.relay.clustersql import SqlError, run_sql

        try:
            return run_sql(self.data_dir, [(sql, None) for sql in statements])
        except SqlError as e:
            raise RoleError(str(e)) from None

    def _options(self, name: str, changes: dict[str, object]) -> str:
        from pgtls.auth.passwords import encrypt_password

        opts = []
        for attr, (yes, no) in self._ATTRS.items():
            if attr in changes:
                opts.append(yes if changes[attr] else no)
        if "password" in changes:
            pw = changes["password"]
            if pw is None:
                opts.append("PASSWORD NULL")
            else:
                secret = encrypt_password(str(pw), name, self.password_encryption, self.scram_iterations)
                opts.append(f"PASSWORD {quote_literal(secret)}")
        if "valid_until" in changes:
            opts.append(f"VALID UNTIL {quote_literal(str(changes['valid_until'] or 'infinity'))}")
        return " ".join(opts)

    def create(
        self,
        name: str,
        *,
        password: str | None = None,
        member_of: tuple[str, ...] | list[str] = (),
        **flags: object,
    ) -> None:
        changes: dict[str, object] = {"login": True, **flags}
        if password is not None:
            changes["password"] = password
        sql = f"CREATE ROLE {quote_ident(name)} {self._options(name, changes)}"
        if member_of:
            sql += " IN ROLE " + ", ".join(quote_ident(g) for g in member_of)
        self._run(sql)

    def alter(self, name: str, **changes: object) -> None:
        self._run(f"ALTER ROLE {quote_ident(name)} {self._options(name, changes)}")

    def grant(self, member: str, group: str) -> None:
        self._run(f"GRANT {quote_ident(group)} TO {quote_ident(member)}")

    def revoke(self, member: str, group: str) -> None:
        self._run(f"REVOKE {quote_ident(group)} FROM {quote_ident(member)}")

    def drop(self, name: str) -> None:
        self._run(f"DROP ROLE {quote_ident(name)}")

    def list(self) -> list[Role]:
        from pgtls.backends.relay.roles import parse_array

        res = self._run(
            "SELECT a.oid::text, a.rolname, a.rolsuper, a.rolcanlogin, a.rolcreatedb, a.rolcreaterole, a.rolinherit,"
            " a.rolpassword IS NOT NULL, left(a.rolpassword, 3), a.rolvaliduntil::text,"
            " ARRAY(SELECT g.rolname FROM pg_auth_members m JOIN pg_authid g ON g.oid = m.roleid"
            "       WHERE m.member = a.oid ORDER BY 1)::text"
            " FROM pg_authid a WHERE a.rolname !~ '^pg_' ORDER BY a.oid"
        )[0]
        out = []
        for oid, name, su, login, cdb, crole, inh, has_pw, kind, until, groups in res.rows:
            pw = None if has_pw != "t" else ("md5" if kind == "md5" else "SCRAM-SHA-256")
            out.append(
                Role(
                    str(name),
                    int(oid or 0),
                    su == "t",
                    login == "t",
                    cdb == "t",
                    crole == "t",
                    inh == "t",
                    pw,
                    until,
                    tuple(parse_array(groups)),
                )
            )
        return out


def _cmd_add(args: argparse.Namespace) -> int:
    store = _store(args)
    pw = _read_password(args)
    flags = _flags(args)
    store.create(args.name, password=pw, member_of=args.member_of or (), **flags)  # type: ignore[arg-type]
    print(f"CREATE ROLE {args.name}")
    return 0


def _cmd_alter(args: argparse.Namespace) -> int:
    store = _store(args)
    changes = _flags(args)
    if args.password or args.password_stdin:
        changes["password"] = _read_password(args)
    if args.no_password:
        changes["password"] = None
    if changes:
        store.alter(args.name, **changes)
    for g in args.grant or ():
        store.grant(args.name, g)
    for g in args.revoke or ():
        store.revoke(args.name, g)
    print(f"ALTER ROLE {args.name}")
    return 0


def _cmd_drop(args: argparse.Namespace) -> int:
    store = _store(args)
    store.drop(args.name)
    print(f"DROP ROLE {args.name}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    for r in _store(args).list():
        attrs = [
            a
            for a, on in (
                ("Superuser", r.superuser),
                ("Create role", r.createrole),
                ("Create DB", r.createdb),
                ("Cannot login", not r.login),
                ("No inheritance", not r.inherit),
            )
            if on
        ]
        kind = "none" if r.password is None else ("md5" if r.password.startswith("md5") else "scram-sha-256")
        until = f" valid until {r.valid_until}" if r.valid_until else ""
        groups = f" member of {{{','.join(r.member_of)}}}" if r.member_of else ""
        print(f"{r.name}\toid={r.oid}\tpassword={kind}{until}\t{', '.join(attrs)}{groups}")
    return 0


def _wrap(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return int(fn(args))
        except RoleError as e:
            print(f"pgtls role: error: {e}", file=sys.stderr)
            return 1

    return run


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-D", "--pgdata", dest="datadir", help="data directory (default: $PGDATA)")
    p.add_argument("--password-encryption", choices=PASSWORD_METHODS, default="scram-sha-256")
    p.add_argument("--scram-iterations", type=int, default=SCRAM_DEFAULT_ITERATIONS)


def _attrs(p: argparse.ArgumentParser) -> None:
    for name in ("superuser", "login", "createdb", "createrole", "inherit"):
        p.add_argument(f"--{name}", dest=name, action="store_true", default=None)
        p.add_argument(f"--no-{name}", dest=name, action="store_false")
    p.add_argument("--valid-until", help="password expiry (ISO 8601); empty for never")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")


def add_role_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``role add|alter|drop|list``; each sets ``func(args) -> int``."""
    role = subparsers.add_parser("role", help="manage roles (pg_authid)")
    sub = role.add_subparsers(dest="role_command", required=True)
    add = sub.add_parser("add", help="create a role")
    add.add_argument("name")
    _common(add)
    _attrs(add)
    add.add_argument("-P", "--password", action="store_true", help="prompt for a password")
    add.add_argument("--member-of", action="append", metavar="ROLE")
    add.set_defaults(func=_wrap(_cmd_add))
    alter = sub.add_parser("alter", help="change a role")
    alter.add_argument("name")
    _common(alter)
    _attrs(alter)
    alter.add_argument("-P", "--password", action="store_true", help="prompt for a new password")
    alter.add_argument("--no-password", action="store_true", help="remove the password")
    alter.add_argument("--grant", action="append", metavar="ROLE", help="make NAME a member of ROLE")
    alter.add_argument("--revoke", action="append", metavar="ROLE")
    alter.set_defaults(func=_wrap(_cmd_alter))
    drop = sub.add_parser("drop", help="drop a role")
    drop.add_argument("name")
    _common(drop)
    drop.set_defaults(func=_wrap(_cmd_drop))
    lst = sub.add_parser("list", help="list roles")
    _common(lst)
    lst.set_defaults(func=_wrap(_cmd_list))
