"""`pgtls init | serve | reload | stop | cert … | check | role …` — the command line.

The data directory is ``-D DIR`` or ``$PGDATA``, as with PostgreSQL's tools.
"""

from __future__ import annotations

import argparse
import getpass
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pgtls import __version__


def _data_dir(args: argparse.Namespace) -> Path:
    d = args.datadir or os.environ.get("PGDATA")
    if not d:
        print("pgtls: no data directory specified (use -D or set PGDATA)", file=sys.stderr)
        raise SystemExit(1)
    return Path(d)


def _add_datadir(p: argparse.ArgumentParser) -> None:
    p.add_argument("-D", "--pgdata", dest="datadir", metavar="DIR", help="data directory (default: $PGDATA)")


# --- init -------------------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    from pgtls.server.initdb import InitError, init_data_dir

    data_dir = _data_dir(args)
    user = args.username or getpass.getuser()
    try:
        notes = init_data_dir(
            data_dir,
            superuser=user,
            tls=args.tls,
            auth=args.auth,
            hostnames=args.hostname or [],
            port=args.port,
            backend=args.backend,
        )
    except InitError as e:
        print(f"pgtls init: error: {e}", file=sys.stderr)
        return 1
    for line in notes:
        print(line)
    return 0


# --- serve ------------------------------------------------------------------------------------


