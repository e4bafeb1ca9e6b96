"""Foreign keys that DuckDB cannot hold, kept and enforced by pgtls.

DuckDB's own FOREIGN KEY is checked at once, has no referential actions (``ON DELETE CASCADE``, ``SET
NULL``, ``SET DEFAULT``), cannot be added to an existing table, and refuses to delete a parent row in the
transaction that deleted its children.  PostgreSQL applications declare foreign keys in all those ways:
Django makes every one ``DEFERRABLE INITIALLY DEFERRED`` and adds it with ``ALTER TABLE``.  So a foreign key
that is DEFERRABLE, has a referential action, or is added by ALTER TABLE is not given to DuckDB; pgtls
keeps it and checks it itself:

* **Storage.**  The child table's comment starts with the line ``pgtls:fk [ ... ]``: a JSON list of
  :class:`ForeignKey` records (then, after a newline, the user's own comment, if any).  A comment is
  transactional DDL in DuckDB, travels with the table through renames and ALTER TABLE rebuilds, and is
  gone with the table.  pg_constraint shows these rows like PostgreSQL's (catalog/shims.py); obj_description()
  does not show the mark.
* **When.**  After each statement that may write a table of such a foreign key (its name appears in the
  statement: DuckDB has no triggers and its views cannot be written through), in the statement's
  transaction: referential actions first (a parent row deleted or its key changed: the orphaned child rows
  are deleted, or their keys set to NULL or to their defaults), then the checks of the keys that are not
  deferred.  Deferred ones (``INITIALLY DEFERRED``, or ``SET CONSTRAINTS ... DEFERRED``) are checked at
  COMMIT, and at ``SET CONSTRAINTS ... IMMEDIATE``.  A failed check is 23503 with PostgreSQL's message
  and detail; the statement (or the COMMIT) fails as in PostgreSQL.
* **How.**  A check is one anti-join of the child table against the parent table: its cost grows with
  the tables, not with the rows the statement changed (about 0.1 s for a million rows on each side).  A
  child table is checked only after a statement that may add or change rows of it, a parent table only
  after one that may delete or change rows of it.

Limits: ``ON UPDATE CASCADE`` is refused (0A000: the new key of a changed parent row is not known after
the statement); MATCH FULL is checked as MATCH SIMPLE; a cascade also removes child rows that the same
transaction inserted as orphans of a deferred key (PostgreSQL would fail at COMMIT instead); two
transactions at the same time can leave an orphan between them (each check sees its own snapshot, where
PostgreSQL locks the parent row).
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import duckdb

from pgtls.backends.embedded.engine.hooks import HOOKS
from pgtls.backends.embedded.sql.lexer import (
    Token,
    quote_ident,
    quote_literal,
    string_value,
    tokens,
    unquote_ident,
    words_at,
)
from pgtls.errors import PgError

MARK = "pgtls:fk "
_ACTIONS = {"NO ACTION": "a", "RESTRICT": "r", "CASCADE": "c", "SET NULL": "n", "SET DEFAULT": "d"}
ACTION_NAMES = {v: k for k, v in _ACTIONS.items()}
_MAX_CASCADE_ROUNDS = 1000  # a self-referencing tree of that depth
MAX_EXEMPT_KEYS = 1000  # orphaned keys an ADD ... NOT VALID may leave

_lock = threading.Lock()
_generation = 0  # bumped by DDL of any session (and by the end of a transaction that ran DDL)


def bump() -> None:
    """Some session changed a table definition: cached foreign key lists are read again."""
    global _generation
    with _lock:
        _generation += 1


# --- the records -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ForeignKey:
    name: str
    columns: tuple[str, ...]
    ref_schema: str
    ref_table: str
    ref_columns: tuple[str, ...]
    on_update: str = "a"  # PostgreSQL's confupdtype / confdeltype codes: a r c n d
    on_delete: str = "a"
    deferrable: bool = False
    deferred: bool = False  # INITIALLY DEFERRED
    validated: bool = True
    exempt: tuple[tuple[str | None, ...], ...] = ()  # orphaned keys that were there at ADD ... NOT VALID
    # where the child table is (not stored: the comment is on it)
    database: str = ""
    schema: str = ""
    table: str = ""

    def record(self) -> dict[str, Any]:
        return {"name": self.name, "columns": list(self.columns), "ref_schema": self.ref_schema,
                "ref_table": self.ref_table, "ref_columns": list(self.ref_columns), "on_update": self.on_update,
                "on_delete": self.on_delete, "deferrable": self.deferrable, "deferred": self.deferred,
                "validated": self.validated, **({"exempt": [list(k) for k in self.exempt]} if self.exempt else {})}  # fmt: skip

    @staticmethod
    def from_record(r: dict[str, Any], database: str = "", schema: str = "", table: str = "") -> ForeignKey:
        return ForeignKey(str(r["name"]), tuple(map(str, r["columns"])), str(r["ref_schema"]), str(r["ref_table"]),
                          tuple(map(str, r["ref_columns"])), str(r.get("on_update", "a")),
                          str(r.get("on_delete", "a")), bool(r.get("deferrable")), bool(r.get("deferred")),
                          bool(r.get("validated", True)),
                          tuple(tuple(None if v is None else str(v) for v in k) for k in r.get("exempt") or ()),
                          database=database, schema=schema, table=table)  # fmt: skip

    def child(self) -> str:
        return f"{quote_ident(self.database)}.{quote_ident(self.schema)}.{quote_ident(self.table)}"

    def parent(self) -> str:
        return f"{quote_ident(self.database)}.{quote_ident(self.ref_schema)}.{quote_ident(self.ref_table)}"

    def key(self) -> tuple[str, str, str, str]:
        return (self.database, self.schema.lower(), self.table.lower(), self.name.lower())


def split_comment(comment: str | None) -> tuple[list[ForeignKey], str | None]:
    """The foreign keys marked in a table comment, and the user's own comment."""
    if not comment or not comment.startswith(MARK):
        return [], comment
    line, _, rest = comment.partition("\n")
    try:
        records = json.loads(line[len(MARK) :])
        fks = [ForeignKey.from_record(r) for r in records]
    except (ValueError, KeyError, TypeError):
        return [], rest or None
    return fks, rest or None


