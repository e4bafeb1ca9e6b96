"""DDL forms PostgreSQL has and DuckDB lacks.

CREATE TABLE column forms: ``serial`` / ``bigserial`` / ``smallserial`` and ``GENERATED {ALWAYS | BY
DEFAULT} AS IDENTITY`` become a sequence named as PostgreSQL names it (``<table>_<column>_seq``) plus
``DEFAULT nextval('<sequence>')`` on a column of the matching integer type.  (``jsonb`` needs no rewrite:
every database file has a ``jsonb`` type alias of JSON.)  Differences: the sequence is not owned by the
column, so DROP TABLE leaves it behind, and GENERATED ALWAYS does not refuse explicit values.

ALTER TABLE (:func:`plan`, which needs the session's cursor to read the table's definition): DuckDB
refuses most changes to a table that has an index (``Cannot alter entry ... because there are entries that
depend on it``; dropping the index first does not help inside a transaction), refuses DROP COLUMN when an
index or UNIQUE/PRIMARY KEY constraint is on a later column, cannot change the type of a UNIQUE/PRIMARY
KEY column, cannot add CHECK or FOREIGN KEY constraints to an existing table, cannot drop a constraint and
takes one action per statement.  pgtls therefore does what DuckDB can do itself as it is, and otherwise
*rebuilds* the table, all in the session's transaction (so ROLLBACK undoes it, as in PostgreSQL): a new
table with the changed definition (columns, defaults, NOT NULL, PRIMARY KEY, UNIQUE, CHECK, DuckDB foreign
keys, column and table comments such as the jsonb marks), the rows copied over (``USING``/casts for a new
type, defaults for a new column), the old table dropped, the new one renamed, and the indexes that are
still valid created again (those on a dropped column go, as in PostgreSQL; a renamed column is renamed in
them).  ``ADD CONSTRAINT name UNIQUE (...)`` becomes a unique index of that name (so ``DROP CONSTRAINT
name`` can drop it).  A FOREIGN KEY added by ALTER TABLE, declared DEFERRABLE or with a referential
action is kept by pgtls (foreignkeys.py: a mark in the child table's comment, checked after each statement
or at COMMIT); this module writes, renames and drops those marks with the tables and columns they name,
refuses DROP TABLE / DROP COLUMN / TRUNCATE of what they reference as PostgreSQL does (CASCADE drops the
foreign key, or truncates the child table too), and checks the existing rows when one is added.  A table
that another table's DuckDB foreign key references cannot be rebuilt (0A000).  Type changes between types that are the same in DuckDB (``varchar(100)`` to
``varchar(150)``: DuckDB keeps no length) change nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import duckdb

from pgtls.backends.embedded.features import foreignkeys as fkeys
from pgtls.backends.embedded.sql.lexer import (
    Token,
    apply_edits,
    closing_paren,
    quote_ident,
    quote_literal,
    table_list,
    tokens,
    top_level_items,
    unquote_ident,
    words_at,
)
from pgtls.errors import PgError

SERIAL_TYPES = {"serial": "INTEGER", "serial4": "INTEGER", "bigserial": "BIGINT", "serial8": "BIGINT",
                "smallserial": "SMALLINT", "serial2": "SMALLINT"}  # fmt: skip
_SKIP = {"TEMP", "TEMPORARY", "UNLOGGED", "GLOBAL", "LOCAL", "OR", "REPLACE"}


def _table_name(toks: list[Token]) -> tuple[str, int] | None:
    """(unquoted table name, index of the opening parenthesis) of CREATE TABLE."""
    i = 1
    while i < len(toks) and toks[i].text.upper() in _SKIP:
        i += 1
    if i >= len(toks) or toks[i].text.upper() != "TABLE":
        return None
    i += 1
    if i + 2 < len(toks) and [t.text.upper() for t in toks[i : i + 3]] == ["IF", "NOT", "EXISTS"]:
        i += 3
    name = ""
    while i < len(toks) and toks[i].kind in ("word", "ident"):
        name = unquote_ident(toks[i].text)
        if i + 1 < len(toks) and toks[i + 1].text == ".":
            i += 2
            continue
        i += 1
        break
    if not name or i >= len(toks) or toks[i].text != "(":
        return None
    return name, i


def rewrite_create_table(sql: str) -> list[str] | None:
    """The statements to run instead of ``sql`` (sequences first), or None if nothing to change."""
    toks = tokens(sql)
    if len(toks) < 4 or toks[0].text.upper() != "CREATE":
        return None
    found = _table_name(toks)
    if found is None:
        return None
    table, open_paren = found
    edits: list[tuple[int, int, str]] = []
    sequences: list[str] = []
    depth = 0
    column_start = True
    column = ""
    i = open_paren
    while i < len(toks):
        t = toks[i]
        if t.text == "(":
            depth += 1
            if depth == 1:
                column_start = True
            i += 1
            continue
        if t.text == ")":
            depth -= 1
            if depth == 0:
                break
            i += 1
            continue
        if depth == 1 and t.text == ",":
            column_start = True
            i += 1
            continue
        if depth == 1 and column_start:
            column_start = False
            column = unquote_ident(t.text) if t.kind in ("word", "ident") else ""
            i += 1
            continue
        if depth == 1 and column and t.kind == "word" and t.text.lower() in SERIAL_TYPES:
            seq = f"{table}_{column}_seq"
            sequences.append(seq)
            edits.append(
                (t.start, t.end, f"{SERIAL_TYPES[t.text.lower()]} DEFAULT nextval({quote_literal(seq)})")
            )
        elif depth == 1 and column and t.kind == "word" and t.text.upper() == "GENERATED":
            j = i + 1
            while j < len(toks) and toks[j].text.upper() != "IDENTITY" and toks[j].text not in (",", ")"):
                j += 1
            if j < len(toks) and toks[j].text.upper() == "IDENTITY":
                end = toks[j].end
                if j + 1 < len(toks) and toks[j + 1].text == "(":  # sequence options: dropped
                    k, d = j + 1, 0
                    while k < len(toks):
                        d += (toks[k].text == "(") - (toks[k].text == ")")
                        if d == 0:
                            break
                        k += 1
                    end = toks[k].end if k < len(toks) else end
                    j = k
                seq = f"{table}_{column}_seq"
                sequences.append(seq)
                edits.append((t.start, end, f"DEFAULT nextval({quote_literal(seq)})"))
                i = j + 1
                continue
        i += 1
    if not edits:
        return None
    return [f"CREATE SEQUENCE IF NOT EXISTS {quote_ident(s)}" for s in sequences] + [apply_edits(sql, edits)]


# --- ALTER TABLE ------------------------------------------------------------------------------------------

# What the session runs (as the statement) when a plan has nothing left to do: sets nothing anyone reads.
NOOP = "SET VARIABLE pgtls_ddl_noop = NULL"
_COLUMN_CONSTRAINT_WORDS = {"CONSTRAINT", "NOT", "NULL", "DEFAULT", "PRIMARY", "UNIQUE", "CHECK", "REFERENCES",
                            "COLLATE", "GENERATED"}  # fmt: skip


def _name_end(toks: list[Token], j: int) -> int:
    """Index after a possibly qualified name starting at toks[j] (j itself if there is none)."""
    if j >= len(toks) or toks[j].kind not in ("word", "ident"):
        return j
    j += 1
    while j + 1 < len(toks) and toks[j].text == "." and toks[j + 1].kind in ("word", "ident"):
        j += 2
    return j


class Unsupported(Exception):
    """A form :func:`plan` leaves to DuckDB as it is."""


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


def _group_end(toks: list[Token], i: int) -> int:
    """Index of the parenthesis closing the one at ``toks[i]``."""
    end = closing_paren(toks, i)
    if end is None:
        raise Unsupported("unbalanced parentheses")
    return end


def _split(sql: str, toks: list[Token], start: int, end: int) -> list[tuple[int, int]]:
    """Token ranges [a, b) of the comma-separated items of toks[start:end] (top level only)."""
    return top_level_items(toks, start, end)


def _text(sql: str, toks: list[Token], a: int, b: int) -> str:
    return sql[toks[a].start : toks[b - 1].end] if b > a else ""


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
    end = _group_end(toks, i)
    return [_text(sql, toks, a, b) for a, b in _split(sql, toks, i + 1, end)]


def _refers(expr: str, column: str) -> bool:
    low = column.lower()
    return any(t.kind in ("word", "ident") and unquote_ident(t.text).lower() == low
               or t.kind == "word" and t.text.lower() == low for t in tokens(expr))  # fmt: skip


def _rename_in(expr: str, old: str, new: str) -> str:
    low = old.lower()
    edits = [
        (t.start, t.end, quote_ident(new))
        for t in tokens(expr)
        if t.kind in ("word", "ident") and (unquote_ident(t.text).lower() == low or t.text.lower() == low)
    ]
    return apply_edits(expr, edits)


def _names(sql: str, toks: list[Token], a: int, b: int) -> list[str]:
    """Identifiers of a parenthesised column list toks[a:b] (a at ``(``)."""
    return [unquote_ident(toks[x].text) for x, y in _split(sql, toks, a + 1, b - 1) if y == x + 1]


def _duck_type(cur: duckdb.DuckDBPyConnection, typ: str) -> str:
    return str(cur.execute(f"SELECT typeof(CAST(NULL AS {typ}))").fetchone()[0])  # type: ignore[index]


def _jsonb_comment(comment: str | None, jsonb: bool) -> str | None:
    from pgtls.backends.embedded.pgtypes.typemap import JSONB_MARK

    marked = comment is not None and comment.startswith(JSONB_MARK)
    if marked == jsonb:
        return comment
    if jsonb:
        return JSONB_MARK + ("\n" + comment if comment else "")
    return (comment or "")[len(JSONB_MARK) + 1 :] or None


def _no_column(col: str, t: Table) -> PgError:
    return PgError("42703", f'column "{col}" of relation "{t.name}" does not exist')


def _fk_add(
    sql: str, toks: list[Token], i: int, t: Table, local: list[str], name: str | None, validate: bool
) -> int:
    """Record the foreign key whose REFERENCES clause is at toks[i] (checked and written by :func:`_plan_alter`
    once every action is applied); the index after the clause."""
    for c in local:
        if t.column(c) is None:
            raise PgError("42703", f'column "{c}" referenced in foreign key constraint does not exist')
    ref = fkeys.parse_references(toks, i, len(toks))
    if ref is None:
        raise Unsupported("REFERENCES")
    t.new_keys.append((name, [t.column(c).name for c in local], ref, validate and not ref.not_valid))  # type: ignore[union-attr]
    return ref.end


def _apply(cur: duckdb.DuckDBPyConnection, t: Table, sql: str, toks: list[Token], a: int, b: int) -> None:
    """Apply one ALTER TABLE action (toks[a:b]) to ``t``: its in-place statements, or ``t.rebuild``."""
    has_index = bool(t.indexes)
    q = t.qualified()
    w = toks[a].text.upper() if toks[a].kind == "word" else ""
    if w == "ADD":
        i = a + 1
        if words_at(toks, i, "COLUMN"):
            i += 1
        cname = None
        if words_at(toks, i, "CONSTRAINT"):
            cname = unquote_ident(toks[i + 1].text)
            i += 2
        head = toks[i].text.upper() if i < b and toks[i].kind == "word" else ""
        if head in ("UNIQUE", "PRIMARY", "CHECK", "FOREIGN") and not words_at(toks, a + 1, "COLUMN"):
            _add_constraint(cur, t, sql, toks, i, b, cname)
            return
        _add_column(t, sql, toks, i, b)
        return
    if w == "DROP":
        i = a + 1
        if words_at(toks, i, "CONSTRAINT"):
            i += 1
            if_exists = words_at(toks, i, "IF", "EXISTS")
            i += 2 if if_exists else 0
            name = unquote_ident(toks[i].text)
            idx = next((x for x in t.indexes if x.name.lower() == name.lower()), None)
            if idx is not None:
                t.indexes.remove(idx)
                t.native.append(
                    f"DROP INDEX {quote_ident(t.database)}.{quote_ident(t.schema)}.{quote_ident(idx.name)}"
                )
                return
            kept = t.kept()
            left = [fk for fk in kept if fk.name.lower() != name.lower()]
            if len(left) != len(kept):
                t.set_kept(left)
                return
            hit = next((v for k, v in t.constraint_names.items() if k.lower() == name.lower()), None)
            if hit is None:
                if if_exists:
                    t.notices.append(PgError("00000", f'constraint "{name}" of relation "{t.name}" does not exist, '
                                                      "skipping", severity="NOTICE"))  # fmt: skip
                    return
                raise PgError("42704", f'constraint "{name}" of relation "{t.name}" does not exist')
            kind, n = hit
            if kind == "p":
                t.primary_key = []
            elif kind == "u":
                t.uniques[n] = []
            elif kind == "c":
                t.checks[n] = ("", [])
            else:
                t.foreign_keys[n] = ("", [])
            t.rebuild = True
            return
        if words_at(toks, i, "COLUMN"):
            i += 1
        if_exists = words_at(toks, i, "IF", "EXISTS")
        i += 2 if if_exists else 0
        name = unquote_ident(toks[i].text)
        col = t.column(name)
        if col is None:
            if if_exists:
                t.notices.append(PgError("00000", f'column "{name}" of relation "{t.name}" does not exist, skipping',
                                         severity="NOTICE"))  # fmt: skip
                return
            raise _no_column(name, t)
        cascade = words_at(toks, b - 1, "CASCADE")
        dropped = col
        _drop_referenced(
            cur,
            t,
            lambda fk: dropped.name.lower() in (c.lower() for c in fk.ref_columns),
            cascade,
            f"column {col.name} of table {t.name}",
        )
        kept = t.kept()
        left = [fk for fk in kept if col.name.lower() not in (c.lower() for c in fk.columns)]
        if len(left) != len(kept):  # a kept foreign key on the column goes with it
            t.set_kept(left)
        if not has_index and not t.uses(col.name):
            t.native.append(f"ALTER TABLE {q} DROP COLUMN {quote_ident(col.name)}")
        else:
            t.rebuild = True
        low = col.name.lower()
        t.columns.remove(col)
        t.indexes = [x for x in t.indexes if not any(_refers(k, low) for k in x.keys)]
        if low in (c.lower() for c in t.primary_key):
            t.primary_key = []
        t.uniques = [u if low not in (c.lower() for c in u) else [] for u in t.uniques]
        t.checks = [c if low not in (n.lower() for n in c[1]) else ("", []) for c in t.checks]
        t.foreign_keys = [f if low not in (n.lower() for n in f[1]) else ("", []) for f in t.foreign_keys]
        return
    if w == "VALIDATE" and words_at(toks, a + 1, "CONSTRAINT") and a + 2 < b:
        name = unquote_ident(toks[a + 2].text)
        kept = t.kept()
        found = next((fk for fk in kept if fk.name.lower() == name.lower()), None)
        if found is None:
            if any(k.lower() == name.lower() for k in t.constraint_names):
                return  # DuckDB's own constraints are always valid
            raise PgError("42704", f'constraint "{name}" of relation "{t.name}" does not exist')
        done = replace(found, validated=True, exempt=())
        fkeys.check(cur, done, child_side=True)
        t.set_kept([done if fk is found else fk for fk in kept])
        return
    if w == "ALTER":
        i = a + 1
        if words_at(toks, i, "COLUMN"):
            i += 1
        name = unquote_ident(toks[i].text)
        col = t.column(name)
        if col is None:
            raise _no_column(name, t)
        i += 1
        qc = quote_ident(col.name)
        if words_at(toks, i, "SET", "DATA", "TYPE") or words_at(toks, i, "TYPE"):
            i += 3 if words_at(toks, i, "SET") else 1
            j = i
            while j < b and not (toks[j].kind == "word" and toks[j].text.upper() in ("USING", "COLLATE")):
                j += 1
            typ = _text(sql, toks, i, j)
            using = None
            k = j
            while k < b:
                if words_at(toks, k, "COLLATE"):
                    k += 2
                    continue
                if words_at(toks, k, "USING"):
                    using = _text(sql, toks, k + 1, b)
                    break
                k += 1
            duck = _duck_type(cur, typ)
            jsonb = typ.strip().lower().split(".")[-1].strip('"') == "jsonb"
            comment = _jsonb_comment(col.comment, jsonb)
            if (
                duck != col.type or using is not None
            ):  # else the same type in DuckDB (varchar(n) -> varchar(m))
                in_key = any(col.name.lower() in (c.lower() for c in g) for g in [t.primary_key, *t.uniques])
                if not has_index and not in_key:
                    t.native.append(
                        f"ALTER TABLE {q} ALTER COLUMN {qc} TYPE {typ}" + (f" USING {using}" if using else "")
                    )
                else:
                    t.rebuild = True
                col.source = using if using is not None else f"CAST({col.source} AS {duck})"
                col.type = duck
            if comment != col.comment:
                col.comment = comment
                t.native.append(
                    f"COMMENT ON COLUMN {q}.{qc} IS {quote_literal(comment) if comment else 'NULL'}"
                )
            return
        if words_at(toks, i, "SET", "DEFAULT"):
            col.default = _text(sql, toks, i + 2, b)
            t.native.append(f"ALTER TABLE {q} ALTER COLUMN {qc} SET DEFAULT {col.default}")
            return
        if words_at(toks, i, "DROP", "DEFAULT"):
            col.default = None
            t.native.append(f"ALTER TABLE {q} ALTER COLUMN {qc} DROP DEFAULT")
            return
        if words_at(toks, i, "SET", "NOT", "NULL") or words_at(toks, i, "DROP", "NOT", "NULL"):
            set_ = toks[i].text.upper() == "SET"
            if set_ == col.not_null:
                return
            col.not_null = set_
            if has_index:
                t.rebuild = True
            else:
                t.native.append(f"ALTER TABLE {q} ALTER COLUMN {qc} {'SET' if set_ else 'DROP'} NOT NULL")
            return
    raise Unsupported(w)


def _drop_referenced(
    cur: duckdb.DuckDBPyConnection,
    t: Table,
    hits: Callable[[fkeys.ForeignKey], bool],
    cascade: bool,
    what: str,
) -> None:
    """DROP of something of ``t`` (``what``, as PostgreSQL names it) that kept foreign keys of other tables
    reference (``hits``): 2BP01, or with CASCADE those foreign keys are dropped."""
    victims = [fk for fk in fkeys.referencing(fkeys.read_all(cur), t.database, t.schema, t.name)
               if hits(fk) and fk.table.lower() != t.name.lower()]  # fmt: skip
    if not victims:
        return
    if not cascade:
        raise dependents_error(what, victims)
    t.others += fkeys.drop_statements(cur, victims)


def dependents_error(what: str, victims: list[fkeys.ForeignKey]) -> PgError:
    detail = "\n".join(f"constraint {fk.name} on table {fk.table} depends on {what}" for fk in victims)
    return PgError(
        "2BP01",
        f"cannot drop {what} because other objects depend on it",
        detail=detail,
        hint="Use DROP ... CASCADE to drop the dependent objects too.",
    )


def _add_column(t: Table, sql: str, toks: list[Token], i: int, b: int) -> None:
    if_not_exists = words_at(toks, i, "IF", "NOT", "EXISTS")
    i += 3 if if_not_exists else 0
    name = unquote_ident(toks[i].text)
    if t.column(name) is not None:
        if if_not_exists:
            return
        raise PgError("42701", f'column "{name}" of relation "{t.name}" already exists')
    i += 1
    j = i
    while j < b and not (toks[j].kind == "word" and toks[j].text.upper() in _COLUMN_CONSTRAINT_WORDS):
        j += 1
    typ = _text(sql, toks, i, j)
    col = Column(name, typ, None, False, None, None)
    plain = True  # nothing DuckDB refuses to add in place to a table with an index
    while j < b:
        word = toks[j].text.upper()
        if word == "CONSTRAINT":
            j += 2
            continue
        if words_at(toks, j, "NOT", "NULL"):
            col.not_null, plain = True, False
            j += 2
        elif word == "NULL":
            j += 1
        elif word == "DEFAULT":
            k = j + 1
            depth = 0
            while k < b and not (depth == 0 and toks[k].kind == "word"
                                 and toks[k].text.upper() in _COLUMN_CONSTRAINT_WORDS - {"NULL"}):  # fmt: skip
                depth += (toks[k].text == "(") - (toks[k].text == ")")
                k += 1
            col.default = _text(sql, toks, j + 1, k)
            j = k
        elif words_at(toks, j, "PRIMARY", "KEY"):
            if t.primary_key:
                raise PgError("42P16", f'multiple primary keys for table "{t.name}" are not allowed')
            t.primary_key, plain = [name], False
            t.rebuild = True
            j += 2
        elif word == "UNIQUE":
            t.uniques.append([name])
            plain = False
            t.rebuild = t.rebuild or bool(t.indexes)
            j += 1
        elif word == "CHECK" and j + 1 < b and toks[j + 1].text == "(":
            e = _group_end(toks, j + 1)
            t.checks.append((_text(sql, toks, j + 1, e + 1), [name]))
            t.rebuild, plain = True, False
            j = e + 1
        elif word == "REFERENCES":
            t.columns.append(col)  # the check below looks the column up
            named = toks[j - 1].text if j >= 2 and words_at(toks, j - 2, "CONSTRAINT") else None
            j = _fk_add(sql, toks, j, t, [name], unquote_ident(named) if named else None, False)
            t.columns.pop()
        elif word == "COLLATE":
            j += 2
        else:
            raise Unsupported(word)
    t.columns.append(col)
    if not t.rebuild:
        if plain or not t.indexes:
            parts = [f"ALTER TABLE {t.qualified()} ADD COLUMN {quote_ident(name)} {typ}"]
            if col.default is not None:
                parts.append(f"DEFAULT {col.default}")
            if col.not_null:
                parts.append("NOT NULL")
            if t.uniques and t.uniques[-1] == [name]:
                parts.append("UNIQUE")
            t.native.append(" ".join(parts))
        else:
            t.rebuild = True
    from pgtls.backends.embedded.pgtypes.typemap import JSONB_MARK

    if typ.strip().lower() == "jsonb":
        col.comment = JSONB_MARK
        if not t.rebuild:
            t.native.append(
                f"COMMENT ON COLUMN {t.qualified()}.{quote_ident(name)} IS {quote_literal(JSONB_MARK)}"
            )


def _add_constraint(
    cur: duckdb.DuckDBPyConnection, t: Table, sql: str, toks: list[Token], i: int, b: int, cname: str | None
) -> None:
    head = toks[i].text.upper()
    if head == "CHECK":
        e = _group_end(toks, i + 1)
        expr = _text(sql, toks, i + 1, e + 1)
        t.checks.append((expr, [c.name for c in t.columns if _refers(expr, c.name)]))
        t.rebuild = True
        return
    k = i + (2 if head in ("PRIMARY", "FOREIGN") else 1)
    if k >= b or toks[k].text != "(":
        raise Unsupported(head)
    e = _group_end(toks, k)
    cols = _names(sql, toks, k, e + 1)
    for c in cols:
        if t.column(c) is None and head != "FOREIGN":
            raise PgError("42703", f'column "{c}" named in key does not exist')
    if head == "FOREIGN":
        if not words_at(toks, e + 1, "REFERENCES"):
            raise Unsupported("FOREIGN KEY")
        _fk_add(sql, toks, e + 1, t, cols, cname, True)
        return
    if head == "PRIMARY":
        if t.primary_key:
            raise PgError("42P16", f'multiple primary keys for table "{t.name}" are not allowed')
        t.primary_key = [t.column(c).name for c in cols]  # type: ignore[union-attr]
        for c in t.primary_key:
            t.column(c).not_null = True  # type: ignore[union-attr]
        t.rebuild = True
        return
    name = cname or f"{t.name}_{'_'.join(cols)}_key"
    if any(x.name.lower() == name.lower() for x in t.indexes):
        raise PgError("42P07", f'relation "{name}" already exists')
    keys = [quote_ident(t.column(c).name) for c in cols]  # type: ignore[union-attr]
    t.indexes.append(Index(name, True, keys))
    t.native.append(f"CREATE UNIQUE INDEX {quote_ident(name)} ON {t.qualified()} ({', '.join(keys)})")


def _rebuild(t: Table, new_name: str) -> list[str]:
    if t.referenced_by:
        raise PgError(
            "0A000",
            f'cannot change table "{t.name}" in a way DuckDB cannot do in place: '
            f'the foreign key of table "{t.referenced_by[0]}" references it',
            hint="DuckDB cannot drop or rebuild a table that another table's foreign key references.",
        )
    tmp = t.qualified(f"{new_name}__pgtls_rebuild")
    defs: list[str] = []
    pk = {c.lower() for c in t.primary_key}
    for c in t.columns:
        d = f"{quote_ident(c.name)} {c.type}"
        if c.default is not None:
            d += f" DEFAULT {c.default}"
        if c.not_null and c.name.lower() not in pk:
            d += " NOT NULL"
        defs.append(d)
    if t.primary_key:
        defs.append(f"PRIMARY KEY ({', '.join(quote_ident(c) for c in t.primary_key)})")
    defs += [f"UNIQUE ({', '.join(quote_ident(c) for c in u)})" for u in t.uniques if u]
    defs += [f"CHECK ({e})" for e, _ in t.checks if e]
    defs += [text for text, _ in t.foreign_keys if text]
    out = [f"CREATE TABLE {tmp} ({', '.join(defs)})"]
    copied = [c for c in t.columns if c.source is not None]
    if copied:
        out.append(f"INSERT INTO {tmp} ({', '.join(quote_ident(c.name) for c in copied)}) "
                   f"SELECT {', '.join(str(c.source) for c in copied)} FROM {t.qualified()}")  # fmt: skip
    out.append(f"DROP TABLE {t.qualified()}")
    out.append(f"ALTER TABLE {tmp} RENAME TO {quote_ident(new_name)}")
    q = t.qualified(new_name)
    if t.comment:
        out.append(f"COMMENT ON TABLE {q} IS {quote_literal(t.comment)}")
    out += [f"COMMENT ON COLUMN {q}.{quote_ident(c.name)} IS {quote_literal(c.comment)}" for c in t.columns
            if c.comment]  # fmt: skip
    out += [f"CREATE {'UNIQUE ' if x.unique else ''}INDEX {quote_ident(x.name)} ON {q} ({', '.join(x.keys)})"
            for x in t.indexes]  # fmt: skip
    return out


def _rename_column(t: Table, old: str, new: str) -> None:
    col = t.column(old)
    if col is None:
        raise _no_column(old, t)
    if t.column(new) is not None:
        raise PgError("42701", f'column "{new}" of relation "{t.name}" already exists')
    if t.indexes:
        t.rebuild = True
    else:
        t.native.append(
            f"ALTER TABLE {t.qualified()} RENAME COLUMN {quote_ident(col.name)} TO {quote_ident(new)}"
        )
    low = col.name.lower()

    def ren(cols: list[str]) -> list[str]:
        return [new if c.lower() == low else c for c in cols]

    t.primary_key = ren(t.primary_key)
    t.uniques = [ren(u) for u in t.uniques]
    t.checks = [(_rename_in(e, col.name, new) if e else e, ren(c)) for e, c in t.checks]
    if any(low in (c.lower() for c in cols) for _, cols in t.foreign_keys if _):
        t.foreign_keys = [(_rename_in(f, col.name, new) if f else f, ren(c)) for f, c in t.foreign_keys]
    for x in t.indexes:
        x.keys = [_rename_in(k, col.name, new) for k in x.keys]
    kept = t.kept()
    if kept:
        own = t.name.lower()
        t.set_kept([replace(fk, columns=tuple(ren(list(fk.columns))),
                                  ref_columns=tuple(ren(list(fk.ref_columns))) if fk.ref_table.lower() == own
                                  else fk.ref_columns) for fk in kept])  # fmt: skip
    col.name = new


def plan(cur: duckdb.DuckDBPyConnection, sql: str, notices: list[PgError] | None = None) -> list[str] | None:
    """The statements to run, in the session's transaction and in this order, instead of ``sql`` (already
    rewritten), or None to run ``sql`` as it is.  The command tag stays ``sql``'s; the last statement is
    the one whose result is the statement's.  Raises PgError for what PostgreSQL refuses."""
    toks = tokens(sql)
    if len(toks) < 2 or toks[0].kind != "word":
        return None
    first = toks[0].text.upper()
    if first == "CREATE":
        low = sql.lower()
        return rewrite_create_table(sql) if "serial" in low or "identity" in low else None
    if first == "TRUNCATE":
        return _plan_truncate(cur, toks, notices if notices is not None else [])
    if first != "ALTER" or not words_at(toks, 1, "TABLE") or len(toks) < 3:
        return None
    try:
        return _plan_alter(cur, sql, toks, notices if notices is not None else [])
    except Unsupported:
        return None


