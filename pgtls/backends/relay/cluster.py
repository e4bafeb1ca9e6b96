"""The managed PostgreSQL: a private cluster inside pgtls's data directory, run as a supervised child.

Layout inside the data directory ``DIR``:

* ``DIR/cluster/`` — the cluster's own data directory, made by PostgreSQL's
  initdb.  Its ``postgresql.conf`` is *the* place for PostgreSQL's own
  parameters (shared_buffers, work_mem, ...): read at start, and again when
  pgtls reloads (pgtls passes SIGHUP on).
* ``DIR/cluster-socket/`` — the only way into the cluster: a Unix socket in a
  directory that only the cluster's OS user can enter (mode 0700).  The
  cluster listens on no TCP port; its ``pg_hba.conf`` trusts that socket and
  nothing else.  pgtls stays the only network door.

What pgtls forces comes as ``-c`` options on the postmaster's command line,
which outrank the configuration file (``listen_addresses``,
``unix_socket_directories``, ``port``, ``ssl``, ``hba_file``).

The supervisor starts the postmaster, waits until its ``postmaster.pid``
says ``ready`` (as ``pg_ctl start -w`` does), restarts it with backoff when it
dies, and maps pgtls's shutdown modes to PostgreSQL's signals.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import hashlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypedDict

from pgtls import log
from pgtls.backends.relay.pgbin import OsUser, PgBin, cluster_user, make_reachable, programs_readable
from pgtls.osproc import SHUTDOWN_SIGNALS, process_alive

CLUSTER_DIR = "cluster"
SOCKET_DIR = "cluster-socket"
CLUSTER_PORT = 5432  # only names the socket file; no TCP port is opened
ADMIN_FILE = (
    Path("global") / "pgtls_cluster_admin"
)  # the cluster's bootstrap superuser (pgtls's own connection)
READY_TIMEOUT = 60.0  # as pg_ctl -w
STOP_TIMEOUT = 60.0
RESTART_BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0, 10.0)
STABLE_AFTER = 30.0  # a postmaster that lived this long resets the backoff
MAX_SOCKET_PATH = 107  # sizeof(sun_path) - 1

CLUSTER_HBA = """\
# pg_hba.conf of the PostgreSQL cluster that pgtls manages.
#
# Clients never reach this cluster directly: it listens on no TCP port, only on
# a Unix socket in a directory that only its OS user can enter, and pgtls is
# the only program that connects there.  Who may log in, with which method and
# certificate, is decided by pgtls's own pg_hba.conf in the directory above.
local   all   all   trust
"""

CONF_NOTE = """
# ---------------------------------------------------------------------------
# Managed by pgtls
# ---------------------------------------------------------------------------
# This is the configuration of the PostgreSQL cluster behind pgtls: set
# PostgreSQL's own parameters (shared_buffers, work_mem, max_connections, ...)
# here.  It is read when pgtls starts the cluster and again on `pgtls reload`.
# pgtls starts PostgreSQL with these on the command line, which win over this
# file: listen_addresses = '' (no TCP), unix_socket_directories (a private
# directory), port, ssl = off, hba_file.  Connection security, TLS and client
# authentication are pgtls's, in ../postgresql.conf and ../pg_hba.conf.
log_line_prefix = '%m [%p] cluster: '
"""


# How long a postmaster that exited at start may take to have its last log lines passed on.
LOG_DRAIN_TIMEOUT = 5.0


class ClusterError(Exception):
    pass


def pgdata_of(data_dir: Path) -> Path:
    return data_dir / CLUSTER_DIR


def socket_dir_of(data_dir: Path) -> Path:
    """The private socket directory (in DIR, or under the temp directory when DIR's path is too long)."""
    d = data_dir.resolve() / SOCKET_DIR
    if len(str(d / f".s.PGSQL.{CLUSTER_PORT}.lock")) <= MAX_SOCKET_PATH:
        return d
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"pgtls-{digest}"


def admin_user(data_dir: Path) -> str:
    try:
        return (data_dir / ADMIN_FILE).read_text().strip()
    except OSError:
        raise ClusterError(
            f'could not read "{data_dir / ADMIN_FILE}": the managed cluster is not set up'
        ) from None


def has_cluster(data_dir: Path) -> bool:
    return (pgdata_of(data_dir) / "PG_VERSION").exists()


def _prepare_socket_dir(sockdir: Path, user: OsUser) -> None:
    sockdir.mkdir(mode=0o700, exist_ok=True)
    os.chmod(sockdir, 0o700)
    if not user.is_self:
        os.chown(sockdir, user.uid, user.gid)


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and not k.startswith("LC_")}
    env["LANG"] = "C.UTF-8"
    return env


