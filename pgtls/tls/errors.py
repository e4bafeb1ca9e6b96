"""Errors raised by the TLS layer.

:class:`TlsConfigError` carries one PostgreSQL report (message, DETAIL, HINT,
SQLSTATE) about the ssl_* settings; the caller decides the level: FATAL at
server start, LOG (followed by ``SSL configuration was not reloaded``) at
reload (be-secure-openssl.c ``be_tls_init``).  :class:`PeerCertError` is the
log-only (COMMERROR, 08P01) refusal of a client certificate whose names carry
an embedded NUL (CVE-2009-4034).
"""

from __future__ import annotations

CONFIG_FILE_ERROR = "F0000"
PROTOCOL_VIOLATION = "08P01"


class TlsConfigError(Exception):
    """An ssl_* configuration error, worded exactly as PostgreSQL words it.

    ``logged_before`` holds reports PostgreSQL writes to the log just before
    this one during the same load (for instance ``command "..." failed`` from
    ssl_passphrase_command at reload, before the key-load error).
    """

    sqlstate = CONFIG_FILE_ERROR

    def __init__(
        self,
        message: str,
        detail: str | None = None,
        hint: str | None = None,
        *,
        sqlstate: str | None = None,
        logged_before: tuple[TlsConfigError, ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.hint = hint
        if sqlstate is not None:
            self.sqlstate = sqlstate
        self.logged_before = logged_before

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"TlsConfigError({self.message!r}, detail={self.detail!r}, hint={self.hint!r}, sqlstate={self.sqlstate!r})"


class PeerCertError(Exception):
    """A client certificate refused after the handshake (log-only, 08P01); the connection must close."""

    sqlstate = PROTOCOL_VIOLATION

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