def join_comment(fks: list[ForeignKey], user: str | None) -> str | None:
    if not fks:
        return user
    line = MARK + json.dumps([fk.record() for fk in fks], separators=(",", ":"))
    return line + ("\n" + user if user else "")


def comment_statement(database: str, schema: str, table: str, comment: str | None) -> str:
    target = f"{quote_ident(database)}.{quote_ident(schema)}.{quote_ident(table)}"
    return f"COMMENT ON TABLE {target} IS {quote_literal(comment) if comment else 'NULL'}"


def read_all(cur: duckdb.DuckDBPyConnection) -> list[ForeignKey]:
    """Every foreign key pgtls keeps, in the databases ``cur`` sees (its own transaction included)."""
    rows = cur.execute("SELECT database_name, schema_name, table_name, comment FROM duckdb_tables() "
                       "WHERE starts_with(comment, ?) AND database_name <> 'pgtls_cat'", [MARK]).fetchall()  # fmt: skip
    out: list[ForeignKey] = []
    for db, schema, table, comment in rows:
        fks, _ = split_comment(comment)
        out += [replace(fk, database=db, schema=schema, table=table) for fk in fks]
    return out


def referencing(fks: list[ForeignKey], database: str, schema: str, table: str) -> list[ForeignKey]:
    """The foreign keys whose parent is that table."""
    return [fk for fk in fks if fk.database == database and fk.ref_schema.lower() == schema.lower()
            and fk.ref_table.lower() == table.lower()]  # fmt: skip


def _without(gone: set[str], keys: list[ForeignKey]) -> list[ForeignKey]:
    return [k for k in keys if k.name.lower() not in gone]


