"""Authentication of one connection: pg_hba.conf line selection and the method exchange.

The decisions live in :mod:`pgtls.auth.decide` and :mod:`pgtls.config.hba`
(pure code, PostgreSQL's ``ClientAuthentication``); this module only moves
their messages over the channel.  Steps that may run PBKDF2 (a cleartext
password checked against a SCRAM verifier) and host-name lookups run in a
worker thread, never on the event loop.
"""

from __future__ import annotations

import os
import secrets
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pgtls import log
from pgtls.auth.decide import AuthFlow, AuthSettings, TlsFacts, check_login
from pgtls.auth.exchange import Continue, Failure, LogLine, ProvenSecret, Success
from pgtls.auth.passwords import Abandoned
from pgtls.config.hba import ConnFacts, match_detail
from pgtls.errors import PROTOCOL_VIOLATION, TOO_MANY_CONNECTIONS, PgError
from pgtls.protocol import messages as m
from pgtls.protocol.startup import Closed, Startup
from pgtls.server.channel import Channel, RawConn
from pgtls.server.offload import Offload
from pgtls.server.registry import SessionRegistry
from pgtls.server.snapshot import Snapshot
from pgtls.server.stats import Stats
from pgtls.tls import ConnectionFacts, TlsConfig, channel_binding_data

T = TypeVar("T")
CLUSTER_SECRET_FILE = Path("global") / "pgtls_mock_secret"


@dataclass(frozen=True)
class AuthOutcome:
    is_superuser: bool
    authn_id: str | None = None
    proven: ProvenSecret | None = field(default=None, repr=False)  # for the relay's upstream login


class AuthServer(Protocol):
    """What authentication needs of the server (:class:`pgtls.server.server.Server` is one)."""

    @property
    def snapshot(self) -> Snapshot: ...
    @property
    def cluster_secret(self) -> bytes: ...
    @property
    def preauth_offload(self) -> Offload: ...
    @property
    def registry(self) -> SessionRegistry: ...
    @property
    def stats(self) -> Stats: ...

    async def role_lookup(self, user: str, database: str) -> Any: ...

    def log_aspect(self, snap: Snapshot, aspect: str) -> bool: ...


class AuthConn(Protocol):
    """What authentication needs of its connection (:class:`pgtls.server.connection.Connection` is one)."""

    @property
    def server(self) -> AuthServer: ...
    @property
    def snap(self) -> Snapshot: ...
    @property
    def raw(self) -> RawConn: ...
    @property
    def host(self) -> str: ...
    @property
    def channel(self) -> Channel: ...
    @property
    def tls_facts(self) -> ConnectionFacts | None: ...
    @property
    def tls_config(self) -> TlsConfig | None: ...
    @property
    def inbuf(self) -> bytearray: ...


def cluster_secret(data_dir: Path) -> bytes:
    """The per-cluster secret that salts mock SCRAM exchanges for unknown roles (made once, 0600)."""
    path = data_dir / CLUSTER_SECRET_FILE
    try:
        return path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secret)
        finally:
            os.close(fd)
        return secret


def needs_lookups(rules: object) -> bool:
    return any(
        line.hostname is not None or line.ip_cmp in ("samehost", "samenet")
        for line in getattr(rules, "lines", ())
    )


def _log_lines(lines: tuple[LogLine, ...]) -> None:
    for line in lines:
        level = "LOG" if line.level == "COMMERROR" else line.level
        log.emit(level, line.message, detail=line.detail)


