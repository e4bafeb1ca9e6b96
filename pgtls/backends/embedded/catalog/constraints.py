"""Constraints and indexes in the catalog shims: pg_constraint, pg_index, the index rows of pg_class,
pg_indexes, pg_am, pg_get_constraintdef and pg_get_indexdef (catalog/shims.py adds these to the catalog
database; nothing here runs unless a statement reads one of them).

DuckDB's own pg_catalog lists no index for a PRIMARY KEY or UNIQUE constraint, names constraints its own
way and lacks most of what drivers read (conkey/confkey as attribute numbers, confrelid, the referential
actions, indkey, pg_get_constraintdef).  The views here rebuild them from ``duckdb_constraints()``,
``duckdb_indexes()`` and ``duckdb_columns()``:

* constraints are named as PostgreSQL names a constraint created without a name (``t_pkey``,
  ``t_a_b_key``, ``t_a_fkey``, ``t_a_check`` / ``t_check``, truncated like ``makeObjectName`` and numbered
  on a clash within the table): DuckDB keeps no constraint name, so ``CONSTRAINT name`` in CREATE TABLE is
  not seen here;
* each PRIMARY KEY / UNIQUE constraint has an index relation (pg_class relkind ``i``, pg_index) of the
  same name, as in PostgreSQL; a constraint's oid is ``table oid * 1000 + n`` (n counts the table's
  constraints), its index's ``+ 500``, a marked foreign key's ``+ 900 + k`` (DuckDB's own oids are far
  below these);
* foreign keys come from DuckDB (``FOREIGN KEY`` constraints it enforces itself: NO ACTION, not
  deferrable) and from the ``pgtls:fk`` mark of a child table's comment, which holds those DuckDB cannot
  (DEFERRABLE, added by ALTER TABLE, ON DELETE CASCADE/SET NULL/SET DEFAULT).  The mark is the first line
  of the comment: ``pgtls:fk `` and a JSON array of objects ``{"name", "columns", "ref_schema",
  "ref_table", "ref_columns", "on_update", "on_delete", "deferrable", "deferred", "validated"}`` (the
  actions are PostgreSQL's confupdtype/confdeltype codes); the user's own comment, if any, follows on the
  next line.  :data:`FK_MARK_VIEW` is the one place that reads it, and :func:`strip_fk_mark` hides it
  from pg_description;
* what DuckDB does not keep is shown as PostgreSQL's default: indoption 0 (ASC, DuckDB drops DESC),
  btree (relam 403), the default operator classes (indclass 0).

PostgreSQL's int2vector columns: ``indkey`` is USMALLINT[] (int4[] on the wire), whose subscripts start
at 0 as an int2vector's do: the catalog's ``generate_subscripts`` counts from 0 for this type only
(SQLAlchemy pairs ``unnest(indkey)`` with ``generate_subscripts(indkey, 1)`` and asks
``pg_get_indexdef(i, ord + 1)``); ``indoption`` is int2vector's text (``'0 0'``), which SQLAlchemy's
psycopg dialect splits (rewrite/tree.py turns Django's ``unnest(i.indkey, i.indoption)`` into one DuckDB runs).

DuckDB plans a view at every use, and planning costs by the expression (tens of milliseconds here):
pg_class does not read the constraint views' dear parts (duckdb_columns(), the marks' column numbers),
and pg_get_constraintdef finds its constraint by the oid alone.
"""

from __future__ import annotations

CAT = "pgtls_cat"  # the catalog database (shims.CAT; repeated to keep this module free of imports)
C = CAT + ".main"

FK_MARK = "pgtls:fk "  # first line of a child table's comment: this, then a JSON array of foreign keys
FK_JSON_TYPE = (
    '[{"name": "VARCHAR", "columns": ["VARCHAR"], "ref_schema": "VARCHAR", "ref_table": "VARCHAR", '
    '"ref_columns": ["VARCHAR"], "on_update": "VARCHAR", "on_delete": "VARCHAR", "deferrable": "BOOLEAN", '
    '"deferred": "BOOLEAN", "validated": "BOOLEAN"}]'
)
FK_MARK_VIEW = C + ".pgtls_fk_marks"  # one row per marked foreign key

# Access methods as in PostgreSQL 15 (indexes are shown as btree, tables as heap).
PG_AM = (
    (2, "heap", "heap_tableam_handler", "t"), (403, "btree", "bthandler", "i"), (405, "hash", "hashhandler", "i"),
    (783, "gist", "gisthandler", "i"), (2742, "gin", "ginhandler", "i"), (4000, "spgist", "spghandler", "i"),
    (3580, "brin", "brinhandler", "i"),
)  # fmt: skip
BTREE = 403
HEAP = 2