def init_cluster(data_dir: Path, superuser: str, pgbin: PgBin) -> list[str]:
    """PostgreSQL's initdb into DIR/cluster, with the superuser ``superuser``; pgtls's notes back."""
    user = cluster_user(create=True)
    pgdata = pgdata_of(data_dir)
    if not user.is_self:
        programs_readable(pgbin, user)
        make_reachable(data_dir, user)
    pgdata.mkdir(mode=0o700)
    if not user.is_self:
        os.chown(pgdata, user.uid, user.gid)
    args = [
        str(pgbin.tool("initdb")),
        "-D",
        str(pgdata),
        "-U",
        superuser,
        "--auth=trust",
        "-E",
        "UTF8",
        "--no-instructions",
    ]
    if pgbin.major >= 17:
        args += ["--locale-provider=builtin", "--builtin-locale=C.UTF-8", "--locale=C.UTF-8"]
    else:
        args += ["--locale=C.UTF-8"]
    p = subprocess.run(args, capture_output=True, text=True, env=_child_env(), timeout=300, **_as_user(user))
    if p.returncode != 0:
        raise ClusterError(f"initdb failed:\n{p.stdout}{p.stderr}")
    (pgdata / "pg_hba.conf").write_text(CLUSTER_HBA)
    with open(pgdata / "postgresql.conf", "a") as f:
        f.write(CONF_NOTE)
    (data_dir / ADMIN_FILE).parent.mkdir(mode=0o700, exist_ok=True)
    (data_dir / ADMIN_FILE).write_text(superuser + "\n")
    os.chmod(data_dir / ADMIN_FILE, 0o600)
    return [
        f'created the managed PostgreSQL {pgbin.version} cluster in "{pgdata}" (superuser "{superuser}", '
        f'OS user "{user.name}", programs in {pgbin.bindir})'
    ]