def _plan_truncate(
    cur: duckdb.DuckDBPyConnection, toks: list[Token], notices: list[PgError]
) -> list[str] | None:
    """TRUNCATE [TABLE] [ONLY] name [*], ... [RESTART IDENTITY | CONTINUE IDENTITY] [CASCADE | RESTRICT]:
    one DuckDB TRUNCATE per table, and with RESTART IDENTITY the sequences of their serial and identity
    columns set back to their start.  A table that a kept foreign key (foreignkeys.py) references is refused
    as in PostgreSQL, or with CASCADE its child tables are emptied too.  CASCADE is not followed for DuckDB's
    own foreign keys: such a parent cannot be emptied while rows refer to it (DuckDB's error)."""
    up = [t.text.upper() if t.kind == "word" else t.text for t in toks]
    found, k = table_list(toks, 2 if len(up) > 1 and up[1] == "TABLE" else 1)
    names = ["".join(t.text for t in toks[a : b + 1]) for a, b in found]
    rest = [u for u in up[k:] if u != ";"]
    if not names or rest not in ([], ["CASCADE"], ["RESTRICT"]) and rest[:2] not in (["RESTART", "IDENTITY"],
                                                                                       ["CONTINUE", "IDENTITY"]):  # fmt: skip
        return None  # DuckDB says what is wrong with it
    _truncate_children(cur, names, "CASCADE" in rest, notices)
    stmts = [f"TRUNCATE {name}" for name in names]
    if rest[:2] == ["RESTART", "IDENTITY"]:
        for name in names:
            table = unquote_ident(name.rpartition(".")[2]).lower()
            rows = cur.execute("SELECT column_default FROM duckdb_columns() WHERE lower(table_name) = ? "
                               "AND column_default LIKE 'nextval(%'", [table]).fetchall()  # fmt: skip
            for (default,) in rows:
                seq = default[len("nextval(") : default.rindex(")")]
                stmts.append(f"SELECT setval({seq}, 1, false)")
    if len(names) == 1 and not rest:
        return None  # DuckDB's own TRUNCATE
    return stmts + [NOOP]