NAMES = {
    "pg_constraint", "pg_index", "pg_indexes", "pg_am", "pg_get_constraintdef", "pg_get_indexdef",
    "generate_subscripts", "pg_partition_ancestors", "obj_description", "col_description", "pgtls_regclass",
}  # fmt: skip


def strip_fk_mark(expr: str) -> str:
    """SQL: the comment ``expr`` without a ``pgtls:fk`` first line (NULL when nothing else is left)."""
    return (
        f"CASE WHEN starts_with({expr}, '{FK_MARK}') THEN CASE WHEN strpos({expr}, chr(10)) > 0 "
        f"THEN nullif(substr({expr}, strpos({expr}, chr(10)) + 1), '') END ELSE {expr} END"
    )


def _q(x: str) -> str:
    """SQL: PostgreSQL's quote_ident of the VARCHAR expression ``x``."""
    return f"{C}.quote_ident({x})"


_NEST = r"(?:[^()]|\((?:[^()]|\([^()]*\))*\))*"
_FUNC_CALL = r"[A-Za-z_][A-Za-z0-9_$.]*\(" + _NEST + r"\)"


def _macros() -> list[str]:
    """Macros the views use (DuckDB binds a macro's body when it is created)."""
    gen_series = "system.main.generate_series"
    return [
        # an index key as DuckDB prints it ('qty', '"B c"', '(lower(code))'), unquoted / without DuckDB's parens
        "pgtls_unquote(k) AS CASE WHEN k[1] = '\"' AND k[-1] = '\"' THEN replace(k[2:-2], '\"\"', '\"') ELSE k END",
        # an expression without the quotes DuckDB puts around its own keywords (``lower("name")``)
        "pgtls_pgexpr(e) AS regexp_replace(e, '\"([a-z_][a-z0-9_$]*)\"', '\\1', 'g')",
        f"pgtls_unparen(k) AS {C}.pgtls_pgexpr(CASE WHEN k[1] = '(' AND k[-1] = ')' THEN k[2:-2] ELSE k END)",
        # PostgreSQL prints an index expression in parentheses unless it is a bare function call (here: a name,
        # then parentheses nested up to three deep)
        f"pgtls_funclike(e) AS regexp_full_match(e, '{_FUNC_CALL}')",
        # int2vector subscripts start at 0 (indkey, indoption), an array's at 1; the untyped form is DuckDB's
        # own macro, whose generate_series the catalog's (an unnest) would nest in a second unnest
        "generate_subscripts(a USMALLINT[], d) AS unnest(CAST(range(0, len(a)) AS INTEGER[])), "
        f"(a, d) AS unnest(CAST({gen_series}(1, array_length(a, d)) AS INTEGER[]))",
        # no relation here is a partition (the table form has the ordinality column DuckDB would not add)
        "pg_partition_ancestors(r) AS unnest(CAST([] AS BIGINT[]))",
        "pg_partition_ancestors(r) AS TABLE SELECT CAST(NULL AS BIGINT) AS relid, CAST(NULL AS BIGINT) AS depth "
        "WHERE false",
    ]


