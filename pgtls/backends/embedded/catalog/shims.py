"""pg_catalog shims for tools (psql's backslash commands, tab completion, drivers' introspection).

DuckDB ships a partial pg_catalog.  The catalog database (catalog/shared.py: built once,
attached read-only to every database file, on each session's search path before
DuckDB's own pg_catalog; rewrite/pipeline.py strips ``pg_catalog.`` from these names) adds:

* views over DuckDB's own catalogs with the columns PostgreSQL 17 has and
  DuckDB lacks (pg_class, pg_database, pg_roles, ...), filled with the values a
  plain PostgreSQL object would show;
* empty tables for catalogs that have no DuckDB counterpart (policies,
  publications, inheritance, triggers, ...), so psql's ``\\d`` queries bind;
* macros for the catalog functions psql calls (format_type, pg_get_indexdef,
  pg_encoding_to_char, quote_ident, ...);
* constraints and indexes (pg_constraint, pg_index, the index rows of pg_class, pg_get_constraintdef,
  pg_get_indexdef): catalog/constraints.py.
"""

from __future__ import annotations

from pgtls.backends.embedded.catalog import constraints as pgconstraints
from pgtls.backends.embedded.pgtypes import typemap as T
from pgtls.backends.embedded.sql.lexer import quote_literal as q

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
                                    "pg_get_serial_sequence", "to_regtype", "to_regclass"} | pgconstraints.NAMES  # fmt: skip


CAT = "pgtls_cat"  # the read-only catalog database attached to every database file (catalog/shared.py)
C = CAT + ".main"
S = "getvariable('pgtls_session')"  # the session's facts (catalog.SESSION_TYPE)
# The parameters a session changed (or that differ from the catalog's defaults), name -> value.
GUCS = "coalesce(getvariable('pgtls_gucs'), CAST(MAP {} AS MAP(VARCHAR, VARCHAR)))"

# Rows of the lazily filled catalogs, passed per session in DuckDB variables (refreshed before a statement
# that names them, see catalog.refresh): pg_roles and friends come from the role store.
ROLE_TYPE = (
    "STRUCT(oid UINTEGER, rolname VARCHAR, rolsuper BOOLEAN, rolinherit BOOLEAN, rolcreaterole BOOLEAN, "
    "rolcreatedb BOOLEAN, rolcanlogin BOOLEAN, rolreplication BOOLEAN, rolconnlimit INTEGER, "
    "rolpassword VARCHAR, rolvaliduntil VARCHAR, rolbypassrls BOOLEAN)[]"
)
MEMBER_TYPE = "STRUCT(oid UINTEGER, roleid UINTEGER, member UINTEGER, grantor UINTEGER)[]"
DATABASE_TYPE = "STRUCT(oid UINTEGER, datname VARCHAR)[]"


def _rows(var: str, typ: str) -> str:
    """A FROM item over the list-of-structs variable ``var`` (empty when the session has not set it)."""
    return f"(SELECT unnest(coalesce(getvariable('{var}'), CAST([] AS {typ})), recursive := true))"


