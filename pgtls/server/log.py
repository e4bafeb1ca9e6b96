"""Server log lines in PostgreSQL's shape: ``<time> [<pid>] LEVEL:  message`` plus DETAIL/HINT lines.

The prefix is PostgreSQL's default ``log_line_prefix`` ('%m [%p] ').  Messages
go to stderr (or a file given to :func:`configure`).  Nothing secret is passed
in here by design: callers log names, files and reasons, never keys, passwords
or passphrases.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import threading
from typing import TextIO

_out: TextIO = sys.stderr
_lock = threading.Lock()
_min_level = 0

LEVELS = {"DEBUG2": -2, "DEBUG1": -1, "LOG": 0, "INFO": 0, "NOTICE": 0, "WARNING": 0, "ERROR": 0, "FATAL": 1, "PANIC": 2}


def configure(stream: TextIO | None = None, *, debug: bool = False) -> None:
    global _out, _min_level
    if stream is not None:
        _out = stream
    _min_level = -2 if debug else 0


def _prefix(pid: int | None) -> str:
    now = dt.datetime.now().astimezone()
    return f"{now.strftime('%Y-%m-%d %H:%M:%S')}.{now.microsecond // 1000:03d} {now.strftime('%Z')} [{pid or os.getpid()}] "


def emit(
    level: str,
    message: str,
    *,
    detail: str | None = None,
    hint: str | None = None,
    context: str | None = None,
    pid: int | None = None,
) -> None:
    if LEVELS.get(level, 0) < _min_level:
        return
    prefix = _prefix(pid)
    lines = [f"{prefix}{level}:  {message}"]
    if detail:
        lines.append(f"{prefix}DETAIL:  {detail}")
    if hint:
        lines.append(f"{prefix}HINT:  {hint}")
    if context:
        lines.append(f"{prefix}CONTEXT:  {context}")
    text = "\n".join(lines) + "\n"
    with _lock:
        try:
            _out.write(text)
            _out.flush()
        except (OSError, ValueError):
            pass


def log(message: str, **kw: object) -> None:
    emit("LOG", message, **kw)  # type: ignore[arg-type]


def fatal(message: str, **kw: object) -> None:
    emit("FATAL", message, **kw)  # type: ignore[arg-type]


def debug(message: str, **kw: object) -> None:
    emit("DEBUG2", message, **kw)  # type: ignore[arg-type]