def _truncate_children(
    cur: duckdb.DuckDBPyConnection, names: list[str], cascade: bool, notices: list[PgError]
) -> None:
    """TRUNCATE of a table that a kept foreign key references: 0A000, or with CASCADE the child table is
    added to ``names`` (and its children, and so on)."""
    kept = fkeys.read_all(cur)
    low = {unquote_ident(n.rpartition(".")[2]).lower() for n in names}
    grew = bool(kept)
    while grew:
        grew = False
        for fk in kept:
            if fk.ref_table.lower() in low and fk.table.lower() not in low:
                if not cascade:
                    raise PgError(
                        "0A000",
                        "cannot truncate a table referenced in a foreign key constraint",
                        detail=f'Table "{fk.table}" references "{fk.ref_table}".',
                        hint=f'Truncate table "{fk.table}" at the same time, or use TRUNCATE ... CASCADE.',
                    )
                names.append(fk.child())
                low.add(fk.table.lower())
                notices.append(
                    PgError("00000", f'truncate cascades to table "{fk.table}"', severity="NOTICE")
                )
                grew = True


def _plan_alter(
    cur: duckdb.DuckDBPyConnection, sql: str, toks: list[Token], notices: list[PgError]
) -> list[str] | None:
    i = 2
    if_exists = words_at(toks, i, "IF", "EXISTS")
    i += 2 if if_exists else 0
    if words_at(toks, i, "ONLY"):
        i += 1
    parts = [toks[i]]
    while i + 2 < len(toks) and toks[i + 1].text == "." and toks[i + 2].kind in ("word", "ident"):
        parts.append(toks[i + 2])
        i += 2
    if parts[0].kind not in ("word", "ident"):
        return None
    name = unquote_ident(parts[-1].text)
    schema = unquote_ident(parts[-2].text) if len(parts) > 1 else None
    i += 1
    if i < len(toks) and toks[i].text == "*":
        i += 1
    if i >= len(toks):
        return None
    t = load_table(cur, schema, name)
    if t is None:
        return [NOOP] if if_exists else None
    new_name = t.name
    before = _jsonb_columns(t)
    comment = t.comment
    if words_at(toks, i, "RENAME"):
        j = i + 1
        if words_at(toks, j, "TO"):
            new_name = unquote_ident(toks[j + 1].text)
            t.others += fkeys.rename_statements(cur, t.database, t.schema, t.name, new_table=new_name)
            kept = t.kept()
            if any(
                fk.ref_table.lower() == t.name.lower() for fk in kept
            ):  # a key that references its own table
                t.set_kept([replace(fk, ref_table=new_name) if fk.ref_table.lower() == t.name.lower() else fk
                            for fk in kept])  # fmt: skip
            if not t.indexes:
                if not t.others and t.comment == comment:
                    return None  # DuckDB renames it
                stmts = [sql, *t.others]
                if t.comment != comment:
                    stmts.append(fkeys.comment_statement(t.database, t.schema, new_name, t.comment))
                return [*stmts, NOOP]
            t.rebuild = True
        elif words_at(toks, j, "CONSTRAINT"):
            if j + 3 >= len(toks) or not words_at(toks, j + 2, "TO"):
                return None
            old, new = unquote_ident(toks[j + 1].text).lower(), unquote_ident(toks[j + 3].text)
            kept = t.kept()
            if not any(fk.name.lower() == old for fk in kept):
                return None
            t.set_kept([replace(fk, name=new) if fk.name.lower() == old else fk for fk in kept])
        else:
            j += 1 if words_at(toks, j, "COLUMN") else 0
            if j + 2 >= len(toks) or not words_at(toks, j + 1, "TO"):
                return None
            old, new = unquote_ident(toks[j].text), unquote_ident(toks[j + 2].text)
            _rename_column(t, old, new)
            t.others += fkeys.rename_statements(cur, t.database, t.schema, t.name, column=(old, new))
    else:
        for a, b in _split(sql, toks, i, len(toks)):
            _apply(cur, t, sql, toks, a, b)
    _add_kept_keys(cur, t)
    notices += t.notices
    if t.comment != comment and not t.rebuild:
        t.native.append(fkeys.comment_statement(t.database, t.schema, t.name, t.comment))
    stmts = (_rebuild(t, new_name) if t.rebuild else t.native) + t.others
    after = _jsonb_columns(t)
    if after != before or new_name != t.name:
        _own_jsonb(cur, new_name, after)
    return stmts or [NOOP]


