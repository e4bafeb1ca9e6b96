"""Stored upstream passwords in libpq's password file format (``.pgpass``), read as libpq reads it.

A route's upstream login may need a password pgtls cannot take from the client (a role forced with
``user=``, the ``auth_user`` that looks roles up, a client who logged in with a certificate): it is
kept in a password file, ``passfile=`` in the route or ``~/.pgpass`` of the OS user pgtls runs as,
never in postgresql.conf or the routes file.  Lines are ``host:port:database:username:password``,
``*`` matches anything, ``\\:`` and ``\\\\`` escape; the first matching line wins.  As libpq, a file
that is not a plain file or that the group or others may read is ignored with a warning.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pgtls import log

MAX_PASSFILE_SIZE = 1 << 20
DEFAULT_PASSFILE = "~/.pgpass"


def _fields(line: str) -> list[str]:
    out: list[str] = []
    cur: list[str] = []
    i = 0
    while i < len(line):
        c = line[i]
        if c == "\\" and i + 1 < len(line):
            cur.append(line[i + 1])
            i += 2
            continue
        if c == ":" and len(out) < 4:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    out.append("".join(cur))
    return out


def lookup(path: str, host: str, port: int, database: str, user: str) -> str | None:
    """The password for (host, port, database, user) from the password file ``path``, or None."""
    p = Path(os.path.expanduser(path or DEFAULT_PASSFILE))
    try:
        st = p.stat()
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        log.emit("WARNING", f'password file "{p}" is not a plain file')
        return None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.emit(
            "WARNING",
            f'password file "{p}" has group or world access; permissions should be u=rw (0600) or less',
        )
        return None
    try:
        with p.open("rb") as f:
            data = f.read(MAX_PASSFILE_SIZE)
    except OSError:
        return None
    if host.startswith("/"):
        host = "localhost"  # libpq: a Unix-socket directory matches "localhost"
    want = (host, str(port), database, user)
    for raw in data.decode("utf-8", "surrogateescape").splitlines():
        if not raw or raw.startswith("#"):
            continue
        fields = _fields(raw)
        if len(fields) != 5:
            continue
        if all(f == "*" or f == w for f, w in zip(fields[:4], want, strict=True)):
            return fields[4]
    return None
