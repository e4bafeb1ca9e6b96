"""`pgtls init`: a data directory shaped like PostgreSQL's (initdb).

Writes postgresql.conf (every parameter, commented out at its default, like
postgresql.conf.sample), pg_hba.conf and pg_ident.conf, then what stands
behind the door: by default the managed PostgreSQL cluster (PostgreSQL's own
initdb into ``cluster/``, whose superuser is the initial role), or with
``backend="duckdb"`` the embedded database ``postgres`` and the role store.  With ``tls=True`` it also
makes a root CA, a server certificate and a client certificate for the
superuser (see :mod:`pgtls.certs.initialset`) and turns ``ssl`` on.
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


BACKENDS = ("postgresql", "duckdb")


def _init_cluster(data_dir: Path, superuser: str, template: Path | None) -> list[str]:
    """The managed PostgreSQL cluster: PostgreSQL's initdb, or a copy of ``template`` (a cluster made by
    an earlier init with the same superuser, stopped).  The client-identity functions are installed in
    each database when pgtls first relays a session there."""
    from pgtls.backends.relay import cluster
    from pgtls.backends.relay.pgbin import PgBinError
    from pgtls.backends.relay.pgbin import find as find_pgbin

    try:
        pgbin = find_pgbin(os.environ.get("PGTLS_POSTGRESQL_BIN_DIR", ""))
        if template is not None:
            return cluster.copy_cluster(template, data_dir, superuser)
        return cluster.init_cluster(data_dir, superuser, pgbin)
    except (cluster.ClusterError, PgBinError) as e:
        raise InitError(str(e)) from None


def _conf_sample(backend: str = "postgresql") -> str:
    from pgtls.config.guc import EMBEDDED_ONLY, GUCS

    lines = [
        "# -----------------------------",
        "# PostgreSQL configuration file (pgtls)",
        "# -----------------------------",
        "#",
        "# Same syntax as PostgreSQL: name = value, '#' comments, include/include_if_exists/include_dir.",
        "# Every parameter is listed at its default, commented out.",
    ]
    if backend == "postgresql":
        lines += [
            "#",
            "# These are pgtls's own parameters: connections, TLS, authentication, logging, pooling.",
            "# PostgreSQL's own parameters for the managed cluster (shared_buffers, work_mem, TimeZone, ...)",
            "# go in cluster/postgresql.conf; `pgtls reload` passes the reload on to the cluster.",
        ]
    lines.append("")
    for name in sorted(GUCS):
        g = GUCS[name]
        if getattr(g, "context", "") == "internal":
            continue
        if backend == "postgresql" and name in EMBEDDED_ONLY:
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
        '# "local" is for Unix domain socket connections only',
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
    backend: str = "postgresql",
    cluster_template: Path | None = None,
) -> list[str]:
    data_dir = Path(data_dir)
    if data_dir.exists() and any(data_dir.iterdir()):
        raise InitError(f'directory "{data_dir}" exists but is not empty')
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(data_dir, 0o700)
    notes = [f'creating data directory "{data_dir}" for superuser "{superuser}"']
    extra: dict[str, str] = {"backend": backend}
    if port is not None:
        extra["port"] = str(port)
    if tls:
        from pgtls.certs.initialset import init_tls

        names = list(hostnames or [])
        fqdn = socket.getfqdn()
        if fqdn and fqdn not in names and fqdn != "localhost":
            names.append(fqdn)
        extra.update(init_tls(data_dir, role=superuser, hostnames=names))
        notes.append("created a root CA, a server certificate and a client certificate")
    conf = _conf_sample(backend)
    if extra:
        conf += "\n# Set by pgtls init\n" + "".join(f"{k} = '{v}'\n" for k, v in extra.items())
    (data_dir / "postgresql.conf").write_text(conf)
    (data_dir / "pg_hba.conf").write_text(_hba_lines(auth or "trust", tls))
    (data_dir / "pg_ident.conf").write_text(IDENT_HEADER)
    (data_dir / "PG_VERSION").write_text(PG_VERSION_MARKER)
    for f in ("postgresql.conf", "pg_hba.conf", "pg_ident.conf"):
        os.chmod(data_dir / f, 0o600)
    if backend == "postgresql":
        notes += _init_cluster(data_dir, superuser, cluster_template)
    else:
        from pgtls.auth.roles import RoleStore
        from pgtls.backends.embedded.engine.databases import create_database

        RoleStore(data_dir).create(superuser, superuser=True, login=True)
        create_database(data_dir, "postgres")
        notes.append('created the embedded DuckDB database "postgres"')
    if (auth or "trust") == "trust":
        notes.append('initdb: warning: enabling "trust" authentication for local connections')
    notes.append(f"Success. You can now start the server using:\n\n    pgtls serve -D {data_dir}\n")
    return notes
