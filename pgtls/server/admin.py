"""The admin console: the virtual database ``pgtls`` (PgBouncer's convention with its ``pgbouncer`` database).

Reached through the same door as any database (TLS, pg_hba.conf, authentication), by superusers and the
roles of ``admin_users``.  It speaks the simple query protocol, and the extended one for statements without
parameters (what psycopg sends), and knows these commands (case-insensitive, an optional ``;``):

``SHOW CLIENTS`` (each client with its TLS version, cipher and certificate DN), ``SHOW SERVERS`` (upstream
sessions), ``SHOW POOLS``, ``SHOW STATS``, ``SHOW CONFIG``, ``SHOW SSL`` (loaded certificates: subject,
issuer, expiry), ``SHOW RELOAD`` (last reload per file), ``RELOAD``, ``PAUSE``, ``RESUME``, ``KILL <pid>``.

With worker processes every command covers all of them (:mod:`pgtls.server.peers`), with a ``worker``
column.  Only the relay backends have it (the DuckDB backend's ``pgtls`` is an ordinary database name).
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pgtls import log
from pgtls.errors import PgError
from pgtls.protocol import messages as m
from pgtls.server import peers
from pgtls.server.state import ADMIN_DATABASE, snapshot

TEXT_OID = 25
SYNTAX_ERROR = "42601"
INSUFFICIENT_PRIVILEGE = "42501"
UNDEFINED_OBJECT = "42704"
MAX_ADMIN_MESSAGE = 1 << 16  # a console command is short


def allowed(server: Any, user: str, is_superuser: bool) -> bool:
    names = {n.strip() for n in str(server.snapshot.settings["admin_users"]).split(",") if n.strip()}
    return is_superuser or user in names


def refused(user: str) -> PgError:
    return PgError(
        INSUFFICIENT_PRIVILEGE,
        f'permission denied for database "{ADMIN_DATABASE}"',
        severity="FATAL",
        detail=f'Only superusers and the roles of admin_users may use the admin console; "{user}" '
        "is neither.",
    )


async def local_op(server: Any, req: dict[str, Any]) -> dict[str, Any]:
    """One worker's part of a console command (also what peers ask it over its admin socket)."""
    op = req.get("op")
    if op == "snapshot":
        return snapshot(server)
    if op == "kill":
        return {"killed": server.kill_client(int(req.get("pid", 0)))}
    if op == "pause":
        await server.backend.pause()
        return {"ok": True}
    if op == "resume":
        server.backend.resume()
        return {"ok": True}
    return {"error": f"unknown op {op!r}"}


Rows = tuple[list[str], list[list[object]]]


def _fmt(v: object) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