def shim_sql() -> list[str]:
    """CREATE statements for the catalog shims, in the catalog database (shared by all sessions)."""
    sql: list[str] = []
    for name, cols in EMPTY_CATALOGS.items():
        if name != "pg_auth_members":
            sql.append(f"CREATE TABLE {C}.{name} ({cols})")
    sql += type_sql()
    sql.append(
        f"CREATE VIEW {C}.pg_database AS SELECT oid, datname, CAST(10 AS UINTEGER) AS datdba, 6 AS encoding, "
        "'c' AS datlocprovider, false AS datistemplate, true AS datallowconn, -1 AS datconnlimit, 'C' AS datcollate, "
        "'C' AS datctype, CAST(NULL AS VARCHAR) AS daticulocale, CAST(NULL AS VARCHAR[]) AS datacl, "
        f"CAST(1663 AS UINTEGER) AS dattablespace FROM {_rows('pgtls_databases', DATABASE_TYPE)}"
    )
    role_cols = (
        "oid, rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, rolconnlimit, "
        "'********' AS rolpassword, CAST(rolvaliduntil AS TIMESTAMPTZ) AS rolvaliduntil, rolbypassrls, "
        "CAST(NULL AS VARCHAR[]) AS rolconfig"
    )
    sql.append(f"CREATE VIEW {C}.pg_roles AS SELECT {role_cols} FROM {_rows('pgtls_roles', ROLE_TYPE)}")
    sql.append(
        f"CREATE VIEW {C}.pg_authid AS SELECT oid, rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, "
        "rolcanlogin, rolreplication, rolbypassrls, rolconnlimit, rolpassword, "
        f"CAST(rolvaliduntil AS TIMESTAMPTZ) AS rolvaliduntil FROM {_rows('pgtls_roles', ROLE_TYPE)}"
    )
    sql.append(
        f"CREATE VIEW {C}.pg_user AS SELECT rolname AS usename, oid AS usesysid, rolcreatedb AS "
        "usecreatedb, rolsuper AS usesuper, rolreplication AS userepl, rolbypassrls AS usebypassrls, "
        f"'********' AS passwd, rolvaliduntil AS valuntil, rolconfig AS useconfig FROM {C}.pg_roles "
        "WHERE rolcanlogin"
    )
    sql.append(
        f"CREATE VIEW {C}.pg_shadow AS SELECT rolname AS usename, oid AS usesysid, rolcreatedb AS "
        "usecreatedb, rolsuper AS usesuper, rolreplication AS userepl, rolbypassrls AS usebypassrls, "
        f"rolpassword AS passwd, rolvaliduntil AS valuntil, CAST(NULL AS VARCHAR[]) AS useconfig FROM {C}.pg_authid "
        "WHERE rolcanlogin"
    )
    sql.append(
        f"CREATE VIEW {C}.pg_auth_members AS SELECT oid, roleid, member, grantor, false AS admin_option, "
        f"true AS inherit_option, true AS set_option FROM {_rows('pgtls_members', MEMBER_TYPE)}"
    )
    sql.append(
        f"CREATE VIEW {C}.pg_tablespace AS SELECT * FROM (VALUES "
        "(1663, 'pg_default', 10, CAST(NULL AS VARCHAR[]), CAST(NULL AS VARCHAR[])), "
        "(1664, 'pg_global', 10, CAST(NULL AS VARCHAR[]), CAST(NULL AS VARCHAR[]))) "
        "AS t(oid, spcname, spcowner, spcacl, spcoptions)"
    )
    macros = [
        "pg_encoding_to_char(e) AS 'UTF8'",
        "pg_get_expr(e, r) AS CAST(e AS VARCHAR), (e, r, p) AS CAST(e AS VARCHAR)",
        "quote_ident(s) AS CASE WHEN regexp_full_match(s, '[a-z_][a-z0-9_$]*') THEN s "
        "ELSE '\"' || replace(s, '\"', '\"\"') || '\"' END",
        "pg_get_function_result(o) AS (SELECT max(return_type) FROM duckdb_functions() WHERE function_oid = o)",
        "pg_get_function_arguments(o) AS (SELECT array_to_string(max(parameters), ', ') FROM duckdb_functions() "
        "WHERE function_oid = o)",
        "pg_get_statisticsobjdef_columns(o) AS CAST(NULL AS VARCHAR)",
        "pg_relation_is_publishable(o) AS false",
        f"pg_get_userbyid(i) AS coalesce((SELECT max(rolname) FROM {C}.pg_roles WHERE oid = i), CAST({S}.usr AS VARCHAR))",
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
        "json_typeof(j) AS CASE WHEN j IS NULL THEN NULL ELSE CASE json_type(CAST(j AS JSON)) "
        "WHEN 'OBJECT' THEN 'object' WHEN 'ARRAY' THEN 'array' WHEN 'VARCHAR' THEN 'string' "
        "WHEN 'BOOLEAN' THEN 'boolean' WHEN 'NULL' THEN 'null' ELSE 'number' END END",
        f"jsonb_typeof(j) AS {C}.json_typeof(j)",
        "jsonb_array_length(j) AS CAST(json_array_length(CAST(j AS JSON)) AS INTEGER)",
        # j #> path, j #>> path (jsonb.path_edits): JSON Pointer, whose "0" is an index in an array, a key in an object
        "pgtls_jsonb_path(j, p) AS json_extract(CAST(j AS JSON), p)",
        "pgtls_jsonb_path_text(j, p) AS json_extract_string(CAST(j AS JSON), p)",
        "pgtls_json_pointer(p) AS CASE WHEN p IS NULL OR list_contains(list_transform(p, lambda x: x IS NULL), true) "
        "THEN NULL ELSE array_to_string(list_transform(p, lambda x: '/' || replace(replace(CAST(x AS VARCHAR), "
        "'~', '~0'), '/', '~1')), '') END",
        # jsonb || jsonb (jsonb.concat_edits): objects merged (right wins), else arrays joined
        "pgtls_jsonb_concat(a, b) AS CASE WHEN a IS NULL OR b IS NULL THEN NULL "
        "WHEN json_type(CAST(a AS JSON)) = 'OBJECT' AND json_type(CAST(b AS JSON)) = 'OBJECT' "
        "THEN to_json(map_concat(CAST(CAST(a AS JSON) AS MAP(VARCHAR, JSON)), CAST(CAST(b AS JSON) AS MAP(VARCHAR, JSON)))) "
        "ELSE to_json(list_concat("
        "CASE WHEN json_type(CAST(a AS JSON)) = 'ARRAY' THEN CAST(CAST(a AS JSON) AS JSON[]) ELSE [CAST(a AS JSON)] END, "
        "CASE WHEN json_type(CAST(b AS JSON)) = 'ARRAY' THEN CAST(CAST(b AS JSON) AS JSON[]) ELSE [CAST(b AS JSON)] END)) END",
        # jsonb's ? ?| ?& (jsonb.exists_edits): a key of an object, a string element of an array, or the string
        "pgtls_jsonb_exists(j, k) AS CASE WHEN j IS NULL OR k IS NULL THEN NULL "
        "ELSE CASE json_type(CAST(j AS JSON)) WHEN 'OBJECT' THEN list_contains(json_keys(CAST(j AS JSON)), k) "
        "WHEN 'ARRAY' THEN list_contains(list_transform(list_filter(CAST(json_extract(CAST(j AS JSON), '$[*]') AS JSON[]), "
        "lambda x: json_type(x) = 'VARCHAR'), lambda x: x->>'$'), k) "
        "WHEN 'VARCHAR' THEN (CAST(j AS JSON)->>'$') = k ELSE false END END",
        "pgtls_jsonb_exists_any(j, ks) AS CASE WHEN j IS NULL OR ks IS NULL THEN NULL "
        f"ELSE coalesce(list_bool_or(list_transform(ks, lambda k: {C}.pgtls_jsonb_exists(j, k))), false) END",
        "pgtls_jsonb_exists_all(j, ks) AS CASE WHEN j IS NULL OR ks IS NULL THEN NULL "
        f"ELSE coalesce(list_bool_and(list_transform(ks, lambda k: {C}.pgtls_jsonb_exists(j, k))), true) END",
        # NULL when there is no such type/relation (psycopg's TypeInfo.fetch, SQLAlchemy's hstore probe)
        f"to_regtype(n) AS (SELECT min(oid) FROM {C}.pg_type WHERE typname = "
        "lower(regexp_replace(CAST(n AS VARCHAR), '^(pg_catalog\\.)?\"?([^\"]*)\"?$', '\\2')))",
        "to_regclass(n) AS (SELECT min(table_oid) FROM duckdb_tables() WHERE table_name = "
        "regexp_replace(CAST(n AS VARCHAR), '^([^.]*\\.)?\"?([^\"]*)\"?$', '\\2'))",
        # DuckDB's oids are not unique across its system and user catalogs: decide by the object lists
        "pg_table_is_visible(o) AS o IN (SELECT table_oid FROM duckdb_tables() WHERE NOT internal AND NOT temporary "
        f"AND database_name <> '{CAT}' "
        f"UNION ALL SELECT view_oid FROM duckdb_views() WHERE NOT internal AND NOT temporary AND database_name <> '{CAT}' "
        "UNION ALL SELECT index_oid FROM duckdb_indexes() "
        "UNION ALL SELECT sequence_oid FROM duckdb_sequences() WHERE NOT temporary) "
        # the index of a PRIMARY KEY / UNIQUE constraint (catalog/constraints.py: table oid * 1000 + 501..899)
        "OR (o % 1000 BETWEEN 501 AND 899 AND o // 1000 IN (SELECT table_oid FROM duckdb_tables() "
        f"WHERE NOT internal AND NOT temporary AND database_name <> '{CAT}'))",
        "format_type(o, m) AS CASE o WHEN 16 THEN 'boolean' WHEN 20 THEN 'bigint' WHEN 21 THEN 'smallint' "
        "WHEN 23 THEN 'integer' WHEN 25 THEN 'text' WHEN 1043 THEN 'text' WHEN 700 THEN 'real' "
        "WHEN 701 THEN 'double precision' WHEN 1082 THEN 'date' WHEN 1083 THEN 'time without time zone' "
        "WHEN 1114 THEN 'timestamp without time zone' WHEN 1184 THEN 'timestamp with time zone' "
        "WHEN 1186 THEN 'interval' WHEN 17 THEN 'bytea' WHEN 2950 THEN 'uuid' WHEN 114 THEN 'json' "
        "WHEN 1266 THEN 'time with time zone' "
        "WHEN 1700 THEN CASE WHEN m > 0 THEN 'numeric(' || (m // 1000) || ',' || (m % 1000) || ')' "
        "ELSE 'numeric' END ELSE pg_catalog.format_type(o, m) END",
    ]
    sql += [f"CREATE MACRO {C}.{m}" for m in macros]
    sql += generate_series_sql()
    sql += int4_function_sql()
    sql += json_set_function_sql()
    # ``::jsonb`` casts name this type wherever the session's search path points (databases.py has one too)
    sql.append(f"CREATE TYPE {C}.jsonb AS JSON")
    mark = q(T.JSONB_MARK)
    # a column's jsonb mark and a table's foreign-key mark (catalog/constraints.py) are pgtls's, not the user's
    # (only the objects that have a comment, as in PostgreSQL: DuckDB lists every object)
    sql.append(
        f"CREATE VIEW {C}.pg_description AS SELECT * FROM (SELECT objoid, classoid, objsubid, CASE WHEN "
        f"starts_with(description, {mark}) THEN nullif(substr(description, {len(T.JSONB_MARK) + 2}), '') "
        f"WHEN objsubid = 0 THEN {pgconstraints.strip_fk_mark('description')} ELSE description END AS description "
        "FROM pg_catalog.pg_description) WHERE description IS NOT NULL"
    )
    # constraints, indexes and pg_class (whose index rows and relhastriggers come from them)
    sql += pgconstraints.constraint_sql(", ".join(f"{v} AS {k}" for k, v in PG_CLASS_EXTRA.items()))
    sql.append(
        f"CREATE VIEW {C}.pg_settings AS SELECT display AS name, {C}.current_setting(name) AS setting, "
        "CAST(NULL AS VARCHAR) AS unit, 'Ungrouped' AS category, '' AS short_desc, "
        "CAST(NULL AS VARCHAR) AS extra_desc, 'user' AS context, 'string' AS vartype, 'default' AS source, "
        "CAST(NULL AS VARCHAR) AS min_val, CAST(NULL AS VARCHAR) AS max_val, "
        "CAST(NULL AS VARCHAR[]) AS enumvals, value AS boot_val, value AS reset_val, "
        "CAST(NULL AS VARCHAR) AS sourcefile, CAST(NULL AS INTEGER) AS sourceline, false AS pending_restart "
        f"FROM (SELECT name, value, display FROM {C}.pgtls_settings UNION ALL "
        "SELECT k, v, k FROM (SELECT unnest(map_keys(m)) AS k, unnest(map_values(m)) AS v "
        f"FROM (SELECT {GUCS} AS m)) "
        f"WHERE k NOT IN (SELECT name FROM {C}.pgtls_settings)) "
        # GUC_SUPERUSER_ONLY rows are not there for other roles, as in PostgreSQL's pg_settings
        f"WHERE coalesce({S}.su, false) OR lower(name) NOT IN ({superuser_only_sql()})"
    )
    return sql


