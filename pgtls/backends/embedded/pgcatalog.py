"""pg_catalog shims for tools (psql's backslash commands, tab completion, drivers' introspection).

DuckDB ships a partial pg_catalog.  Per session we add, as TEMP objects that
shadow the built-in ones (rewrite.py strips ``pg_catalog.`` from these names):

* views over DuckDB's own catalogs with the columns PostgreSQL 17 has and
  DuckDB lacks (pg_class, pg_database, pg_roles, ...), filled with the values a
  plain PostgreSQL object would show;
* empty tables for catalogs that have no DuckDB counterpart (policies,
  publications, inheritance, triggers, ...), so psql's ``\\d`` queries bind;
* macros for the catalog functions psql calls (format_type, pg_get_indexdef,
  pg_encoding_to_char, quote_ident, ...).
"""

from __future__ import annotations

from pgtls.backends.embedded import types as T
from pgtls.backends.embedded.sqltext import quote_literal as q

PG_CATALOG_NAMESPACE = 11
_CATEGORY = {"bool": "B", "int2": "N", "int4": "N", "int8": "N", "float4": "N", "float8": "N", "numeric": "N",
             "oid": "N", "text": "S", "varchar": "S", "bpchar": "S", "name": "S", "char": "Z", "bytea": "U",
             "date": "D", "time": "D", "timetz": "D", "timestamp": "D", "timestamptz": "D", "interval": "T",
             "uuid": "U", "json": "U", "jsonb": "U", "unknown": "X"}  # fmt: skip

# Empty catalogs: name -> column definitions (only the columns tools select or join on).
EMPTY_CATALOGS: dict[str, str] = {
    "pg_policy": "oid BIGINT, polname VARCHAR, polrelid BIGINT, polcmd VARCHAR, polpermissive BOOLEAN, "
    "polroles BIGINT[], polqual VARCHAR, polwithcheck VARCHAR",
    "pg_statistic_ext": "oid BIGINT, stxrelid BIGINT, stxname VARCHAR, stxnamespace BIGINT, stxowner BIGINT, "
    "stxstattarget INTEGER, stxkeys INTEGER[], stxkind VARCHAR[]",
    "pg_publication": "oid BIGINT, pubname VARCHAR, pubowner BIGINT, puballtables BOOLEAN, pubinsert BOOLEAN, "
    "pubupdate BOOLEAN, pubdelete BOOLEAN, pubtruncate BOOLEAN, pubviaroot BOOLEAN",
    "pg_publication_namespace": "oid BIGINT, pnpubid BIGINT, pnnspid BIGINT",
    "pg_publication_rel": "oid BIGINT, prpubid BIGINT, prrelid BIGINT, prqual VARCHAR, prattrs SMALLINT[]",
    "pg_inherits": "inhrelid BIGINT, inhparent BIGINT, inhseqno INTEGER, inhdetachpending BOOLEAN",
    "pg_trigger": "oid BIGINT, tgrelid BIGINT, tgparentid BIGINT, tgname VARCHAR, tgfoid BIGINT, tgtype SMALLINT, "
    "tgenabled VARCHAR, tgisinternal BOOLEAN, tgconstraint BIGINT",
    "pg_rewrite": "oid BIGINT, rulename VARCHAR, ev_class BIGINT, ev_type VARCHAR, ev_enabled VARCHAR, "
    "is_instead BOOLEAN",
    "pg_foreign_table": "ftrelid BIGINT, ftserver BIGINT, ftoptions VARCHAR[]",
    "pg_auth_members": "oid BIGINT, roleid BIGINT, member BIGINT, grantor BIGINT, admin_option BOOLEAN",
    "pg_event_trigger": "oid BIGINT, evtname VARCHAR, evtevent VARCHAR, evtowner BIGINT, evtfoid BIGINT, "
    "evtenabled VARCHAR, evttags VARCHAR[]",
    "pg_extension": "oid BIGINT, extname VARCHAR, extowner BIGINT, extnamespace BIGINT, extrelocatable BOOLEAN, "
    "extversion VARCHAR",
    "pg_partitioned_table": "partrelid BIGINT, partstrat VARCHAR, partnatts SMALLINT",
    "pg_largeobject_metadata": "oid BIGINT, lomowner BIGINT",
    "pg_opclass": "oid BIGINT, opcname VARCHAR, opcnamespace BIGINT, opcdefault BOOLEAN",
    "pg_statio_user_tables": "relid BIGINT, schemaname VARCHAR, relname VARCHAR",
    "pg_language": "oid BIGINT, lanname VARCHAR",
    "pg_cast": "oid BIGINT, castsource BIGINT, casttarget BIGINT, castfunc BIGINT, castcontext VARCHAR, "
    "castmethod VARCHAR",
    "pg_conversion": "oid BIGINT, conname VARCHAR, connamespace BIGINT",
    "pg_operator": "oid BIGINT, oprname VARCHAR, oprnamespace BIGINT, oprleft BIGINT, oprright BIGINT, "
    "oprresult BIGINT, oprcode VARCHAR",
    "pg_aggregate": "aggfnoid BIGINT, aggkind VARCHAR",
    "pg_ts_config": "oid BIGINT, cfgname VARCHAR, cfgnamespace BIGINT",
    "pg_user_mappings": "umid BIGINT, srvname VARCHAR, usename VARCHAR",
    "pg_foreign_server": "oid BIGINT, srvname VARCHAR, srvowner BIGINT",
    "pg_foreign_data_wrapper": "oid BIGINT, fdwname VARCHAR, fdwowner BIGINT",
    "pg_default_acl": "oid BIGINT, defaclrole BIGINT, defaclnamespace BIGINT, defaclobjtype VARCHAR, "
    "defaclacl VARCHAR[]",
    "pg_init_privs": "objoid BIGINT, classoid BIGINT, objsubid INTEGER, privtype VARCHAR, initprivs VARCHAR[]",
    "pg_seclabel": "objoid BIGINT, classoid BIGINT, objsubid INTEGER, provider VARCHAR, label VARCHAR",
    "pg_cursors": "name VARCHAR, statement VARCHAR, is_holdable BOOLEAN, is_binary BOOLEAN, "
    "is_scrollable BOOLEAN, creation_time TIMESTAMPTZ",
    "pg_available_extensions": "name VARCHAR, default_version VARCHAR, installed_version VARCHAR, "
    "comment VARCHAR",
    "pg_available_extension_versions": "name VARCHAR, version VARCHAR, installed BOOLEAN, superuser BOOLEAN",
    "pg_rules": "schemaname VARCHAR, tablename VARCHAR, rulename VARCHAR, definition VARCHAR",
    "pg_subscription": "oid BIGINT, subdbid BIGINT, subname VARCHAR, subowner BIGINT, subenabled BOOLEAN",
}