class AdminSession:
    """The console session of one client (the relay backends' Session interface)."""

    def __init__(self, server: Any, pid: int) -> None:
        self.server = server
        self.pid = pid
        self.released = False

    def parameters(self) -> list[tuple[str, str]]:
        s = self.server.snapshot.settings
        return [
            ("server_version", str(s["server_version"])),
            ("server_encoding", "UTF8"),
            ("client_encoding", "UTF8"),
            ("DateStyle", "ISO, MDY"),
            ("integer_datetimes", "on"),
            ("standard_conforming_strings", "on"),
            ("application_name", ""),
        ]

    async def cancel(self) -> None:
        pass

    async def release(self, fast: bool = False) -> None:
        self.released = True

    async def run(self, channel: Any, pending: bytearray, stopping: Callable[[], bool]) -> None:
        buf = pending
        statement = ""
        failed = False
        while True:
            while len(buf) < 5 or len(buf) < 1 + int.from_bytes(buf[1:5], "big"):
                if len(buf) >= 5 and not 4 <= int.from_bytes(buf[1:5], "big") <= MAX_ADMIN_MESSAGE:
                    return
                data = await channel.recv()
                if not data:
                    return
                buf += data
            kind = bytes(buf[:1])
            n = int.from_bytes(buf[1:5], "big")
            body = bytes(buf[5 : 1 + n])
            del buf[: 1 + n]
            if kind == b"X":
                return
            if kind == b"Q":
                sql = body.rstrip(b"\0").decode("utf-8", "replace")
                channel.send(await self._answer(sql, describe=True) + m.ready_for_query("I"))
            elif kind == b"P":  # name, query, parameter types
                parts = body.split(b"\0", 2)
                statement = parts[1].decode("utf-8", "replace") if len(parts) > 1 else ""
                if not failed:
                    channel.send(m.parse_complete())
            elif kind == b"B":
                if not failed:
                    channel.send(m.bind_complete())
            elif kind == b"D":
                if not failed:
                    out = await self._answer(statement, describe=True, only_describe=True)
                    failed = out.startswith(b"E")
                    channel.send(out)
            elif kind == b"E":
                if not failed:
                    out = await self._answer(statement, describe=False)
                    failed = out.startswith(b"E")
                    channel.send(out)
            elif kind == b"S":
                failed = False
                channel.send(m.ready_for_query("I"))
            elif kind in (b"H", b"C"):
                if kind == b"C" and not failed:
                    channel.send(m.close_complete())
            else:
                channel.send(
                    m.error_response(PgError("08P01", f"unexpected message type {kind!r}", severity="FATAL"))
                )
                return

    async def _answer(self, sql: str, *, describe: bool, only_describe: bool = False) -> bytes:
        text = sql.strip().rstrip(";").strip()
        if not text:
            return m.no_data() if only_describe else m.empty_query_response()
        try:
            tag, rows = await self.command(text)
        except PgError as e:
            return m.error_response(e)
        out: list[bytes] = []
        if rows is None:
            if only_describe:
                return m.no_data()
            return m.command_complete(tag)
        names, data = rows
        if describe:
            out.append(m.row_description([(n, TEXT_OID, -1, -1, 0) for n in names]))
        if only_describe:
            return b"".join(out)
        for r in data:
            out.append(m.data_row([None if (v := _fmt(x)) is None else v.encode() for x in r]))
        out.append(m.command_complete(f"SHOW {len(data)}" if tag == "SHOW" else tag))
        return b"".join(out)

    async def command(self, text: str) -> tuple[str, Rows | None]:
        """One console command: its verb picks the handler from ``_COMMANDS`` (PgBouncer's admin.c keeps
        the same kind of table); a handler returns None when the words after the verb do not fit it."""
        words = text.split()
        verb = words[0].upper()
        handler = _COMMANDS.get(verb)
        answer = await handler(self, verb, words[1:]) if handler is not None else None
        if answer is None:
            raise PgError(
                SYNTAX_ERROR, f'unrecognized admin console command "{text[:100]}"', hint=_COMMAND_HINT
            )
        return answer

    async def _cmd_show(self, verb: str, args: list[str]) -> tuple[str, Rows | None] | None:
        if len(args) != 1:
            return None
        what = args[0].upper()
        local = _SHOW_LOCAL.get(what)
        if local is not None:
            return "SHOW", local(self.server)
        gathered = _SHOW_GATHERED.get(what)
        if gathered is None:
            raise PgError(UNDEFINED_OBJECT, f'unrecognized admin console item "{args[0]}"', hint=_SHOW_HINT)
        answers, missing = await peers.ask_all(self.server, {"op": "snapshot"}, self._local)
        if missing:
            log.log(f"admin console: workers {missing} did not answer")
        return "SHOW", gathered(answers)

    async def _cmd_reload(self, verb: str, args: list[str]) -> tuple[str, Rows | None] | None:
        if args:
            return None
        target = os.getppid() if getattr(self.server, "worker", None) is not None else os.getpid()
        os.kill(target, signal.SIGHUP)
        return "RELOAD", None

    async def _cmd_everywhere(self, verb: str, args: list[str]) -> tuple[str, Rows | None] | None:
        """PAUSE and RESUME: the same operation in every worker."""
        if args:
            return None
        await peers.ask_all(self.server, {"op": verb.lower()}, self._local)
        return verb, None

    async def _cmd_kill(self, verb: str, args: list[str]) -> tuple[str, Rows | None] | None:
        if len(args) != 1 or not re.fullmatch(r"\d{1,10}", args[0]):
            return None
        pid = int(args[0])
        answers, _ = await peers.ask_all(self.server, {"op": "kill", "pid": pid}, self._local)
        if not any(a.get("killed") for a in answers):
            raise PgError(UNDEFINED_OBJECT, f"no client with pid {pid}")
        return "KILL", None

    async def _local(self, req: dict[str, Any]) -> dict[str, Any]:
        return await local_op(self.server, req)


def _table(answers: Sequence[dict[str, Any]], key: str, cols: list[str]) -> Rows:
    data = [[a["worker"], *(row.get(c) for c in cols)] for a in answers for row in a[key]]
    return ["worker", *cols], data