def superuser_only_sql() -> str:
    from pgtls.config.guc import GUCS as TABLE

    return ", ".join(
        "'" + g.key + "'" for g in sorted(TABLE.values(), key=lambda g: g.key) if g.superuser_only
    )


# generate_series as PostgreSQL types it: DuckDB's returns BIGINT for integer arguments (PostgreSQL: int4 for
# int4, int8 for int8), has no numeric form, and steps dates as timestamp (PostgreSQL: timestamptz).  Typed
# macro overloads choose by argument type; a string literal matches no typed parameter (only an untyped one),
# so the steps of the date/time forms are untyped (``'1 day'``) and an untyped overload per arity passes
# anything else to DuckDB's function as before.  The table macro serves ``FROM generate_series(...)``, the
# scalar one the set-returning call in a select list (DuckDB's scalar generate_series returns one list;
# unnest gives PostgreSQL's rows).  DuckDB ignores WITH ORDINALITY after a table macro, so rewrite/pipeline.py sends
# those calls to DuckDB's own function.
_GS = "system.main.generate_series"
_N = T.FREE_NUMERIC_DUCK
_STEP0 = "CASE WHEN c = 0 THEN error('step size cannot equal zero') END"
_NUM_COUNT = "CAST(floor(b - a) AS BIGINT) + 1"
_NUM_STEP_COUNT = f"coalesce({_STEP0}, CAST(floor((b - a) / c) AS BIGINT)) + 1"
# (parameters, table macro body, scalar macro body)
GENERATE_SERIES: tuple[tuple[str, str, str], ...] = (
    ("a INTEGER, b INTEGER",
     f"SELECT CAST(generate_series AS INTEGER) AS generate_series FROM {_GS}(a, b)",
     f"unnest(CAST({_GS}(a, b) AS INTEGER[]))"),
    ("a INTEGER, b INTEGER, c INTEGER",
     f"SELECT CAST(generate_series AS INTEGER) AS generate_series FROM {_GS}(a, b, c)",
     f"unnest(CAST({_GS}(a, b, c) AS INTEGER[]))"),
    ("a BIGINT, b BIGINT", f"SELECT generate_series FROM {_GS}(a, b)", f"unnest({_GS}(a, b))"),
    ("a BIGINT, b BIGINT, c BIGINT", f"SELECT generate_series FROM {_GS}(a, b, c)", f"unnest({_GS}(a, b, c))"),
    (f"a {_N}, b {_N}",
     f"SELECT CAST(a + i AS {_N}) AS generate_series FROM range(0, {_NUM_COUNT}) AS s(i)",
     f"unnest(list_transform(range(0, {_NUM_COUNT}), lambda i: CAST(a + i AS {_N})))"),
    (f"a {_N}, b {_N}, c {_N}",
     f"SELECT CAST(a + i * c AS {_N}) AS generate_series FROM range(0, {_NUM_STEP_COUNT}) AS s(i)",
     f"unnest(list_transform(range(0, {_NUM_STEP_COUNT}), lambda i: CAST(a + i * c AS {_N})))"),
    ("a DATE, b DATE, c",
     f"SELECT generate_series FROM {_GS}(CAST(a AS TIMESTAMPTZ), CAST(b AS TIMESTAMPTZ), CAST(c AS INTERVAL))",
     f"unnest({_GS}(CAST(a AS TIMESTAMPTZ), CAST(b AS TIMESTAMPTZ), CAST(c AS INTERVAL)))"),
    ("a TIMESTAMP, b TIMESTAMP, c", f"SELECT generate_series FROM {_GS}(a, b, CAST(c AS INTERVAL))",
     f"unnest({_GS}(a, b, CAST(c AS INTERVAL)))"),
    ("a TIMESTAMPTZ, b TIMESTAMPTZ, c", f"SELECT generate_series FROM {_GS}(a, b, CAST(c AS INTERVAL))",
     f"unnest({_GS}(a, b, CAST(c AS INTERVAL)))"),
    ("a, b", f"SELECT generate_series FROM {_GS}(a, b)", f"unnest({_GS}(a, b))"),
    ("a, b, c", f"SELECT generate_series FROM {_GS}(a, b, c)", f"unnest({_GS}(a, b, c))"),
)  # fmt: skip


