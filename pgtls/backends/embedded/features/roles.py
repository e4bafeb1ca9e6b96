"""CREATE/ALTER/DROP ROLE (USER, GROUP) and GRANT/REVOKE role membership, kept in the role store.

The role store (``pgtls.auth.roles.RoleStore``, ``DATA/global/pg_authid.json``) is what
authentication reads, so a role created over SQL can log in at once.  Permission
rules and messages follow PostgreSQL 16: superusers may do anything; roles with
CREATEROLE may create, alter, rename, drop and grant non-superuser roles; any role
may change its own password.  Passwords are encrypted here (PBKDF2 for SCRAM runs in
the worker thread that executes the statement) as the session's
``password_encryption`` says; an already encrypted verifier is stored as given.

The plaintext password must never leave this module: a syntax error never quotes a
string constant of the statement (PostgreSQL's ``syntax error at or near "'secret'"``
becomes ``... at or near a string constant``; the position still points at it), and no
other message quotes the password (only an invalid VALID UNTIL value is echoed, as
PostgreSQL does).

Role changes are not transactional here (the store is a file, not a DuckDB table), so
they are refused inside a transaction block (25001) rather than silently surviving a
ROLLBACK.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from pgtls.backends.embedded.engine.context import StatementContext
from pgtls.backends.embedded.sql.lexer import Token, string_value, tokens, unquote_ident
from pgtls.errors import PgError

if TYPE_CHECKING:
    from pgtls.auth.roles import Role, RoleStore

_FLAGS = {
    "SUPERUSER": ("superuser", True), "NOSUPERUSER": ("superuser", False),
    "CREATEDB": ("createdb", True), "NOCREATEDB": ("createdb", False),
    "CREATEROLE": ("createrole", True), "NOCREATEROLE": ("createrole", False),
    "INHERIT": ("inherit", True), "NOINHERIT": ("inherit", False),
    "LOGIN": ("login", True), "NOLOGIN": ("login", False),
}  # fmt: skip
_UNSUPPORTED = {"REPLICATION", "NOREPLICATION", "BYPASSRLS", "NOBYPASSRLS", "ADMIN", "SYSID"}
_SELF_WORDS = {"CURRENT_USER", "SESSION_USER", "CURRENT_ROLE"}
_RESERVED_NAMES = {"public", "none"}


def _error_near(sql: str, toks: list[Token], i: int, offset: int) -> PgError:
    if i >= len(toks):
        return PgError("42601", "syntax error at end of input", position=offset + len(sql) + 1)
    t = toks[i]
    near = "a string constant" if t.kind == "string" else f'"{t.text}"'  # never echo a password
    return PgError("42601", f"syntax error at or near {near}", position=offset + t.start + 1)


@dataclass
class _Parser:
    sql: str
    offset: int
    toks: list[Token]
    i: int = 0

    def peek(self) -> str:
        if self.i >= len(self.toks):
            return ""
        t = self.toks[self.i]
        return t.text.upper() if t.kind == "word" else ""

    def accept(self, *words: str) -> bool:
        if self.peek() in words:
            self.i += 1
            return True
        return False

    def expect(self, word: str) -> None:
        if not self.accept(word):
            raise self.error()

    def error(self) -> PgError:
        return _error_near(self.sql, self.toks, self.i, self.offset)

    def at_end(self) -> bool:
        return self.i >= len(self.toks)

    def name(self, me: str | None = None) -> str:
        if self.at_end():
            raise self.error()
        t = self.toks[self.i]
        if t.kind == "word" and me is not None and t.text.upper() in _SELF_WORDS:
            self.i += 1
            return me
        if t.kind not in ("word", "ident"):
            raise self.error()
        self.i += 1
        return unquote_ident(t.text)

    def names(self, me: str | None = None) -> list[str]:
        out = [self.name(me)]
        while self.i < len(self.toks) and self.toks[self.i].text == ",":
            self.i += 1
            out.append(self.name(me))
        return out

    def string(self) -> str:
        if self.at_end() or self.toks[self.i].kind != "string":
            raise self.error()
        self.i += 1
        return string_value(self.toks[self.i - 1].text)


@dataclass
class _Options:
    flags: dict[str, bool] = field(default_factory=dict)
    password: str | None = None
    password_given: bool = False
    valid_until: str | None = None
    valid_given: bool = False
    in_roles: list[str] = field(default_factory=list)
    members: list[str] = field(default_factory=list)


def _parse_options(p: _Parser, create: bool, session: StatementContext) -> _Options:
    opts = _Options()
    seen: set[str] = set()

    def once(key: str) -> None:
        if key in seen:
            raise PgError(
                "42601", "conflicting or redundant options", position=p.offset + p.toks[p.i - 1].start + 1
            )
        seen.add(key)

    p.accept("WITH")
    while not p.at_end():
        word = p.peek()
        if word in _FLAGS:
            p.i += 1
            key, value = _FLAGS[word]
            once(key)
            opts.flags[key] = value
        elif word in ("PASSWORD", "ENCRYPTED"):
            p.i += 1
            if word == "ENCRYPTED":
                p.expect("PASSWORD")
            once("password")
            opts.password_given = True
            if p.accept("NULL"):
                opts.password = None
            else:
                opts.password = p.string()
        elif word == "UNENCRYPTED":
            raise PgError("0A000", "UNENCRYPTED PASSWORD is no longer supported",
                          hint="Remove UNENCRYPTED to store the password in encrypted form instead.",
                          position=p.offset + p.toks[p.i].start + 1)  # fmt: skip
        elif word == "VALID":
            p.i += 1
            p.expect("UNTIL")
            once("validUntil")
            opts.valid_given = True
            opts.valid_until = _timestamp(p.string(), session)
        elif word == "CONNECTION":
            p.i += 1
            p.expect("LIMIT")
            once("connectionlimit")
            if not p.at_end() and p.toks[p.i].text == "-":
                p.i += 1
            if p.at_end() or p.toks[p.i].kind != "number":
                raise p.error()
            p.i += 1  # accepted and ignored: pgtls has no per-role connection limit
        elif create and word == "IN":
            p.i += 1
            if not p.accept("ROLE"):
                p.expect("GROUP")
            once("addroleto")
            opts.in_roles = p.names()
        elif create and word in ("ROLE", "USER"):
            p.i += 1
            once("rolemembers")
            opts.members = p.names()
        elif word in _UNSUPPORTED:
            raise PgError("0A000", f"role option {word} is not supported by pgtls",
                          position=p.offset + p.toks[p.i].start + 1)  # fmt: skip
        else:
            raise p.error()
    return opts


def _timestamp(text: str, session: StatementContext) -> str | None:
    """VALID UNTIL's timestamptz input as an ISO 8601 string with offset (None: 'infinity')."""
    v = text.strip()
    if v.lower() in ("infinity", "+infinity"):
        return None
    try:
        ts = datetime.fromisoformat(v.replace(" ", "T", 1) if "T" not in v else v)
    except ValueError:
        raise PgError("22007", f'invalid input syntax for type timestamp with time zone: "{text}"') from None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=session.tz)
    return ts.isoformat()


