"""placeholder"""
from __future__ import annotations
from typing import TYPE_CHECKING
from pgtls.errors import PgError
if TYPE_CHECKING:
    from pgtls.backends.embedded.session import EmbeddedSession, Output
    from pgtls.backends.embedded.execute import Result

class CopyState:
    def __init__(self, session: EmbeddedSession) -> None:
        self.s = session
    def start(self, sql: str) -> Result:
        raise PgError("0A000", "COPY not yet")
    def message(self, kind: bytes, body: bytes, out: Output) -> str | None:
        return None