def _add_kept_keys(cur: duckdb.DuckDBPyConnection, t: Table) -> None:
    """The foreign keys this ALTER TABLE adds (``t.new_keys``), checked, then in ``t``'s comment mark."""
    if not t.new_keys:
        return
    kept = t.kept()
    for name, local, ref, validate in t.new_keys:
        fk = fkeys.resolve(cur, name, (t.database, t.schema, t.name), local, ref)
        if any(k.name.lower() == fk.name.lower() for k in kept) or fk.name.lower() in (
                n.lower() for n in t.constraint_names):  # fmt: skip
            raise PgError("42710", f'constraint "{fk.name}" for relation "{t.name}" already exists')
        if validate:
            fkeys.check(cur, fk, child_side=True)
        elif not fk.validated:  # ADD ... NOT VALID: the rows there now are not checked, later ones are
            old = fkeys.orphans(cur, fk, fkeys.MAX_EXEMPT_KEYS + 1)
            if len(old) > fkeys.MAX_EXEMPT_KEYS:
                raise PgError("0A000", f"NOT VALID foreign key with more than {fkeys.MAX_EXEMPT_KEYS} orphaned keys "
                                       "is not supported", hint="Delete or fix the orphaned rows first.")  # fmt: skip
            fk = replace(fk, exempt=tuple(old))
        kept.append(fk)
    t.set_kept(kept)