def restate(
    cur: duckdb.DuckDBPyConnection,
    database: str,
    schema: str,
    table: str,
    change: Callable[[list[ForeignKey]], list[ForeignKey]],
) -> str | None:
    """The COMMENT statement that applies ``change`` to the kept foreign keys of a table, if it changes them."""
    rows = _fetch(cur, "SELECT comment FROM duckdb_tables() WHERE database_name = ? AND schema_name = ? "
                       "AND table_name = ?", [database, schema, table])  # fmt: skip
    if not rows:
        return None
    fks, user = split_comment(rows[0][0])
    new = change(fks)
    if new == fks:
        return None
    return comment_statement(database, schema, table, join_comment(new, user))


def _by_table(fks: list[ForeignKey]) -> dict[tuple[str, str, str], list[ForeignKey]]:
    out: dict[tuple[str, str, str], list[ForeignKey]] = {}
    for fk in fks:
        out.setdefault((fk.database, fk.schema, fk.table), []).append(fk)
    return out


def drop_statements(cur: duckdb.DuckDBPyConnection, victims: list[ForeignKey]) -> list[str]:
    """The statements that drop these kept foreign keys."""
    out: list[str] = []
    for (db, schema, table), fks in _by_table(victims).items():
        stmt = restate(cur, db, schema, table, functools.partial(_without, {fk.name.lower() for fk in fks}))
        if stmt:
            out.append(stmt)
    return out


def rename_statements(
    cur: duckdb.DuckDBPyConnection,
    database: str,
    schema: str,
    table: str,
    new_table: str | None = None,
    column: tuple[str, str] | None = None,
) -> list[str]:
    """After a parent table or one of its columns is renamed: the statements that rename it in the kept
    foreign keys of the other tables that reference it."""
    out: list[str] = []
    users = [
        fk for fk in referencing(read_all(cur), database, schema, table) if fk.table.lower() != table.lower()
    ]

    def change(keys: list[ForeignKey]) -> list[ForeignKey]:
        res = []
        for k in keys:
            if k.ref_schema.lower() == schema.lower() and k.ref_table.lower() == table.lower():
                if new_table is not None:
                    k = replace(k, ref_table=new_table)
                if column is not None:
                    k = replace(k, ref_columns=tuple(column[1] if c.lower() == column[0].lower() else c
                                                     for c in k.ref_columns))  # fmt: skip
            res.append(k)
        return res

    for db, sch, tbl in _by_table(users):
        stmt = restate(cur, db, sch, tbl, change)
        if stmt:
            out.append(stmt)
    return out


def comment_on_table(cur: duckdb.DuckDBPyConnection, sql: str) -> str:
    """``COMMENT ON TABLE t IS '...' | NULL`` of a table with kept foreign keys keeps their mark in front
    of the user's text."""
    toks = tokens(sql)
    w = [t.text.upper() for t in toks]
    if w[:3] != ["COMMENT", "ON", "TABLE"] or "IS" not in w:
        return sql
    k = w.index("IS")
    names = [unquote_ident(t.text) for t in toks[3:k] if t.kind in ("word", "ident")]
    if not names or k + 1 >= len(toks):
        return sql
    rows = _fetch(cur, "SELECT comment FROM duckdb_tables() WHERE lower(table_name) = lower(?) AND "
                       "(? IS NULL OR lower(schema_name) = lower(?)) AND starts_with(comment, ?)",
                  [names[-1], names[-2] if len(names) > 1 else None, names[-2] if len(names) > 1 else None, MARK])  # fmt: skip
    if not rows:
        return sql
    fks, _ = split_comment(rows[0][0])
    val = toks[k + 1]
    text = string_value(val.text) if val.kind == "string" else None
    return sql[: val.start] + quote_literal(join_comment(fks, text or None) or "") + sql[val.end :]


# --- REFERENCES clauses ----------------------------------------------------------------------------------