class _Actor:
    """The role running the statement, as the role store knows it now."""

    def __init__(self, session: StatementContext, store: RoleStore) -> None:
        self.name = session.info.user
        role = store.get(self.name)
        self.superuser = role.superuser if role is not None else session.info.is_superuser
        self.createrole = self.superuser or (role.createrole if role is not None else False)
        self.createdb = self.superuser or (role.createdb if role is not None else False)


def _store_error(e: Exception) -> PgError:
    msg = str(e)
    if "already exists" in msg:
        return PgError("42710", msg)
    if "does not exist" in msg:
        return PgError("42704", msg)
    if "is a member of role" in msg or "member of itself" in msg:
        return PgError("0LP01", msg)
    if "too long" in msg:
        return PgError("42622", msg)
    return PgError("XX000", msg)


def _check_new_name(name: str) -> None:
    if name.startswith("pg_"):
        raise PgError(
            "42939", f'role name "{name}" is reserved', detail='Role names starting with "pg_" are reserved.'
        )
    if name in _RESERVED_NAMES:
        raise PgError("42939", f'role name "{name}" is reserved')


def _secret(session: StatementContext, name: str, password: str | None) -> str | None:
    """The stored form of a new password (None: no password)."""
    if password is None:
        return None
    if password == "":
        session.notice(
            PgError("00000", "empty string is not a valid password, clearing password", severity="NOTICE")
        )
        return None
    from pgtls.auth.passwords import SCRAM_DEFAULT_ITERATIONS, encrypt_password

    try:
        method = session.setting("password_encryption")
    except PgError:
        method = "scram-sha-256"
    try:
        iterations = int(session.setting("scram_iterations"))
    except (PgError, ValueError):
        iterations = SCRAM_DEFAULT_ITERATIONS
    try:
        return encrypt_password(password, name, method, iterations)
    except ValueError as e:
        raise PgError("22023", str(e)) from None