def _jsonb_columns(t: Table) -> set[str]:
    from pgtls.backends.embedded.pgtypes.typemap import JSONB_MARK

    return {c.name.lower() for c in t.columns if c.comment is not None and c.comment.startswith(JSONB_MARK)}


def _own_jsonb(cur: duckdb.DuckDBPyConnection, table: str, columns: set[str]) -> None:
    """Tell jsonb/operators.py which columns of ``table`` are jsonb for this session now (its committed marks are read
    on another connection, which does not see this transaction's comments yet)."""
    from pgtls.backends.embedded.jsonb import operators as jsonb

    jsonb.set_session_columns(cur, table, columns)


# --- text-only rewrites (rewrite/pipeline.py calls these) ---------------------------------------------------

_INDEX_METHODS_DROPPED = {
    "btree",
    "hash",
}  # DuckDB has one (ART) index: PostgreSQL's default methods map to it


def rewrite_create_index(sql: str) -> str:
    """CREATE [UNIQUE] INDEX: drop operator classes (``varchar_pattern_ops``: Django's LIKE indexes) and
    ``USING btree|hash``, which DuckDB does not know; its one index type serves the same queries."""
    toks = tokens(sql)
    i = 1
    if words_at(toks, i, "UNIQUE"):
        i += 1
    if not words_at(toks, i, "INDEX"):
        return sql
    on = next((k for k in range(i, len(toks)) if words_at(toks, k, "ON")), None)
    if on is None:
        return sql
    edits: list[tuple[int, int, str]] = []
    k = on + 1
    while k < len(toks) and toks[k].text != "(":
        if (
            words_at(toks, k, "USING")
            and k + 1 < len(toks)
            and toks[k + 1].text.lower() in _INDEX_METHODS_DROPPED
        ):
            edits.append((toks[k].start, toks[k + 1].end, ""))
        k += 1
    if k >= len(toks):
        return sql
    end = _group_end(toks, k)
    for a, b in _split(sql, toks, k + 1, end):
        for x in range(a + 1, b):  # never the first token: that is the column or expression
            t = toks[x]
            if t.kind == "word" and t.text.lower().endswith("_ops") and toks[x - 1].text != ".":
                start = t.start
                if x >= a + 3 and toks[x - 1].text == "." and toks[x - 2].kind == "word":
                    start = toks[x - 2].start
                edits.append((start, t.end, ""))
            elif (t.kind == "word" and t.text.lower() == "pg_catalog" and x + 2 < b and toks[x + 1].text == "."
                  and toks[x + 2].text.lower().endswith("_ops")):  # fmt: skip
                edits.append((t.start, toks[x + 2].end, ""))
    return apply_edits(sql, edits) if edits else sql


