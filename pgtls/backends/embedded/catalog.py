"""PostgreSQL functions and views a DuckDB session lacks, installed as per-session temp objects.

DuckDB keeps TEMP macros and tables per connection (each session's cursor), and
resolves unqualified names in ``temp`` first, so a temp macro ``version()`` or
table ``pg_stat_ssl`` shadows DuckDB's own for that session only.  Session facts
(pid, user, TLS facts for sslinfo) are baked into the macros; configuration
parameters live in ``temp.pgtls_settings`` (updated on SET); pg_stat_ssl and
pg_stat_activity are refilled from the server's registry before a statement
that names them.
"""

from __future__ import annotations

import platform

import duckdb

from pgtls import __version__ as PGTLS_VERSION
from pgtls.backends.base import Registry, SessionInfo
from pgtls.backends.embedded import pgcatalog
from pgtls.backends.embedded.sqltext import quote_literal as q

NAMEDATALEN = 64  # pg_stat_ssl truncates client_dn/issuer_dn to NAMEDATALEN - 1 bytes

# Long attribute names accepted by ssl_client_dn_field() (OpenSSL's OBJ_txt2nid).
DN_FIELD_ALIASES = {
    "commonName": "CN", "countryName": "C", "localityName": "L", "stateOrProvinceName": "ST",
    "organizationName": "O", "organizationalUnitName": "OU", "emailAddress": "emailAddress",
    "serialNumber": "serialNumber", "surname": "SN", "givenName": "GN", "title": "title",
    "domainComponent": "DC", "userId": "UID",
}  # fmt: skip

STAT_SSL_COLUMNS = (
    "pid INTEGER, ssl BOOLEAN, version VARCHAR, cipher VARCHAR, bits INTEGER, client_dn VARCHAR, "
    "client_serial BIGNUM, issuer_dn VARCHAR"
)
STAT_ACTIVITY_COLUMNS = (
    "datid BIGINT, datname VARCHAR, pid INTEGER, leader_pid INTEGER, usesysid BIGINT, usename VARCHAR, "
    "application_name VARCHAR, client_addr VARCHAR, client_hostname VARCHAR, client_port INTEGER, "
    "state VARCHAR, query VARCHAR, backend_type VARCHAR"
)


def version_string(server_version: str) -> str:
    return (
        f"PostgreSQL {server_version} (pgtls {PGTLS_VERSION}) on {platform.machine() or 'x86_64'}-pc-linux-gnu, "
        f"compiled by DuckDB {duckdb.__version__}, 64-bit"
    )


def _lit(v: object) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return q(str(v))


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