# Functions PostgreSQL types int4 where DuckDB returns BIGINT (or UBIGINT): name -> overloads (parameters,
# body).  Typed overloads take the PostgreSQL argument types; the untyped one passes anything else to DuckDB.
_S = "system.main"
INT4_FUNCTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "length": (("x VARCHAR", f"CAST({_S}.length(x) AS INTEGER)"),
               ("x BLOB", f"CAST({_S}.octet_length(x) AS INTEGER)"), ("x", f"{_S}.length(x)")),
    "char_length": (("x VARCHAR", f"CAST({_S}.length(x) AS INTEGER)"), ("x", f"{_S}.char_length(x)")),
    "character_length": (("x VARCHAR", f"CAST({_S}.length(x) AS INTEGER)"), ("x", f"{_S}.character_length(x)")),
    "octet_length": (("x VARCHAR", "CAST(strlen(x) AS INTEGER)"),
                     ("x BLOB", f"CAST({_S}.octet_length(x) AS INTEGER)"), ("x", f"{_S}.octet_length(x)")),
    "position": (("a VARCHAR, b VARCHAR", f"CAST({_S}.position(a, b) AS INTEGER)"), ("a, b", f"{_S}.position(a, b)")),
    "strpos": (("a VARCHAR, b VARCHAR", f"CAST({_S}.strpos(a, b) AS INTEGER)"), ("a, b", f"{_S}.strpos(a, b)")),
    "array_length": (("a, d", f"CAST({_S}.array_length(a, d) AS INTEGER)"), ("a", f"{_S}.array_length(a)")),
    "cardinality": (("a", f"CAST({_S}.cardinality(a) AS INTEGER)"),),
}  # fmt: skip