def _overrides(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in pairs:
        name, sep, value = item.partition("=")
        if not sep:
            print(f"pgtls: -c {item} requires a value", file=sys.stderr)
            raise SystemExit(1)
        out[name.strip().replace("-", "_")] = value
    return out


def cmd_serve(args: argparse.Namespace) -> int:
    data_dir = _data_dir(args)
    overrides = _overrides(args.set or [])
    if args.port is not None:
        overrides["port"] = str(args.port)
    return serve(data_dir, overrides)


def serve(data_dir: Path, overrides: dict[str, str], on_ready: Callable[[], None] | None = None) -> int:
    """Run the server in the foreground; ``on_ready`` once it (and what stands behind it) accepts connections."""
    from pgtls import log
    from pgtls.server.eventloop import run_event_loop
    from pgtls.server.server import Server, StartupError, hold_early_sighup

    hold_early_sighup()
    if not (data_dir / "postgresql.conf").exists():
        log.fatal(
            f'could not access the server configuration file "{data_dir / "postgresql.conf"}": No such file or directory'
        )
        return 1
    try:
        server = Server(data_dir, overrides, interactive=sys.stdin.isatty())
    except StartupError as e:
        log.emit("FATAL", e.message, detail=e.detail, hint=e.hint)
        return 1
    server.on_ready = on_ready
    from pgtls.osproc import raise_descriptor_limit

    needed, limit = raise_descriptor_limit(int(server.snapshot.settings["max_connections"]))
    if limit < needed:
        log.log(
            f"the open-file limit is {limit}; max_connections = {server.snapshot.settings['max_connections']} "
            f"may need {needed} descriptors"
        )
    count = _workers(server)
    if count > 1:
        from pgtls.server.supervisor import Supervisor

        supervisor = Supervisor(server, count)
        supervisor.on_ready = on_ready

        async def main() -> int:
            return await supervisor.run()
    else:

        async def main() -> int:
            return await server.serve_forever()

    try:
        return run_event_loop(main())
    except StartupError as e:
        log.emit("FATAL", e.message, detail=e.detail, hint=e.hint)
        return 1


def _workers(server: Any) -> int:
    """How many worker processes serve: ``workers`` for the relay backends; one for the DuckDB backend, and
    one when the server key's passphrase was typed at the terminal (a worker could not ask for it)."""
    from pgtls import log
    from pgtls.server.supervisor import worker_count

    if not server.is_async:
        return 1
    s = server.snapshot.settings
    count = worker_count(int(s["workers"]))
    if (
        count > 1
        and server.interactive
        and s["ssl"]
        and not str(s["ssl_passphrase_command"])
        and _key_encrypted(server.data_dir, str(s["ssl_key_file"]))
    ):
        log.log(
            "the server key's passphrase was typed at the terminal: serving in one process (set "
            "ssl_passphrase_command to use worker processes)"
        )
        return 1
    return count


def _key_encrypted(data_dir: Path, key_file: str) -> bool:
    path = Path(key_file) if Path(key_file).is_absolute() else data_dir / key_file
    try:
        return b"ENCRYPTED" in path.read_bytes()[:4096]
    except OSError:
        return False


# --- reload / stop ----------------------------------------------------------------------------


def _signal(args: argparse.Namespace, sig: int) -> int | None:
    from pgtls.server.pidfile import process_alive, read_pid

    data_dir = _data_dir(args)
    pid = read_pid(data_dir)
    if pid is None or not process_alive(pid):
        print(f'pgtls: PID file "{data_dir / "postmaster.pid"}" does not exist', file=sys.stderr)
        print("Is server running?", file=sys.stderr)
        return None
    os.kill(pid, sig)
    return pid


def cmd_reload(args: argparse.Namespace) -> int:
    """SIGHUP, then the server's answer (pgtls.server.reloadanswer): exit status 1 when some part kept its
    old configuration, with the reason per file."""
    from pgtls.server.reloadanswer import read_answer

    data_dir = _data_dir(args)
    before = int((read_answer(data_dir) or {}).get("seq", 0))
    pid = _signal(args, signal.SIGHUP)
    if pid is None:
        return 1
    print("server signaled")
    deadline = time.monotonic() + args.timeout
    answer = None
    while time.monotonic() < deadline:
        got = read_answer(data_dir)
        if got is not None and int(got["seq"]) > before:
            answer = got
            break
        time.sleep(0.05)
    if answer is None:
        print(f"pgtls: the server did not answer within {args.timeout:g} s; see its log", file=sys.stderr)
        return 1
    failed = False
    for proc in answer.get("processes", []):
        who = "the server" if proc.get("worker") is None else f"worker process {proc['worker']}"
        for part in proc.get("kept", []):
            failed = True
            errors = proc.get("errors", {}).get(part) or []
            print(
                f"pgtls: {who} kept its old configuration for {part}"
                + (": " + "; ".join(errors) if errors else ""),
                file=sys.stderr,
            )
    if failed:
        return 1
    print("configuration reloaded")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from pgtls.osproc import SHUTDOWN_SIGNALS
    from pgtls.server.pidfile import process_alive

    pid = _signal(args, SHUTDOWN_SIGNALS[args.mode])
    if pid is None:
        return 1
    print("waiting for server to shut down...", end="", flush=True)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        if not process_alive(pid) or not (_data_dir(args) / "postmaster.pid").exists():
            print(" done\nserver stopped")
            return 0
        time.sleep(0.1)
    print(" failed\npgtls: server does not shut down", file=sys.stderr)
    return 1


# --- parser -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pgtls", description="PostgreSQL-protocol server with PostgreSQL's TLS"
    )
    parser.add_argument("--version", action="version", version=f"pgtls {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("init", help="create a data directory (like initdb)")
    _add_datadir(p)
    p.add_argument("-U", "--username", help="name of the initial superuser (default: the OS user)")
    p.add_argument(
        "--tls", action="store_true", help="also create a CA, a server and a client certificate; ssl=on"
    )
    p.add_argument("--auth", default=None, help="authentication method for local and loopback lines")
    p.add_argument(
        "--hostname", action="append", help="extra host name for the server certificate (with --tls)"
    )
    p.add_argument("-p", "--port", type=int, default=None, help="port to write into postgresql.conf")
    p.add_argument(
        "--backend",
        choices=("postgresql", "duckdb"),
        default="postgresql",
        help="what stands behind the door: a managed PostgreSQL cluster (default) or embedded DuckDB",
    )
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("serve", help="run the server in the foreground")
    _add_datadir(p)
    p.add_argument(
        "-c", dest="set", action="append", metavar="NAME=VALUE", help="set a configuration parameter"
    )
    p.add_argument("-p", "--port", type=int, default=None)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "reload", help="make a running server re-read its configuration (SIGHUP) and say whether it took"
    )
    _add_datadir(p)
    p.add_argument(
        "-t", "--timeout", type=float, default=60.0, help="seconds to wait for the server's answer"
    )
    p.set_defaults(func=cmd_reload)

    p = sub.add_parser("stop", help="stop a running server")
    _add_datadir(p)
    p.add_argument("-m", "--mode", choices=("smart", "fast", "immediate"), default="fast")
    p.add_argument("-t", "--timeout", type=float, default=60)
    p.set_defaults(func=cmd_stop)

    try:
        from pgtls.certs.cli import add_cert_parser, add_check_parser

        add_cert_parser(sub)
        add_check_parser(sub)
    except ImportError:
        pass
    try:
        from pgtls.role_cli import add_role_parser

        add_role_parser(sub)
    except ImportError:
        pass
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