def _constraintdef(pretty: str) -> str:
    """pg_get_constraintdef's body: found by the oid alone (table oid * 1000 + n, see the module's
    docstring) in duckdb_constraints() or the table's mark, not in pgtls_constraints, which costs far more
    to plan (psql's ``\\d`` calls it in three queries)."""
    native = (
        "(SELECT list({'contype': "
        + _CONTYPE
        + ", 'cols': constraint_column_names, 'ref_schema': schema_name, "
        "'ref_table': referenced_table, 'ref_cols': referenced_column_names, 'upd': 'a', 'del': 'a', "
        "'deferrable': false, 'deferred': false, 'validated': true, 'bin': expression} ORDER BY constraint_index)"
        f"[o % 1000] FROM duckdb_constraints() WHERE table_oid = o // 1000 AND database_name <> '{CAT}' "
        "AND constraint_type IN ('PRIMARY KEY', 'UNIQUE', 'CHECK', 'FOREIGN KEY'))"
    )
    marked = (
        "(SELECT first({'contype': 'f', 'cols': fk.columns, 'ref_schema': fk.ref_schema, 'ref_table': fk.ref_table, "
        "'ref_cols': fk.ref_columns, 'upd': coalesce(fk.on_update, 'a'), 'del': coalesce(fk.on_delete, 'a'), "
        "'deferrable': coalesce(fk.deferrable, false), 'deferred': coalesce(fk.deferrable AND fk.deferred, false), "
        f"'validated': coalesce(fk.validated, true), 'bin': CAST(NULL AS VARCHAR)}}) FROM {FK_MARK_VIEW} "
        "WHERE table_oid = o // 1000 AND ord = o % 1000 - 900)"
    )
    cols = "array_to_string(list_transform(r.cols, lambda x: " + _q("x") + "), ', ')"
    ref_cols = "array_to_string(list_transform(r.ref_cols, lambda x: " + _q("x") + "), ', ')"
    action = ("CASE r.{0} WHEN 'r' THEN ' ON {1} RESTRICT' WHEN 'c' THEN ' ON {1} CASCADE' "
              "WHEN 'n' THEN ' ON {1} SET NULL' WHEN 'd' THEN ' ON {1} SET DEFAULT' ELSE '' END")  # fmt: skip
    ref_name = (
        "CASE WHEN list_contains(current_schemas(false), r.ref_schema) THEN '' ELSE "
        f"{_q('r.ref_schema')} || '.' END || {_q('r.ref_table')}"
    )
    fkdef = (
        f"'FOREIGN KEY (' || {cols} || ') REFERENCES ' || {ref_name} || '(' || {ref_cols} || ')' || "
        + action.format("upd", "UPDATE")
        + " || "
        + action.format("del", "DELETE")
        + " || "
        "CASE WHEN r.deferrable THEN ' DEFERRABLE' ELSE '' END || "
        "CASE WHEN r.deferred THEN ' INITIALLY DEFERRED' ELSE '' END || "
        "CASE WHEN r.validated THEN '' ELSE ' NOT VALID' END"
    )
    # pretty-printing a CHECK drops DuckDB's outer parentheses only (PostgreSQL drops every needless one)
    check = f"'CHECK (' || CASE WHEN {pretty} THEN {C}.pgtls_unparen(r.bin) ELSE {C}.pgtls_pgexpr(r.bin) END || ')'"
    return (
        f"(SELECT CASE r.contype WHEN 'p' THEN 'PRIMARY KEY (' || {cols} || ')' WHEN 'u' THEN 'UNIQUE (' || {cols} "
        f"|| ')' WHEN 'f' THEN {fkdef} WHEN 'c' THEN {check} END "
        f"FROM (SELECT CASE WHEN o % 1000 > 900 THEN {marked} ELSE {native} END AS r))"
    )


def _late_macros() -> list[str]:
    """Macros over the views."""
    return [
        f"pg_get_constraintdef(o) AS {_constraintdef('false')}, (o, p) AS {_constraintdef('p')}",
        f"pg_get_indexdef(i) AS (SELECT indexdef FROM {C}.pgtls_indexes WHERE indexrelid = i), "
        f"(i, c, p) AS (SELECT CASE WHEN c <> 0 THEN coalesce(keys[c], '') WHEN p THEN indexdef_pretty "
        f"ELSE indexdef END FROM {C}.pgtls_indexes WHERE indexrelid = i)",
        # x::regclass of a column (rewrite/pipeline.py): the relation's name, qualified when its schema is not on the path
        # (from DuckDB's lists, not pg_class, which costs more to plan; a constraint's index is not found)
        "pgtls_regclass(x) AS CASE WHEN TRY_CAST(x AS BIGINT) = 0 THEN '-' ELSE coalesce((SELECT CASE WHEN list_contains(current_schemas(false), s) THEN "
        f"{_q('r')} ELSE {_q('s')} || '.' || {_q('r')} END FROM (SELECT table_oid AS o, schema_name AS s, "
        f"table_name AS r FROM duckdb_tables() WHERE database_name <> '{CAT}' UNION ALL SELECT view_oid, "
        f"schema_name, view_name FROM duckdb_views() WHERE NOT internal AND database_name <> '{CAT}' UNION ALL "
        "SELECT index_oid, schema_name, index_name FROM duckdb_indexes() UNION ALL SELECT sequence_oid, "
        "schema_name, sequence_name FROM duckdb_sequences()) WHERE o = TRY_CAST(x AS BIGINT) LIMIT 1), "
        "CAST(x AS VARCHAR)) END",
        f"obj_description(o) AS (SELECT max(description) FROM {C}.pg_description WHERE objsubid = 0 AND objoid = "
        f"coalesce(TRY_CAST(o AS BIGINT), {C}.to_regclass(CAST(o AS VARCHAR)))), "
        f"(o, c) AS (SELECT max(description) FROM {C}.pg_description WHERE objsubid = 0 AND objoid = "
        f"coalesce(TRY_CAST(o AS BIGINT), {C}.to_regclass(CAST(o AS VARCHAR))))",
        f"col_description(o, n) AS (SELECT max(description) FROM {C}.pg_description WHERE objsubid = n AND "
        f"objoid = coalesce(TRY_CAST(o AS BIGINT), {C}.to_regclass(CAST(o AS VARCHAR))))",
    ]