@dataclass
class References:
    """A parsed ``REFERENCES parent [(cols)] [MATCH ...] [ON DELETE|UPDATE action] [[NOT] DEFERRABLE]
    [INITIALLY DEFERRED|IMMEDIATE] [NOT VALID]`` clause."""

    schema: str | None
    table: str
    columns: list[str]
    on_update: str = "a"
    on_delete: str = "a"
    deferrable: bool = False
    deferred: bool = False
    not_valid: bool = False
    end: int = 0  # index after the clause

    def emulated(self) -> bool:
        """Whether DuckDB cannot hold it (pgtls keeps it)."""
        return self.deferrable or self.on_update not in "ar" or self.on_delete not in "ar"


def parse_references(toks: list[Token], i: int, b: int) -> References | None:
    """The REFERENCES clause at toks[i] (up to toks[b]), or None if it is not one this parser knows."""
    if not words_at(toks, i, "REFERENCES"):
        return None
    j = i + 1
    parts: list[str] = []
    while j < b and toks[j].kind in ("word", "ident"):
        parts.append(unquote_ident(toks[j].text))
        if j + 1 < b and toks[j + 1].text == ".":
            j += 2
            continue
        j += 1
        break
    if not parts:
        return None
    ref = References(parts[-2] if len(parts) > 1 else None, parts[-1], [])
    if j < b and toks[j].text == "(":
        j += 1
        while j < b and toks[j].text != ")":
            if toks[j].kind in ("word", "ident"):
                ref.columns.append(unquote_ident(toks[j].text))
            elif toks[j].text != ",":
                return None
            j += 1
        j += 1
    while j < b:
        if words_at(toks, j, "MATCH"):
            j += 2
        elif words_at(toks, j, "ON") and j + 1 < b and toks[j + 1].text.upper() in ("DELETE", "UPDATE"):
            which = toks[j + 1].text.upper()
            j += 2
            action = next((a for a in _ACTIONS if words_at(toks, j, *a.split())), None)
            if action is None:
                return None
            j += len(action.split())
            if which == "DELETE":
                ref.on_delete = _ACTIONS[action]
            else:
                ref.on_update = _ACTIONS[action]
        elif words_at(toks, j, "NOT", "DEFERRABLE"):
            ref.deferrable = False
            j += 2
        elif words_at(toks, j, "DEFERRABLE"):
            ref.deferrable = True
            j += 1
        elif words_at(toks, j, "INITIALLY", "DEFERRED") or words_at(toks, j, "INITIALLY", "IMMEDIATE"):
            ref.deferred = toks[j + 1].text.upper() == "DEFERRED"
            j += 2
        elif words_at(toks, j, "NOT", "VALID"):
            ref.not_valid = True
            j += 2
        else:
            break
    ref.end = j
    return ref


def _fetch(cur: duckdb.DuckDBPyConnection, sql: str, params: list[object]) -> list[tuple[Any, ...]]:
    return cur.execute(sql, params).fetchall()


