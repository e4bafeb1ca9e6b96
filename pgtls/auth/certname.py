"""Client-certificate name checks: the ``cert`` method and ``clientcert=verify-full``.

Follows ``CheckCertAuth()`` in PostgreSQL 16's ``src/backend/libpq/auth.c`` and
reference A6.32-A6.35: the compared name is the certificate's CN (``clientname=CN``,
the default) or its RFC 2253 DN (``clientname=DN``); without ``map=`` it must equal
the requested user exactly, with ``map=`` pg_ident.conf decides.  For the ``cert``
method the authenticated identity is always the DN and is logged *before* mapping.
"""

from __future__ import annotations

from dataclasses import dataclass

from pgtls.auth.exchange import LogLine
from pgtls.config.hba import HbaLine, RoleMembership
from pgtls.config.ident import IdentMaps, check_usermap_log


@dataclass(frozen=True)
class CertCheck:
    ok: bool
    authn_id: str | None
    log: tuple[LogLine, ...]


def authenticated_log(identity: str, method: str, line: HbaLine) -> LogLine:
    """set_authn_id()'s log_connections line."""
    return LogLine(
        "LOG",
        f'connection authenticated: identity="{identity}" method={method} ({line.filename}:{line.line_number})',
    )


def check_cert_auth(
    line: HbaLine,
    user: str,
    peer_cn: str | None,
    peer_dn: str | None,
    *,
    ident: IdentMaps | None = None,
    roles: RoleMembership | None = None,
    log_connections: bool = True,
) -> CertCheck:
    """CheckCertAuth(): may ``user`` connect with this certificate under ``line``?"""
    log: list[LogLine] = []
    peer_name = peer_dn if line.clientname == "DN" else peer_cn
    if not peer_name:
        log.append(
            LogLine(
                "LOG",
                f'certificate authentication failed for user "{user}": client certificate contains no user name',
            )
        )
        return CertCheck(False, None, tuple(log))
    authn_id: str | None = None
    if line.method == "cert":
        if not peer_dn:
            log.append(
                LogLine(
                    "LOG",
                    f'certificate authentication failed for user "{user}": unable to retrieve subject DN',
                )
            )
            return CertCheck(False, None, tuple(log))
        authn_id = peer_dn
        if log_connections:
            log.append(authenticated_log(peer_dn, "cert", line))
    ok, map_log = check_usermap_log(ident, line.usermap, user, peer_name, False, roles)
    log.extend(LogLine("LOG", s) for s in map_log)
    if not ok and line.clientcert == "verify-full" and line.method != "cert":
        log.append(
            LogLine(
                "LOG",
                f'certificate validation (clientcert=verify-full) failed for user "{user}": {line.clientname} mismatch',
            )
        )
    return CertCheck(ok, authn_id, tuple(log))
