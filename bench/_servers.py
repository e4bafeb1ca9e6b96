"""Helpers for the benchmarks: process-tree CPU accounting, a PgBouncer harness, pgtls with a
launcher, and (run as a script) a multi-thread cProfile launcher for ``pgtls serve``.

Run as ``python bench/_servers.py --profile-out FILE -- serve -D DIR`` it starts pgtls in-process with
one ``cProfile.Profile`` per thread (the main event-loop thread and every worker thread: pgtls does its
TLS handshakes and its database work in thread pools, which ``python -m cProfile`` would not see),
timed with ``time.thread_time`` so the figures are CPU time, not wall time.  SIGUSR1 clears all
profiles (to drop start-up and warm-up); on exit (SIGINT -> fast shutdown) the per-thread profiles
are merged into FILE (pstats format) and a per-thread-group CPU summary is written to FILE.threads.json.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.pgserver import _demote, free_port, give_to_server_user, shared_tmpdir  # noqa: E402
from tests.pgtlsserver import READY, PgtlsServer  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- CPU accounting ---------------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, list[str]] | None:
    """(ppid, fields-after-comm) of /proc/<pid>/stat, or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    rest = raw[raw.rindex(")") + 2 :].split()  # comm may contain spaces and parentheses
    return int(rest[1]), rest


def _ticks(rest: list[str], children: bool) -> int:
    # Fields after comm: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
    own = int(rest[11]) + int(rest[12])
    return own + (int(rest[13]) + int(rest[14]) if children else 0)


def tree_cpu_seconds(pid: int) -> float:
    """Cumulative CPU (user+system) of a process and all its descendants, dead or alive.

    = the process's own utime+stime + cutime+cstime (children it has reaped) + the same for every
    live descendant.  For PostgreSQL that is the postmaster, every backend that has exited and been
    reaped, and the live auxiliary processes; for a single-process server it is utime+stime (all threads).
    """
    parents: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        got = _stat(int(entry))
        if got is None:
            continue
        ppid, rest = got
        stats[int(entry)] = rest
        parents.setdefault(ppid, []).append(int(entry))
    if pid not in stats:
        raise RuntimeError(f"process {pid} is gone")
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        if p in stats:
            total += _ticks(stats[p], children=True)
        todo.extend(parents.get(p, []))
    return total / CLK_TCK


def live_children(pid: int) -> int:
    n = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            got = _stat(int(entry))
            if got is not None and got[0] == pid:
                n += 1
    return n


# --- PgBouncer ----------------------------------------------------------------------------------


def pgbouncer_binary() -> str | None:
    for cand in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"):
        if os.access(cand, os.X_OK):
            return cand
    from shutil import which

    return which("pgbouncer")


class PgBouncer:
    """PgBouncer on 127.0.0.1 with client TLS required, pooling (session mode) to a PostgreSQL's
    Unix socket; runs as the postgres OS user when started by root (pgbouncer refuses root)."""

    def __init__(self, *, upstream_sockdir: Path, upstream_port: int, cert: str, key: str,
                 auth_type: str = "trust", user: str = "postgres", pool_size: int = 20) -> None:
        self.base = shared_tmpdir("pgtls-bouncer-")
        self.port = free_port()
        self.logfile = self.base / "pgbouncer.log"
        self.proc: subprocess.Popen[bytes] | None = None
        (self.base / "server.crt").write_bytes(Path(cert).read_bytes())
        (self.base / "server.key").write_bytes(Path(key).read_bytes())
        (self.base / "server.key").chmod(0o600)
        (self.base / "userlist.txt").write_text(f'"{user}" ""\n')
        (self.base / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={upstream_sockdir} port={upstream_port}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            f"unix_socket_dir = {self.base}\n"
            f"auth_type = {auth_type}\n"
            f"auth_file = {self.base / 'userlist.txt'}\n"
            "pool_mode = session\n"
            f"default_pool_size = {pool_size}\n"
            "max_client_conn = 200\n"
            f"logfile = {self.logfile}\n"
            f"pidfile = {self.base / 'pgbouncer.pid'}\n"
            "log_connections = 0\nlog_disconnections = 0\nlog_stats = 0\n"
            "client_tls_sslmode = require\n"
            f"client_tls_key_file = {self.base / 'server.key'}\n"
            f"client_tls_cert_file = {self.base / 'server.crt'}\n"
            "server_tls_sslmode = disable\n"
            "ignore_startup_parameters = extra_float_digits\n"
        )
        give_to_server_user(self.base)

    def start(self, timeout: float = 15) -> None:
        binary = pgbouncer_binary()
        if binary is None:
            raise RuntimeError("pgbouncer is not installed (make bench installs it: scripts/install-system-deps.sh --bench)")
        out = open(self.base / "stdout.log", "ab")
        self.proc = subprocess.Popen([binary, str(self.base / "pgbouncer.ini")], stdout=out, stderr=out,
                                     stdin=subprocess.DEVNULL, preexec_fn=_demote)
        deadline = time.monotonic() + timeout
        import socket

        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pgbouncer exited ({self.proc.returncode}):\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"pgbouncer did not start in time:\n{self.log()}")

    def log(self) -> str:
        text = ""
        for f in (self.logfile, self.base / "stdout.log"):
            try:
                text += f.read_text(errors="replace")
            except FileNotFoundError:
                pass
        return text

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # "safe shutdown"; SIGTERM is immediate in 1.18
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        import shutil

        shutil.rmtree(self.base, ignore_errors=True)


