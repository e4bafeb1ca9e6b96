"""The server process: configuration snapshots, listeners, signals, pid file, shutdown.

Configuration is a value (:class:`~pgtls.server.snapshot.Snapshot`): start-up builds one and refuses
to start on any error; SIGHUP builds a new one part by part and keeps the old
part wherever the new one fails (Table 19.2 of the manual).  Each connection
keeps the snapshot it started with, so a reload never disturbs open sessions.

Signal handlers only record what was asked; the loop acts on it (the uvicorn
pattern).  SIGHUP reloads; SIGTERM is a smart shutdown (wait for sessions),
SIGINT a fast one (end sessions with FATAL 57P01), SIGQUIT immediate.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

from pgtls import log
from pgtls.backends.base import AsyncBackend, AsyncSessionBase, Backend, Session
from pgtls.config.conffile import ConfigError
from pgtls.config.settings import Settings, load_settings, reload_settings
from pgtls.osproc import SHUTDOWN_SIGNALS
from pgtls.server.channel import RawConn
from pgtls.server.listeners import ListenError, bind_tcp, bind_unix
from pgtls.server.offload import Offload
from pgtls.server.pidfile import PidFile
from pgtls.server.registry import SessionRegistry
from pgtls.server.reloadanswer import ensure_run_dir, process_answer, read_answer, write_answer
from pgtls.server.shared import SharedState, cancel_socket
from pgtls.server.snapshot import Snapshot
from pgtls.server.state import ADMIN_DATABASE
from pgtls.server.stats import Stats
from pgtls.server.workerlink import Control, WorkerRole, cancel_peer_handler, forward_cancel
from pgtls.tls import TlsConfig, TlsConfigError

# Handshakes get their own small pool so that long-running queries never delay a new client's handshake.
TLS_WORKERS = 4
# Blocking pre-authentication work (PBKDF2 of the password method, host-name lookups of hba lines) gets its
# own pool too: a flood of logins can queue only behind each other, never in front of sessions, and work for
# an abandoned login stops at its authentication_timeout.
PREAUTH_WORKERS = 2
# Connections still negotiating or authenticating, per max_connections slot, beyond which new ones are refused
# with FATAL 53300 (PostgreSQL caps its live children at about twice max_connections).
PREAUTH_CONNECTIONS_PER_SLOT = 2


_EARLY_SIGHUP = threading.Event()


def hold_early_sighup() -> None:
    """From the start of ``pgtls serve`` (or a worker) until the event loop's handlers are in place, a SIGHUP
    (``pgtls reload`` during start-up) is noted instead of ending the process (its default action); the
    reload then runs once the handlers are installed."""
    signal.signal(signal.SIGHUP, lambda signum, frame: _EARLY_SIGHUP.set())


def early_sighup() -> bool:
    """Whether a SIGHUP arrived before the loop's handlers (and forget it)."""
    if _EARLY_SIGHUP.is_set():
        _EARLY_SIGHUP.clear()
        return True
    return False


def shutdown_request(mode: str) -> str:
    return f"received {mode} shutdown request"


def handle_signals(
    loop: asyncio.AbstractEventLoop, on_reload: Callable[[], object], on_stop: Callable[[str], None]
) -> None:
    """Signal handlers on the loop (they only record or schedule; the uvicorn pattern): SIGHUP calls
    ``on_reload``, the shutdown signals ``on_stop(mode)``.  A SIGHUP noted by :func:`hold_early_sighup`
    before this is acted on now."""
    loop.add_signal_handler(signal.SIGHUP, on_reload)
    for mode, sig in SHUTDOWN_SIGNALS.items():
        loop.add_signal_handler(sig, on_stop, mode)
    if early_sighup():
        on_reload()


