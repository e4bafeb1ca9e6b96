"""Which upstream PostgreSQL serves a client's database: the ``upstream`` setting and
``pgtls_databases.conf`` (:mod:`pgtls.config.routes`).

``upstream = '<conninfo>'`` in postgresql.conf sends every database there instead of to the managed
cluster; a line of the routes file overrides it for one client database name (``*``: every name
without its own line).  Each target is checked when it is loaded — connection string, TLS policy
(:mod:`pgtls.tls.client`), files — so a bad route is found at start (pgtls refuses to start) or at a
reload (logged with file and line; the routes that were serving stay).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pgtls.config.conninfo import ConninfoError, parse_conninfo
from pgtls.config.lineerror import LineError
from pgtls.config.routes import (
    FALLBACK,
    POOL_KEYWORDS,
    POOL_MODES,
    ROUTE_KEYWORDS,
    ROUTES_FILE,
    RouteLineError,
    RoutesError,
    load_routes,
)
from pgtls.errors import INVALID_CATALOG_NAME, PgError
from pgtls.tls.client import ClientTls, ClientTlsError, client_tls


@dataclass(frozen=True)
class Target:
    """One upstream as a route names it."""

    name: str  # the route's name ("*", a database name) or "upstream" (the setting)
    params: dict[str, str]  # libpq parameters, without dbname (the client's database unless the route says)
    policy: ClientTls = field(compare=False)
    auth_user: str | None = None  # the role pgtls looks roles up as (PgBouncer's auth_user)
    pool: dict[str, int] = field(default_factory=dict)
    pool_mode: str = ""  # the route's own pool_mode ("": the setting's)

    def libpq(self, database: str) -> dict[str, str]:
        params = dict(self.params)
        params.setdefault("dbname", database)
        return params

    @property
    def forced_user(self) -> str | None:
        return self.params.get("user")


class RouterError(Exception):
    def __init__(self, errors: list[LineError]) -> None:
        self.errors = errors
        super().__init__("\n".join(e.format() for e in errors))


def _target(name: str, params: dict[str, str], pool: dict[str, int], where: tuple[str, int]) -> Target:
    params = dict(params)
    auth_user = params.pop("auth_user", None)
    pool_mode = params.pop("pool_mode", "")
    if pool_mode and pool_mode not in POOL_MODES:
        raise RouterError(
            [
                RouteLineError(
                    where[0],
                    where[1],
                    f'invalid route "{name}": invalid value for pool_mode: '
                    f'"{pool_mode}" (session or transaction)',
                )
            ]
        )
    try:
        policy = client_tls(params)
    except ClientTlsError as e:
        raise RouterError(
            [RouteLineError(where[0], where[1], f'invalid route "{name}": {e.message}')]
        ) from None
    return Target(name, params, policy, auth_user, pool, pool_mode)


@dataclass(frozen=True)
class Routes:
    by_name: dict[str, Target]
    fallback: Target | None

    def target(self, database: str) -> Target:
        t = self.by_name.get(database, self.fallback)
        if t is None:
            raise PgError(
                INVALID_CATALOG_NAME,
                f'database "{database}" does not exist',
                severity="FATAL",
                detail="No route in pgtls_databases.conf and no upstream setting names it.",
            )
        return t


def load(data_dir: Path, upstream: str) -> Routes:
    """The targets of the ``upstream`` setting and the routes file; raises RouterError with every bad line."""
    errors: list[LineError] = []
    fallback: Target | None = None
    if upstream:
        try:
            params = parse_conninfo(upstream, ROUTE_KEYWORDS)
            pool = {k: int(params.pop(k)) for k in list(params) if k in POOL_KEYWORDS}
            fallback = _target("upstream", params, pool, ("postgresql.conf", 0))
        except ConninfoError as e:
            errors.append(
                RouteLineError("postgresql.conf", 0, f'invalid value for parameter "upstream": {e.message}')
            )
        except ValueError as e:
            errors.append(
                RouteLineError("postgresql.conf", 0, f'invalid value for parameter "upstream": {e}')
            )
        except RouterError as e:
            errors.extend(e.errors)
    path = data_dir / ROUTES_FILE
    by_name: dict[str, Target] = {}
    try:
        routes = load_routes(path)
    except RoutesError as e:
        errors.extend(e.errors)
        routes = None
    if routes is not None:
        entries = list(routes.by_name.values()) + ([routes.fallback] if routes.fallback else [])
        for r in entries:
            try:
                t = _target(r.name, r.params, r.pool, (str(path), r.lineno))
            except RouterError as e:
                errors.extend(e.errors)
                continue
            if r.name == FALLBACK:
                fallback = t
            else:
                by_name[r.name] = t
    if errors:
        raise RouterError(errors)
    return Routes(by_name, fallback)