# --- pgtls with an optional launcher (the profiler below) -------------------------------------


class BenchPgtls(PgtlsServer):
    """PgtlsServer whose ``serve`` command can be run through this module's profiler."""

    def __init__(self, profile_out: Path | None = None) -> None:
        super().__init__()
        self.profile_out = profile_out

    def start(self, *, check: bool = True, args: list[str] | None = None, stdin: int | None = None,
              timeout: float = 60) -> bool:
        if self.profile_out is None:
            return super().start(check=check, args=args, stdin=stdin, timeout=timeout)
        self._log_offset = self.logfile.stat().st_size if self.logfile.exists() else 0
        logf = open(self.logfile, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--profile-out", str(self.profile_out), "--",
             "serve", "-D", str(self.datadir), *(args or [])],
            stdout=logf, stderr=logf, stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if READY in self.log():
                return True
            if self.proc.poll() is not None:
                raise RuntimeError(f"pgtls (profiled) failed to start (exit {self.proc.returncode}):\n{self.log()}")
            time.sleep(0.05)
        raise RuntimeError(f"pgtls (profiled) did not start in time:\n{self.log()}")

    def reset_profile(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGUSR1)
        time.sleep(0.2)


# --- the profiler launcher ----------------------------------------------------------------------


def _profile_main(argv: list[str]) -> int:
    import cProfile
    import marshal
    import threading

    out = Path(argv[argv.index("--profile-out") + 1])
    pgtls_args = argv[argv.index("--") + 1 :]
    profilers: list[tuple[str, cProfile.Profile]] = []
    lock = threading.Lock()

    def new_thread_hook(frame: object, event: str, arg: object) -> None:
        # Called once per new thread (threading.setprofile): swap in a C profiler for this thread.
        p = cProfile.Profile(time.thread_time)
        with lock:
            profilers.append((threading.current_thread().name, p))
        p.enable()

    def reset(signum: int, frame: object) -> None:
        with lock:
            for _, p in profilers:
                p.clear()

    threading.setprofile(new_thread_hook)
    signal.signal(signal.SIGUSR1, reset)
    main_prof = cProfile.Profile(time.thread_time)
    profilers.append(("MainThread", main_prof))

    from pgtls.cli import main

    rc = 1
    main_prof.enable()
    try:
        rc = main(pgtls_args)
    except SystemExit as e:
        rc = int(e.code or 0) if not isinstance(e.code, str) else 1
    finally:
        main_prof.disable()
        threading.setprofile(None)  # type: ignore[arg-type]
        merged: dict = {}
        groups: dict[str, float] = {}
        with lock:
            for name, p in profilers:
                p.snapshot_stats()  # no disable(): that would act on *this* thread's hook
                group = name.rsplit("_", 1)[0] if name.startswith("pgtls-") else name
                for func, (cc, nc, tt, ct, callers) in p.stats.items():  # type: ignore[attr-defined]
                    groups[group] = groups.get(group, 0.0) + tt
                    if func in merged:
                        occ, onc, ott, oct_, ocallers = merged[func]
                        for k, v in callers.items():
                            if k in ocallers:
                                ocallers[k] = tuple(a + b for a, b in zip(ocallers[k], v, strict=False))
                            else:
                                ocallers[k] = v
                        merged[func] = (occ + cc, onc + nc, ott + tt, oct_ + ct, ocallers)
                    else:
                        merged[func] = (cc, nc, tt, ct, dict(callers))
        with open(out, "wb") as f:
            marshal.dump(merged, f)
        Path(str(out) + ".threads.json").write_text(json.dumps(
            {"cpu_seconds_by_thread_group": groups, "threads": len(profilers)}, indent=2))
    return rc


if __name__ == "__main__":
    sys.exit(_profile_main(sys.argv[1:]))
