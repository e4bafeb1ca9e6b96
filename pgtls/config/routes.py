"""``pgtls_databases.conf``: which upstream PostgreSQL serves which client database name.

The syntax is the ``[databases]`` section of PgBouncer's ini file, one route per line::

    ; a comment line starts with ; or #
    [databases]
    app    = host=db1,db2 target_session_attrs=read-write
    app_ro = host=db1,db2 target_session_attrs=prefer-standby dbname=app
    "my db" = postgresql://db3/other?sslmode=verify-full
    *      = host=db1

The ``[databases]`` header is optional (it lets a file be shared with PgBouncer).  The name is a client's database name (double quotes allow any characters, ``""`` is one quote) or
``*``, the fallback for every name without its own line.  The value is a libpq connection string
(``keyword=value`` pairs or a URI, :mod:`pgtls.config.conninfo`), meaning what it means to libpq,
plus PgBouncer's per-database pool keys.  As in PgBouncer, ``dbname`` defaults to the client's
database name, and ``user``/``password`` in a route make every client of that route reach the
upstream as that role.

As with pg_hba.conf, a file with any bad line is refused as a whole, every bad line reported with
its file and line number, so that a reload keeps the routes that were serving.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pgtls.config.conninfo import LIBPQ_KEYWORDS, ConninfoError, parse_conninfo
from pgtls.config.lineerror import FileErrors, LineError

ROUTES_FILE = "pgtls_databases.conf"
FALLBACK = "*"
MAX_ROUTES_FILE_SIZE = 1 << 20  # a routes file is configuration, not data
POOL_KEYWORDS = frozenset({"pool_size", "min_pool_size"})  # PgBouncer's names
POOL_MODES = ("session", "transaction")
# auth_user: PgBouncer's, who looks roles up; pool_mode: PgBouncer's, per database
ROUTE_KEYWORDS = LIBPQ_KEYWORDS | POOL_KEYWORDS | {"auth_user", "pool_mode"}


class RouteLineError(LineError):
    """A bad line of this file."""


class RoutesError(FileErrors):
    """This file was refused."""


@dataclass(frozen=True)
class Route:
    name: str
    params: dict[str, str]
    lineno: int
    pool: dict[str, int] = field(default_factory=dict)

    def upstream_params(self, client_database: str) -> dict[str, str]:
        """The libpq parameters for a client of ``client_database``: ``dbname`` defaults to it."""
        params = dict(self.params)
        params.setdefault("dbname", client_database)
        return params


@dataclass(frozen=True)
class Routes:
    by_name: dict[str, Route]
    fallback: Route | None

    def lookup(self, database: str) -> Route | None:
        return self.by_name.get(database, self.fallback)


def _name(text: str) -> tuple[str, str]:
    """The route's name and the rest of the line after it; raises ValueError with the reason."""
    if text.startswith('"'):
        out, i = [], 1
        while True:
            if i >= len(text):
                raise ValueError("unterminated quoted database name")
            if text[i] == '"':
                if text[i + 1 : i + 2] == '"':
                    out.append('"')
                    i += 2
                    continue
                return "".join(out), text[i + 1 :]
            out.append(text[i])
            i += 1
    end = 0
    while end < len(text) and text[end] not in "= \t":
        end += 1
    return text[:end], text[end:]


def parse_routes(text: str, filename: str) -> Routes:
    errors: list[RouteLineError] = []
    by_name: dict[str, Route] = {}
    fallback: Route | None = None
    section = "databases"
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in ";#":  # whole-line comments only, as PgBouncer: a value may hold ; or #
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip().lower()
            if section != "databases":
                errors.append(RouteLineError(filename, lineno, f'unknown section "[{line[1:-1].strip()}]"'))
            continue
        try:
            name, rest = _name(line)
            rest = rest.strip()
            if not rest.startswith("="):
                raise ValueError('missing "=" after the database name')
            if not name:
                raise ValueError("missing database name")
            params = parse_conninfo(rest[1:].strip(), ROUTE_KEYWORDS)
        except ConninfoError as e:
            errors.append(RouteLineError(filename, lineno, f'invalid route "{line}": {e.message}'))
            continue
        except ValueError as e:
            errors.append(RouteLineError(filename, lineno, f'invalid route "{line}": {e}'))
            continue
        pool: dict[str, int] = {}
        bad = False
        for key in POOL_KEYWORDS & params.keys():
            value = params.pop(key)
            if not value.isdigit():
                errors.append(
                    RouteLineError(
                        filename, lineno, f'invalid value for {key}: "{value}" (a non-negative integer)'
                    )
                )
                bad = True
                continue
            pool[key] = int(value)
        if bad:
            continue
        if name in by_name or (name == FALLBACK and fallback is not None):
            errors.append(RouteLineError(filename, lineno, f'duplicate route for database "{name}"'))
            continue
        route = Route(name, params, lineno, pool)
        if name == FALLBACK:
            fallback = route
        else:
            by_name[name] = route
    if errors:
        raise RoutesError(errors)
    return Routes(by_name, fallback)


def load_routes(path: Path) -> Routes | None:
    """The routes of ``path``; None when the file does not exist (every database goes to ``upstream``)."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_ROUTES_FILE_SIZE + 1)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise RoutesError(
            [RouteLineError(str(path), 0, f'could not open file "{path}": {e.strerror}')]
        ) from None
    if len(data) > MAX_ROUTES_FILE_SIZE:
        raise RoutesError([RouteLineError(str(path), 0, f'file "{path}" is too large')])
    return parse_routes(data.decode("utf-8", "surrogateescape"), str(path))
