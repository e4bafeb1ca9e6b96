"""The role store: pgtls's pg_authid, persisted as ``DATA/global/pg_authid.json``.

Passwords are stored only as secrets (SCRAM-SHA-256 verifiers or md5 hashes, see
:mod:`pgtls.auth.passwords`), never in plaintext.  The file is mode 0600 and every
change is a read-modify-write done under an exclusive ``flock`` on
``pg_authid.json.lock`` and published with an atomic ``rename``, so several processes
(the server's workers and the ``pgtls role`` CLI) can share it safely.  Readers never
need the lock: they always see a complete file.

Membership (``+group`` in pg_hba.conf, ``samerole``) is transitive and, like
PostgreSQL's ``is_member_of_role_nosuper``, a role is a member of itself and a
superuser is not implicitly a member of everything.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from pgtls.auth.passwords import SCRAM_DEFAULT_ITERATIONS, encrypt_password
from pgtls.protocol.limits import NAMEDATALEN

AUTHID_FILE = "pg_authid.json"
FIRST_USER_OID = 16384  # FirstNormalObjectId; the bootstrap superuser gets 10 like PG
BOOTSTRAP_SUPERUSER_OID = 10


class RoleError(Exception):
    """A role operation failed (message worded like PostgreSQL's)."""


@dataclass(frozen=True)
class Role:
    name: str
    oid: int
    superuser: bool = False
    login: bool = True
    createdb: bool = False
    createrole: bool = False
    inherit: bool = True
    password: str | None = None  # a SCRAM verifier or md5 hash, never plaintext
    valid_until: str | None = None  # ISO 8601 timestamp with offset, or None (forever)
    member_of: tuple[str, ...] = ()

    def password_expired(self, now: datetime | None = None) -> bool:
        if self.valid_until is None:
            return False
        try:
            until = datetime.fromisoformat(self.valid_until)
        except ValueError:
            return True
        now = now or datetime.now(until.tzinfo)
        if until.tzinfo is None and now.tzinfo is not None:
            now = now.replace(tzinfo=None)
        return until < now

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Role:
        return cls(
            name=str(d["name"]),
            oid=int(d["oid"]),
            superuser=bool(d.get("superuser", False)),
            login=bool(d.get("login", True)),
            createdb=bool(d.get("createdb", False)),
            createrole=bool(d.get("createrole", False)),
            inherit=bool(d.get("inherit", True)),
            password=d.get("password"),
            valid_until=d.get("valid_until"),
            member_of=tuple(str(x) for x in d.get("member_of", ())),
        )

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["member_of"] = list(self.member_of)
        return d


_FIELDS = {"superuser", "login", "createdb", "createrole", "inherit", "password", "valid_until", "member_of"}


@dataclass
class _Snapshot:
    roles: dict[str, Role] = field(default_factory=dict)
    stamp: tuple[int, int, int] | None = None


class RoleStore:
    """``RoleStore(data_dir)``; lookups are served from memory and refreshed when the
    file changes on disk (one ``stat`` per lookup), mutations go to disk at once."""

    def __init__(
        self,
        data_dir: Path | str,
        *,
        password_encryption: str = "scram-sha-256",
        scram_iterations: int = SCRAM_DEFAULT_ITERATIONS,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / "global" / AUTHID_FILE
        self.lock_path = self.path.with_name(AUTHID_FILE + ".lock")
        self.password_encryption = password_encryption
        self.scram_iterations = scram_iterations
        self._snap = _Snapshot()
        self.reload()

    # --- reading -----------------------------------------------------------------------

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _read(self) -> dict[str, Role]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (ValueError, OSError) as e:
            raise RoleError(f'could not read file "{self.path}": {e}') from None
        if not isinstance(data, dict) or not isinstance(data.get("roles"), list):
            raise RoleError(f'invalid role file "{self.path}"')
        roles = [Role.from_json(r) for r in data["roles"]]
        return {r.name: r for r in roles}

    def reload(self) -> None:
        stamp = self._stamp()
        self._snap = _Snapshot(self._read(), stamp)

    def _fresh(self) -> dict[str, Role]:
        if self._stamp() != self._snap.stamp:
            self.reload()
        return self._snap.roles

    def get(self, name: str) -> Role | None:
        return self._fresh().get(name)

    def list(self) -> list[Role]:
        return sorted(self._fresh().values(), key=lambda r: r.oid)

    def is_member(self, user: str, group: str) -> bool:
        """Transitive membership; False if either role does not exist."""
        roles = self._fresh()
        if user not in roles or group not in roles:
            return False
        seen: set[str] = set()
        todo = [user]
        while todo:
            name = todo.pop()
            if name == group:
                return True
            if name in seen:
                continue
            seen.add(name)
            r = roles.get(name)
            if r is not None:
                todo.extend(r.member_of)
        return False

    # --- writing -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Role]]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            roles = self._read()
            yield roles
            self._write(roles)
        finally:
            os.close(fd)  # releases the lock
        self.reload()

    def _write(self, roles: dict[str, Role]) -> None:
        payload = {"version": 1, "roles": [r.to_json() for r in sorted(roles.values(), key=lambda r: r.oid)]}
        fd, tmp = tempfile.mkstemp(prefix=".pg_authid.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                os.fchmod(f.fileno(), 0o600)
                json.dump(payload, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def _secret(self, name: str, password: str | None) -> str | None:
        if password is None:
            return None
        return encrypt_password(password, name, self.password_encryption, self.scram_iterations)

    def create(
        self,
        name: str,
        *,
        password: str | None = None,
        superuser: bool = False,
        login: bool = True,
        createdb: bool = False,
        createrole: bool = False,
        inherit: bool = True,
        valid_until: str | None = None,
        member_of: tuple[str, ...] | builtins.list[str] = (),
    ) -> Role:
        _check_name(name)
        secret = self._secret(name, password)  # PBKDF2 outside the lock
        with self._locked() as roles:
            if name in roles:
                raise RoleError(f'role "{name}" already exists')
            for g in member_of:
                if g not in roles:
                    raise RoleError(f'role "{g}" does not exist')
            oid = (
                BOOTSTRAP_SUPERUSER_OID
                if not roles
                else max(FIRST_USER_OID, *(r.oid + 1 for r in roles.values()))
            )
            role = Role(
                name,
                oid,
                superuser,
                login,
                createdb,
                createrole,
                inherit,
                secret,
                valid_until,
                tuple(dict.fromkeys(member_of)),
            )
            roles[name] = role
        return role

    def alter(self, name: str, **changes: Any) -> Role:
        unknown = set(changes) - _FIELDS
        if unknown:
            raise TypeError(f"unknown role attribute(s): {', '.join(sorted(unknown))}")
        if "password" in changes:
            changes["password"] = self._secret(name, changes["password"])
        if "member_of" in changes:
            changes["member_of"] = tuple(dict.fromkeys(changes["member_of"]))
        with self._locked() as roles:
            if name not in roles:
                raise RoleError(f'role "{name}" does not exist')
            role = replace(roles[name], **changes)
            roles[name] = role
        return role

    def rename(self, old: str, new: str) -> Role:
        _check_name(new)
        with self._locked() as roles:
            if old not in roles:
                raise RoleError(f'role "{old}" does not exist')
            if new in roles:
                raise RoleError(f'role "{new}" already exists')
            # PostgreSQL clears an MD5 password on rename (the salt is the name).
            r = roles.pop(old)
            pw = None if r.password is not None and r.password.startswith("md5") else r.password
            roles[new] = replace(r, name=new, password=pw)
            for k, v in list(roles.items()):
                if old in v.member_of:
                    roles[k] = replace(v, member_of=tuple(new if g == old else g for g in v.member_of))
            return roles[new]

    def drop(self, name: str) -> None:
        with self._locked() as roles:
            if name not in roles:
                raise RoleError(f'role "{name}" does not exist')
            del roles[name]
            for k, v in list(roles.items()):
                if name in v.member_of:
                    roles[k] = replace(v, member_of=tuple(g for g in v.member_of if g != name))

    def grant(self, member: str, group: str) -> None:
        with self._locked() as roles:
            for n in (member, group):
                if n not in roles:
                    raise RoleError(f'role "{n}" does not exist')
            if member == group or self._reaches(roles, group, member):
                raise RoleError(
                    f'role "{member}" is a member of role "{group}"'
                    if member != group
                    else f'role "{group}" cannot be a member of itself'
                )
            r = roles[member]
            if group not in r.member_of:
                roles[member] = replace(r, member_of=r.member_of + (group,))

    def revoke(self, member: str, group: str) -> None:
        with self._locked() as roles:
            if member not in roles:
                raise RoleError(f'role "{member}" does not exist')
            r = roles[member]
            roles[member] = replace(r, member_of=tuple(g for g in r.member_of if g != group))

    @staticmethod
    def _reaches(roles: dict[str, Role], start: str, target: str) -> bool:
        seen: set[str] = set()
        todo = [start]
        while todo:
            n = todo.pop()
            if n == target:
                return True
            if n in seen:
                continue
            seen.add(n)
            r = roles.get(n)
            if r:
                todo.extend(r.member_of)
        return False


def _check_name(name: str) -> None:
    if not name:
        raise RoleError("zero-length delimited identifier")
    if "\0" in name:
        raise RoleError("role name cannot contain NUL")
    if len(name.encode("utf-8", "surrogatepass")) >= NAMEDATALEN:
        raise RoleError(f'role name "{name}" is too long (at most {NAMEDATALEN - 1} bytes)')