def resolve(
    cur: duckdb.DuckDBPyConnection,
    name: str | None,
    child: tuple[str, str, str],
    local: list[str],
    ref: References,
) -> ForeignKey:
    """The foreign key ``local`` -> ``ref`` of table ``child`` (database, schema, table), checked as
    PostgreSQL checks it (the parent and its columns exist, the columns are its primary key or unique)."""
    db, schema, table = child
    if ref.deferred and not ref.deferrable:
        raise PgError("42601", "constraint declared INITIALLY DEFERRED must be DEFERRABLE")
    if ref.on_update == "c":
        raise PgError("0A000", "ON UPDATE CASCADE is not supported",
                      hint="pgtls enforces this foreign key itself and cannot follow a changed key; "
                           "use ON UPDATE NO ACTION, RESTRICT, SET NULL or SET DEFAULT.")  # fmt: skip
    found = _fetch(cur, "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ? AND "
                        "lower(table_name) = lower(?) AND (? IS NULL OR lower(schema_name) = lower(?))",
                   [db, ref.table, ref.schema, ref.schema])  # fmt: skip
    if not found:
        shown = f"{ref.schema}.{ref.table}" if ref.schema else ref.table
        raise PgError("42P01", f'relation "{shown}" does not exist')
    found.sort(key=lambda r: r[0].lower() != schema.lower())
    p_schema, p_table = found[0]
    where = "database_name = ? AND schema_name = ? AND table_name = ?"
    pcols = [r[0] for r in _fetch(cur, f"SELECT column_name FROM duckdb_columns() WHERE {where} "
                                       "ORDER BY column_index", [db, p_schema, p_table])]  # fmt: skip
    keys: list[list[str]] = []
    primary: list[str] = []
    for kind, names in _fetch(cur, f"SELECT constraint_type, constraint_column_names FROM duckdb_constraints() "
                                   f"WHERE {where} AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')",
                              [db, p_schema, p_table]):  # fmt: skip
        keys.append([str(c) for c in names])
        if kind == "PRIMARY KEY":
            primary = keys[-1]
    for (sql,) in _fetch(
        cur, f"SELECT sql FROM duckdb_indexes() WHERE {where} AND is_unique", [db, p_schema, p_table]
    ):
        k = _plain_index_columns(str(sql or ""))
        if k:
            keys.append(k)
    if not ref.columns:
        if not primary:
            raise PgError("42704", f'there is no primary key for referenced table "{p_table}"')
        refcols = list(primary)
    else:
        refcols = []
        for c in ref.columns:
            hit = next((pc for pc in pcols if pc.lower() == c.lower()), None)
            if hit is None:
                raise PgError("42703", f'column "{c}" referenced in foreign key constraint does not exist')
            refcols.append(hit)
    if len(refcols) != len(local):
        raise PgError("42830", "number of referencing and referenced columns for foreign key disagree")
    wanted = sorted(c.lower() for c in refcols)
    if not any(sorted(c.lower() for c in k) == wanted for k in keys):
        raise PgError(
            "42830", f'there is no unique constraint matching given keys for referenced table "{p_table}"'
        )
    fk_name = name or f"{table}_{'_'.join(local)}_fkey"
    _check_types(cur, fk_name, (db, schema, table), local, (db, p_schema, p_table), refcols)
    return ForeignKey(fk_name, tuple(local), p_schema, p_table, tuple(refcols), ref.on_update, ref.on_delete,
                      ref.deferrable, ref.deferred, not ref.not_valid, database=db, schema=schema, table=table)  # fmt: skip


_NUMERIC = {"int2", "int4", "int8", "numeric", "float4", "float8"}
_TEXT = {"text", "varchar", "bpchar", "name"}
_SHOWN = {"int2": "smallint", "int4": "integer", "int8": "bigint", "float4": "real", "float8": "double precision",
          "varchar": "character varying", "bpchar": "character", "bool": "boolean",
          "timestamp": "timestamp without time zone", "timestamptz": "timestamp with time zone",
          "time": "time without time zone", "timetz": "time with time zone"}  # fmt: skip


def _check_types(
    cur: duckdb.DuckDBPyConnection,
    name: str,
    child: tuple[str, str, str],
    local: list[str],
    parent: tuple[str, str, str],
    refcols: list[str],
) -> None:
    """42804 where PostgreSQL has no equality operator between a key column and the column it references
    (numbers with numbers, strings with strings, anything else with its own type)."""
    from pgtls.backends.embedded.pgtypes.typemap import pg_type_of

    def types(where: tuple[str, str, str], cols: list[str]) -> list[str | None]:
        rows = dict(_fetch(cur, "SELECT lower(column_name), data_type FROM duckdb_columns() WHERE database_name = ? "
                                "AND schema_name = ? AND table_name = ?", list(where)))  # fmt: skip
        return [pg_type_of(str(rows[c.lower()]))[0].name if c.lower() in rows else None for c in cols]

    for c, p, a, b in zip(local, refcols, types(child, local), types(parent, refcols), strict=True):
        if (
            a is None
            or b is None
            or a == b
            or (a in _NUMERIC and b in _NUMERIC)
            or (a in _TEXT and b in _TEXT)
        ):
            continue  # (a column this ALTER TABLE adds is not there yet)
        raise PgError("42804", f'foreign key constraint "{name}" cannot be implemented',
                      detail=f'Key columns "{c}" and "{p}" are of incompatible types: {_SHOWN.get(a, a)} and '
                             f"{_SHOWN.get(b, b)}.")  # fmt: skip


