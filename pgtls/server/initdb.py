"""`pgtls init`: a data directory shaped like PostgreSQL's (initdb).

Writes postgresql.conf (every parameter, commented out at its default, like
postgresql.conf.sample), pg_hba.conf and pg_ident.conf, creates the embedded
database ``postgres`` and the initial superuser role.  With ``tls=True`` it also
makes a root CA, a server certificate and a client certificate for the
superuser (see :mod:`pgtls.certs.setup`) and turns ``ssl`` on.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

PG_VERSION_MARKER = "17\n"

HBA_HEADER = """\
# PostgreSQL Client Authentication Configuration File (pgtls)
# ===================================================
#
# Same format as PostgreSQL's pg_hba.conf:
#
# TYPE  DATABASE        USER            ADDRESS                 METHOD  [OPTIONS]
#
# TYPE is local, host, hostssl, hostnossl (hostgssenc never matches: no GSSAPI).
# METHOD is trust, reject, password, md5, scram-sha-256 or cert.
# OPTIONS: clientcert=verify-ca|verify-full, clientname=CN|DN, map=MAPNAME.
# The first matching line wins.  Reload with `pgtls reload -D DIR`.

"""

IDENT_HEADER = """\
# PostgreSQL User Name Maps (pgtls)
# =================================
#
# MAPNAME       SYSTEM-USERNAME         PG-USERNAME
#
# SYSTEM-USERNAME may be a /regex; \\1 in PG-USERNAME is replaced by the first capture.
# Used by pg_hba.conf lines with map=MAPNAME (cert, clientcert=verify-full).

"""


class InitError(Exception):
    pass


def _conf_sample() -> str:
    from pgtls.config.guc import GUCS

    lines = [
        "# -----------------------------",
        "# PostgreSQL configuration file (pgtls)",
        "# -----------------------------",
        "#",
        "# Same syntax as PostgreSQL: name = value, '#' comments, include/include_if_exists/include_dir.",
        "# Every parameter is listed at its default, commented out.",
        "",
    ]
    for name in sorted(GUCS):
        g = GUCS[name]
        if getattr(g, "context", "") == "internal":
            continue
        default = _format_default(g)
        desc = getattr(g, "short_desc", "") or ""
        ctx = " (change requires restart)" if getattr(g, "context", "") == "postmaster" else ""
        lines.append(f"#{name} = {default}".ljust(48) + f"# {desc}{ctx}".rstrip())
    return "\n".join(lines) + "\n"


def _format_default(g: object) -> str:
    value = getattr(g, "default", "")
    vartype = getattr(g, "vartype", getattr(g, "type", "string"))
    if isinstance(value, bool):
        return "on" if value else "off"
    if vartype in ("string", "enum"):
        return "'" + str(value).replace("'", "''") + "'"
    return str(value)


def _hba_lines(auth: str, tls: bool) -> str:
    lines = [
        "# \"local\" is for Unix domain socket connections only",
        f"local   all             all                                     {auth}",
    ]
    if tls:
        lines += [
            "# TLS with a client certificate from the CA made by `pgtls init --tls`",
            "hostssl all             all             127.0.0.1/32            cert",
            "hostssl all             all             ::1/128                 cert",
        ]
    else:
        lines += [
            "# IPv4 local connections:",
            f"host    all             all             127.0.0.1/32            {auth}",
            "# IPv6 local connections:",
            f"host    all             all             ::1/128                 {auth}",
        ]
    return HBA_HEADER + "\n".join(lines) + "\n"


def init_data_dir(
    data_dir: Path,
    *,
    superuser: str,
    tls: bool = False,
    auth: str | None = None,
    hostnames: list[str] | None = None,
    port: int | None = None,
) -> list[str]:
    data_dir = Path(data_dir)
    if data_dir.exists() and any(data_dir.iterdir()):
        raise InitError(f'directory "{data_dir}" exists but is not empty')
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(data_dir, 0o700)
    notes = [f'creating data directory "{data_dir}" for superuser "{superuser}"']
    extra: dict[str, str] = {}
    if port is not None:
        extra["port"] = str(port)
    if tls:
        from pgtls.certs.setup import init_tls

        names = list(hostnames or [])
        fqdn = socket.getfqdn()
        if fqdn and fqdn not in names and fqdn != "localhost":
            names.append(fqdn)
        extra.update(init_tls(data_dir, role=superuser, hostnames=names))
        notes.append("created a root CA, a server certificate and a client certificate")
    conf = _conf_sample()
    if extra:
        conf += "\n# Set by pgtls init\n" + "".join(f"{k} = '{v}'\n" for k, v in extra.items())
    (data_dir / "postgresql.conf").write_text(conf)
    (data_dir / "pg_hba.conf").write_text(_hba_lines(auth or "trust", tls))
    (data_dir / "pg_ident.conf").write_text(IDENT_HEADER)
    (data_dir / "PG_VERSION").write_text(PG_VERSION_MARKER)
    for f in ("postgresql.conf", "pg_hba.conf", "pg_ident.conf"):
        os.chmod(data_dir / f, 0o600)
    try:
        from pgtls.auth.roles import RoleStore

        RoleStore(data_dir).create(superuser, superuser=True, login=True)
    except ImportError:
        pass
    from pgtls.backends.embedded.databases import create_database

    create_database(data_dir, "postgres")
    notes.append('created database "postgres"')
    if (auth or "trust") == "trust":
        notes.append(
            'initdb: warning: enabling "trust" authentication for local connections'
        )
    notes.append(f"Success. You can now start the server using:\n\n    pgtls serve -D {data_dir}\n")
    return notes
