"""The definition of a table as an ALTER TABLE plan reads and changes it (:func:`load_table`).

:class:`Table` holds its columns, constraints, indexes and comment as DuckDB's catalog shows them in the
session's transaction, and what the plan has decided so far: statements DuckDB can run in place, or a
rebuild (alter.py), the foreign keys pgtls keeps to add, statements on other tables, notices.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import duckdb

from pgtls.backends.embedded.features import foreignkeys as fkeys
from pgtls.backends.embedded.features.ddl.parsing import Unsupported, group_end, split_items, text_between
from pgtls.backends.embedded.sql.lexer import quote_ident, tokens
from pgtls.errors import PgError

# What the session runs (as the statement) when a plan has nothing left to do: sets nothing anyone reads.
NOOP = "SET VARIABLE pgtls_ddl_noop = NULL"


@dataclass
class Column:
    name: str
    type: str
    default: str | None
    not_null: bool
    comment: str | None
    source: str | None  # its values: an expression over the table before the change (None: a new column)


@dataclass
class Index:
    name: str
    unique: bool
    keys: list[str]  # SQL of each key (a column or an expression)


@dataclass
class Table:
    database: str
    schema: str
    name: str
    comment: str | None
    columns: list[Column]
    primary_key: list[str]
    uniques: list[list[str]]  # DuckDB UNIQUE constraints
    checks: list[tuple[str, list[str]]]  # (expression, its columns)
    foreign_keys: list[tuple[str, list[str]]]  # DuckDB FOREIGN KEY constraints: (text, columns)
    constraint_names: dict[str, tuple[str, int]]  # DuckDB's constraint name -> (kind, index in its list)
    indexes: list[Index]
    referenced_by: list[str]
    rebuild: bool = False  # an action DuckDB cannot do in place
    native: list[str] = field(default_factory=list)  # the statements that do it in place, if not rebuild
    # foreign keys pgtls keeps (foreignkeys.py) to add: (constraint name, local columns, clause, validate)
    new_keys: list[tuple[str | None, list[str], fkeys.References, bool]] = field(default_factory=list)
    others: list[str] = field(default_factory=list)  # statements on other tables (their foreign key marks)
    notices: list[PgError] = field(default_factory=list)

    def kept(self) -> list[fkeys.ForeignKey]:
        """The foreign keys pgtls keeps for this table (the mark in its comment)."""
        return [replace(fk, database=self.database, schema=self.schema, table=self.name)
                for fk in fkeys.split_comment(self.comment)[0]]  # fmt: skip

    def set_kept(self, keys: list[fkeys.ForeignKey]) -> None:
        self.comment = fkeys.join_comment(keys, fkeys.split_comment(self.comment)[1])

    def qualified(self, name: str | None = None) -> str:
        return f"{quote_ident(self.database)}.{quote_ident(self.schema)}.{quote_ident(name or self.name)}"

    def column(self, name: str) -> Column | None:
        low = name.lower()
        return next((c for c in self.columns if c.name.lower() == low), None)

    def uses(self, name: str) -> bool:
        """Whether an index or a constraint involves column ``name`` or a column after it (DROP COLUMN)."""
        low = name.lower()
        after = {c.name.lower() for c in self.columns[[c.name.lower() for c in self.columns].index(low) :]}
        groups = [self.primary_key, *self.uniques, *(cols for _, cols in self.checks),
                  *(cols for _, cols in self.foreign_keys)]  # fmt: skip
        return any(c.lower() in after for g in groups for c in g)


def _fetch(cur: duckdb.DuckDBPyConnection, sql: str, params: list[object]) -> list[tuple[Any, ...]]:
    return cur.execute(sql, params).fetchall()


def _search_order(cur: duckdb.DuckDBPyConnection) -> list[str]:
    rows = _fetch(cur, "SELECT value FROM duckdb_settings() WHERE name = 'search_path'", [])
    path = str(rows[0][0] or "") if rows else ""
    return [p.strip().strip('"').split(".")[-1].strip('"').lower() for p in path.split(",") if p.strip()] or [
        "main"
    ]


def load_table(cur: duckdb.DuckDBPyConnection, schema: str | None, name: str) -> Table | None:
    """The definition of table ``name`` as the session sees it (its transaction included), or None."""
    found = _fetch(cur, "SELECT database_name, schema_name, table_name, temporary, comment FROM duckdb_tables() "
                        "WHERE lower(table_name) = lower(?) AND database_name <> 'pgtls_cat' "
                        "AND (? IS NULL OR lower(schema_name) = lower(?))", [name, schema, schema])  # fmt: skip
    if not found:
        return None
    order = _search_order(cur)
    found.sort(key=lambda r: (not r[3], order.index(r[1].lower()) if r[1].lower() in order else len(order)))
    db, sch, tname, _temp, comment = found[0]
    where = "database_name = ? AND schema_name = ? AND table_name = ?"
    key = [db, sch, tname]
    cols = [
        Column(n, t, d, not nullable, c, quote_ident(n))
        for n, t, d, nullable, c in _fetch(
            cur,
            f"SELECT column_name, data_type, column_default, is_nullable, comment FROM duckdb_columns() "
            f"WHERE {where} ORDER BY column_index",
            key,
        )  # fmt: skip
    ]
    t = Table(db, sch, tname, comment, cols, [], [], [], [], {}, [], [])
    for kind, text, expr, names, cname in _fetch(
        cur, f"SELECT constraint_type, constraint_text, expression, constraint_column_names, constraint_name "
             f"FROM duckdb_constraints() WHERE {where} ORDER BY constraint_index", key):  # fmt: skip
        names = list(names or [])
        if kind == "PRIMARY KEY":
            t.primary_key = names
            t.constraint_names[cname] = ("p", 0)
            t.constraint_names[f"{tname}_pkey"] = ("p", 0)
        elif kind == "UNIQUE":
            t.constraint_names[cname] = ("u", len(t.uniques))
            t.uniques.append(names)
        elif kind == "CHECK":
            t.constraint_names[cname] = ("c", len(t.checks))
            t.checks.append((str(expr), names))
        elif kind == "FOREIGN KEY":
            t.constraint_names[cname] = ("f", len(t.foreign_keys))
            t.foreign_keys.append((str(text), names))
    t.referenced_by = [r[0] for r in _fetch(
        cur, "SELECT DISTINCT table_name FROM duckdb_constraints() WHERE constraint_type = 'FOREIGN KEY' "
             "AND database_name = ? AND lower(referenced_table) = lower(?)", [db, tname])]  # fmt: skip
    for iname, unique, sql in _fetch(cur, f"SELECT index_name, is_unique, sql FROM duckdb_indexes() WHERE {where}",
                                     key):  # fmt: skip
        keys = _index_keys(str(sql or ""))
        if keys is None:
            raise Unsupported(f"index {iname}")
        t.indexes.append(Index(iname, bool(unique), keys))
    return t


def _index_keys(sql: str) -> list[str] | None:
    """The key expressions of DuckDB's ``CREATE [UNIQUE] INDEX name ON table(keys);``."""
    toks = tokens(sql)
    on = next((i for i, t in enumerate(toks) if t.kind == "word" and t.text.upper() == "ON"), None)
    if on is None:
        return None
    i = on + 1
    while i < len(toks) and toks[i].text != "(":
        i += 1
    if i >= len(toks):
        return None
    end = group_end(toks, i)
    return [text_between(sql, toks, a, b) for a, b in split_items(sql, toks, i + 1, end)]