def _plain_index_columns(sql: str) -> list[str]:
    """The columns of ``CREATE UNIQUE INDEX name ON t(a, b)`` when every key is a plain column."""
    toks = tokens(sql)
    try:
        start = next(i for i, t in enumerate(toks) if t.text == "(")
    except StopIteration:
        return []
    cols: list[str] = []
    expect_name = True
    for t in toks[start + 1 :]:
        if t.text == ")":
            return cols
        if expect_name and t.kind in ("word", "ident"):
            cols.append(unquote_ident(t.text))
            expect_name = False
        elif not expect_name and t.text == ",":
            expect_name = True
        else:
            return []
    return []


# --- checks ---------------------------------------------------------------------------------------------


def _orphans_where(fk: ForeignKey) -> str:
    not_null = " AND ".join(f"pgtls_c.{quote_ident(c)} IS NOT NULL" for c in fk.columns)
    match = " AND ".join(f"pgtls_p.{quote_ident(p)} = pgtls_c.{quote_ident(c)}"
                         for c, p in zip(fk.columns, fk.ref_columns, strict=True))  # fmt: skip
    where = f"{not_null} AND NOT EXISTS (SELECT 1 FROM {fk.parent()} AS pgtls_p WHERE {match})"
    if fk.exempt:
        listed = ", ".join("[" + ", ".join("NULL" if v is None else quote_literal(v) for v in k) + "]"
                           for k in fk.exempt)  # fmt: skip
        where += f" AND [{_key_texts(fk)}] NOT IN ({listed})"
    return where


def _key_texts(fk: ForeignKey) -> str:
    return ", ".join(f"CAST(pgtls_c.{quote_ident(c)} AS VARCHAR)" for c in fk.columns)


def orphan_query(fk: ForeignKey, limit: int = 1) -> str:
    """Child rows (their keys as text) whose key no parent row has."""
    return f"SELECT DISTINCT {_key_texts(fk)} FROM {fk.child()} AS pgtls_c WHERE {_orphans_where(fk)} LIMIT {limit}"


def orphans(cur: duckdb.DuckDBPyConnection, fk: ForeignKey, limit: int) -> list[tuple[str | None, ...]]:
    return [tuple(r) for r in cur.execute(orphan_query(fk, limit)).fetchall()]


def action_statement(fk: ForeignKey, action: str) -> str | None:
    """What a referential action does to the children of deleted or changed parent rows."""
    where = _orphans_where(fk)
    if action == "c":
        return f"DELETE FROM {fk.child()} AS pgtls_c WHERE {where}"
    if action in ("n", "d"):
        value = "NULL" if action == "n" else "DEFAULT"
        sets = ", ".join(f"{quote_ident(c)} = {value}" for c in fk.columns)
        return f"UPDATE {fk.child()} AS pgtls_c SET {sets} WHERE {where}"
    return None


def _key_text(cols: tuple[str, ...], values: tuple[Any, ...]) -> str:
    shown = ", ".join("null" if v is None else str(v) for v in values)
    return f"Key ({', '.join(cols)})=({shown})"


def violation(fk: ForeignKey, values: tuple[Any, ...], child_side: bool) -> PgError:
    """PostgreSQL's error for an orphaned child row, as the side that made it reports it."""
    if child_side:
        return PgError(
            "23503",
            f'insert or update on table "{fk.table}" violates foreign key constraint "{fk.name}"',
            detail=f'{_key_text(fk.columns, values)} is not present in table "{fk.ref_table}".',
        )
    return PgError("23503", f'update or delete on table "{fk.ref_table}" violates foreign key constraint '
                            f'"{fk.name}" on table "{fk.table}"',
                   detail=f'{_key_text(fk.ref_columns, values)} is still referenced from table "{fk.table}".')  # fmt: skip