# The tables a constraint or index may be on: every table but the catalog database's.
_TABLES = (
    "SELECT database_name, schema_name, schema_oid, table_name, table_oid, temporary FROM duckdb_tables() "
    f"WHERE database_name <> '{CAT}'"
)


def _column_maps(tables: str) -> str:
    """Per table of the subquery ``tables`` (table oids): lower-cased column name -> attnum, as ``m``.
    (Reading duckdb_columns() is the dear part of these views: only the tables that need it.)"""
    return (
        "SELECT table_oid, map_from_entries(list(struct_pack(k := lower(column_name), "
        "v := CAST(column_index AS SMALLINT)))) AS m FROM duckdb_columns() "
        f"WHERE NOT internal AND database_name <> '{CAT}' AND column_name IS NOT NULL AND table_oid IN ({tables}) "
        "GROUP BY table_oid"
    )


def _lower(xs: str) -> str:
    return f"list_transform({xs}, lambda x: lower(x))"


def _fk_marks_view() -> str:
    """The one reader of the ``pgtls:fk`` mark: a row per marked foreign key of a child table."""
    first_line = f"substr(split_part(comment, chr(10), 1), {len(FK_MARK) + 1})"
    return (
        f"CREATE VIEW {FK_MARK_VIEW} AS SELECT * EXCLUDE (fks) FROM (SELECT database_name, schema_name, "
        "schema_oid, table_name, table_oid, temporary, fks, CAST(unnest(range(1, len(fks) + 1)) AS INTEGER) AS ord, "
        "unnest(fks) AS fk FROM (SELECT database_name, schema_name, schema_oid, table_name, table_oid, temporary, "
        f"try(from_json({first_line}, '{FK_JSON_TYPE}')) AS fks FROM duckdb_tables() "
        f"WHERE starts_with(comment, '{FK_MARK}') AND database_name <> '{CAT}')) "
        "WHERE fk.name IS NOT NULL AND fk.ref_table IS NOT NULL AND len(fk.columns) > 0 "
        "AND len(fk.columns) = len(fk.ref_columns)"
    )


_CONTYPE = ("CASE constraint_type WHEN 'PRIMARY KEY' THEN 'p' WHEN 'UNIQUE' THEN 'u' WHEN 'CHECK' THEN 'c' "
            "ELSE 'f' END")  # fmt: skip
_LABEL = ("CASE constraint_type WHEN 'PRIMARY KEY' THEN 'pkey' WHEN 'UNIQUE' THEN 'key' WHEN 'CHECK' THEN 'check' "
          "ELSE 'fkey' END")  # fmt: skip
# the column part of the name: none for a primary key, the one column of a CHECK on one column
_NAME2 = ("CASE constraint_type WHEN 'PRIMARY KEY' THEN NULL WHEN 'CHECK' THEN "
          "CASE WHEN len(list_distinct(constraint_column_indexes)) = 1 THEN constraint_column_names[1] END "
          "ELSE array_to_string(constraint_column_names, '_') END")  # fmt: skip


