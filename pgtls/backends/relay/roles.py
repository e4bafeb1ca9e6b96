"""Roles and their secrets from the cluster's own ``pg_authid`` (PgBouncer's auth_query idea).

Fetched per login over pgtls's privileged connection, so a ``CREATE ROLE``,
``ALTER ROLE … PASSWORD`` or ``DROP ROLE`` made through pgtls (or any other
way) counts for the very next login: nothing is cached.  One query gives the
role's row and every role it is a member of (transitively, as PostgreSQL's
``is_member_of_role_nosuper``), which is all that pg_hba.conf matching
(``+group``, ``samerole``), pg_ident.conf and the methods ask about.
"""

from __future__ import annotations

from dataclasses import dataclass

from pgtls.auth.roles import Role

ROLE_QUERY = """\
SELECT a.oid::text, a.rolname, a.rolsuper, a.rolcanlogin, a.rolpassword,
       CASE WHEN a.rolvaliduntil IS NULL OR a.rolvaliduntil = 'infinity' THEN NULL
            WHEN a.rolvaliduntil = '-infinity' THEN '0001-01-01T00:00:00+00:00'
            ELSE to_char(a.rolvaliduntil AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"') END,
       a.rolconnlimit::text, a.rolcreatedb, a.rolcreaterole, a.rolinherit,
       ARRAY(WITH RECURSIVE m(oid) AS (
               SELECT a.oid
               UNION
               SELECT am.roleid FROM pg_catalog.pg_auth_members am JOIN m ON am.member = m.oid)
             SELECT r.rolname FROM m JOIN pg_catalog.pg_authid r ON r.oid = m.oid)::text[]
  FROM pg_catalog.pg_authid a WHERE a.rolname = $1"""


@dataclass(frozen=True)
class RoleView:
    """What one login needs to know about roles: the user's row and memberships (or that it is unknown)."""

    user: str
    role: Role | None
    member_of: frozenset[str] = frozenset()
    connlimit: int = -1

    def get(self, name: str) -> Role | None:
        return self.role if name == self.user else None

    def is_member(self, user: str, group: str) -> bool:
        return user == self.user and self.role is not None and group in self.member_of


def _bool(v: str | None) -> bool:
    return v == "t"


def parse_array(text: str | None) -> list[str]:
    """A one-dimensional text[] in PostgreSQL's output format."""
    if not text or text == "{}":
        return []
    body = text[1:-1]
    out: list[str] = []
    i = 0
    n = len(body)
    while i < n:
        if body[i] == '"':
            i += 1
            item = []
            while i < n and body[i] != '"':
                if body[i] == "\\" and i + 1 < n:
                    i += 1
                item.append(body[i])
                i += 1
            i += 1
            out.append("".join(item))
        else:
            j = body.find(",", i)
            j = n if j < 0 else j
            out.append(body[i:j])
            i = j
        if i < n and body[i] == ",":
            i += 1
    return out


def role_view(user: str, rows: list[list[str | None]]) -> RoleView:
    if not rows:
        return RoleView(user, None)
    (oid, name, su, login, password, until, connlimit, createdb, createrole, inherit, groups) = rows[0]
    role = Role(
        name=name or user,
        oid=int(oid or 0),
        superuser=_bool(su),
        login=_bool(login),
        createdb=_bool(createdb),
        createrole=_bool(createrole),
        inherit=_bool(inherit),
        password=password,
        valid_until=until,
        member_of=(),
    )
    return RoleView(user, role, frozenset(parse_array(groups)), int(connlimit or -1))