def int4_function_sql() -> list[str]:
    return [f"CREATE MACRO {C}.{name} " + ", ".join(f"({params}) AS {body}" for params, body in overloads)
            for name, overloads in INT4_FUNCTIONS.items()]  # fmt: skip


def generate_series_sql() -> list[str]:
    """The table and the scalar generate_series macros of the catalog database."""
    table = ", ".join(f"({params}) AS TABLE ({body})" for params, body, _ in GENERATE_SERIES)
    scalar = ", ".join(f"({params}) AS {body}" for params, _, body in GENERATE_SERIES)
    return [f"CREATE MACRO {C}.generate_series {table}", f"CREATE MACRO {C}.generate_series {scalar}"]


_KEYS = "unnest(json_keys(CAST(j AS JSON)))"
_POINTER = "'/' || replace(replace(k, '~', '~0'), '/', '~1')"
_ELEMENTS = "CAST(json_extract(CAST(j AS JSON), '$[*]') AS JSON[])"
# Set-returning JSON functions: name -> (table body, scalar body or None).  A FROM item is a table macro
# (lateral arguments work); in a select list the scalar form unnests.
JSON_SET_FUNCTIONS: dict[str, tuple[str, str | None]] = {
    name: body for prefix in ("json", "jsonb") for name, body in {
        f"{prefix}_object_keys": (f"SELECT {_KEYS} AS {prefix}_object_keys", _KEYS),
        f"{prefix}_each": (f"SELECT k AS key, json_extract(CAST(j AS JSON), {_POINTER}) AS value "
                           f"FROM (SELECT {_KEYS} AS k)", None),
        f"{prefix}_each_text": (f"SELECT k AS key, json_extract_string(CAST(j AS JSON), {_POINTER}) AS value "
                                f"FROM (SELECT {_KEYS} AS k)", None),
        # json_extract keeps a JSON null as 'null' (a cast to JSON[] would make it SQL NULL)
        f"{prefix}_array_elements": (f"SELECT unnest({_ELEMENTS}) AS value", f"unnest({_ELEMENTS})"),
        f"{prefix}_array_elements_text": (
            f"SELECT unnest(list_transform({_ELEMENTS}, lambda e: json_extract_string(e, '$'))) AS value",
            f"unnest(list_transform({_ELEMENTS}, lambda e: json_extract_string(e, '$')))"),
    }.items()
}  # fmt: skip