def _key_constraints_view() -> str:
    """pgtls_key_constraints: DuckDB's own constraints, named as PostgreSQL names them, without reading
    duckdb_columns() (the constraint lists its columns' names and positions; a foreign key's referenced
    table and columns are matched in :func:`_constraints_view`).  DuckDB plans a view at every use, and
    planning costs by the expression: each is written once."""
    # a CHECK lists a column once per use; PostgreSQL's conkey has each once, in column order
    base = (
        f"SELECT database_name, schema_name, schema_oid, table_name, table_oid, constraint_index, {_CONTYPE} AS contype, "
        "expression, constraint_column_indexes AS idx0, constraint_column_names AS names0, "
        "CASE WHEN constraint_type = 'CHECK' THEN list_sort(list_distinct(constraint_column_indexes)) "
        "ELSE constraint_column_indexes END AS idx, referenced_table, referenced_column_names, "
        f"{_NAME2} AS name2, {_LABEL} AS label0 FROM duckdb_constraints() WHERE database_name <> '{CAT}' "
        "AND constraint_type IN ('PRIMARY KEY', 'UNIQUE', 'CHECK', 'FOREIGN KEY')"
    )
    # PostgreSQL numbers a name that is taken (t_a_check, t_a_check1, ...)
    numbered = (
        "SELECT *, row_number() OVER (PARTITION BY table_oid ORDER BY constraint_index) AS n, "
        "row_number() OVER (PARTITION BY table_oid, label0, name2 ORDER BY constraint_index) - 1 AS pass "
        f"FROM ({base})"
    )
    # makeObjectName cuts table_name2_label to NAMEDATALEN-1 characters by shortening the longer of table
    # and name2 one character at a time (l1, l2: their lengths, a: what the label leaves, c1: table's cut)
    sized = (
        "SELECT *, length(table_name) AS l1, coalesce(length(name2), 0) AS l2, 62 - length(label) - "
        "CASE WHEN name2 IS NULL THEN 0 ELSE 1 END AS a FROM (SELECT *, label0 || CASE WHEN pass > 0 "
        f"THEN CAST(pass AS VARCHAR) ELSE '' END AS label FROM ({numbered}))"
    )
    cut = (
        "SELECT *, CASE WHEN l1 + l2 <= a THEN l1 WHEN l1 - l2 >= l1 + l2 - a THEN a - l2 "
        f"WHEN l2 - l1 >= l1 + l2 - a - 1 THEN l1 ELSE (a + 1) // 2 END AS c1 FROM ({sized})"
    )
    return (
        f"CREATE VIEW {C}.pgtls_key_constraints AS SELECT table_oid * 1000 + n AS oid, left(table_name, c1) || "
        "CASE WHEN name2 IS NULL THEN '' ELSE '_' || left(name2, a - c1) END || '_' || label AS conname, "
        "schema_oid AS connamespace, contype, table_oid AS conrelid, "
        "CASE WHEN contype IN ('p', 'u') THEN table_oid * 1000 + 500 + n END AS own_index, "
        "list_transform(idx, lambda i: CAST(i + 1 AS SMALLINT)) AS conkey, "
        "list_transform(idx, lambda i: names0[list_position(idx0, i)]) AS colnames, "
        "CASE WHEN contype = 'c' THEN expression END AS conbin, referenced_table AS ref_table, "
        "CASE WHEN contype = 'f' THEN referenced_column_names END AS ref_colnames, database_name, schema_name, "
        f"table_name, database_name = 'temp' AS temporary FROM ({cut})"
    )