# Columns PostgreSQL's pg_class has and DuckDB's lacks, with the value an ordinary relation shows.
PG_CLASS_EXTRA = {
    "relforcerowsecurity": "false", "relisshared": "false", "relhassubclass": "false", "tableoid": "1259",
    "reloptions": "CAST(NULL AS VARCHAR[])", "relacl": "CAST(NULL AS VARCHAR[])",
}  # fmt: skip

SHIM_NAMES = set(EMPTY_CATALOGS) | {"pg_type", "pg_namespace", "pg_range", "pg_class", "pg_database", "pg_roles", "pg_tablespace", "pg_user", "pg_authid", "pg_shadow",
                                    "pg_encoding_to_char", "pg_get_expr", "pg_get_indexdef", "quote_ident",
                                    "pg_get_function_result", "pg_get_function_arguments",
                                    "pg_get_statisticsobjdef_columns", "pg_relation_is_publishable",
                                    "pg_get_userbyid", "array_upper", "set_config", "quote_literal", "pg_listening_channels", "pg_get_viewdef", "pg_settings", "pg_table_is_visible", "format_type", "pg_function_is_visible", "pg_get_triggerdef", "pg_get_ruledef", "pg_tablespace_location",
                                    "pg_relation_size", "pg_total_relation_size", "pg_table_size", "pg_indexes_size", "pg_database_size",
                                    "has_database_privilege", "pg_is_in_recovery", "pg_get_partkeydef", "pg_collation_is_visible",
                                    "pg_get_serial_sequence"}  # fmt: skip


