"""Authentication of one connection: pg_hba.conf line selection and the method exchange.

The decisions themselves live in :mod:`pgtls.auth` and :mod:`pgtls.config.hba`
(pure code); this module only moves their messages over the channel and runs
the expensive steps (PBKDF2) in a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pgtls.protocol.startup import Startup

if TYPE_CHECKING:
    from pgtls.server.connection import Connection


@dataclass(frozen=True)
class AuthOutcome:
    is_superuser: bool
    sent_ok: bool  # AuthenticationOk already sent


async def authenticate(conn: Connection, startup: Startup) -> AuthOutcome:
    """Until pg_hba.conf support lands every connection is ``trust``."""
    return AuthOutcome(is_superuser=True, sent_ok=False)