def _create_table_keys(
    sql: str, toks: list[Token]
) -> list[tuple[int, int, int, str | None, list[str], fkeys.References]]:
    """The foreign keys of CREATE TABLE that pgtls keeps (foreignkeys.py): (item start, item end, start of
    the clause to remove, constraint name, local columns, the REFERENCES clause) for each."""
    found = _table_name(toks)
    if found is None:
        return []
    _, open_paren = found
    close = closing_paren(toks, open_paren)
    if close is None:
        return []
    out = []
    for a, b in _split(sql, toks, open_paren + 1, close):
        r = next((x for x in range(a, b) if words_at(toks, x, "REFERENCES")), None)
        if r is None:
            continue
        ref = fkeys.parse_references(toks, r, b)
        if ref is None or not ref.emulated():
            continue
        head = toks[a].text.upper() if toks[a].kind == "word" else ""
        named = words_at(toks, a, "CONSTRAINT") and a + 2 < b and words_at(toks, a + 2, "FOREIGN")
        if head == "FOREIGN" or named:
            k = a + (4 if named else 2)
            if k >= b or toks[k].text != "(":
                continue
            local = _names(sql, toks, k, _group_end(toks, k) + 1)
            name = unquote_ident(toks[a + 1].text) if named else None
            out.append((a, b, a, name, local, ref))
            continue
        start = r - 2 if r >= a + 2 and words_at(toks, r - 2, "CONSTRAINT") else r
        name = unquote_ident(toks[r - 1].text) if start != r else None
        out.append((a, b, start, name, [unquote_ident(toks[a].text)], ref))
    return out