def _clients(answers: Sequence[dict[str, Any]]) -> Rows:
    return _table(
        answers,
        "clients",
        [
            "pid",
            "user",
            "database",
            "addr",
            "port",
            "application_name",
            "state",
            "ssl",
            "tls_version",
            "cipher",
            "client_dn",
            "issuer_dn",
            "pinned",
            "upstream_pid",
        ],
    )


def _servers(answers: Sequence[dict[str, Any]]) -> Rows:
    return _table(answers, "servers", ["pid", "user", "database", "state", "client", "upstream", "prepared"])


def _pools(answers: Sequence[dict[str, Any]]) -> Rows:
    return _table(
        answers,
        "pools",
        ["user", "database", "mode", "pool_size", "size", "in_use", "idle", "waiting", "pinned"],
    )


def _stats(answers: Sequence[dict[str, Any]]) -> Rows:
    cols = [
        "pid",
        "restarts",
        "uptime",
        "clients",
        "pre_auth",
        "pinned",
        "paused",
        "handshakes",
        "handshake_failures",
        "logins",
        "login_failures",
    ]
    data = []
    for a in answers:
        st = a["stats"]
        logins = sum(n for _, outcome, n in st["auth"] if outcome == "success")
        failures = sum(n for _, outcome, n in st["auth"] if outcome != "success")
        data.append(
            [
                a["worker"],
                a["pid"],
                a["restarts"],
                time.time() - st["started"],
                len(a["clients"]),
                a["pre_auth"],
                a["pinned"],
                a["paused"],
                sum(r[-1] for r in st["handshakes"]),
                sum(r[-1] for r in st["handshake_failures"]),
                logins,
                failures,
            ]
        )
    return ["worker", *cols], data


def _ssl(answers: Sequence[dict[str, Any]]) -> Rows:
    cols = ["kind", "file", "hosts", "subject", "issuer", "not_after", "seconds_left"]
    data = []
    for a in answers:
        for c in a["certificates"]:
            na = c.get("not_after")
            data.append(
                [
                    a["worker"],
                    c["kind"],
                    c["file"],
                    c.get("hosts") or None,
                    c["subject"],
                    c["issuer"],
                    time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(na)) if na else None,
                    int(na - time.time()) if na else None,
                ]
            )
    return ["worker", *cols], data


def _reload(answers: Sequence[dict[str, Any]]) -> Rows:
    data = []
    for a in answers:
        for f, r in sorted(a["stats"]["reloads"].items()):
            data.append(
                [
                    a["worker"],
                    f,
                    time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(r["time"])),
                    r["ok"],
                    "\n".join(r["errors"]) or None,
                ]
            )
    return ["worker", "file", "time", "ok", "errors"], data


def _config(server: Any) -> Rows:
    s = server.snapshot.settings
    return ["name", "setting"], [[n, s.show(n)] for n in sorted(s.names())]


# SHOW items built from every worker's snapshot (asked over the admin sockets) ...
_SHOW_GATHERED: dict[str, Callable[[Sequence[dict[str, Any]]], Rows]] = {
    "CLIENTS": _clients,
    "SERVERS": _servers,
    "POOLS": _pools,
    "STATS": _stats,
    "SSL": _ssl,
    "RELOAD": _reload,
}
# ... and those this worker answers alone (the settings are the same in every worker).
_SHOW_LOCAL: dict[str, Callable[[Any], Rows]] = {"CONFIG": _config}
_SHOW_ITEMS = ", ".join(sorted([*_SHOW_GATHERED, *_SHOW_LOCAL]))
_SHOW_HINT = f"SHOW {_SHOW_ITEMS}."

_Handler = Callable[["AdminSession", str, list[str]], Awaitable["tuple[str, Rows | None] | None"]]
_COMMANDS: dict[str, _Handler] = {
    "SHOW": AdminSession._cmd_show,
    "RELOAD": AdminSession._cmd_reload,
    "PAUSE": AdminSession._cmd_everywhere,
    "RESUME": AdminSession._cmd_everywhere,
    "KILL": AdminSession._cmd_kill,
}
_COMMAND_HINT = f"SHOW <item>, RELOAD, PAUSE, RESUME, KILL <pid>; items: {_SHOW_ITEMS}."

__all__ = ["ADMIN_DATABASE", "AdminSession", "allowed", "local_op", "refused"]
