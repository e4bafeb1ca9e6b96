"""Counters of one server process, for the metrics and the admin console (pgtls.server.state).

Plain counts kept on the event loop: TLS handshakes by protocol and cipher, failed handshakes by reason,
authentications by method and outcome, and the last reload of each configuration file.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from typing import Any

# Distinct label values kept per counter (reasons come from OpenSSL, methods from pg_hba.conf): more go to
# "other", so that nothing a client does can grow these without bound.
MAX_LABEL_VALUES = 64
OTHER = "other"


def _bounded(counter: collections.Counter[tuple[str, ...]], key: tuple[str, ...]) -> None:
    if key not in counter and len(counter) >= MAX_LABEL_VALUES:
        key = tuple(OTHER for _ in key)
    counter[key] += 1


@dataclass
class ReloadRecord:
    time: float
    ok: bool
    errors: list[str] = field(default_factory=list)


class Stats:
    def __init__(self) -> None:
        self.started = time.time()
        self.handshakes: collections.Counter[tuple[str, ...]] = collections.Counter()  # (protocol, cipher)
        self.handshake_failures: collections.Counter[tuple[str, ...]] = collections.Counter()  # (reason,)
        self.auth: collections.Counter[tuple[str, ...]] = collections.Counter()  # (method, outcome)
        self.reloads: dict[str, ReloadRecord] = {}

    def handshake(self, protocol: str, cipher: str) -> None:
        _bounded(self.handshakes, (protocol, cipher))

    def handshake_failed(self, reason: str) -> None:
        _bounded(self.handshake_failures, (reason[:80],))

    def authenticated(self, method: str, ok: bool) -> None:
        _bounded(self.auth, (method, "success" if ok else "failure"))

    def reloaded(self, file: str, ok: bool, errors: list[str] | None = None) -> None:
        self.reloads[file] = ReloadRecord(time.time(), ok, list(errors or []))

    def to_dict(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "handshakes": [[*k, n] for k, n in self.handshakes.items()],
            "handshake_failures": [[*k, n] for k, n in self.handshake_failures.items()],
            "auth": [[*k, n] for k, n in self.auth.items()],
            "reloads": {f: {"time": r.time, "ok": r.ok, "errors": r.errors} for f, r in self.reloads.items()},
        }