def execute(session: StatementContext, sql: str, offset: int = 0) -> str:
    """Run a role statement; returns the command tag."""
    toks = tokens(sql)
    first = toks[0].text.upper()
    if session.tx != "I":
        what = {"CREATE": "CREATE ROLE", "ALTER": "ALTER ROLE", "DROP": "DROP ROLE"}.get(first, first)
        raise PgError("25001", f"{what} cannot run inside a transaction block",
                      hint="pgtls keeps roles outside the database: role changes cannot be rolled back.")  # fmt: skip
    store = session.backend.roles
    actor = _Actor(session, store)
    p = _Parser(sql, offset, toks, 1)
    try:
        if first == "CREATE":
            return _create(session, store, actor, p)
        if first == "ALTER":
            return _alter(session, store, actor, p)
        if first == "DROP":
            return _drop(session, store, actor, p)
        return _grant(session, store, actor, p, revoke=first == "REVOKE")
    except PgError:
        raise
    except Exception as e:  # RoleError from the store
        from pgtls.auth.roles import RoleError

        if isinstance(e, RoleError):
            raise _store_error(e) from None
        raise


def _create(session: StatementContext, store: RoleStore, actor: _Actor, p: _Parser) -> str:
    kind = p.peek()
    p.i += 1
    name = p.name()
    opts = _parse_options(p, create=True, session=session)
    if not actor.createrole:
        raise PgError("42501", "permission denied to create role",
                      detail="Only roles with the CREATEROLE attribute may create roles.")  # fmt: skip
    if opts.flags.get("superuser") and not actor.superuser:
        raise PgError(
            "42501",
            "permission denied to create role",
            detail="Only roles with the SUPERUSER attribute may create roles with the SUPERUSER attribute.",
        )
    if opts.flags.get("createdb") and not actor.createdb:
        raise PgError(
            "42501",
            "permission denied to create role",
            detail="Only roles with the CREATEDB attribute may create roles with the CREATEDB attribute.",
        )
    _check_new_name(name)
    if store.get(name) is not None:
        raise PgError("42710", f'role "{name}" already exists')
    for r in opts.in_roles + opts.members:
        if store.get(r) is None:
            raise PgError("42704", f'role "{r}" does not exist')
    secret = _secret(session, name, opts.password)
    store.create(
        name, password=secret, superuser=opts.flags.get("superuser", False),
        login=opts.flags.get("login", kind == "USER"), createdb=opts.flags.get("createdb", False),
        createrole=opts.flags.get("createrole", False), inherit=opts.flags.get("inherit", True),
        valid_until=opts.valid_until, member_of=tuple(opts.in_roles),
    )  # fmt: skip
    for member in opts.members:
        store.grant(member, name)
    return "CREATE ROLE"


def _check_alter(actor: _Actor, target: Role, verb: str, only_own_password: bool) -> None:
    if target.superuser and not actor.superuser:
        raise PgError(
            "42501",
            f"permission denied to {verb} role",
            detail=f"Only roles with the SUPERUSER attribute may {verb} roles with the SUPERUSER attribute.",
        )
    if actor.createrole or (only_own_password and target.name == actor.name):
        return
    what = "alter this role" if verb == "alter" else f"{verb} this role"
    raise PgError("42501", f"permission denied to {verb} role",
                  detail=f'Only roles with the CREATEROLE attribute and the ADMIN option on role "{target.name}" '
                         f"may {what}.")  # fmt: skip


def _alter(session: StatementContext, store: RoleStore, actor: _Actor, p: _Parser) -> str:
    p.i += 1  # ROLE / USER / GROUP
    if p.peek() == "ALL":
        raise PgError("0A000", "ALTER ROLE ALL is not supported by pgtls")
    name = p.name(me=actor.name)
    target = store.get(name)
    if p.peek() == "RENAME":
        p.i += 1
        p.expect("TO")
        new = p.name()
        if not p.at_end():
            raise p.error()
        if target is None:
            raise PgError("42704", f'role "{name}" does not exist')
        if name == session.info.user:
            raise PgError("0A000", "session user cannot be renamed")
        _check_alter(actor, target, "rename", only_own_password=False)
        if store.get(new) is not None:
            raise PgError("42710", f'role "{new}" already exists')
        _check_new_name(new)
        store.rename(name, new)
        if target.password is not None and target.password.startswith("md5"):
            session.notice(PgError("00000", "MD5 password cleared because of role rename", severity="NOTICE"))
        return "ALTER ROLE"
    if p.peek() in ("SET", "RESET", "IN"):
        raise PgError("0A000", f"ALTER ROLE ... {p.peek()} is not supported by pgtls")
    opts = _parse_options(p, create=False, session=session)
    if target is None:
        raise PgError("42704", f'role "{name}" does not exist')
    only_password = not opts.flags and not opts.valid_given
    if "superuser" in opts.flags and not actor.superuser:
        raise PgError(
            "42501",
            "permission denied to alter role",
            detail="Only roles with the SUPERUSER attribute may change the SUPERUSER attribute.",
        )
    _check_alter(actor, target, "alter", only_own_password=only_password)
    if opts.flags.get("createdb") and not actor.createdb:
        raise PgError(
            "42501",
            "permission denied to alter role",
            detail="Only roles with the CREATEDB attribute may change the CREATEDB attribute.",
        )
    changes: dict[str, object] = dict(opts.flags)
    if opts.password_given:
        changes["password"] = _secret(session, name, opts.password)
    if opts.valid_given:
        changes["valid_until"] = opts.valid_until
    if changes:
        store.alter(name, **changes)
    return "ALTER ROLE"