def check(cur: duckdb.DuckDBPyConnection, fk: ForeignKey, child_side: bool) -> None:
    """Raise 23503 if a child row of ``fk`` has no parent."""
    row = cur.execute(orphan_query(fk)).fetchone()
    if row is not None:
        raise violation(fk, tuple(row), child_side)


def _native_constraint_names(cur: duckdb.DuckDBPyConnection) -> set[str]:
    """The lower-case names of DuckDB's own constraints (none deferrable): DuckDB's names, the names
    PostgreSQL gives them (``t_pkey``, ``t_a_b_key``, ``t_a_fkey``, ``t_a_check``) and unique indexes."""
    out: set[str] = set()
    suffix = {"PRIMARY KEY": "pkey", "UNIQUE": "key", "FOREIGN KEY": "fkey", "CHECK": "check"}
    for kind, name, table, cols in _fetch(cur, "SELECT constraint_type, constraint_name, table_name, "
                                               "constraint_column_names FROM duckdb_constraints()", []):  # fmt: skip
        out.add(str(name).lower())
        if kind == "PRIMARY KEY":
            out.add(f"{table}_pkey".lower())
        elif kind in suffix:
            out.add("_".join([str(table), *map(str, cols or []), suffix[kind]]).lower())
    out |= {
        str(r[0]).lower() for r in _fetch(cur, "SELECT index_name FROM duckdb_indexes() WHERE is_unique", [])
    }
    return out


# --- what a statement may do -----------------------------------------------------------------------------


def statement_names(sql: str) -> set[str]:
    """The lower-case names in ``sql`` (a table it writes is one of them)."""
    return {unquote_ident(t.text).lower() for t in tokens(sql) if t.kind in ("word", "ident")}


