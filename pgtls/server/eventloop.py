"""Which event loop runs the server: uvloop by default, asyncio's own with ``PGTLS_EVENT_LOOP=asyncio``
(docs/architecture.md, "The event loop")."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

EVENT_LOOP_ENV = "PGTLS_EVENT_LOOP"
T = TypeVar("T")


def run_event_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on uvloop when it is installed (the default: measurably less CPU per connection and per
    transaction, docs/architecture.md), or on asyncio's own loop; ``PGTLS_EVENT_LOOP=asyncio|uvloop``
    chooses (uvloop then must be installed)."""
    choice = os.environ.get(EVENT_LOOP_ENV, "")
    if choice not in ("", "asyncio", "uvloop"):
        raise SystemExit(f"pgtls: {EVENT_LOOP_ENV} must be asyncio or uvloop, not {choice!r}")
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise SystemExit(f"pgtls: {EVENT_LOOP_ENV}=uvloop, but uvloop is not installed") from None
        else:
            return uvloop.run(main)
    return asyncio.run(main)