def shim_sql(user: str, databases: list[str], superuser: bool) -> list[str]:
    """CREATE TEMP ... statements for the catalog shims of one session."""
    sql: list[str] = []
    for name, cols in EMPTY_CATALOGS.items():
        sql.append(f"CREATE OR REPLACE TEMP TABLE {name} ({cols})")
    sql += type_sql()
    extra = ", ".join(f"{v} AS {k}" for k, v in PG_CLASS_EXTRA.items())
    sql.append(
        "CREATE OR REPLACE TEMP VIEW pg_class AS SELECT * EXCLUDE (relisshared, relhassubclass, reloptions, relacl), "
        f"{extra} FROM pg_catalog.pg_class"
    )
    sql.append(database_view(databases))
    su = "true" if superuser else "false"
    role_cols = (
        "oid, rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, "
        "rolconnlimit, rolpassword, rolvaliduntil, rolbypassrls, rolconfig"
    )
    role_row = f"(10, {q(user)}, {su}, true, {su}, {su}, true, {su}, -1, '********', NULL::TIMESTAMPTZ, {su}, " \
               "NULL::VARCHAR[])"  # fmt: skip
    sql.append(f"CREATE OR REPLACE TEMP VIEW pg_roles AS SELECT * FROM (VALUES {role_row}) AS r({role_cols})")
    sql.append(
        "CREATE OR REPLACE TEMP VIEW pg_user AS SELECT rolname AS usename, oid AS usesysid, rolcreatedb AS "
        "usecreatedb, rolsuper AS usesuper, rolreplication AS userepl, rolbypassrls AS usebypassrls, "
        "'********' AS passwd, rolvaliduntil AS valuntil, rolconfig AS useconfig FROM pg_roles"
    )
    sql.append("CREATE OR REPLACE TEMP VIEW pg_authid AS SELECT * FROM pg_roles")
    sql.append(
        "CREATE OR REPLACE TEMP VIEW pg_tablespace AS SELECT * FROM (VALUES "
        "(1663, 'pg_default', 10, CAST(NULL AS VARCHAR[]), CAST(NULL AS VARCHAR[])), "
        "(1664, 'pg_global', 10, CAST(NULL AS VARCHAR[]), CAST(NULL AS VARCHAR[]))) "
        "AS t(oid, spcname, spcowner, spcacl, spcoptions)"
    )
    macros = [
        "pg_encoding_to_char(e) AS 'UTF8'",
        "pg_get_expr(e, r) AS CAST(e AS VARCHAR), (e, r, p) AS CAST(e AS VARCHAR)",
        "pg_get_indexdef(i) AS (SELECT sql FROM duckdb_indexes() WHERE index_oid = i), "
        "(i, c, p) AS (SELECT sql FROM duckdb_indexes() WHERE index_oid = i)",
        "quote_ident(s) AS CASE WHEN regexp_full_match(s, '[a-z_][a-z0-9_$]*') THEN s "
        "ELSE '\"' || replace(s, '\"', '\"\"') || '\"' END",
        "pg_get_function_result(o) AS (SELECT max(return_type) FROM duckdb_functions() WHERE function_oid = o)",
        "pg_get_function_arguments(o) AS (SELECT array_to_string(max(parameters), ', ') FROM duckdb_functions() "
        "WHERE function_oid = o)",
        "pg_get_statisticsobjdef_columns(o) AS CAST(NULL AS VARCHAR)",
        "pg_relation_is_publishable(o) AS false",
        f"pg_get_userbyid(i) AS {q(user)}",
        "array_upper(a, d) AS len(a)",
        "pg_function_is_visible(o) AS true",
        "pg_get_triggerdef(o) AS CAST(NULL AS VARCHAR), (o, p) AS CAST(NULL AS VARCHAR)",
        "pg_get_ruledef(o) AS CAST(NULL AS VARCHAR), (o, p) AS CAST(NULL AS VARCHAR)",
        "pg_get_partkeydef(o) AS CAST(NULL AS VARCHAR)",
        "pg_tablespace_location(o) AS ''",
        "pg_relation_size(o) AS CAST(0 AS BIGINT), (o, f) AS CAST(0 AS BIGINT)",
        "pg_total_relation_size(o) AS CAST(0 AS BIGINT)",
        "pg_table_size(o) AS CAST(0 AS BIGINT)",
        "pg_indexes_size(o) AS CAST(0 AS BIGINT)",
        "pg_database_size(d) AS CAST(0 AS BIGINT)",
        "has_database_privilege(d, p) AS true, (u, d, p) AS true",
        "pg_is_in_recovery() AS false",
        "pg_get_serial_sequence(t, c) AS CAST(NULL AS VARCHAR)",
        "pg_collation_is_visible(o) AS true",
        "set_config(n, v, l) AS v",
        "quote_literal(s) AS chr(39) || replace(CAST(s AS VARCHAR), chr(39), chr(39) || chr(39)) || chr(39)",
        "pg_get_viewdef(o) AS (SELECT sql FROM duckdb_views() WHERE view_oid = o), "
        "(o, p) AS (SELECT sql FROM duckdb_views() WHERE view_oid = o)",
        "pg_listening_channels() AS TABLE SELECT CAST(NULL AS VARCHAR) AS channel WHERE false",
        # DuckDB's oids are not unique across its system and user catalogs: decide by the object lists
        "pg_table_is_visible(o) AS o IN (SELECT table_oid FROM duckdb_tables() WHERE NOT internal AND NOT temporary "
        "UNION ALL SELECT view_oid FROM duckdb_views() WHERE NOT internal AND NOT temporary "
        "UNION ALL SELECT index_oid FROM duckdb_indexes() "
        "UNION ALL SELECT sequence_oid FROM duckdb_sequences() WHERE NOT temporary)",
        "format_type(o, m) AS CASE o WHEN 16 THEN 'boolean' WHEN 20 THEN 'bigint' WHEN 21 THEN 'smallint' "
        "WHEN 23 THEN 'integer' WHEN 25 THEN 'text' WHEN 1043 THEN 'text' WHEN 700 THEN 'real' "
        "WHEN 701 THEN 'double precision' WHEN 1082 THEN 'date' WHEN 1083 THEN 'time without time zone' "
        "WHEN 1114 THEN 'timestamp without time zone' WHEN 1184 THEN 'timestamp with time zone' "
        "WHEN 1186 THEN 'interval' WHEN 17 THEN 'bytea' WHEN 2950 THEN 'uuid' WHEN 114 THEN 'json' "
        "WHEN 1266 THEN 'time with time zone' "
        "WHEN 1700 THEN CASE WHEN m > 0 THEN 'numeric(' || (m // 1000) || ',' || (m % 1000) || ')' "
        "ELSE 'numeric' END ELSE pg_catalog.format_type(o, m) END",
    ]
    sql += [f"CREATE OR REPLACE TEMP MACRO {m}" for m in macros]
    sql.append(
        "CREATE OR REPLACE TEMP VIEW pg_settings AS SELECT display AS name, value AS setting, "
        "CAST(NULL AS VARCHAR) AS unit, 'Ungrouped' AS category, '' AS short_desc, "
        "CAST(NULL AS VARCHAR) AS extra_desc, 'user' AS context, 'string' AS vartype, 'default' AS source, "
        "CAST(NULL AS VARCHAR) AS min_val, CAST(NULL AS VARCHAR) AS max_val, "
        "CAST(NULL AS VARCHAR[]) AS enumvals, value AS boot_val, value AS reset_val, "
        "CAST(NULL AS VARCHAR) AS sourcefile, CAST(NULL AS INTEGER) AS sourceline, false AS pending_restart "
        "FROM temp.main.pgtls_settings"
    )
    return sql