def setup_sql(
    info: SessionInfo, server_version: str, settings: list[tuple[str, str]], databases: list[str]
) -> list[str]:
    """Statements that give a fresh DuckDB cursor the session's PostgreSQL face."""
    tls = info.tls
    sql = [
        "SET SESSION integer_division = true",
        "SET SESSION search_path = 'public,main'",
        "SET SESSION schema = 'public'",
        "CREATE OR REPLACE TEMP TABLE pgtls_settings (name VARCHAR PRIMARY KEY, value VARCHAR, display VARCHAR)",
        "CREATE OR REPLACE TEMP TABLE pgtls_dn (which VARCHAR, field VARCHAR, value VARCHAR)",
        f"CREATE OR REPLACE TEMP TABLE pg_stat_ssl ({STAT_SSL_COLUMNS})",
        f"CREATE OR REPLACE TEMP TABLE pg_stat_activity ({STAT_ACTIVITY_COLUMNS})",
        f"CREATE OR REPLACE TEMP MACRO version() AS {q(version_string(server_version))}",
        f"CREATE OR REPLACE TEMP MACRO pg_backend_pid() AS CAST({int(info.pid)} AS INTEGER)",
        f"CREATE OR REPLACE TEMP MACRO current_user() AS {q(info.user)}",
        f"CREATE OR REPLACE TEMP MACRO session_user() AS {q(info.user)}",
        f"CREATE OR REPLACE TEMP MACRO user() AS {q(info.user)}",
        f"CREATE OR REPLACE TEMP MACRO current_database() AS {q(info.database)}",
        f"CREATE OR REPLACE TEMP MACRO current_catalog() AS {q(info.database)}",
        "CREATE OR REPLACE TEMP MACRO current_setting(n) AS "
        "(SELECT value FROM temp.main.pgtls_settings WHERE name = lower(n)), "
        "(n, missing_ok) AS (SELECT value FROM temp.main.pgtls_settings WHERE name = lower(n))",
        f"CREATE OR REPLACE TEMP MACRO inet_client_addr() AS {_lit(info.client_addr)}",
        f"CREATE OR REPLACE TEMP MACRO inet_client_port() AS CAST({_lit(info.client_port)} AS INTEGER)",
        f"CREATE OR REPLACE TEMP MACRO ssl_is_used() AS {_lit(tls is not None)}",
        f"CREATE OR REPLACE TEMP MACRO ssl_version() AS CAST({_lit(tls.version if tls else None)} AS VARCHAR)",
        f"CREATE OR REPLACE TEMP MACRO ssl_cipher() AS CAST({_lit(tls.cipher if tls else None)} AS VARCHAR)",
        "CREATE OR REPLACE TEMP MACRO ssl_client_cert_present() AS "
        f"{_lit(bool(tls and tls.client_cert_present))}",
        "CREATE OR REPLACE TEMP MACRO ssl_client_serial() AS "
        f"CAST({_lit(str(tls.client_serial) if tls and tls.client_serial is not None else None)} AS BIGNUM)",
        "CREATE OR REPLACE TEMP MACRO ssl_client_dn() AS "
        f"CAST({_lit(tls.client_dn if tls and tls.client_cert_present else None)} AS VARCHAR)",
        "CREATE OR REPLACE TEMP MACRO ssl_issuer_dn() AS "
        f"CAST({_lit(tls.issuer_dn if tls and tls.client_cert_present else None)} AS VARCHAR)",
        "CREATE OR REPLACE TEMP MACRO ssl_client_dn_field(f) AS (SELECT value FROM temp.main.pgtls_dn "
        "WHERE which = 'client' AND field = f)",
        "CREATE OR REPLACE TEMP MACRO ssl_issuer_field(f) AS (SELECT value FROM temp.main.pgtls_dn "
        "WHERE which = 'issuer' AND field = f)",
    ]
    rows = []
    if tls is not None and tls.client_cert_present:
        for which, dn in (("client", tls.client_dn), ("issuer", tls.issuer_dn)):
            for key, value in parse_dn(dn):
                rows.append(f"({q(which)}, {q(key)}, {q(value)})")
                for long, short in DN_FIELD_ALIASES.items():
                    if short == key and long != key:
                        rows.append(f"({q(which)}, {q(long)}, {q(value)})")
    if rows:
        sql.append("INSERT INTO temp.main.pgtls_dn VALUES " + ", ".join(rows))
    sql.append(settings_insert(settings))
    sql += pgcatalog.shim_sql(info.user, databases, info.is_superuser)
    return sql


def settings_insert(settings: list[tuple[str, str]]) -> str:
    values = ", ".join(f"({q(n.lower())}, {q(v)}, {q(n)})" for n, v in settings)
    return f"INSERT OR REPLACE INTO temp.main.pgtls_settings VALUES {values}"


def _truncate(s: str | None) -> str | None:
    if s is None:
        return None
    b = s.encode()
    if len(b) < NAMEDATALEN:
        return s
    return b[: NAMEDATALEN - 1].decode(errors="ignore")


def refresh_activity(cur: duckdb.DuckDBPyConnection, registry: Registry, sql: str) -> None:
    """Refill the temp pg_stat_ssl / pg_stat_activity tables if ``sql`` mentions them."""
    low = sql.lower()
    if "pg_stat_ssl" not in low and "pg_stat_activity" not in low:
        return
    rows = registry.sessions()
    if "pg_stat_ssl" in low:
        cur.execute("DELETE FROM temp.main.pg_stat_ssl")
        data = []
        for r in rows:
            t = r.info.tls
            if t is None:
                data.append((r.info.pid, False, None, None, None, None, None, None))
            else:
                have = t.client_cert_present
                data.append((
                    r.info.pid, True, t.version, t.cipher, t.bits,
                    _truncate(t.client_dn) if have else None,
                    str(t.client_serial) if have and t.client_serial is not None else None,
                    _truncate(t.issuer_dn) if have else None,
                ))  # fmt: skip
        if data:
            cur.executemany("INSERT INTO temp.main.pg_stat_ssl VALUES (?, ?, ?, ?, ?, ?, CAST(? AS BIGNUM), ?)", data)
    if "pg_stat_activity" in low:
        cur.execute("DELETE FROM temp.main.pg_stat_activity")
        data2 = [
            (None, r.info.database, r.info.pid, None, 10, r.info.user, r.info.application_name,
             r.info.client_addr, None, r.info.client_port if r.info.client_addr else -1, r.state, r.query,
             "client backend")
            for r in rows
        ]  # fmt: skip
        if data2:
            cur.executemany(
                "INSERT INTO temp.main.pg_stat_activity VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", data2
            )
