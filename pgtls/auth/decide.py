"""From a matched pg_hba.conf line to an authentication outcome: ClientAuthentication().

Follows PostgreSQL 16's ``ClientAuthentication``/``auth_failed``/``CheckPWChallengeAuth``
(``src/backend/libpq/auth.c``) and reference A5.30, A6.31-A6.36:

1. no matching line: FATAL 28000 ``no pg_hba.conf entry for host ...``;
2. a line with clientcert (or method cert): a CA must be loaded (F0000) and the client
   must have presented a certificate (28000);
3. ``reject``: FATAL 28000 ``pg_hba.conf rejects connection for host ...``;
4. the method's exchange (trust, password, md5 — which becomes SCRAM when the stored
   secret is a SCRAM verifier —, scram-sha-256, cert);
5. after success, ``clientcert=verify-full`` or ``cert``: the CN/DN check, failing with
   the *method's* message;
6. ``log_connections`` lines, then AuthenticationOk.

The client only ever sees PostgreSQL's generic text; reasons go to ``log`` lines.
:class:`AuthFlow` is driven exactly like an exchange (see :mod:`pgtls.auth.exchange`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from pgtls.auth.certname import authenticated_log, check_cert_auth
from pgtls.auth.exchange import (
    Continue,
    Exchange,
    Failure,
    LogLine,
    MD5Exchange,
    PasswordExchange,
    Step,
    Success,
    TrustExchange,
    auth_failed_error,
    protocol_error,
    role_password_detail,
)
from pgtls.auth.passwords import SCRAM_DEFAULT_ITERATIONS, password_type
from pgtls.auth.roles import Role
from pgtls.auth.scram import ScramExchange
from pgtls.config.hba import ConnFacts, HbaLine, RoleMembership
from pgtls.config.ident import IdentMaps
from pgtls.errors import CONFIG_FILE_ERROR, INVALID_AUTHORIZATION_SPECIFICATION, PgError, fatal
from pgtls.protocol import messages as m


@dataclass(frozen=True)
class TlsFacts:
    active: bool = False
    ca_loaded: bool = False
    peer_cert: bool = False  # a client certificate was presented (and so verified)
    peer_cn: str | None = None
    peer_dn: str | None = None  # RFC 2253
    channel_binding: bytes | None = None  # tls-server-end-point hash; None: no PLUS offered


@dataclass(frozen=True)
class AuthSettings:
    password_encryption: str = "scram-sha-256"
    scram_iterations: int = SCRAM_DEFAULT_ITERATIONS
    cluster_secret: bytes = b""  # per-cluster secret for mock SCRAM salts
    log_connections: bool = True


class RoleLookup(RoleMembership, Protocol):
    def get(self, name: str) -> Role | None: ...


def encryption_state(conn: ConnFacts) -> str:
    return "GSS encryption" if conn.gss else "SSL encryption" if conn.ssl else "no encryption"


def host_info(conn: ConnFacts) -> str:
    return "[local]" if conn.local or not conn.addr else conn.addr.split("%", 1)[0]


def no_entry_error(conn: ConnFacts) -> PgError:
    h, enc = host_info(conn), encryption_state(conn)
    if conn.replication:
        msg = f'no pg_hba.conf entry for replication connection from host "{h}", user "{conn.user}", {enc}'
    else:
        msg = f'no pg_hba.conf entry for host "{h}", user "{conn.user}", database "{conn.database}", {enc}'
    return fatal(INVALID_AUTHORIZATION_SPECIFICATION, msg)


def reject_error(conn: ConnFacts) -> PgError:
    h, enc = host_info(conn), encryption_state(conn)
    if conn.replication:
        msg = f'pg_hba.conf rejects replication connection for host "{h}", user "{conn.user}", {enc}'
    else:
        msg = f'pg_hba.conf rejects connection for host "{h}", user "{conn.user}", database "{conn.database}", {enc}'
    return fatal(INVALID_AUTHORIZATION_SPECIFICATION, msg)


def pre_method_checks(line: HbaLine, tls: TlsFacts) -> PgError | None:
    """A6.31: what must hold before the method runs on a clientcert/cert line."""
    if line.clientcert is None:
        return None
    if not tls.ca_loaded:
        return fatal(
            CONFIG_FILE_ERROR,
            "client certificates can only be checked if a root certificate store is available",
        )
    if not tls.peer_cert:
        return fatal(INVALID_AUTHORIZATION_SPECIFICATION, "connection requires a valid client certificate")
    return None


def _fatal_log(err: PgError, detail: str | None = None) -> LogLine:
    return LogLine("FATAL", err.message, detail if detail is not None else err.detail)


def method_exchange(
    line: HbaLine, user: str, role: Role | None, tls: TlsFacts, settings: AuthSettings
) -> Exchange:
    """The exchange for ``line.method`` (CheckPWChallengeAuth's md5/SCRAM choice included)."""
    if line.method in ("trust", "cert"):
        return TrustExchange(line.method)
    secret = role.password if role is not None else None
    expired = role.password_expired() if role is not None else False
    detail = role_password_detail(user, role is not None, secret, expired)
    usable = secret if detail is None else None
    if line.method == "password":
        return PasswordExchange(user, usable, detail)
    pwtype = password_type(usable) if usable is not None else settings.password_encryption
    if line.method == "md5" and pwtype == "md5":
        return MD5Exchange(user, usable, detail)
    return ScramExchange(
        user,
        usable,
        channel_binding=tls.channel_binding if tls.active else None,
        cluster_secret=settings.cluster_secret,
        mock_iterations=settings.scram_iterations,
        no_secret_detail=detail,
        method=line.method,
    )


class AuthFlow:
    """The whole authentication of one connection, as one sans-IO exchange."""

    def __init__(
        self,
        line: HbaLine | None,
        conn: ConnFacts,
        tls: TlsFacts,
        *,
        roles: RoleLookup,
        ident: IdentMaps | None = None,
        settings: AuthSettings | None = None,
        hostname_detail: str | None = None,
        abandoned: Callable[[], bool] | None = None,
    ) -> None:
        self.line = line
        self.conn = conn
        self.tls = tls
        self.roles = roles
        self.ident = ident
        self.settings = settings or AuthSettings()
        self.hostname_detail = hostname_detail
        self.exchange: Exchange | None = None
        self.done = False
        self.abandoned = abandoned  # blocking steps stop early once the login's timeout fired

    @property
    def blocking(self) -> bool:
        return bool(self.exchange is not None and self.exchange.blocking)

    @property
    def max_message_length(self) -> int:
        return self.exchange.max_message_length if self.exchange is not None else 0

    def start(self) -> Step:
        line, conn = self.line, self.conn
        if line is None:
            err = no_entry_error(conn)
            return self._end(Failure(err, self.hostname_detail, log=(_fatal_log(err, self.hostname_detail),)))
        pre = pre_method_checks(line, self.tls)
        if pre is not None:
            return self._end(Failure(pre, log=(_fatal_log(pre),)))
        if line.method == "reject":
            err = reject_error(conn)
            return self._end(Failure(err, log=(_fatal_log(err),)))
        self.exchange = method_exchange(line, conn.user, self.roles.get(conn.user), self.tls, self.settings)
        if isinstance(self.exchange, PasswordExchange):
            self.exchange.abandoned = self.abandoned
        return self._after(self.exchange.start())

    def step(self, body: bytes, kind: bytes = b"p") -> Step:
        """Feed one client message; call in a worker thread when :attr:`blocking`."""
        if self.done or self.exchange is None:
            return protocol_error("invalid authentication exchange state")
        return self._after(self.exchange.step(body, kind))

    def too_long(self) -> Step:
        if self.done or self.exchange is None:
            return self._end(
                Failure(fatal(INVALID_AUTHORIZATION_SPECIFICATION, "invalid message length"), silent=True)
            )
        return self._after(self.exchange.too_long())

    # --- internals ---------------------------------------------------------------------

    def _end(self, out: Step) -> Step:
        self.done = True
        return out

    def _after(self, out: Step) -> Step:
        if isinstance(out, Continue):
            return out
        line = self.line
        assert line is not None
        if isinstance(out, Failure):
            return self._end(self._failed(out))
        log = list(out.log)
        authn_id = out.authn_id
        if line.clientcert == "verify-full" or line.method == "cert":
            cc = check_cert_auth(
                line,
                self.conn.user,
                self.tls.peer_cn,
                self.tls.peer_dn,
                ident=self.ident,
                roles=self.roles,
                log_connections=self.settings.log_connections,
            )
            if authn_id is not None and self.settings.log_connections:
                log.append(authenticated_log(authn_id, line.method, line))
            log.extend(cc.log)
            if not cc.ok:
                failed = Failure(
                    auth_failed_error(line.method, self.conn.user),
                    None,
                    auth_failed=True,
                    send=out.send,
                    log=tuple(log),
                )
                return self._end(self._failed(failed))
            authn_id = authn_id or cc.authn_id
        elif authn_id is not None and self.settings.log_connections:
            log.append(authenticated_log(authn_id, line.method, line))
        if authn_id is None and self.settings.log_connections:
            log.append(
                LogLine(
                    "LOG",
                    f'connection authenticated: user="{self.conn.user}" method={line.method} '
                    f"({line.filename}:{line.line_number})",
                )
            )
        return self._end(Success(out.send + m.auth_ok(), authn_id, tuple(log), out.proven))

    def _failed(self, f: Failure) -> Failure:
        if f.silent:
            return f
        detail = f.log_detail
        if f.auth_failed and self.line is not None:
            cdetail = f'Connection matched file "{self.line.filename}" line {self.line.line_number}: "{self.line.raw}"'
            detail = f"{detail}\n{cdetail}" if detail else cdetail
        return replace(f, log_detail=detail, log=(*f.log, _fatal_log(f.error, detail)))


def check_login(role: Role | None, user: str) -> PgError | None:
    """InitializeSessionUserId()'s checks, made after AuthenticationOk was sent."""
    if role is None:
        return fatal(INVALID_AUTHORIZATION_SPECIFICATION, f'role "{user}" does not exist')
    if not role.login:
        return fatal(INVALID_AUTHORIZATION_SPECIFICATION, f'role "{user}" is not permitted to log in')
    return None