def json_set_function_sql() -> list[str]:
    """The table (and scalar) macros of :data:`JSON_SET_FUNCTIONS`."""
    out = []
    for name, (table, scalar) in JSON_SET_FUNCTIONS.items():
        out.append(f"CREATE MACRO {C}.{name}(j) AS TABLE {table}")
        if scalar is not None:
            out.append(f"CREATE MACRO {C}.{name}(j) AS {scalar}")
    return out


def database_rows(databases: list[str]) -> list[dict[str, object]]:
    """pg_database rows (the pgtls_databases variable) for the data directory's database files."""
    return [{"oid": 16384 + i, "datname": name} for i, name in enumerate(databases)]


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
        f"CREATE TABLE {C}.pgtls_types (oid UINTEGER, typname VARCHAR, typnamespace UINTEGER, "
        "typowner UINTEGER, typlen SMALLINT, typbyval BOOLEAN, typtype VARCHAR, typcategory VARCHAR, "
        "typelem UINTEGER, typarray UINTEGER, typdelim VARCHAR, typrelid UINTEGER, typbasetype UINTEGER, "
        "typtypmod INTEGER, typndims INTEGER, typnotnull BOOLEAN, typisdefined BOOLEAN, typcollation BIGINT)",
        f"INSERT INTO {C}.pgtls_types VALUES " + ", ".join(rows),
        f"CREATE VIEW {C}.pg_type AS SELECT * FROM {C}.pgtls_types UNION ALL BY NAME "
        f"SELECT * FROM pg_catalog.pg_type WHERE oid NOT IN (SELECT oid FROM {C}.pgtls_types)",
        f"CREATE VIEW {C}.pg_namespace AS SELECT * FROM pg_catalog.pg_namespace WHERE oid NOT IN "
        f"(SELECT oid FROM duckdb_schemas() WHERE database_name = '{CAT}') UNION ALL "
        f"SELECT {PG_CATALOG_NAMESPACE}, 'pg_catalog', 10, NULL",
        f"CREATE TABLE {C}.pg_range (rngtypid BIGINT, rngsubtype BIGINT, rngmultitypid BIGINT, "
        "rngcollation BIGINT, rngsubopc BIGINT, rngcanonical VARCHAR, rngsubdiff VARCHAR)",
    ]