def copy_cluster(template: Path, data_dir: Path, superuser: str) -> list[str]:
    """A copy of a stopped cluster made by :func:`init_cluster` (ownership and modes kept)."""
    user = cluster_user(create=True)
    if not user.is_self:
        make_reachable(data_dir, user)
    pgdata = pgdata_of(data_dir)
    p = subprocess.run(["cp", "-a", str(template), str(pgdata)], capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise ClusterError(f"could not copy the cluster template: {p.stderr.strip()}")
    with contextlib.suppress(FileNotFoundError):
        (pgdata / "postmaster.pid").unlink()
    (data_dir / ADMIN_FILE).parent.mkdir(mode=0o700, exist_ok=True)
    (data_dir / ADMIN_FILE).write_text(superuser + "\n")
    os.chmod(data_dir / ADMIN_FILE, 0o600)
    return [f'copied the managed PostgreSQL cluster from "{template}"']


class _UserArgs(TypedDict, total=False):
    """Popen's arguments that change the user."""

    user: int
    group: int
    extra_groups: list[int]


def _as_user(user: OsUser) -> _UserArgs:
    if user.is_self:
        return {}
    return {"user": user.uid, "group": user.gid, "extra_groups": []}


_PR_SET_PDEATHSIG = 1


def _pdeathsig() -> Callable[[], None]:
    """A preexec function: the postmaster gets a fast-shutdown signal if pgtls dies without stopping it."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return lambda: None

    def set_it() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGINT), 0, 0, 0)

    return set_it


def postmaster_args(pgbin: PgBin, data_dir: Path) -> list[str]:
    pgdata = pgdata_of(data_dir)
    return [
        str(pgbin.tool("postgres")),
        "-D",
        str(pgdata),
        "-c",
        "listen_addresses=",
        "-c",
        f"unix_socket_directories={socket_dir_of(data_dir)}",
        "-c",
        f"port={CLUSTER_PORT}",
        "-c",
        "unix_socket_permissions=0700",
        "-c",
        "ssl=off",
        "-c",
        f"hba_file={pgdata / 'pg_hba.conf'}",
    ]


def _read_pidfile(pgdata: Path) -> list[str]:
    try:
        return (pgdata / "postmaster.pid").read_text().splitlines()
    except OSError:
        return []


def stop_orphan(data_dir: Path) -> int | None:
    """A postmaster an earlier pgtls left running (it was killed): fast shutdown, wait.  Its pid, or None."""
    lines = _read_pidfile(pgdata_of(data_dir))
    if not lines or not lines[0].strip().isdigit():
        return None
    pid = int(lines[0])
    if pid == os.getpid() or not process_alive(pid):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    if b"postgres" not in cmdline:
        return None
    log.log(f"stopping the PostgreSQL (PID {pid}) an earlier pgtls left running")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + STOP_TIMEOUT
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if process_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGQUIT)
    return pid


class ManagedCluster:
    """Start, supervise, reload and stop the cluster (from the event loop)."""

    def __init__(self, data_dir: Path, pgbin: PgBin) -> None:
        self.data_dir = data_dir
        self.pgbin = pgbin
        self.pgdata = pgdata_of(data_dir)
        self.socket_dir = socket_dir_of(data_dir)
        self.socket_path = self.socket_dir / f".s.PGSQL.{CLUSTER_PORT}"
        self.user = cluster_user(create=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready = False
        self.stopping = False
        self.restarts = 0
        self._supervisor: asyncio.Task[None] | None = None
        self._log_task: asyncio.Task[None] | None = None
        self._ready_event = asyncio.Event()
        self.on_restart: Callable[[], None] | None = None  # the relay drops its pooled sessions
        self.on_ready: Callable[[], None] | None = None  # a supervisor tells its workers

    async def start(self) -> None:
        """Start and wait until ready; raise ClusterError if it cannot start."""
        await asyncio.get_running_loop().run_in_executor(None, stop_orphan, self.data_dir)
        _prepare_socket_dir(self.socket_dir, self.user)
        if not self.user.is_self:
            make_reachable(self.data_dir, self.user)
            programs_readable(self.pgbin, self.user)
        await self._spawn()
        if not await self._wait_ready():
            code = self.proc.returncode if self.proc is not None else None
            if code is not None and self._log_task is not None:
                # Its last lines (why it stopped) are passed on before pgtls says to look above.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._log_task), LOG_DRAIN_TIMEOUT)
            raise ClusterError(
                f"the managed PostgreSQL did not start (exit code {code}); see its log lines above"
            )
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise())

    async def _spawn(self) -> subprocess.Popen[bytes]:
        """The postmaster as a plain child process (not asyncio's: its subprocess support differs between
        event loops, and uvloop's cannot change the user), watched and read by two threads."""
        self.ready = False
        self._ready_event.clear()
        proc = self.proc = subprocess.Popen(
            postmaster_args(self.pgbin, self.data_dir),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=_child_env(),
            start_new_session=True,
            preexec_fn=_pdeathsig(),
            **_as_user(self.user),
        )
        self._log_task = asyncio.ensure_future(asyncio.to_thread(self._pass_log, proc))
        return proc

    @staticmethod
    def _pass_log(proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.passthrough(line.decode("utf-8", "replace"))

    async def _wait(self, proc: subprocess.Popen[bytes], timeout: float | None = None) -> int:
        return await asyncio.wait_for(asyncio.to_thread(proc.wait), timeout)

    async def _wait_ready(self) -> bool:
        proc = self.proc
        assert proc is not None
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            lines = _read_pidfile(self.pgdata)
            if len(lines) >= 8 and lines[0].strip() == str(proc.pid) and lines[7].strip() == "ready":
                self.ready = True
                self._ready_event.set()
                if self.on_ready is not None:
                    self.on_ready()
                return True
            await asyncio.sleep(0.02)
        return False

    async def _supervise(self) -> None:
        attempt = 0
        while not self.stopping:
            proc = self.proc
            assert proc is not None
            started = time.monotonic()
            code = await self._wait(proc)
            if self._log_task is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._log_task, 2)
            if self.stopping:
                return
            self.ready = False
            self._ready_event.clear()
            if time.monotonic() - started > STABLE_AFTER:
                attempt = 0
            delay = RESTART_BACKOFF[min(attempt, len(RESTART_BACKOFF) - 1)]
            attempt += 1
            log.log(
                f"the managed PostgreSQL (PID {proc.pid}) exited with exit code {code}; "
                f"restarting it in {delay:g} s"
            )
            if self.on_restart is not None:
                self.on_restart()
            await asyncio.sleep(delay)
            if self.stopping:
                return
            try:
                proc = await self._spawn()
            except OSError as e:
                log.log(f"could not start the managed PostgreSQL: {e}")
                continue
            if await self._wait_ready():
                self.restarts += 1
                log.log(f"the managed PostgreSQL is running again (PID {proc.pid})")

    async def wait_ready(self, timeout: float) -> bool:
        if self.ready:
            return True
        try:
            await asyncio.wait_for(self._ready_event.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def reload(self) -> None:
        proc = self.proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGHUP)

    async def stop(self, mode: str = "fast") -> None:
        self.stopping = True
        self.ready = False
        proc = self.proc
        if self._supervisor is not None:
            self._supervisor.cancel()
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(SHUTDOWN_SIGNALS[mode])
        try:
            await self._wait(proc, STOP_TIMEOUT)
        except TimeoutError:
            log.log("the managed PostgreSQL did not stop in time; sending SIGQUIT")
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGQUIT)
            with contextlib.suppress(TimeoutError):
                await self._wait(proc, 10)
        if self._log_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._log_task, 2)


