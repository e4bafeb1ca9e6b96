"""The server's answer to a reload, for ``pgtls reload`` (PostgreSQL only logs it).

After each SIGHUP the server (one process) or the supervisor (once every worker has reported) writes
``<run dir>/reload.json``: a sequence number and, per process, what kept its old configuration and why::

    {"seq": 3, "time": 1796597574.9,
     "processes": [{"worker": 0, "kept": ["SSL configuration"],
                    "errors": {"SSL configuration": ["could not load server certificate file ..."]}}]}

``pgtls reload`` reads the number, sends SIGHUP, waits for a larger one and prints the answer.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from pgtls.server.shared import run_dir_of

ANSWER_FILE = "reload.json"
MAX_ANSWER_BYTES = 1 << 20


def ensure_run_dir(data_dir: Path) -> Path:
    d = run_dir_of(data_dir)
    d.mkdir(mode=0o700, exist_ok=True)
    return d


def write_answer(run_dir: Path, seq: int, processes: list[dict[str, Any]]) -> None:
    tmp = run_dir / f".{ANSWER_FILE}.{os.getpid()}"
    tmp.write_text(json.dumps({"seq": seq, "time": time.time(), "processes": processes}))
    os.replace(tmp, run_dir / ANSWER_FILE)


def read_answer(data_dir: Path) -> dict[str, Any] | None:
    try:
        with open(run_dir_of(data_dir) / ANSWER_FILE, "rb") as f:
            got = json.loads(f.read(MAX_ANSWER_BYTES))
    except (OSError, ValueError):
        return None
    return got if isinstance(got, dict) and isinstance(got.get("seq"), int) else None


def process_answer(worker: int | None, kept: list[str], stats: Any) -> dict[str, Any]:
    """One process's part: what it kept, with the errors its counters recorded (pgtls.server.stats)."""
    errors = {f: r.errors for f, r in stats.reloads.items() if not r.ok}
    return {"worker": worker, "kept": kept, "errors": errors}