@dataclass
class Guard:
    """One session's foreign key enforcement: the keys of its database, what its transaction touched and
    its SET CONSTRAINTS choices."""

    generation: int = -1
    keys: list[ForeignKey] = field(default_factory=list)
    tables: frozenset[str] = frozenset()  # lower-case names of the tables of ``keys``
    pending: dict[tuple[str, str, str, str], bool] = field(
        default_factory=dict
    )  # deferred: key -> child side
    deferred_all: bool | None = (
        None  # SET CONSTRAINTS ALL DEFERRED (True) / IMMEDIATE (False) in this transaction
    )
    deferred_named: dict[str, bool] = field(default_factory=dict)
    ddl_in_transaction: bool = False

    def current(self, cur: duckdb.DuckDBPyConnection) -> list[ForeignKey]:
        if self.generation != _generation:
            gen = _generation
            self.keys = read_all(cur)
            self.tables = frozenset(t for fk in self.keys for t in (fk.table.lower(), fk.ref_table.lower()))
            self.generation = gen
        return self.keys

    def involved(self, cur: duckdb.DuckDBPyConnection, sql: str) -> set[str] | None:
        """The lower-case names in ``sql`` (a statement that writes) if it names the child or parent table of
        a kept foreign key, else None."""
        if not self.current(cur):
            return None
        names = statement_names(sql)
        return names if names & self.tables else None

    def is_deferred(self, fk: ForeignKey) -> bool:
        if not fk.deferrable:
            return False
        named = self.deferred_named.get(fk.name.lower())
        if named is not None:
            return named
        if self.deferred_all is not None:
            return self.deferred_all
        return fk.deferred

    def after_statement(self, cur: duckdb.DuckDBPyConnection, names: set[str]) -> list[str]:
        """Referential actions, then the checks that are not deferred, after a statement that wrote a table
        of a kept foreign key ran (``names``: what :meth:`involved` found in it); returns the statements the
        actions ran (to journal).  Raises 23503."""
        words = {w.upper() for w in names}
        added = set(names) if words & {"INSERT", "UPDATE", "MERGE", "COPY"} else set()
        updated = set(names) if words & {"UPDATE", "MERGE"} else set()
        deleted = set(names) if "DELETE" in words else set()
        return self._settle(cur, added, deleted, updated)

    def after_copy(self, cur: duckdb.DuckDBPyConnection, table: str) -> list[str]:
        """The checks after COPY FROM added rows to ``table``."""
        low = {unquote_ident(p).lower() for p in table.split(".")}
        if not low & {fk.table.lower() for fk in self.current(cur)}:
            return []
        return self._settle(cur, low, set(), set())

    def _settle(
        self, cur: duckdb.DuckDBPyConnection, added: set[str], deleted: set[str], updated: set[str]
    ) -> list[str]:
        ran: list[str] = []
        mine = set(added)  # tables the statement itself added or changed rows of (the others: its actions)
        for _ in range(_MAX_CASCADE_ROUNDS):
            changed = False
            for fk in self.keys:
                parent = fk.ref_table.lower()
                if parent in updated:
                    action = fk.on_update  # a statement that may also delete counts as an update: no cascade
                elif parent in deleted:
                    action = fk.on_delete
                else:
                    continue
                stmt = action_statement(fk, action)
                if stmt is None:
                    continue
                row = cur.execute(stmt).fetchone()
                if not row or not row[0]:
                    continue
                ran.append(stmt)
                changed = True
                child = fk.table.lower()
                if action == "c":
                    deleted.add(child)
                else:
                    updated.add(child)
                    added.add(child)
            if not changed:
                break
        for fk in self.keys:
            child_side = fk.table.lower() in added
            parent = fk.ref_table.lower()
            parent_side = parent in updated or parent in deleted
            if not child_side and not parent_side:
                continue
            action = fk.on_update if parent in updated else fk.on_delete
            reported = (
                fk.table.lower() in mine or not parent_side
            )  # as PostgreSQL's trigger that fires reports it
            if self.is_deferred(fk) and not (parent_side and action == "r"):
                k = fk.key()
                self.pending[k] = self.pending.get(k, False) or reported
                continue
            check(cur, fk, reported)
        return ran

    def before_commit(self, cur: duckdb.DuckDBPyConnection) -> None:
        """The deferred checks of the transaction (raises 23503)."""
        if not self.pending:
            return
        pending, self.pending = self.pending, {}
        by_key = {fk.key(): fk for fk in self.current(cur)}
        for k, child_side in pending.items():
            fk = by_key.get(k)
            if fk is not None:
                check(cur, fk, child_side)

    def end_transaction(self) -> None:
        self.pending.clear()
        self.deferred_all = None
        self.deferred_named.clear()
        if self.ddl_in_transaction:
            self.ddl_in_transaction = False
            bump()

    def set_constraints(
        self, cur: duckdb.DuckDBPyConnection, names: list[str] | None, deferred: bool
    ) -> None:
        """SET CONSTRAINTS {ALL | names} {DEFERRED | IMMEDIATE}; IMMEDIATE checks what was deferred."""
        keys = self.current(cur)
        if names is None:
            self.deferred_all = deferred
            self.deferred_named.clear()
            chosen = [fk for fk in keys if fk.deferrable]
        else:
            chosen = []
            for n in names:
                hits = [fk for fk in keys if fk.name.lower() == n.lower()]
                if not hits:
                    if n.lower() in _native_constraint_names(cur):
                        raise PgError("42809", f'constraint "{n}" is not deferrable')
                    raise PgError("42704", f'constraint "{n}" does not exist')
                for fk in hits:
                    if not fk.deferrable:
                        raise PgError("42809", f'constraint "{n}" is not deferrable')
                    self.deferred_named[fk.name.lower()] = deferred
                chosen += hits
        if deferred:
            return
        for fk in chosen:
            child_side = self.pending.pop(fk.key(), None)
            if child_side is not None:
                check(cur, fk, child_side)


def _comment_hook(cur: duckdb.DuckDBPyConnection, sql: str) -> str:
    """COMMENT ON TABLE (a COMMENT ON COLUMN is jsonb's, whose hook runs first)."""
    low = sql.lower()
    return comment_on_table(cur, sql) if "table" in low and "column" not in low else sql


HOOKS.comment_statements.append(_comment_hook)  # engine/hooks.py
