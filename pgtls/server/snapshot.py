"""The server's configuration as a value: what :class:`~pgtls.server.server.Server` builds at start and at
each reload (part by part, Table 19.2), and what each connection keeps for its whole life."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pgtls.config.settings import Settings
from pgtls.tls import TlsConfig


@dataclass(frozen=True)
class Snapshot:
    settings: Settings
    tls: TlsConfig | None
    hba: Any = None
    ident: Any = None