class StartupError(Exception):
    """The server cannot start; the message is already PostgreSQL-shaped."""

    def __init__(self, message: str, detail: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message, self.detail, self.hint = message, detail, hint


class Server:
    def __init__(
        self,
        data_dir: Path,
        overrides: dict[str, str] | None = None,
        *,
        interactive: bool = False,
        backend: Backend | AsyncBackend | None = None,
        worker: WorkerRole | None = None,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.overrides = dict(overrides or {})
        self.interactive = interactive
        self.worker = worker  # set in a worker process of a multi-process server (see server/supervisor.py)
        self.shared: SharedState | None = None
        if worker is not None:
            self.shared = SharedState(worker.run_dir, worker.count, worker.index)
            self.registry = SessionRegistry(worker.count, worker.index, self.shared)
        else:
            self.registry = SessionRegistry()
        self.control: Control | None = None
        self.stats = Stats()
        self._reload_seq = int((read_answer(self.data_dir) or {}).get("seq", 0))
        self.connections: set[Any] = set()
        self.shutting_down = False
        self.shutting_down_fast = False
        self._servers: list[asyncio.AbstractServer] = []
        self._socket_paths: list[Path] = []
        self._done: asyncio.Event | None = None
        self._stop_mode = "smart"
        self.snapshot = self._load_initial()
        if worker is None:  # a worker's supervisor has said it already
            self.warn_expiry()
        s = self.snapshot.settings
        self.db_executor = ThreadPoolExecutor(
            max_workers=int(s["max_connections"]) + 8, thread_name_prefix="pgtls-db"
        )
        self.tls_offload = Offload(TLS_WORKERS, "pgtls-tls")
        self.preauth_offload = Offload(PREAUTH_WORKERS, "pgtls-auth")
        self.reload_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pgtls-reload")
        from pgtls.auth.roles import RoleStore
        from pgtls.server.authflow import cluster_secret

        self.roles = RoleStore(
            self.data_dir,
            password_encryption=str(s["password_encryption"]),
            scram_iterations=int(s["scram_iterations"]),
        )
        self.cluster_secret = cluster_secret(self.data_dir)
        if backend is None:
            backend = self._make_backend()
        # is_async says which of the two protocols the backend follows (hence the casts: mypy cannot follow a flag)
        self.backend: Backend | AsyncBackend = backend
        self.is_async = bool(getattr(backend, "is_async", False))
        self.pidfile: PidFile | None = None
        self.on_ready: Any = None  # called once the server (and its backend) accepts connections

    def _make_backend(self) -> Backend | AsyncBackend:
        """What the settings (``backend``) and the data directory ask for: the relay to the managed
        PostgreSQL, or the embedded DuckDB database (also for a data directory made before the relay)."""
        from pgtls.backends.relay.cluster import has_cluster
        from pgtls.config.routes import ROUTES_FILE

        s = self.snapshot.settings
        relayed = has_cluster(self.data_dir) or bool(s["upstream"]) or (self.data_dir / ROUTES_FILE).exists()
        kind = str(s["backend"]) or ("postgresql" if relayed else "duckdb")
        if kind == "postgresql":
            from pgtls.backends.relay.backend import RelayBackend
            from pgtls.backends.relay.cluster import ClusterError
            from pgtls.backends.relay.pgbin import PgBinError
            from pgtls.backends.relay.routing import RouterError

            try:
                return RelayBackend(self.data_dir, self)
            except (ClusterError, PgBinError, RouterError) as e:
                raise StartupError(str(e)) from None
        from pgtls.backends.embedded.backend import EmbeddedBackend

        return EmbeddedBackend(self.data_dir, self, debug_log=log.debug)

    async def role_lookup(self, user: str, database: str) -> Any:
        """The roles authentication consults for ``user``: the backend's (fresh per login, from the upstream
        that serves ``database``) or the role store."""
        if self.is_async:
            if database == ADMIN_DATABASE and getattr(self.backend, "routes", None) is None:
                database = "postgres"  # the admin console: the managed cluster's roles
            return await cast(AsyncBackend, self.backend).role_lookup(user, database)
        return self.roles

    # --- settings facade used by backends (SHOW) ---
    def show(self, name: str) -> str:
        return self.snapshot.settings.show(name)

    def names(self) -> list[str]:
        return self.snapshot.settings.names()

    def __getitem__(self, name: str) -> object:
        return self.snapshot.settings[name]

    # --- configuration ---
    def _load_initial(self) -> Snapshot:
        try:
            settings = load_settings(self.data_dir, self.overrides)
        except ConfigError as e:
            raise StartupError(str(e)) from None
        log.configure(min_messages=str(settings["log_min_messages"]))
        su, rc, mc = (
            int(settings[n])
            for n in ("superuser_reserved_connections", "reserved_connections", "max_connections")
        )
        if su + rc >= mc:  # PostgresMain's check, before anything else starts
            raise StartupError(
                f'"superuser_reserved_connections" ({su}) plus "reserved_connections" ({rc}) must be '
                f'less than "max_connections" ({mc})'
            )
        tls = None
        if settings["ssl"]:
            try:
                tls = _build_tls(settings, self.data_dir, is_start=True, interactive=self.interactive)
            except TlsConfigError as e:
                for earlier in e.logged_before:
                    log.log(earlier.message, detail=earlier.detail, hint=earlier.hint)
                raise StartupError(e.message, e.detail, e.hint) from None
        hba, ident = self._load_auth_files(settings, at_start=True)
        return Snapshot(settings=settings, tls=tls, hba=hba, ident=ident)

    def _load_auth_files(
        self, settings: Settings, *, at_start: bool, old: Snapshot | None = None
    ) -> tuple[Any, Any]:
        from pgtls.config import hba as hbamod
        from pgtls.config import ident as identmod

        hba_path = _path(settings, "hba_file", self.data_dir / "pg_hba.conf")
        ident_path = _path(settings, "ident_file", self.data_dir / "pg_ident.conf")
        hba = old.hba if old else None
        ident = old.ident if old else None
        try:
            hba = hbamod.load_hba(hba_path, ssl_enabled=bool(settings["ssl"]))
            for w in getattr(hba, "warnings", []):
                log.log(str(w))
        except hbamod.HbaError as e:
            if at_start:
                raise StartupError(f"could not load {hba_path}", detail=str(e)) from None
            log.log(str(e))
            log.log("pg_hba.conf was not reloaded")
        try:
            ident = identmod.load_ident(ident_path)
        except identmod.IdentError as e:
            if at_start:
                raise StartupError(f"could not load {ident_path}", detail=str(e)) from None
            log.log(str(e))
            log.log("pg_ident.conf was not reloaded")
        return hba, ident

    def reload(self) -> list[str]:
        """Re-read the configuration (Table 19.2); the parts that kept their old configuration."""
        kept: list[str] = []
        log.log("received SIGHUP, reloading configuration files")
        old = self.snapshot
        settings, lines = reload_settings(old.settings, self.data_dir, self.overrides)
        log.configure(min_messages=str(settings["log_min_messages"]))
        for line in lines:
            log.log(line)
        tls = old.tls
        ssl_errors: list[str] = []
        if settings["ssl"]:
            try:
                tls = _build_tls(settings, self.data_dir, is_start=False, interactive=False)
                for notice in tls.notices:
                    log.log(notice.message, detail=notice.detail, hint=notice.hint)
            except TlsConfigError as e:
                for earlier in e.logged_before:
                    log.log(earlier.message, detail=earlier.detail, hint=earlier.hint)
                log.log(e.message, detail=e.detail, hint=e.hint)
                log.log("SSL configuration was not reloaded")
                kept.append("SSL configuration")
                ssl_errors = [x.message for x in e.logged_before] + [e.message]
        else:
            tls = None
        hba, ident = self._load_auth_files(settings, at_start=False, old=old)
        kept += [
            name
            for name, new, before in (("pg_hba.conf", hba, old.hba), ("pg_ident.conf", ident, old.ident))
            if new is before
        ]
        kept += [line for line in lines if "not applied" in line or "contains errors" in line]
        self._record_reload(kept, lines, ssl_errors)
        self.snapshot = replace(old, settings=settings, tls=tls, hba=hba, ident=ident)
        if self.worker is None or self.worker.index == 0:  # once per server
            self.warn_expiry()
        reload_backend = getattr(self.backend, "reload", None)
        if reload_backend is not None:
            reload_backend()
        return kept

    def warn_expiry(self) -> None:
        """ssl_expiry_warning_days: a WARNING for every loaded certificate or CRL close to its end."""
        from pgtls.server.state import expiry_warnings

        try:
            for line in expiry_warnings(self, int(self.snapshot.settings["ssl_expiry_warning_days"])):
                log.emit(
                    "WARNING", line, hint="Replace it and reload (pgtls reload): clients keep connecting."
                )
        except Exception as e:  # noqa: BLE001 - a report must not stop a start or reload
            log.log(f"could not check the certificates' expiry: {e}")

    def _record_reload(self, kept: list[str], conf_lines: list[str], ssl_errors: list[str]) -> None:
        """What the admin console (SHOW RELOAD) and the metrics say about this reload, per file."""
        conf_errors = [line for line in conf_lines if "not applied" in line or "contains errors" in line]
        self.stats.reloaded("postgresql.conf", not conf_errors, conf_errors)
        self.stats.reloaded("SSL configuration", "SSL configuration" not in kept, ssl_errors)
        for name in ("pg_hba.conf", "pg_ident.conf"):
            self.stats.reloaded(
                name,
                name not in kept,
                [f"{name} was not reloaded (see the server log)"] if name in kept else [],
            )

    def log_aspect(self, snap: Snapshot, aspect: str) -> bool:
        """Whether log_connections / log_disconnections covers ``aspect``."""
        s = snap.settings
        if aspect == "disconnections":
            return bool(s["log_disconnections"])
        value = s["log_connections"]
        if isinstance(value, bool):
            return value
        return aspect in _aspects(str(value))

    # --- connections ---
    def _on_connect(self, raw: RawConn) -> None:
        from pgtls.server.connection import Connection

        limit = PREAUTH_CONNECTIONS_PER_SLOT * int(self.snapshot.settings["max_connections"])
        if len(self.connections) - self.registry.local_count() >= limit:
            # Like the postmaster's cap on live children: refuse at once, before reading anything.
            from pgtls.errors import TOO_MANY_CONNECTIONS, PgError
            from pgtls.protocol import messages as m

            raw.write(
                m.error_response(
                    PgError(TOO_MANY_CONNECTIONS, "sorry, too many clients already", severity="FATAL")
                )
            )
            raw.close()
            return
        conn = Connection(self, raw)
        self.connections.add(conn)
        asyncio.get_running_loop().create_task(conn.run())

    def connection_done(self, conn: Any) -> None:
        self.connections.discard(conn)
        if self.shutting_down and not self.connections and self._done is not None:
            self._done.set()

    async def cancel(self, pid: int, key: bytes) -> None:
        if self.worker is not None and self.registry.owner(pid) != self.worker.index:
            await forward_cancel(self.worker.run_dir, self.registry.owner(pid), pid, key)
            return
        entry, key_ok = self.registry.find_for_cancel(pid, key)
        if entry is None or entry.session is None:
            log.log(f"PID {pid} in cancel request did not match any process")
            return
        if not key_ok:  # PostgreSQL's words (postmaster.c / procsignal.c)
            log.log(f"wrong key in cancel request for process {pid}")
            return
        if self.is_async:
            await cast(AsyncSessionBase, entry.session).cancel()
            return
        await asyncio.get_running_loop().run_in_executor(None, cast(Session, entry.session).cancel)

    # --- listening ---
    async def _start_worker(self) -> None:
        """A worker serves the sockets its supervisor made, and its own cancel socket."""
        assert self.worker is not None
        loop = asyncio.get_running_loop()
        self._done = asyncio.Event()
        for fd in self.worker.tcp_fds:
            self._servers.append(
                await loop.create_server(lambda: RawConn(self._on_connect), sock=socket.socket(fileno=fd))
            )
        for fd in self.worker.unix_fds:
            self._servers.append(
                await loop.create_unix_server(
                    lambda: RawConn(self._on_connect), sock=socket.socket(fileno=fd)
                )
            )
        path = cancel_socket(self.worker.run_dir, self.worker.index)
        path.unlink(missing_ok=True)
        self._servers.append(
            await asyncio.start_unix_server(cancel_peer_handler(self._cancel_here), str(path))
        )
        os.chmod(path, 0o600)

    async def _cancel_here(self, pid: int, key: bytes) -> None:
        if self.registry.owner(pid) == self.worker.index:  # type: ignore[union-attr]
            await self.cancel(pid, key)

    async def _start_operations(self) -> None:
        """The metrics listener (metrics_address) and, in a worker, the socket its peers ask (peers.py)."""
        from pgtls.server import admin, peers

        async def here(req: dict[str, Any]) -> dict[str, Any]:
            return await admin.local_op(self, req)

        if self.worker is not None and self.is_async:
            self._servers.append(await peers.serve(self.worker.run_dir, self.worker.index, here))
        address = str(self.snapshot.settings["metrics_address"])
        if address:
            from pgtls.server import metrics

            try:
                host, port = metrics.parse_address(address)
            except ValueError as e:
                raise StartupError(str(e)) from None

            async def gather() -> list[dict[str, Any]]:
                return (await peers.ask_all(self, {"op": "snapshot"}, here))[0]

            try:
                self._servers.append(
                    await metrics.serve(host, port, gather, reuse_port=self.worker is not None)
                )
            except OSError as e:
                raise StartupError(
                    f'could not listen for metrics on "{address}": {e.strerror or e}'
                ) from None

    def kill_client(self, pid: int) -> bool:
        """The admin console's KILL: end a client session of this process as PostgreSQL's
        pg_terminate_backend() does."""
        from pgtls.errors import ADMIN_SHUTDOWN, PgError
        from pgtls.protocol import messages as m

        for conn in list(self.connections):
            if conn.entry is not None and conn.entry.info.pid == pid:
                conn.channel.send(
                    m.error_response(
                        PgError(
                            ADMIN_SHUTDOWN,
                            "terminating connection due to administrator command",
                            severity="FATAL",
                        )
                    )
                )
                conn.channel.close()
                return True
        return False

    async def start(self) -> None:
        await self._start_operations()
        if self.worker is not None:
            await self._start_worker()
            return
        loop = asyncio.get_running_loop()
        s = self.snapshot.settings
        port = int(s["port"])
        self._done = asyncio.Event()
        try:
            tcp = bind_tcp(str(s["listen_addresses"]), port, 1)[0]
        except ListenError as e:
            raise StartupError(str(e)) from None
        unix, self._socket_paths = bind_unix(
            str(s["unix_socket_directories"]), port, int(s["unix_socket_permissions"])
        )
        for sock in tcp:
            self._servers.append(await loop.create_server(lambda: RawConn(self._on_connect), sock=sock))
        for sock in unix:
            self._servers.append(await loop.create_unix_server(lambda: RawConn(self._on_connect), sock=sock))
        if not self._servers:
            raise StartupError("no socket created for listening")

    async def serve_worker(self) -> int:
        """The life of a worker process: serve until the supervisor's signal (or its end)."""
        worker = self.worker
        assert worker is not None
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        self.control = control = Control(worker.control_fd)

        def on_message(msg: dict[str, Any]) -> None:
            state = msg.get("cluster")
            if state is not None and hasattr(self.backend, "cluster_state"):
                self.backend.cluster_state(state == "ready")

        def on_stop(mode: str) -> None:
            self._stop_mode = mode
            stop.set()

        def supervisor_gone() -> None:
            if not stop.is_set():
                on_stop("fast")

        def reload_and_report() -> None:
            try:
                kept = self.reload()
            except Exception as e:  # noqa: BLE001 - a reload must never take the worker down
                log.log(f"configuration reload failed: {e}")
                kept = [f"everything ({e})"]
            answer = process_answer(worker.index, kept, self.stats)
            loop.call_soon_threadsafe(
                control.send,
                {
                    "reload": kept,
                    "errors": answer["errors"],
                },
            )

        handle_signals(loop, lambda: loop.run_in_executor(self.reload_executor, reload_and_report), on_stop)
        await self.control.open(on_message, supervisor_gone)
        await cast(AsyncBackend, self.backend).start()
        await self.start()
        self.control.send({"ready": True})
        await stop.wait()
        await self.shutdown(self._stop_mode)
        return 0

    async def serve_forever(self) -> int:
        if self.worker is not None:
            return await self.serve_worker()
        self.pidfile = PidFile(self.data_dir)
        try:
            self.pidfile.acquire()
        except RuntimeError as e:
            raise StartupError(str(e.args[0]), hint=e.args[1] if len(e.args) > 1 else None) from None
        try:
            if self.is_async:
                from pgtls.backends.relay.cluster import ClusterError

                try:
                    await cast(AsyncBackend, self.backend).start()
                except ClusterError as e:
                    raise StartupError(str(e)) from None
            try:
                await self.start()
            except StartupError:
                if self.is_async:  # the cluster started: stop it, or its log reader keeps the process alive
                    await cast(AsyncBackend, self.backend).stop("fast")
                raise
            s = self.snapshot.settings
            self.pidfile.write(
                port=int(s["port"]),
                socket_dir=str(s["unix_socket_directories"]).split(",")[0].strip(),
                listen=str(s["listen_addresses"]),
                status="ready",
            )
            loop = asyncio.get_running_loop()
            stop = asyncio.Event()

            def on_stop(mode: str) -> None:
                self._stop_mode = mode
                stop.set()

            # Reading files, loading keys and running ssl_passphrase_command never happen on the loop; a
            # one-thread pool also keeps reloads in order.
            handle_signals(
                loop, lambda: loop.run_in_executor(self.reload_executor, self._safe_reload), on_stop
            )
            log.log("database system is ready to accept connections")
            if self.on_ready is not None:
                self.on_ready()
            await stop.wait()
            await self.shutdown(self._stop_mode)
            return 0
        finally:
            for p in self._socket_paths:
                try:
                    p.unlink()
                except OSError:
                    pass
            self.pidfile.release()

    def _safe_reload(self) -> None:
        try:
            kept = self.reload()
        except Exception as e:  # noqa: BLE001 - a reload must never take the server down
            log.log(f"configuration reload failed: {e}")
            kept = [f"everything ({e})"]
        try:
            self._reload_seq += 1
            write_answer(
                ensure_run_dir(self.data_dir), self._reload_seq, [process_answer(None, kept, self.stats)]
            )
        except OSError as e:
            log.log(f"could not write the reload answer: {e}")

    async def shutdown(self, mode: str) -> None:
        if self.worker is None:  # the supervisor says it for a multi-process server
            log.log(shutdown_request(mode))
        self.shutting_down = True
        for srv in self._servers:
            srv.close()
        if self.is_async:
            await self._shutdown_relay(mode)
        elif mode in ("fast", "immediate"):
            self.shutting_down_fast = True
            from pgtls.errors import ADMIN_SHUTDOWN, PgError
            from pgtls.protocol import messages as m

            for conn in list(self.connections):
                if mode == "fast" and conn.entry is not None:
                    conn.channel.send(
                        m.error_response(
                            PgError(
                                ADMIN_SHUTDOWN,
                                "terminating connection due to administrator command",
                                severity="FATAL",
                            )
                        )
                    )
                    if conn.entry.session is not None:
                        try:
                            conn.entry.session.cancel()
                        except Exception:  # noqa: BLE001
                            pass
                conn.channel.close()
        if self.connections and self._done is not None:
            try:
                await asyncio.wait_for(self._done.wait(), timeout=None if mode == "smart" else 10)
            except TimeoutError:
                log.log(f"{len(self.connections)} connections did not end in time")
        if self.is_async:
            await cast(AsyncBackend, self.backend).stop(mode)
        else:
            cast(Backend, self.backend).close()
        self.close_executors()
        if self.worker is None:
            log.log("database system is shut down")

    def close_executors(self) -> None:
        for ex in (self.db_executor, self.reload_executor):
            ex.shutdown(wait=False, cancel_futures=True)
        self.tls_offload.close()
        self.preauth_offload.close()

    async def _shutdown_relay(self, mode: str) -> None:
        """Relayed sessions end the way PostgreSQL ends them: its backends send the FATAL (57P01 on a
        fast shutdown), which the relay forwards as is.  Clients still logging in are closed."""
        if mode == "smart":
            return
        self.shutting_down_fast = True
        for conn in list(self.connections):
            if conn.entry is None or conn.entry.session is None or mode == "immediate":
                conn.channel.close()
        await cast(AsyncBackend, self.backend).stop(mode)


@functools.lru_cache(maxsize=16)
def _aspects(value: str) -> frozenset[str]:
    from pgtls.config.guc import log_connections_aspects

    return frozenset(log_connections_aspects(value))


def _path(settings: Settings, name: str, default: Path) -> Path:
    try:
        v = settings[name]
    except Exception:  # noqa: BLE001
        return default
    if not v:
        return default
    p = Path(str(v))
    return p if p.is_absolute() else settings.data_dir / p


def _build_tls(settings: Settings, data_dir: Path, *, is_start: bool, interactive: bool) -> TlsConfig:
    """postgresql.conf's TLS configuration, or with ssl_sni the hosts file's (pgtls.tls.sni)."""
    from pgtls.tls.sni import build_server_tls

    return build_server_tls(
        _ssl_view(settings),
        data_dir,
        is_start=is_start,
        interactive=interactive,
        sni=bool(settings["ssl_sni"]),
        hosts_file=str(settings["hosts_file"]),
        log_no_fallback=lambda: log.log("no hostname provided in callback, and no fallback configured"),
    )


def _ssl_view(settings: Settings) -> dict[str, object]:
    """The ssl_* settings as a plain mapping for the tls layer."""
    return {n: settings[n] for n in settings.names() if n.startswith("ssl")}
