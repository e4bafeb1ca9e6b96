"""PostgreSQL errors as values: severity, SQLSTATE, message and the optional fields.

One exception type, :class:`PgError`, carries everything an ErrorResponse or a
server log line needs.  The SQLSTATE constants below are the ones pgtls raises
itself; names follow PostgreSQL's ``errcodes.txt``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# SQLSTATEs (PostgreSQL's errcodes.txt)
PROTOCOL_VIOLATION = "08P01"
CONNECTION_EXCEPTION = "08000"
CONFIG_FILE_ERROR = "F0000"
INVALID_AUTHORIZATION_SPECIFICATION = "28000"
INVALID_PASSWORD = "28P01"
FEATURE_NOT_SUPPORTED = "0A000"
INVALID_PARAMETER_VALUE = "22023"
TOO_MANY_CONNECTIONS = "53300"
INVALID_CATALOG_NAME = "3D000"
UNDEFINED_OBJECT = "42704"
SYNTAX_ERROR = "42601"
QUERY_CANCELED = "57014"
ADMIN_SHUTDOWN = "57P01"
INTERNAL_ERROR = "XX000"
CANT_CHANGE_RUNTIME_PARAM = "55P02"
INSUFFICIENT_PRIVILEGE = "42501"
IN_FAILED_SQL_TRANSACTION = "25P02"


@dataclass
class PgError(Exception):
    """An error reported the PostgreSQL way (ErrorResponse fields S/V/C/M/D/H/P)."""

    sqlstate: str
    message: str
    severity: str = "ERROR"
    detail: str | None = None
    hint: str | None = None
    position: int | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        Exception.__init__(self, self.message)

    def __str__(self) -> str:
        return self.message


def fatal(sqlstate: str, message: str, detail: str | None = None, hint: str | None = None) -> PgError:
    return PgError(sqlstate, message, severity="FATAL", detail=detail, hint=hint)
