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
from typing import TextIO, TypedDict, Unpack

_out: TextIO = sys.stderr
_lock = threading.Lock()
# PostgreSQL's order of message levels for the server log (LOG ranks above ERROR there).
LEVELS = {"DEBUG5": 10, "DEBUG4": 11, "DEBUG3": 12, "DEBUG2": 13, "DEBUG1": 14, "INFO": 15, "NOTICE": 16,
          "WARNING": 17, "ERROR": 18, "LOG": 19, "FATAL": 20, "PANIC": 21}  # fmt: skip
_min_level = LEVELS["WARNING"]  # log_min_messages' default


def configure(stream: TextIO | None = None, *, min_messages: str | None = None) -> None:
    """Where the log goes, and ``log_min_messages`` (at start and at every reload)."""
    global _out, _min_level
    if stream is not None:
        _out = stream
    if min_messages is not None:
        _min_level = LEVELS.get(min_messages.upper(), LEVELS["WARNING"])


def enabled(level: str) -> bool:
    return LEVELS.get(level, LEVELS["LOG"]) >= _min_level


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
    if not enabled(level):
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


class Fields(TypedDict, total=False):
    """The keyword arguments of :func:`emit`."""

    detail: str | None
    hint: str | None
    context: str | None
    pid: int | None


def log(message: str, **kw: Unpack[Fields]) -> None:
    emit("LOG", message, **kw)


def fatal(message: str, **kw: Unpack[Fields]) -> None:
    emit("FATAL", message, **kw)


def debug(message: str, level: str = "DEBUG1", **kw: Unpack[Fields]) -> None:
    emit(level, message, **kw)


def passthrough(line: str) -> None:
    """A line another program already formatted (the managed PostgreSQL's own log), written as is."""
    with _lock:
        try:
            _out.write(line if line.endswith("\n") else line + "\n")
            _out.flush()
        except (OSError, ValueError):
            pass