def strip_kept_foreign_keys(sql: str) -> str:
    """CREATE TABLE without the foreign keys pgtls keeps itself (DEFERRABLE ones and those with a
    referential action: :func:`kept_keys_after_create` records them once the table exists); ``NOT
    DEFERRABLE`` and ``INITIALLY IMMEDIATE`` (what DuckDB does anyway) are dropped from the ones that stay."""
    toks = tokens(sql)
    found = _table_name(toks)
    if found is None:
        return sql
    _, open_paren = found
    close = _group_end(toks, open_paren)
    kept = {a: (start, ref.end) for a, _b, start, _n, _l, ref in _create_table_keys(sql, toks)}
    edits: list[tuple[int, int, str]] = []
    items = _split(sql, toks, open_paren + 1, close)
    for n, (a, b) in enumerate(items):
        if a not in kept:
            for x in range(a, b):
                if words_at(toks, x, "NOT", "DEFERRABLE") or words_at(toks, x, "INITIALLY", "IMMEDIATE"):
                    edits.append((toks[x].start, toks[x + 1].end, ""))
            continue
        start, end = kept[a]
        if start == a:  # the whole table constraint, with the comma before it (or after it, if it is first)
            if n > 0:
                edits.append((toks[items[n - 1][1] - 1].end, toks[b - 1].end, ""))
            else:
                edits.append(
                    (toks[a].start, toks[items[1][0]].start if len(items) > 1 else toks[b - 1].end, "")
                )
            continue
        edits.append((toks[start].start, toks[end - 1].end, ""))
    return apply_edits(sql, edits) if edits else sql