async def authenticate(conn: AuthConn, startup: Startup) -> AuthOutcome:
    server = conn.server
    snap = conn.snap
    # The relay asks PostgreSQL's pg_authid per login (nothing cached); the embedded backend has its store.
    roles = await server.role_lookup(startup.user, startup.database)
    facts = ConnFacts(
        local=conn.raw.is_unix,
        addr=None if conn.raw.is_unix else conn.host,
        ssl=conn.channel.tls,
        gss=False,
        user=startup.user,
        database=startup.database,
        replication=startup.params.get("replication", "").lower() in ("true", "on", "yes", "1"),
    )
    tf = conn.tls_facts
    tls = TlsFacts(
        active=conn.channel.tls,
        ca_loaded=bool(conn.tls_config is not None and conn.tls_config.ca_loaded),
        peer_cert=bool(tf is not None and tf.peer_cert_der is not None),
        peer_cn=None if tf is None else tf.peer_cn,
        peer_dn=None if tf is None else tf.peer_dn,
        # The certificate hash is fixed by the snapshot this connection started with (a reload
        # during the login cannot change it).
        channel_binding=channel_binding_data(conn.tls_config)
        if conn.channel.tls and conn.tls_config is not None
        else None,
    )
    s = snap.settings
    settings = AuthSettings(
        password_encryption=str(s["password_encryption"]),
        scram_iterations=int(s["scram_iterations"]),
        cluster_secret=server.cluster_secret,
        log_connections=server.log_aspect(snap, "authentication"),
    )
    # Blocking pre-authentication work (DNS and interface lookups for host-name hba lines, PBKDF2 of the
    # password method) runs in its own small pool, never in the sessions' one and never on the loop, and
    # stops when the login is abandoned (authentication_timeout): see pgtls.auth.passwords.salted_password.
    gone = _Abandon()
    try:
        if needs_lookups(snap.hba):
            mr = await server.preauth_offload.run(_unless_gone, gone, match_detail, snap.hba, facts, roles)
        else:
            mr = match_detail(snap.hba, facts, roles)
        flow = AuthFlow(
            mr.line,
            facts,
            tls,
            roles=roles,
            ident=snap.ident,
            settings=settings,
            hostname_detail=mr.hostname_detail,
            abandoned=gone.is_set,
        )
        out = flow.start()
        while isinstance(out, Continue):
            conn.channel.send(out.send)
            kind, body, too_long = await _read_auth_message(conn, flow.max_message_length)
            if too_long:
                out = flow.too_long()
            elif flow.blocking:
                out = await server.preauth_offload.run(_unless_gone, gone, flow.step, body, kind)
            else:
                out = flow.step(body, kind)
    finally:
        gone.set()
    server.stats.authenticated(
        str(getattr(mr.line, "method", None) or "no pg_hba.conf line"), isinstance(out, Success)
    )
    if isinstance(out, Failure):
        _log_lines(out.log)
        if out.silent:
            raise Closed()
        conn.channel.send(out.send)
        raise AlreadyLogged(out.error)
    assert isinstance(out, Success)
    _log_lines(out.log)
    conn.channel.hold(out.send)  # goes out with the session's ParameterStatus messages, or an error
    role = roles.get(startup.user)
    err = check_login(role, startup.user)
    if err is not None:
        raise err
    assert role is not None
    if not role.superuser:
        reserved_slots_check(server, roles, startup.user)
    limit = getattr(roles, "connlimit", -1)
    if limit >= 0 and not role.superuser and server.registry.count_user(startup.user) >= limit:
        raise PgError(
            TOO_MANY_CONNECTIONS, f'too many connections for role "{startup.user}"', severity="FATAL"
        )
    return AuthOutcome(is_superuser=bool(role and role.superuser), authn_id=out.authn_id, proven=out.proven)


def reserved_slots_check(server: AuthServer, roles: Any, user: str) -> None:
    """InitPostgres()'s check of superuser_reserved_connections and reserved_connections (PostgreSQL 16+),
    for a role that is not a superuser, after authentication."""
    s = server.snapshot.settings
    su_reserved, reserved = int(s["superuser_reserved_connections"]), int(s["reserved_connections"])
    if su_reserved + reserved <= 0:
        return
    free = int(s["max_connections"]) - server.registry.count() - 1  # PostgreSQL's own slot is taken by then
    if free >= su_reserved + reserved:
        return
    if free < su_reserved:
        raise PgError(
            TOO_MANY_CONNECTIONS,
            "remaining connection slots are reserved for roles with the SUPERUSER attribute",
            severity="FATAL",
        )
    if not roles.is_member(user, "pg_use_reserved_connections"):
        raise PgError(
            TOO_MANY_CONNECTIONS,
            "remaining connection slots are reserved for roles with privileges "
            'of the "pg_use_reserved_connections" role',
            severity="FATAL",
        )


class _Abandon:
    """Set once a login ends (or is abandoned); work in the pre-authentication threads asks it between
    steps.  A flag is enough (nobody waits on it): cheaper than a threading.Event per login."""

    __slots__ = ("_set",)

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


def _unless_gone(gone: _Abandon, fn: Callable[..., T], *args: object) -> T:
    """Run ``fn`` in the pre-authentication pool, unless its login was abandoned while it waited there."""
    if gone.is_set():
        raise Abandoned
    return fn(*args)


class AlreadyLogged(PgError):
    """A FATAL whose log lines were already written; only the ErrorResponse is still due."""

    def __init__(self, err: PgError) -> None:
        super().__init__(err.sqlstate, err.message, severity=err.severity, detail=err.detail, hint=err.hint)


async def _read_auth_message(conn: AuthConn, max_len: int) -> tuple[bytes, bytes, bool]:
    """One frontend message during authentication (PostgreSQL's pq_getmessage with a limit)."""
    buf = conn.inbuf
    while len(buf) < 5:
        data = await conn.channel.recv()
        if not data:
            # EOF during authentication: the client went away (e.g. psql asking for a password).
            raise Closed()
        buf += data
    kind = bytes(buf[0:1])
    (length,) = struct.unpack_from("!i", buf, 1)
    if length < 4:
        raise PgError(PROTOCOL_VIOLATION, "invalid message length", severity="FATAL")
    if length - 4 > max_len:
        return kind, b"", True
    while len(buf) < 1 + length:
        data = await conn.channel.recv()
        if not data:
            raise Closed()
        buf += data
    body = bytes(buf[5 : 1 + length])
    del buf[: 1 + length]
    return kind, body, False


__all__ = ["AlreadyLogged", "AuthOutcome", "authenticate", "cluster_secret", "m"]