def _drop(session: StatementContext, store: RoleStore, actor: _Actor, p: _Parser) -> str:
    p.i += 1
    if_exists = False
    if p.accept("IF"):
        p.expect("EXISTS")
        if_exists = True
    names = p.names()
    if not p.at_end():
        raise p.error()
    if not actor.createrole:
        raise PgError("42501", "permission denied to drop role",
                      detail="Only roles with the CREATEROLE attribute and the ADMIN option on the target roles "
                             "may drop roles.")  # fmt: skip
    for name in names:
        target = store.get(name)
        if target is None:
            if if_exists:
                session.notice(PgError("00000", f'role "{name}" does not exist, skipping', severity="NOTICE"))
                continue
            raise PgError("42704", f'role "{name}" does not exist')
        if name == actor.name:
            raise PgError("55006", "current user cannot be dropped")
        if name == session.info.user:
            raise PgError("55006", "session user cannot be dropped")
        if target.superuser and not actor.superuser:
            raise PgError("42501", "permission denied to drop role",
                          detail="Only roles with the SUPERUSER attribute may drop roles with the SUPERUSER "
                                 "attribute.")  # fmt: skip
        if target.oid == 10:
            raise PgError("2BP01", f"cannot drop role {name} because it is required by the database system")
        store.drop(name)
    return "DROP ROLE"


def _grant(session: StatementContext, store: RoleStore, actor: _Actor, p: _Parser, revoke: bool) -> str:
    if revoke and p.accept("ADMIN", "INHERIT", "SET"):
        p.expect("OPTION")
        p.expect("FOR")
        raise PgError("0A000", "REVOKE ... OPTION FOR is not supported by pgtls")
    groups = p.names()
    p.expect("FROM" if revoke else "TO")
    members = p.names(me=actor.name)
    if not revoke and p.accept("WITH"):
        raise PgError("0A000", "GRANT ... WITH options are not supported by pgtls")
    if p.accept("GRANTED"):
        p.expect("BY")
        p.name(me=actor.name)
    if revoke:
        p.accept("CASCADE", "RESTRICT")
    if not p.at_end():
        raise p.error()
    for g in groups:
        role = store.get(g)
        if role is None:
            raise PgError("42704", f'role "{g}" does not exist')
        if role.superuser and not actor.superuser:
            raise PgError(
                "42501",
                f'permission denied to {"revoke" if revoke else "grant"} role "{g}"',
                detail="Only roles with the SUPERUSER attribute may "
                f"{'revoke' if revoke else 'grant'} roles with the SUPERUSER attribute.",
            )
        if not actor.createrole:
            raise PgError("42501", f'permission denied to {"revoke" if revoke else "grant"} role "{g}"',
                          detail=f'Only roles with the ADMIN option on role "{g}" may '
                                 f'{"revoke" if revoke else "grant"} this role.')  # fmt: skip
    for m in members:
        if store.get(m) is None:
            raise PgError("42704", f'role "{m}" does not exist')
    for g in groups:
        for m in members:
            member = store.get(m)
            assert member is not None
            if revoke:
                if g not in member.member_of:
                    session.notice(PgError("01000", f'role "{m}" has not been granted membership in role "{g}" by '
                                                    f'role "{actor.name}"', severity="WARNING"))  # fmt: skip
                    continue
                store.revoke(m, g)
            else:
                if g in member.member_of:
                    session.notice(PgError("00000", f'role "{m}" has already been granted membership in role "{g}" '
                                                    f'by role "{actor.name}"', severity="NOTICE"))  # fmt: skip
                    continue
                store.grant(m, g)
    return "REVOKE ROLE" if revoke else "GRANT ROLE"