def _create_schema(toks: list[Token], open_paren: int) -> str | None:
    if (
        open_paren >= 3
        and toks[open_paren - 2].text == "."
        and toks[open_paren - 3].kind in ("word", "ident")
    ):
        return unquote_ident(toks[open_paren - 3].text)
    return None


def keeps_keys(cur: duckdb.DuckDBPyConnection, sql: str) -> bool:
    """Before CREATE TABLE ``sql`` runs: whether it declares foreign keys pgtls keeps and creates the table
    (``IF NOT EXISTS`` of a table that exists changes nothing)."""
    toks = tokens(sql)
    if not _create_table_keys(sql, toks):
        return False
    found = _table_name(toks)
    if found is None:
        return False
    if any(words_at(toks, x, "IF", "NOT", "EXISTS") for x in range(found[1])):
        return load_table(cur, _create_schema(toks, found[1]), found[0]) is None
    return True


def kept_keys_after_create(cur: duckdb.DuckDBPyConnection, sql: str) -> list[str]:
    """After CREATE TABLE ``sql`` (as the client sent it) ran: the statements that record its foreign keys
    that pgtls keeps, checked as PostgreSQL checks them (raises PgError)."""
    toks = tokens(sql)
    keys = _create_table_keys(sql, toks)
    found = _table_name(toks)
    if not keys or found is None:
        return []
    t = load_table(cur, _create_schema(toks, found[1]), found[0])
    if t is None:
        return []
    t.new_keys = [(name, local, ref, False) for _a, _b, _s, name, local, ref in keys]
    for _n, local, _r, _v in t.new_keys:
        for c in local:
            if t.column(c) is None:
                raise PgError("42703", f'column "{c}" referenced in foreign key constraint does not exist')
    _add_kept_keys(cur, t)
    return [fkeys.comment_statement(t.database, t.schema, t.name, t.comment)]


def drop_table_plan(cur: duckdb.DuckDBPyConnection, sql: str) -> tuple[list[str], list[PgError]]:
    """DROP TABLE of tables that kept foreign keys of other tables reference: 2BP01 as in PostgreSQL, or with
    CASCADE the statements that drop those foreign keys (to run first) and PostgreSQL's notices."""
    toks = tokens(sql)
    if not (words_at(toks, 0, "DROP") and words_at(toks, 1, "TABLE")):
        return [], []
    kept = fkeys.read_all(cur)
    if not kept:
        return [], []
    i = 4 if words_at(toks, 2, "IF", "EXISTS") else 2
    found, k = table_list(toks, i)
    cascade = any(words_at(toks, x, "CASCADE") for x in range(k, len(toks)))
    tables = []
    for a, b in found:
        parts = [unquote_ident(t.text) for t in toks[a : b + 1] if t.text != "."]
        t = load_table(cur, parts[-2] if len(parts) > 1 else None, parts[-1])
        if t is not None:
            tables.append(t)
    gone = {(t.database, t.schema.lower(), t.name.lower()) for t in tables}
    victims: list[fkeys.ForeignKey] = []
    for t in tables:
        mine = [fk for fk in fkeys.referencing(kept, t.database, t.schema, t.name)
                if (fk.database, fk.schema.lower(), fk.table.lower()) not in gone]  # fmt: skip
        if mine and not cascade:
            raise dependents_error(f"table {t.name}", mine)
        victims += mine
    if not victims:
        return [], []
    if len(victims) == 1:
        notice = PgError(
            "00000",
            f"drop cascades to constraint {victims[0].name} on table {victims[0].table}",
            severity="NOTICE",
        )
    else:
        notice = PgError("00000", f"drop cascades to {len(victims)} other objects", severity="NOTICE",
                         detail="\n".join(f"drop cascades to constraint {fk.name} on table {fk.table}"
                                          for fk in victims))  # fmt: skip
    return fkeys.drop_statements(cur, victims), [notice]