def database_view(databases: list[str]) -> str:
    """pg_database as a temp view over the data directory's database files."""
    dbs = ", ".join(
        f"({16384 + i}, {q(name)}, 10, 6, 'c', false, true, -1, 'C', 'C', NULL::VARCHAR, NULL::VARCHAR[], 1663)"
        for i, name in enumerate(databases)
    ) or "(0, '', 10, 6, 'c', false, true, -1, 'C', 'C', NULL::VARCHAR, NULL::VARCHAR[], 1663)"
    return (
        "CREATE OR REPLACE TEMP VIEW pg_database AS SELECT * FROM (VALUES "
        f"{dbs}) AS d(oid, datname, datdba, encoding, datlocprovider, datistemplate, datallowconn, datconnlimit, "
        "datcollate, datctype, daticulocale, datacl, dattablespace) WHERE datname <> ''"
    )


def type_sql() -> list[str]:
    """pg_type with PostgreSQL's rows for the types pgtls sends (drivers look up array element types here)."""
    rows = []
    for t in T.BY_OID.values():
        elem = t.elem
        cat = "A" if elem else _CATEGORY.get(t.name, "U")
        rows.append(
            f"({t.oid}, {q(t.name)}, {PG_CATALOG_NAMESPACE}, 10, {t.typlen}, {str(t.typlen > 0).lower()}, 'b', "
            f"{q(cat)}, {elem}, {t.array_oid}, ',', 0, 0, -1, 0, false, true, 0)"
        )
    return [
        "CREATE OR REPLACE TEMP TABLE pgtls_types (oid UINTEGER, typname VARCHAR, typnamespace UINTEGER, "
        "typowner UINTEGER, typlen SMALLINT, typbyval BOOLEAN, typtype VARCHAR, typcategory VARCHAR, "
        "typelem UINTEGER, typarray UINTEGER, typdelim VARCHAR, typrelid UINTEGER, typbasetype UINTEGER, "
        "typtypmod INTEGER, typndims INTEGER, typnotnull BOOLEAN, typisdefined BOOLEAN, typcollation BIGINT)",
        "INSERT INTO pgtls_types VALUES " + ", ".join(rows),
        "CREATE OR REPLACE TEMP VIEW pg_type AS SELECT * FROM pgtls_types UNION ALL BY NAME "
        "SELECT * FROM pg_catalog.pg_type WHERE oid NOT IN (SELECT oid FROM pgtls_types)",
        "CREATE OR REPLACE TEMP VIEW pg_namespace AS SELECT * FROM pg_catalog.pg_namespace UNION ALL "
        f"SELECT {PG_CATALOG_NAMESPACE}, 'pg_catalog', 10, NULL",
        "CREATE OR REPLACE TEMP TABLE pg_range (rngtypid BIGINT, rngsubtype BIGINT, rngmultitypid BIGINT, "
        "rngcollation BIGINT, rngsubopc BIGINT, rngcanonical VARCHAR, rngsubdiff VARCHAR)",
    ]