def _constraints_view() -> str:
    """pgtls_constraints: pg_constraint's columns plus what the def functions need: DuckDB's constraints and
    the marked foreign keys."""
    keys = (
        f"SELECT conrelid, own_index, contype, conkey, {_lower('colnames')} AS lnames, "
        f"list_sort({_lower('colnames')}) AS sorted FROM k WHERE contype IN ('p', 'u')"
    )
    # a foreign key's confkey and conindid come from the parent's key on the same columns (p before u)
    native = (
        "SELECT k.oid, k.conname, k.connamespace, k.contype, false AS condeferrable, false AS condeferred, "
        "true AS convalidated, k.conrelid, coalesce(k.own_index, pk.own_index, 0) AS conindid, k.confrelid, "
        "CASE WHEN k.contype = 'f' THEN 'a' ELSE ' ' END AS confupdtype, "
        "CASE WHEN k.contype = 'f' THEN 'a' ELSE ' ' END AS confdeltype, k.conkey, "
        "CASE WHEN k.contype = 'f' THEN list_transform(k.ref_colnames, "
        "lambda x: pk.conkey[list_position(pk.lnames, lower(x))]) END AS confkey, k.conbin, k.database_name, "
        "k.schema_name, k.table_name, k.temporary, k.colnames, k.ref_schema, k.ref_table, k.ref_colnames "
        "FROM k LEFT JOIN keys pk ON k.contype = 'f' AND pk.conrelid = k.confrelid "
        f"AND pk.sorted = list_sort({_lower('k.ref_colnames')}) "
        "QUALIFY row_number() OVER (PARTITION BY k.oid ORDER BY pk.contype) = 1"
    )
    # the parent of a marked foreign key: the table of that name in the child's database, in ref_schema if
    # it is there
    marks = (
        "SELECT f.*, p.table_oid AS ref_oid, p.schema_name AS ref_schema_found "
        f"FROM {FK_MARK_VIEW} f LEFT JOIN ({_TABLES}) p ON p.database_name = f.database_name "
        "AND lower(p.table_name) = lower(f.fk.ref_table) "
        "QUALIFY row_number() OVER (PARTITION BY f.table_oid, f.ord "
        "ORDER BY p.schema_name = f.fk.ref_schema DESC, p.schema_name) = 1"
    )
    cols = _column_maps("SELECT table_oid FROM marks UNION ALL SELECT ref_oid FROM marks")
    marked = (
        "SELECT m.table_oid * 1000 + 900 + m.ord AS oid, m.fk.name AS conname, m.schema_oid AS connamespace, "
        "'f' AS contype, coalesce(m.fk.deferrable, false) AS condeferrable, "
        "coalesce(m.fk.deferrable AND m.fk.deferred, false) AS condeferred, "
        "coalesce(m.fk.validated, true) AS convalidated, m.table_oid AS conrelid, "
        "coalesce(pk.own_index, 0) AS conindid, m.ref_oid AS confrelid, coalesce(m.fk.on_update, 'a') AS confupdtype, "
        "coalesce(m.fk.on_delete, 'a') AS confdeltype, "
        "list_transform(m.fk.columns, lambda x: c.m[coalesce(lower(x), '')]) AS conkey, "
        "list_transform(m.fk.ref_columns, lambda x: pc.m[coalesce(lower(x), '')]) AS confkey, "
        "CAST(NULL AS VARCHAR) AS conbin, m.database_name, m.schema_name, m.table_name, m.temporary, "
        "m.fk.columns AS colnames, coalesce(m.ref_schema_found, m.fk.ref_schema) AS ref_schema, "
        "m.fk.ref_table AS ref_table, m.fk.ref_columns AS ref_colnames "
        "FROM marks m LEFT JOIN cols c ON c.table_oid = m.table_oid LEFT JOIN cols pc ON pc.table_oid = m.ref_oid "
        f"LEFT JOIN keys pk ON pk.conrelid = m.ref_oid AND pk.sorted = list_sort({_lower('m.fk.ref_columns')}) "
        "QUALIFY row_number() OVER (PARTITION BY m.table_oid, m.ord ORDER BY pk.contype) = 1"
    )
    return (
        f"CREATE VIEW {C}.pgtls_constraints AS WITH k AS (SELECT k.*, p.table_oid AS confrelid, "
        f"p.schema_name AS ref_schema FROM {C}.pgtls_key_constraints k LEFT JOIN ({_TABLES}) p ON k.contype = 'f' "
        "AND p.database_name = k.database_name AND p.schema_name = k.schema_name AND p.table_name = k.ref_table), "
        f"keys AS ({keys}), "
        f"marks AS ({marks}), cols AS ({cols}) SELECT * FROM ({native}) UNION ALL SELECT * FROM ({marked})"
    )


PG_CONSTRAINT_COLUMNS = (
    "oid, conname, connamespace, contype, condeferrable, condeferred, convalidated, conrelid, "
    "CAST(0 AS BIGINT) AS contypid, conindid, CAST(0 AS BIGINT) AS conparentid, coalesce(confrelid, 0) AS confrelid, "
    "confupdtype, confdeltype, CASE WHEN contype = 'f' THEN 's' ELSE ' ' END AS confmatchtype, "
    "true AS conislocal, 0 AS coninhcount, contype <> 'c' AS connoinherit, conkey, confkey, "
    "CAST(NULL AS UINTEGER[]) AS conpfeqop, CAST(NULL AS UINTEGER[]) AS conppeqop, "
    "CAST(NULL AS UINTEGER[]) AS conffeqop, CAST(NULL AS SMALLINT[]) AS confdelsetcols, "
    "CAST(NULL AS UINTEGER[]) AS conexclop, conbin"
)


_DUCK_INDEXES = (
    "SELECT i.database_name, i.schema_name, i.schema_oid, i.index_name AS relname, i.index_oid AS indexrelid, "
    "i.table_name, i.table_oid AS indrelid, i.is_unique AS indisunique, false AS indisprimary, t.temporary, "
    "coalesce(TRY_CAST(i.expressions AS VARCHAR[]), []) AS ks, CAST(NULL AS SMALLINT[]) AS conkey "
    f"FROM duckdb_indexes() i JOIN ({_TABLES}) t ON t.table_oid = i.table_oid AND t.database_name = i.database_name"
)
# the index of a PRIMARY KEY / UNIQUE constraint, from pgtls_key_constraints rows ``k``
_KEY_INDEXES = (
    "SELECT database_name, schema_name, connamespace AS schema_oid, conname AS relname, own_index AS indexrelid, "
    "table_name, conrelid AS indrelid, true AS indisunique, contype = 'p' AS indisprimary, temporary, "
    "colnames AS ks, conkey FROM k WHERE contype IN ('p', 'u')"
)