class ClusterLink:
    """A worker process's view of the cluster its supervisor runs: where its socket is and whether it is up
    (the supervisor says so over the control channel); starting, reloading and stopping are the
    supervisor's."""

    def __init__(self, data_dir: Path) -> None:
        self.socket_path = socket_dir_of(data_dir) / f".s.PGSQL.{CLUSTER_PORT}"
        self.ready = True  # workers start once the cluster is ready

    async def start(self) -> None:
        pass

    def reload(self) -> None:
        pass

    async def stop(self, mode: str = "fast") -> None:
        self.ready = False


@contextlib.contextmanager
def running(data_dir: Path, pgbin: PgBin) -> Iterator[Path]:
    """The cluster's socket path, starting the cluster for the duration if pgtls is not running it.

    For command-line tools (``pgtls role``): when pgtls serves, its cluster is used as it is.
    """
    pgdata = pgdata_of(data_dir)
    sockdir = socket_dir_of(data_dir)
    sock = sockdir / f".s.PGSQL.{CLUSTER_PORT}"
    lines = _read_pidfile(pgdata)
    if (
        len(lines) >= 8
        and lines[0].strip().isdigit()
        and process_alive(int(lines[0]))
        and lines[7].strip() == "ready"
    ):
        yield sock
        return
    user = cluster_user(create=True)
    _prepare_socket_dir(sockdir, user)
    proc = subprocess.Popen(
        postmaster_args(pgbin, data_dir),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=_child_env(),
        start_new_session=True,
        **_as_user(user),
    )
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            lines = _read_pidfile(pgdata)
            if len(lines) >= 8 and lines[0].strip() == str(proc.pid) and lines[7].strip() == "ready":
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read().decode("utf-8", "replace") if proc.stdout else ""
                raise ClusterError(f"could not start the managed PostgreSQL:\n{out}")
            time.sleep(0.02)
        yield sock
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
