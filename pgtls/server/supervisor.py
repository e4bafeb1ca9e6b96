"""The supervisor of a multi-process server (``workers`` > 1, relay backends).

It validates the configuration as a one-process server would (and refuses to start on the same errors), owns
the pid file and the managed PostgreSQL, makes the listening sockets (:mod:`pgtls.server.listeners`), starts
the workers (:mod:`pgtls.server.worker`) and:

* says "ready to accept connections" only when the cluster and every worker are;
* restarts a worker that dies (with backoff), keeping its sockets open meanwhile;
* passes SIGHUP on to every worker and to the cluster, and logs what each worker kept from its old
  configuration (Table 19.2: each worker keeps its old TLS, hba or ident configuration when the new one
  fails);
* tells the workers when the cluster goes down and comes back;
* on smart/fast/immediate shutdown signals the workers (and, for fast and immediate, stops the cluster at
  once, whose backends end the relayed sessions with PostgreSQL's own FATAL), then stops the cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from pgtls import log
from pgtls.osproc import SHUTDOWN_SIGNALS
from pgtls.server.listeners import ListenError, Listeners, bind_tcp, bind_unix
from pgtls.server.pidfile import PidFile
from pgtls.server.reloadanswer import read_answer, write_answer
from pgtls.server.shared import MAX_CONTROL_LINE, SharedState, prepare_run_dir
from pgtls.server.workerlink import WORKER_ENV, WorkerRole, control_messages

MAX_WORKERS = 64
READY_TIMEOUT = 120.0  # seconds for every worker to report ready at start
RESTART_BACKOFF = (0.1, 0.5, 1.0, 2.0, 5.0)
STABLE_AFTER = 30.0  # a worker that ran this long restarts without backoff
FAST_STOP_TIMEOUT = 15.0  # then SIGKILL


def worker_count(setting: int) -> int:
    """``workers``: 0 means one per core this process may run on."""
    if setting > 0:
        return min(setting, MAX_WORKERS)
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_WORKERS))


@dataclass
class _Worker:
    index: int
    proc: subprocess.Popen[bytes] | None = None
    control: socket.socket | None = None
    writer: asyncio.StreamWriter | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    restarts: int = 0
    reload_pending: bool = False  # a SIGHUP came while it was starting: sent once it is ready


class Supervisor:
    def __init__(self, server: Any, count: int) -> None:
        self.server = server  # a Server made in this process: the validated configuration, the cluster
        self.count = count
        self.data_dir = server.data_dir
        self.workers = [_Worker(i) for i in range(count)]
        self.listeners = Listeners()
        self.stopping = False
        self.on_ready: Any = None
        self.started = False
        self._failed = asyncio.Event()  # a worker died before all were ready
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reload_seq = int((read_answer(self.data_dir) or {}).get("seq", 0))
        self._reload_waiting: set[int] = set()
        self._reload_answers: list[dict[str, Any]] = []

    # --- start ------------------------------------------------------------------------------
    async def run(self) -> int:
        from pgtls.server.server import StartupError

        pidfile = PidFile(self.data_dir)
        try:
            pidfile.acquire()
        except RuntimeError as e:
            raise StartupError(str(e.args[0]), hint=e.args[1] if len(e.args) > 1 else None) from None
        try:
            return await self._run(pidfile)
        except StartupError:
            # The cluster may be running: stop it (its log reader would otherwise keep the process alive).
            await self.server.backend.stop("fast")
            raise
        finally:
            self.listeners.close()
            pidfile.release()

    async def _run(self, pidfile: PidFile) -> int:
        from pgtls.backends.relay.cluster import ClusterError
        from pgtls.server.server import StartupError, handle_signals

        backend = self.server.backend
        cluster = getattr(backend, "cluster", None)
        if cluster is not None:
            cluster.on_ready = lambda: self._tell_all({"cluster": "ready"})
            restarted = cluster.on_restart

            def on_restart() -> None:
                self._tell_all({"cluster": "down"})
                if restarted is not None:
                    restarted()

            cluster.on_restart = on_restart
            try:
                await backend.start()
            except ClusterError as e:
                raise StartupError(str(e)) from None
        s = self.server.snapshot.settings
        port = int(s["port"])
        try:
            self.listeners.tcp = bind_tcp(str(s["listen_addresses"]), port, self.count)
        except ListenError as e:
            raise StartupError(str(e)) from None
        self.listeners.unix, self.listeners.unix_paths = bind_unix(
            str(s["unix_socket_directories"]), port, int(s["unix_socket_permissions"])
        )
        if not any(self.listeners.tcp) and not self.listeners.unix:
            raise StartupError("no socket created for listening")
        self.run_dir = prepare_run_dir(self.data_dir)
        self.shared = SharedState(self.run_dir, self.count, -1, create=True)
        for w in self.workers:
            self._spawn(w)
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        mode = {"value": "smart"}

        def on_reload() -> None:
            log.log("received SIGHUP, passing it to the workers")
            self._reload_seq += 1
            self._reload_waiting = {w.index for w in self.workers}
            self._reload_answers = []
            if cluster is not None:
                cluster.reload()
            for w in self.workers:
                if w.ready.is_set():
                    self._signal(w, signal.SIGHUP)
                else:  # still importing: SIGHUP's default action would end it
                    w.reload_pending = True

        def on_stop(how: str) -> None:
            mode["value"] = how
            stop.set()

        handle_signals(loop, on_reload, on_stop)
        ready = asyncio.gather(*(w.ready.wait() for w in self.workers))
        waiting = loop.create_task(stop.wait())
        failed = loop.create_task(self._failed.wait())
        watched: list[asyncio.Future[Any]] = [ready, waiting, failed]
        done, _ = await asyncio.wait(watched, timeout=READY_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        failed.cancel()
        if ready not in done:
            ready.cancel()
            if not stop.is_set():
                await self._stop_all("fast")
                raise StartupError("the worker processes did not start; see their log lines above")
        else:
            self.started = True
            pidfile.write(
                port=port,
                socket_dir=str(s["unix_socket_directories"]).split(",")[0].strip(),
                listen=str(s["listen_addresses"]),
                status="ready",
            )
            log.log(f"started {self.count} worker processes")
            log.log("database system is ready to accept connections")
            if self.on_ready is not None:
                self.on_ready()
        await waiting
        await self._stop_all(mode["value"])
        return 0

    # --- workers ------------------------------------------------------------------------------
    def _spawn(self, w: _Worker) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        tcp, unix = self.listeners.fds_for(w.index)
        role = WorkerRole(
            w.index,
            self.count,
            theirs.fileno(),
            tuple(tcp),
            tuple(unix),
            self.run_dir,
            self.server.overrides,
            w.restarts,
        )
        env = dict(os.environ)
        env[WORKER_ENV] = role.to_env()
        w.ready = asyncio.Event()
        try:
            w.proc = subprocess.Popen(
                [sys.executable, "-m", "pgtls.server.worker", "-D", str(self.data_dir)],
                stdin=subprocess.DEVNULL,
                env=env,
                pass_fds=(theirs.fileno(), *tcp, *unix),
            )
        finally:
            theirs.close()
        w.control = ours
        log.log(f"worker process {w.index} (PID {w.proc.pid}) started")
        task = asyncio.get_running_loop().create_task(self._watch(w, w.proc, ours))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _watch(self, w: _Worker, proc: subprocess.Popen[bytes], control: socket.socket) -> None:
        started = time.monotonic()
        reader, w.writer = await asyncio.open_unix_connection(sock=control, limit=MAX_CONTROL_LINE)
        async for msg in control_messages(reader):
            self._from_worker(w, proc, msg)
        code = await asyncio.to_thread(proc.wait)
        w.writer.close()
        w.writer = None
        self.shared.set_sessions(0, w.index)  # its sessions died with it
        if w.index in self._reload_waiting:  # it starts again with the new configuration files
            self._reload_reported(w, [f"worker process {w.index} exited during the reload"], {})
        if self.stopping:
            return
        if not self.started:
            log.log(f"worker process {w.index} (PID {proc.pid}) exited with exit code {code} while starting")
            self._failed.set()
            return
        attempt = 0 if time.monotonic() - started > STABLE_AFTER else w.restarts
        delay = RESTART_BACKOFF[min(attempt, len(RESTART_BACKOFF) - 1)]
        log.log(
            f"worker process {w.index} (PID {proc.pid}) exited with exit code {code}; restarting it in {delay:g} s"
        )
        w.restarts += 1
        await asyncio.sleep(delay)
        if not self.stopping:
            self._spawn(w)

    def _from_worker(self, w: _Worker, proc: subprocess.Popen[bytes], msg: dict[str, Any]) -> None:
        if msg.get("ready"):
            if w.ready.is_set() or w.restarts:
                log.log(f"worker process {w.index} (PID {proc.pid}) is serving again")
            w.ready.set()
            if w.reload_pending:
                w.reload_pending = False
                self._signal(w, signal.SIGHUP)
        kept = msg.get("reload")
        if isinstance(kept, list):
            self._reload_reported(w, kept, msg.get("errors"))
            if kept:
                log.log(
                    f"worker process {w.index} (PID {proc.pid}) kept its old configuration for: "
                    + "; ".join(str(k) for k in kept)
                )
            else:
                log.log(f"worker process {w.index} (PID {proc.pid}) reloaded its configuration")

    def _reload_reported(self, w: _Worker, kept: list[Any], errors: Any) -> None:
        """A worker's answer to the current reload; the last one writes the server's (reloadanswer.py)."""
        if w.index not in self._reload_waiting:
            return
        self._reload_waiting.discard(w.index)
        self._reload_answers.append(
            {
                "worker": w.index,
                "kept": [str(k) for k in kept],
                "errors": errors if isinstance(errors, dict) else {},
            }
        )
        if not self._reload_waiting:
            try:
                write_answer(
                    self.run_dir, self._reload_seq, sorted(self._reload_answers, key=lambda a: a["worker"])
                )
            except OSError as e:
                log.log(f"could not write the reload answer: {e}")

    def _tell_all(self, msg: dict[str, Any]) -> None:
        data = json.dumps(msg).encode() + b"\n"
        for w in self.workers:
            if w.writer is not None and not w.writer.is_closing():
                w.writer.write(data)

    @staticmethod
    def _signal(w: _Worker, sig: int) -> None:
        if w.proc is not None and w.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                w.proc.send_signal(sig)

    # --- stop ---------------------------------------------------------------------------------
    async def _stop_all(self, mode: str) -> None:
        from pgtls.server.server import shutdown_request

        log.log(shutdown_request(mode))
        self.stopping = True
        for w in self.workers:
            self._signal(w, SHUTDOWN_SIGNALS[mode])
        backend = self.server.backend
        stopping_cluster = None
        if mode != "smart":  # the cluster's backends end the relayed sessions with PostgreSQL's FATAL
            stopping_cluster = asyncio.get_running_loop().create_task(backend.stop(mode))
        procs = [w.proc for w in self.workers if w.proc is not None]
        waits = [asyncio.to_thread(p.wait) for p in procs]
        try:
            await asyncio.wait_for(asyncio.gather(*waits), None if mode == "smart" else FAST_STOP_TIMEOUT)
        except TimeoutError:
            for p in procs:
                if p.returncode is None:
                    log.log(f"worker process PID {p.pid} did not stop in time; killing it")
                    with contextlib.suppress(ProcessLookupError):
                        p.kill()
            await asyncio.gather(*(asyncio.to_thread(p.wait) for p in procs))
        if stopping_cluster is not None:
            await stopping_cluster
        else:
            await backend.stop(mode)
        self.server.close_executors()
        log.log("database system is shut down")
