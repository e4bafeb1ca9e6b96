"""Asking every worker process at once: the admin console and the metrics see the whole server.

Each worker listens on ``<run dir>/worker-<n>.admin`` (a Unix socket only pgtls's user can reach) for one
JSON request per connection and answers one JSON line:

* ``{"op": "snapshot"}`` → :func:`pgtls.server.state.snapshot` of that worker;
* ``{"op": "kill", "pid": P}`` → ``{"killed": true|false}`` (the client session P, if it is that worker's);
* ``{"op": "pause"}`` / ``{"op": "resume"}`` → ``{"ok": true}`` once done.

:func:`ask_all` runs a request here and on every other worker; a worker that does not answer within
``PEER_TIMEOUT`` (it may be restarting) is left out and named in the answer.  A single-process server
answers alone.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pgtls.server.shared import MAX_CONTROL_LINE

PEER_TIMEOUT = 5.0
PAUSE_TIMEOUT = 3600.0  # PAUSE waits for server connections in use; the admin client may cancel it sooner
MAX_PEER_ANSWER = 64 << 20  # a snapshot with every client of a worker


def admin_socket(run_dir: Path, index: int) -> Path:
    return run_dir / f"worker-{index}.admin"


Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


async def serve(run_dir: Path, index: int, handle: Handler) -> asyncio.AbstractServer:
    path = admin_socket(run_dir, index)
    path.unlink(missing_ok=True)

    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(PEER_TIMEOUT):
                line = await reader.readline()
            req = json.loads(line)
            if not isinstance(req, dict):
                return
            answer = await handle(req)
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except (OSError, ValueError, TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    srv = await asyncio.start_unix_server(on_conn, str(path), limit=MAX_CONTROL_LINE)
    os.chmod(path, 0o600)
    return srv


async def _ask(run_dir: Path, index: int, req: dict[str, Any], timeout: float) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_unix_connection(
            str(admin_socket(run_dir, index)), limit=MAX_PEER_ANSWER
        )
        try:
            writer.write(json.dumps(req).encode() + b"\n")
            await writer.drain()
            line = await reader.readline()
        finally:
            writer.close()
    answer = json.loads(line)
    if not isinstance(answer, dict):
        raise ValueError("not an object")
    return answer


async def ask_all(server: Any, req: dict[str, Any], here: Handler) -> tuple[list[dict[str, Any]], list[int]]:
    """(the answers of every worker, this one's first; the workers that did not answer)."""
    worker = getattr(server, "worker", None)
    mine = await here(req)
    if worker is None or worker.count <= 1:
        return [mine], []
    timeout = PAUSE_TIMEOUT if req.get("op") == "pause" else PEER_TIMEOUT
    others = [i for i in range(worker.count) if i != worker.index]
    got = await asyncio.gather(
        *(_ask(worker.run_dir, i, req, timeout) for i in others), return_exceptions=True
    )
    answers, missing = [mine], []
    for i, g in zip(others, got, strict=True):
        if isinstance(g, BaseException):
            missing.append(i)
        else:
            answers.append(g)
    return answers, missing