def _index_rels_view() -> str:
    """pgtls_index_rels: every index relation, DuckDB's (keys as DuckDB prints them) and one per PRIMARY KEY /
    UNIQUE constraint (their columns' names), without reading duckdb_columns()."""
    return (
        f"CREATE VIEW {C}.pgtls_index_rels AS WITH k AS (SELECT * FROM {C}.pgtls_key_constraints) "
        f"SELECT * FROM ({_DUCK_INDEXES}) UNION ALL SELECT * FROM ({_KEY_INDEXES})"
    )


def _indexes_view() -> str:
    """pgtls_indexes: pg_index's columns plus the key texts and definitions (pg_get_indexdef)."""
    rels = f"SELECT * FROM {C}.pgtls_index_rels"
    cols = _column_maps("SELECT indrelid FROM rels WHERE conkey IS NULL")
    each = "SELECT * EXCLUDE (ks), unnest(ks) AS k, unnest(range(1, len(ks) + 1)) AS pos FROM rels"
    resolved = (
        f"SELECT e.*, coalesce(e.conkey[e.pos], cm.m[lower({C}.pgtls_unquote(e.k))], 0) AS attnum, "
        "e.conkey IS NOT NULL AS plain FROM each e LEFT JOIN cols cm ON cm.table_oid = e.indrelid"
    )
    # a constraint's keys are column names; DuckDB prints a column as it is named (quoted if need be) and an
    # expression in parentheses
    texts = (
        f"SELECT *, CASE WHEN plain THEN {_q('k')} WHEN attnum > 0 THEN {_q(C + '.pgtls_unquote(k)')} "
        f"ELSE {C}.pgtls_unparen(k) END AS keytext FROM resolved"
    )
    grouped = (
        "SELECT database_name, schema_name, schema_oid, relname, indexrelid, table_name, indrelid, indisunique, "
        "indisprimary, temporary, list(CAST(attnum AS USMALLINT) ORDER BY pos) AS indkey, "
        "list(keytext ORDER BY pos) AS keys, "
        f"list(CASE WHEN attnum > 0 OR {C}.pgtls_funclike(keytext) THEN keytext ELSE '(' || keytext || ')' END "
        "ORDER BY pos) AS defkeys, CASE WHEN bool_or(attnum = 0) THEN "
        "array_to_string(list(keytext ORDER BY pos) FILTER (WHERE attnum = 0), ', ') END AS indexprs "
        "FROM texts GROUP BY ALL"
    )
    # CREATE INDEX name ON schema.table ... (pretty-printing leaves out a schema on the search path)
    head = (
        "'CREATE ' || CASE WHEN indisunique THEN 'UNIQUE ' ELSE '' END || 'INDEX ' || "
        + _q("relname")
        + " || ' ON '"
    )
    tail = _q("table_name") + " || ' USING btree (' || array_to_string(defkeys, ', ') || ')'"
    return (
        f"CREATE VIEW {C}.pgtls_indexes AS WITH rels AS ({rels}), cols AS ({cols}), each AS ({each}), "
        f"resolved AS ({resolved}), texts AS ({texts}) SELECT *, {head} || {_q('schema_name')} || '.' || {tail} "
        f"AS indexdef, {head} || CASE WHEN list_contains(current_schemas(false), schema_name) THEN '' "
        f"ELSE {_q('schema_name')} || '.' END || {tail} AS indexdef_pretty FROM ({grouped})"
    )


PG_INDEX_COLUMNS = (
    "indexrelid, indrelid, CAST(len(indkey) AS SMALLINT) AS indnatts, CAST(len(indkey) AS SMALLINT) AS indnkeyatts, "
    "indisunique, false AS indnullsnotdistinct, indisprimary, false AS indisexclusion, true AS indimmediate, "
    "false AS indisclustered, true AS indisvalid, false AS indcheckxmin, true AS indisready, true AS indislive, "
    "false AS indisreplident, indkey, CAST(list_transform(indkey, lambda x: 0) AS UINTEGER[]) AS indcollation, "
    "CAST(list_transform(indkey, lambda x: 0) AS UINTEGER[]) AS indclass, "
    "array_to_string(list_transform(indkey, lambda x: 0), ' ') AS indoption, indexprs, "
    "CAST(NULL AS VARCHAR) AS indpred"
)


