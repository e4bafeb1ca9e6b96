"""PostgreSQL functions and views a DuckDB session lacks, built once and shared by every session.

Opening a session must be cheap (``pgbench -C``), so nothing is created per session.
The backend builds one small DuckDB file, the *catalog database*, with every shim
(macros such as ``version()`` and ``current_setting()``, views such as
``pg_stat_ssl`` and ``pg_type``, the default parameter values); each database file
attaches it READ_ONLY as ``pgtls_cat`` and every session has ``pgtls_cat.main`` on
its DuckDB search path after its own schemas and before DuckDB's ``system`` and
``pg_catalog``, so the shims shadow DuckDB's built-ins.  Read-only means no client can
change a shim another session uses (and pgtls refuses ATTACH/DETACH).

What differs between sessions lives in DuckDB *variables*, which belong to one
DuckDB connection (each session's ``cursor()``), and the shared macros and views read
them with ``getvariable``:

* ``pgtls_session``: the session's facts (pid, user, database, client address, TLS
  facts for sslinfo), set once when the session opens (:data:`SESSION_TYPE`);
* ``pgtls_gucs``: the parameters whose value differs from the catalog's defaults
  (set on SET/RESET, and at open only when a startup option or a reload changed one);
* ``pgtls_stat_ssl``, ``pgtls_stat_activity``, ``pgtls_databases``, ``pgtls_roles``,
  ``pgtls_members``, ``pgtls_hba``, ``pgtls_ident``: rows of pg_stat_ssl,
  pg_stat_activity, pg_database, pg_roles/pg_authid/pg_auth_members,
  pg_hba_file_rules and pg_ident_file_mappings, filled by :func:`refresh` just before
  a statement that names them (so they show the server's state at that moment).
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

import duckdb

from pgtls import __version__ as PGTLS_VERSION
from pgtls.backends.base import Registry, SessionInfo
from pgtls.backends.embedded.catalog import shims
from pgtls.backends.embedded.catalog.shims import CAT, GUCS, S, _rows
from pgtls.backends.embedded.catalog.shims import C as CM
from pgtls.backends.embedded.engine.context import StatementContext
from pgtls.backends.embedded.sql.commands import duck_search_path
from pgtls.backends.embedded.sql.lexer import quote_literal as q
from pgtls.backends.embedded.sql.lexer import tokens
from pgtls.config.guc import GUCS as GUCS_TABLE
from pgtls.tls.names import truncate_name

# GUC_SUPERUSER_ONLY parameters: a role without superuser (or pg_read_all_settings) may not see them
# (SHOW, current_setting(), pg_settings), as in PostgreSQL.
SUPERUSER_ONLY_SETTINGS = frozenset(g.key for g in GUCS_TABLE.values() if g.superuser_only)
SUPERUSER_ONLY_SQL = shims.superuser_only_sql()
SUPERUSER_ONLY_MESSAGE = ('permission denied to examine "', '"')  # PostgreSQL 16+ (sqlerrors adds the detail)
SUPERUSER_ONLY_DETAIL = (
    'Only roles with privileges of the "pg_read_all_settings" role may examine this parameter.'
)

# Long attribute names accepted by ssl_client_dn_field() (OpenSSL's OBJ_txt2nid).
DN_FIELD_ALIASES = {
    "commonName": "CN", "countryName": "C", "localityName": "L", "stateOrProvinceName": "ST",
    "organizationName": "O", "organizationalUnitName": "OU", "emailAddress": "emailAddress",
    "serialNumber": "serialNumber", "surname": "SN", "givenName": "GN", "title": "title",
    "domainComponent": "DC", "userId": "UID",
}  # fmt: skip

SESSION_TYPE = (
    "STRUCT(pid INTEGER, usr VARCHAR, db VARCHAR, addr VARCHAR, port INTEGER, su BOOLEAN, app VARCHAR, "
    "ssl BOOLEAN, ssl_version VARCHAR, ssl_cipher VARCHAR, cert BOOLEAN, serial VARCHAR, client_dn VARCHAR, "
    "issuer_dn VARCHAR)"
)
STAT_SSL_TYPE = (
    "STRUCT(pid INTEGER, ssl BOOLEAN, version VARCHAR, cipher VARCHAR, bits INTEGER, client_dn VARCHAR, "
    "client_serial VARCHAR, issuer_dn VARCHAR)[]"
)
STAT_ACTIVITY_TYPE = (
    "STRUCT(datid BIGINT, datname VARCHAR, pid INTEGER, leader_pid INTEGER, usesysid BIGINT, usename VARCHAR, "
    "application_name VARCHAR, client_addr VARCHAR, client_hostname VARCHAR, client_port INTEGER, "
    "state VARCHAR, query VARCHAR, backend_type VARCHAR)[]"
)
HBA_TYPE = (
    "STRUCT(rule_number INTEGER, file_name VARCHAR, line_number INTEGER, type VARCHAR, database VARCHAR[], "
    "user_name VARCHAR[], address VARCHAR, netmask VARCHAR, auth_method VARCHAR, options VARCHAR[], "
    "error VARCHAR)[]"
)
IDENT_TYPE = (
    "STRUCT(map_number INTEGER, file_name VARCHAR, line_number INTEGER, map_name VARCHAR, sys_name VARCHAR, "
    "pg_username VARCHAR, error VARCHAR)[]"
)
# The value is passed as a Python dict (a STRUCT whose NULL fields have DuckDB's NULL type: binding a CAST
# to SESSION_TYPE would cost more than the rest of opening a session), so the macros cast each field.
SET_SESSION = "SET VARIABLE pgtls_session = ?"
SET_GUCS = "SET VARIABLE pgtls_gucs = MAP(CAST(? AS VARCHAR[]), CAST(? AS VARCHAR[]))"
SEARCH_PATH_TAIL = CM  # appended to every session's DuckDB search path


@functools.lru_cache(maxsize=64)
def duck_path(value: str) -> str:
    """DuckDB's search path for a PostgreSQL one: the session's schemas, then the shared catalog."""
    return duck_search_path(value) + "," + SEARCH_PATH_TAIL


# Catalogs that need the session to be a superuser, as in PostgreSQL (name -> what the message calls it).
SUPERUSER_ONLY = {
    "pg_authid": "table", "pg_shadow": "view", "pg_hba_file_rules": "view", "pg_ident_file_mappings": "view",
}  # fmt: skip
_ROLE_WORDS = (
    "pg_roles",
    "pg_authid",
    "pg_user",
    "pg_shadow",
    "pg_auth_members",
    "pg_get_userbyid",
    "pg_group",
)


def version_string(server_version: str) -> str:
    return (
        f"PostgreSQL {server_version} (pgtls {PGTLS_VERSION}) on {platform.machine() or 'x86_64'}-pc-linux-gnu, "
        f"compiled by DuckDB {duckdb.__version__}, 64-bit"
    )


def parse_dn(dn: str | None) -> list[tuple[str, str]]:
    """Fields of a slash-format DN (``/C=US/CN=alice``)."""
    if not dn:
        return []
    out: list[tuple[str, str]] = []
    for part in dn.strip("/").split("/"):
        key, sep, value = part.partition("=")
        if sep:
            out.append((key, value))
    return out


# --- the catalog database -----------------------------------------------------------------------


def catalog_sql(server_version: str, settings: list[tuple[str, str]]) -> list[str]:
    """Statements that fill the catalog database (attached as ``pgtls_cat`` while it is built)."""
    guc_value = (
        f"CASE WHEN NOT coalesce({S}.su, false) AND lower(n) IN ({SUPERUSER_ONLY_SQL}) "
        f"THEN CAST(error({q(SUPERUSER_ONLY_MESSAGE[0])} || n || {q(SUPERUSER_ONLY_MESSAGE[1])}) AS VARCHAR) ELSE "
        f"coalesce({GUCS}[lower(n)], CASE lower(n) WHEN 'session_authorization' THEN CAST({S}.usr AS VARCHAR) "
        f"WHEN 'is_superuser' THEN CASE WHEN {S}.su THEN 'on' ELSE 'off' END "
        f"WHEN 'application_name' THEN CAST({S}.app AS VARCHAR) "
        f"END, (SELECT value FROM {CM}.pgtls_settings WHERE name = lower(n))) END"
    )
    aliases = ", ".join(f"{q(k)}: {q(v)}" for k, v in DN_FIELD_ALIASES.items())
    dn_field = (
        f"{CM}.pgtls_after_eq(list_filter(string_split(trim(dn, '/'), '/'), lambda x: strpos(x, '=') > 0 "
        f"AND split_part(x, '=', 1) = coalesce(MAP {{{aliases}}}[f], f))[1])"
    )
    macros = [
        f"version() AS {q(version_string(server_version))}",
        f"pg_backend_pid() AS CAST({S}.pid AS INTEGER)",
        # Runs only where the session did not intercept the call (see features/cancel.py): refuse, never fake a result.
        "pg_cancel_backend(pid) AS CAST(error('pg_cancel_backend() is supported only as "
        "SELECT pg_cancel_backend(<pid>)') AS BOOLEAN)",
        f"current_user() AS CAST({S}.usr AS VARCHAR)",
        f"session_user() AS CAST({S}.usr AS VARCHAR)",
        f"user() AS CAST({S}.usr AS VARCHAR)",
        f"current_database() AS CAST({S}.db AS VARCHAR)",
        f"current_catalog() AS CAST({S}.db AS VARCHAR)",
        f"current_setting(n) AS {guc_value}, (n, missing_ok) AS {guc_value}",
        f"inet_client_addr() AS CAST({S}.addr AS VARCHAR)",
        f"inet_client_port() AS CAST({S}.port AS INTEGER)",
        f"ssl_is_used() AS coalesce(CAST({S}.ssl AS BOOLEAN), false)",
        f"ssl_version() AS CAST({S}.ssl_version AS VARCHAR)",
        f"ssl_cipher() AS CAST({S}.ssl_cipher AS VARCHAR)",
        f"ssl_client_cert_present() AS coalesce(CAST({S}.cert AS BOOLEAN), false)",
        f"ssl_client_serial() AS CAST({S}.serial AS BIGNUM)",
        f"ssl_client_dn() AS CAST({S}.client_dn AS VARCHAR)",
        f"ssl_issuer_dn() AS CAST({S}.issuer_dn AS VARCHAR)",
        "pgtls_after_eq(x) AS substr(x, strpos(x, '=') + 1)",
        f"pgtls_dn_field(dn, f) AS {dn_field}",
        f"ssl_client_dn_field(f) AS {CM}.pgtls_dn_field(CAST({S}.client_dn AS VARCHAR), f)",
        f"ssl_issuer_field(f) AS {CM}.pgtls_dn_field(CAST({S}.issuer_dn AS VARCHAR), f)",
    ]
    sql = [
        f"CREATE TABLE {CM}.pgtls_settings (name VARCHAR PRIMARY KEY, value VARCHAR, display VARCHAR)",
        f"INSERT INTO {CM}.pgtls_settings VALUES "
        + ", ".join(f"({q(n.lower())}, {q(v)}, {q(n)})" for n, v in settings),
    ]
    sql += [f"CREATE MACRO {CM}.{m}" for m in macros]
    sql.append(
        f"CREATE VIEW {CM}.pg_stat_ssl AS SELECT pid, ssl, version, cipher, bits, client_dn, "
        f"CAST(client_serial AS BIGNUM) AS client_serial, issuer_dn FROM {_rows('pgtls_stat_ssl', STAT_SSL_TYPE)}"
    )
    sql.append(
        f"CREATE VIEW {CM}.pg_stat_activity AS SELECT * FROM {_rows('pgtls_stat_activity', STAT_ACTIVITY_TYPE)}"
    )
    sql.append(f"CREATE VIEW {CM}.pg_hba_file_rules AS SELECT * FROM {_rows('pgtls_hba', HBA_TYPE)}")
    sql.append(f"CREATE VIEW {CM}.pg_ident_file_mappings AS SELECT * FROM {_rows('pgtls_ident', IDENT_TYPE)}")
    sql += shims.shim_sql()
    return sql


def build_catalog(path: Path, server_version: str, settings: list[tuple[str, str]]) -> None:
    """Write the catalog database file (attach it READ_ONLY as ``pgtls_cat`` afterwards)."""
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH {q(str(path))} AS {CAT}")
        for stmt in catalog_sql(server_version, settings):
            con.execute(stmt)
        con.execute(f"DETACH {CAT}")
    finally:
        con.close()


# --- per session ----------------------------------------------------------------------------------


def session_facts(info: SessionInfo) -> dict[str, object]:
    """The ``pgtls_session`` variable of a session."""
    tls = info.tls
    cert = bool(tls and tls.client_cert_present)
    return {
        "pid": info.pid, "usr": info.user, "db": info.database, "addr": info.client_addr,
        "port": info.client_port, "su": info.is_superuser, "app": info.application_name,
        "ssl": tls is not None, "ssl_version": tls.version if tls else None, "ssl_cipher": tls.cipher if tls else None,
        "cert": cert, "serial": str(tls.client_serial) if cert and tls and tls.client_serial is not None else None,
        "client_dn": tls.client_dn if cert and tls else None, "issuer_dn": tls.issuer_dn if cert and tls else None,
    }  # fmt: skip


def _truncate(s: str | None) -> str | None:
    """pg_stat_ssl cuts client_dn and issuer_dn to NAMEDATALEN - 1 bytes."""
    return None if s is None else truncate_name(s)


def mentioned(sql: str) -> set[str]:
    """The lower-cased words of ``sql`` that name a lazily filled catalog (empty for most statements)."""
    low = sql.lower()
    if "pg_" not in low:
        return set()
    return {
        t.text.lower()
        for t in tokens(sql)
        if t.kind in ("word", "ident") and t.text.lower().startswith("pg_")
    }


def stat_ssl_rows(registry: Registry) -> list[dict[str, object]]:
    data: list[dict[str, object]] = []
    for r in registry.sessions():
        t = r.info.tls
        have = bool(t and t.client_cert_present)
        data.append({
            "pid": r.info.pid, "ssl": t is not None, "version": t.version if t else None,
            "cipher": t.cipher if t else None, "bits": t.bits if t else None,
            "client_dn": _truncate(t.client_dn) if t and have else None,
            "client_serial": str(t.client_serial) if t and have and t.client_serial is not None else None,
            "issuer_dn": _truncate(t.issuer_dn) if t and have else None,
        })  # fmt: skip
    return data


def stat_activity_rows(
    registry: Registry, user: str | None = None, superuser: bool = True
) -> list[dict[str, object]]:
    """pg_stat_activity rows; like PostgreSQL, a non-superuser sees only the identity of other users' sessions
    (their query may contain a password: ``ALTER ROLE ... PASSWORD``)."""
    out: list[dict[str, object]] = []
    for r in registry.sessions():
        mine = superuser or r.info.user == user
        out.append(
            {"datid": None, "datname": r.info.database, "pid": r.info.pid, "leader_pid": None, "usesysid": 10,
             "usename": r.info.user, "application_name": r.info.application_name,
             "client_addr": r.info.client_addr if mine else None, "client_hostname": None,
             "client_port": (r.info.client_port if r.info.client_addr else -1) if mine else None,
             "state": r.state if mine else None, "query": r.query if mine else "<insufficient privilege>",
             "backend_type": "client backend"}
        )  # fmt: skip
    return out


def _set(cur: duckdb.DuckDBPyConnection, var: str, typ: str, rows: list[dict[str, object]]) -> None:
    cur.execute(f"SET VARIABLE {var} = CAST(? AS {typ})", [rows])


def refresh(session: StatementContext, sql: str) -> None:
    """Fill the variables behind the catalogs ``sql`` names (and refuse the superuser-only ones)."""
    words = mentioned(sql)
    if not words:
        return
    for name, kind in SUPERUSER_ONLY.items():
        if name in words and not session.is_superuser():
            from pgtls.errors import PgError

            raise PgError("42501", f"permission denied for {kind} {name}")
    cur = session.cur
    if "pg_stat_ssl" in words:
        _set(cur, "pgtls_stat_ssl", STAT_SSL_TYPE, stat_ssl_rows(session.registry))
    if "pg_stat_activity" in words:
        rows = stat_activity_rows(session.registry, session.info.user, session.is_superuser())
        _set(cur, "pgtls_stat_activity", STAT_ACTIVITY_TYPE, rows)
    if "pg_database" in words:
        from pgtls.backends.embedded.engine.databases import list_databases

        dbs = shims.database_rows(list_databases(session.backend.data_dir))
        _set(cur, "pgtls_databases", shims.DATABASE_TYPE, dbs)
    if any(w in words for w in _ROLE_WORDS):
        roles, members = session.backend.role_rows(session.info, secrets=session.is_superuser())
        _set(cur, "pgtls_roles", shims.ROLE_TYPE, roles)
        _set(cur, "pgtls_members", shims.MEMBER_TYPE, members)
    if "pg_hba_file_rules" in words:
        keys: tuple[str, ...] = ("rule_number", "file_name", "line_number", "type", "database", "user_name", "address", "netmask",
                "auth_method", "options", "error")  # fmt: skip
        rows = [dict(zip(keys, r, strict=True)) for r in session.backend.hba_rules()]
        _set(cur, "pgtls_hba", HBA_TYPE, rows)
    if "pg_ident_file_mappings" in words:
        keys = ("map_number", "file_name", "line_number", "map_name", "sys_name", "pg_username", "error")
        rows = [dict(zip(keys, r, strict=True)) for r in session.backend.ident_mappings()]
        _set(cur, "pgtls_ident", IDENT_TYPE, rows)
