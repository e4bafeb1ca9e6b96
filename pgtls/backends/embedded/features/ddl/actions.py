"""One ALTER TABLE action applied to the :class:`~.model.Table` of a plan (:func:`apply_action`).

Each action adds the statements DuckDB can run in place (``Table.native``) or marks the table for a
rebuild (``Table.rebuild``; alter.py): DuckDB refuses most changes to a table that has an index, DROP
COLUMN when an index or UNIQUE/PRIMARY KEY constraint is on a later column, a type change of a
UNIQUE/PRIMARY KEY column and dropping a constraint.  Type changes between types that are the same in
DuckDB (``varchar(100)`` to ``varchar(150)``: DuckDB keeps no length) change nothing.
"""

from __future__ import annotations

from dataclasses import replace

import duckdb

from pgtls.backends.embedded.features import foreignkeys as fkeys
from pgtls.backends.embedded.features.ddl.additions import add_column, add_constraint
from pgtls.backends.embedded.features.ddl.foreign_keys import drop_referenced
from pgtls.backends.embedded.features.ddl.model import Table
from pgtls.backends.embedded.features.ddl.parsing import Unsupported, refers, rename_in, text_between
from pgtls.backends.embedded.sql.lexer import Token, quote_ident, quote_literal, unquote_ident, words_at
from pgtls.errors import PgError


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


def no_column(col: str, t: Table) -> PgError:
    return PgError("42703", f'column "{col}" of relation "{t.name}" does not exist')


def apply_action(
    cur: duckdb.DuckDBPyConnection, t: Table, sql: str, toks: list[Token], a: int, b: int
) -> None:
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
            add_constraint(cur, t, sql, toks, i, b, cname)
            return
        add_column(t, sql, toks, i, b)
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
            raise no_column(name, t)
        cascade = words_at(toks, b - 1, "CASCADE")
        dropped = col
        drop_referenced(
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
        t.indexes = [x for x in t.indexes if not any(refers(k, low) for k in x.keys)]
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
            raise no_column(name, t)
        i += 1
        qc = quote_ident(col.name)
        if words_at(toks, i, "SET", "DATA", "TYPE") or words_at(toks, i, "TYPE"):
            i += 3 if words_at(toks, i, "SET") else 1
            j = i
            while j < b and not (toks[j].kind == "word" and toks[j].text.upper() in ("USING", "COLLATE")):
                j += 1
            typ = text_between(sql, toks, i, j)
            using = None
            k = j
            while k < b:
                if words_at(toks, k, "COLLATE"):
                    k += 2
                    continue
                if words_at(toks, k, "USING"):
                    using = text_between(sql, toks, k + 1, b)
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
            col.default = text_between(sql, toks, i + 2, b)
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


def rename_column(t: Table, old: str, new: str) -> None:
    col = t.column(old)
    if col is None:
        raise no_column(old, t)
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
    t.checks = [(rename_in(e, col.name, new) if e else e, ren(c)) for e, c in t.checks]
    if any(low in (c.lower() for c in cols) for _, cols in t.foreign_keys if _):
        t.foreign_keys = [(rename_in(f, col.name, new) if f else f, ren(c)) for f, c in t.foreign_keys]
    for x in t.indexes:
        x.keys = [rename_in(k, col.name, new) for k in x.keys]
    kept = t.kept()
    if kept:
        own = t.name.lower()
        t.set_kept([replace(fk, columns=tuple(ren(list(fk.columns))),
                                  ref_columns=tuple(ren(list(fk.ref_columns))) if fk.ref_table.lower() == own
                                  else fk.ref_columns) for fk in kept])  # fmt: skip
    col.name = new
