"""The client's TLS identity, readable from SQL inside the relayed session and not forgeable there.

Behind pgtls, PostgreSQL's own ``pg_stat_ssl`` sees a Unix socket.  So pgtls
keeps, in every database, an unlogged table ``pgtls.identity_rows`` keyed by
the upstream backend's pid, writable only by pgtls's privileged connection,
and fills the row of a session at checkout, before the client's first
message reaches it.  A session reads only its own row, through
``SECURITY DEFINER`` functions keyed by ``pg_backend_pid()``:

* sslinfo's functions with their names and meanings, in ``pg_catalog`` (so they
  win over an unqualified name whatever the search_path, unless a search_path
  puts pg_catalog after a schema with a function of the same name — write
  ``pg_catalog.ssl_client_dn()`` in policies and triggers to be safe):
  ``ssl_is_used()``, ``ssl_version()``, ``ssl_cipher()``,
  ``ssl_client_cert_present()``, ``ssl_client_serial()``, ``ssl_client_dn()``,
  ``ssl_issuer_dn()``;
* the view ``pgtls.client_identity`` (one row: ssl, version, cipher, bits,
  client_cert_present, client_dn, client_serial, issuer_dn, client_addr,
  client_port).

Nothing a non-superuser session can ``SET`` changes what these return.  A
superuser can change anything in PostgreSQL, these functions included.
"""

from __future__ import annotations

from pgtls.backends.base import SessionInfo

SCHEMA_CHECK = "SELECT pg_catalog.to_regprocedure('pg_catalog.ssl_client_dn()') IS NOT NULL"

INSTALL = """\
CREATE SCHEMA IF NOT EXISTS pgtls;
REVOKE ALL ON SCHEMA pgtls FROM PUBLIC;
GRANT USAGE ON SCHEMA pgtls TO PUBLIC;
CREATE UNLOGGED TABLE IF NOT EXISTS pgtls.identity_rows (
    pid integer PRIMARY KEY,
    ssl boolean NOT NULL,
    version text,
    cipher text,
    bits integer,
    client_cert_present boolean NOT NULL,
    client_dn text,
    client_serial numeric,
    issuer_dn text,
    client_addr inet,
    client_port integer
);
REVOKE ALL ON pgtls.identity_rows FROM PUBLIC;
COMMENT ON TABLE pgtls.identity_rows IS
    'The TLS facts of each client session pgtls relays here, by upstream backend pid; written by pgtls only';
CREATE OR REPLACE FUNCTION pgtls.own_identity() RETURNS SETOF pgtls.identity_rows
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'SELECT * FROM pgtls.identity_rows WHERE pid = pg_catalog.pg_backend_pid()';
REVOKE ALL ON FUNCTION pgtls.own_identity() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgtls.own_identity() TO PUBLIC;
CREATE OR REPLACE VIEW pgtls.client_identity AS
    SELECT coalesce(i.ssl, false) AS ssl, i.version, i.cipher, i.bits,
           coalesce(i.client_cert_present, false) AS client_cert_present, i.client_dn, i.client_serial,
           i.issuer_dn, i.client_addr, i.client_port
      FROM (SELECT 1) AS one LEFT JOIN pgtls.own_identity() AS i ON true;
GRANT SELECT ON pgtls.client_identity TO PUBLIC;
CREATE OR REPLACE FUNCTION pg_catalog.ssl_is_used() RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'SELECT coalesce((SELECT ssl FROM pgtls.own_identity()), false)';
CREATE OR REPLACE FUNCTION pg_catalog.ssl_version() RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'SELECT version FROM pgtls.own_identity() WHERE ssl';
CREATE OR REPLACE FUNCTION pg_catalog.ssl_cipher() RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'SELECT cipher FROM pgtls.own_identity() WHERE ssl';
CREATE OR REPLACE FUNCTION pg_catalog.ssl_client_cert_present() RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'SELECT coalesce((SELECT client_cert_present FROM pgtls.own_identity()), false)';
CREATE OR REPLACE FUNCTION pg_catalog.ssl_client_serial() RETURNS numeric
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'SELECT client_serial FROM pgtls.own_identity()';
CREATE OR REPLACE FUNCTION pg_catalog.ssl_client_dn() RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'SELECT client_dn FROM pgtls.own_identity()';
CREATE OR REPLACE FUNCTION pg_catalog.ssl_issuer_dn() RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'SELECT issuer_dn FROM pgtls.own_identity()';
"""

UPSERT = """\
INSERT INTO pgtls.identity_rows AS r
    (pid, ssl, version, cipher, bits, client_cert_present, client_dn, client_serial, issuer_dn, client_addr,
     client_port)
VALUES ($1::integer, $2::boolean, $3, $4, $5::integer, $6::boolean, $7, $8::numeric, $9, $10::inet, $11::integer)
ON CONFLICT (pid) DO UPDATE SET
    ssl = excluded.ssl, version = excluded.version, cipher = excluded.cipher, bits = excluded.bits,
    client_cert_present = excluded.client_cert_present, client_dn = excluded.client_dn,
    client_serial = excluded.client_serial, issuer_dn = excluded.issuer_dn, client_addr = excluded.client_addr,
    client_port = excluded.client_port"""

DELETE = "DELETE FROM pgtls.identity_rows WHERE pid = $1::integer"

# Rows of backends that are gone (pgtls was stopped without cleaning up, or a backend crashed).
PRUNE = (
    "DELETE FROM pgtls.identity_rows WHERE pid NOT IN "
    "(SELECT pid FROM pg_catalog.pg_stat_activity WHERE pid IS NOT NULL)"
)


def full_names(der: bytes | None) -> tuple[str | None, str | None]:
    """sslinfo's ssl_client_dn() / ssl_issuer_dn(): the whole names (pg_stat_ssl's are cut at 63 bytes)."""
    if der is None:
        return None, None
    from pgtls.tls.facts import peer_names

    names = peer_names(der)
    return names.subject_slash, names.issuer_slash


def upsert_params(upstream_pid: int, info: SessionInfo) -> list[str | None]:
    t = info.tls
    addr = info.client_addr if info.client_addr not in (None, "[local]") else None
    subject, issuer = full_names(t.client_cert_der if t is not None else None)
    return [
        str(upstream_pid),
        "true" if t is not None else "false",
        t.version if t else None,
        t.cipher if t else None,
        str(t.bits) if t else None,
        "true" if t is not None and t.client_cert_present else "false",
        subject,
        str(t.client_serial) if t is not None and t.client_serial is not None else None,
        issuer,
        addr,
        str(info.client_port) if info.client_port is not None and addr is not None else None,
    ]