def pg_class_sql(extra: str) -> str:
    """pg_class: DuckDB's tables, views and sequences (``extra``: shims.py's columns DuckDB lacks; heap;
    relhastriggers where a foreign key is, as PostgreSQL's foreign-key triggers are: psql's ``\\d`` shows
    foreign keys only then) and a row for each index (as pgtls_index_rels) instead of DuckDB's (which lack
    the constraints')."""
    fk = f"FROM duckdb_tables() WHERE starts_with(comment, '{FK_MARK}')"
    parents = (
        f"json_extract_string(substr(split_part(comment, chr(10), 1), {len(FK_MARK) + 1}), '$[*].ref_table')"
    )
    fk_tables = (
        "(SELECT table_oid FROM duckdb_constraints() WHERE constraint_type = 'FOREIGN KEY' UNION ALL "
        "SELECT t.table_oid FROM duckdb_constraints() c JOIN duckdb_tables() t ON t.database_name = c.database_name "
        "AND t.schema_name = c.schema_name AND t.table_name = c.referenced_table "
        f"WHERE c.constraint_type = 'FOREIGN KEY' UNION ALL SELECT table_oid {fk} UNION ALL "
        f"SELECT t.table_oid FROM (SELECT database_name, unnest({parents}) AS r {fk}) m "
        "JOIN duckdb_tables() t ON t.database_name = m.database_name AND lower(t.table_name) = lower(m.r))"
    )
    tables = (
        "SELECT * EXCLUDE (relisshared, relhassubclass, reloptions, relacl) REPLACE ("
        f"CASE WHEN relkind = 'r' THEN {HEAP} ELSE relam END AS relam, "
        "CASE WHEN relkind = 'r' THEN 'd' ELSE 'n' END AS relreplident, "
        f"relkind = 'r' AND oid IN {fk_tables} AS relhastriggers), {extra} "
        f"FROM pg_catalog.pg_class WHERE relkind <> 'i' AND relnamespace NOT IN "
        f"(SELECT oid FROM duckdb_schemas() WHERE database_name = '{CAT}')"
    )
    indexes = (
        "SELECT indexrelid AS oid, relname, schema_oid AS relnamespace, 0 AS reltype, 0 AS reloftype, 0 AS relowner, "
        f"{BTREE} AS relam, 0 AS relfilenode, 0 AS reltablespace, 0 AS relpages, CAST(0 AS FLOAT) AS reltuples, "
        "0 AS relallvisible, 0 AS reltoastrelid, 0 AS reltoastidxid, false AS relhasindex, "
        "CASE WHEN temporary THEN 't' ELSE 'p' END AS relpersistence, 'i' AS relkind, len(ks) AS relnatts, "
        "0 AS relchecks, false AS relhasoids, false AS relhaspkey, false AS relhasrules, false AS relhastriggers, "
        "false AS relrowsecurity, true AS relispopulated, 'n' AS relreplident, false AS relispartition, "
        "0 AS relrewrite, 0 AS relfrozenxid, NULL AS relminmxid, NULL AS relpartbound, "
        f"{extra} FROM (SELECT * FROM ({_DUCK_INDEXES}) UNION ALL SELECT * FROM ({_KEY_INDEXES}))"
    )
    return (
        f"CREATE VIEW {C}.pg_class AS WITH k AS (SELECT * FROM {C}.pgtls_key_constraints) "
        f"{tables} UNION ALL BY NAME {indexes}"
    )


def constraint_sql(pg_class_extra: str) -> list[str]:
    """The CREATE statements of this module's macros and views, pg_class among them (after shims.py's
    quote_ident, to_regclass, pg_namespace and pg_description)."""
    sql = [f"CREATE MACRO {C}.{m}" for m in _macros()]
    sql.append(_fk_marks_view())
    sql.append(_key_constraints_view())
    sql.append(_constraints_view())
    sql.append(f"CREATE VIEW {C}.pg_constraint AS SELECT {PG_CONSTRAINT_COLUMNS} FROM {C}.pgtls_constraints")
    sql.append(_index_rels_view())
    sql.append(_indexes_view())
    sql.append(f"CREATE VIEW {C}.pg_index AS SELECT {PG_INDEX_COLUMNS} FROM {C}.pgtls_indexes")
    sql.append(
        f"CREATE VIEW {C}.pg_indexes AS SELECT schema_name AS schemaname, table_name AS tablename, "
        "relname AS indexname, CAST(NULL AS VARCHAR) AS tablespace, indexdef "
        f"FROM {C}.pgtls_indexes"
    )
    am = ", ".join(f"({o}, '{n}', '{h}', '{t}')" for o, n, h, t in PG_AM)
    sql.append(f"CREATE VIEW {C}.pg_am AS SELECT * FROM (VALUES {am}) AS t(oid, amname, amhandler, amtype)")
    sql.append(pg_class_sql(pg_class_extra))
    sql += [f"CREATE MACRO {C}.{m}" for m in _late_macros()]
    return sql
