"""ALTER TABLE ... ADD [COLUMN | CONSTRAINT]: applied to the :class:`~.model.Table` of a plan (actions.py)."""

from __future__ import annotations

import duckdb

from pgtls.backends.embedded.features import foreignkeys as fkeys
from pgtls.backends.embedded.features.ddl.model import Column, Index, Table
from pgtls.backends.embedded.features.ddl.parsing import (
    Unsupported,
    column_list,
    group_end,
    refers,
    text_between,
)
from pgtls.backends.embedded.sql.lexer import Token, quote_ident, quote_literal, unquote_ident, words_at
from pgtls.errors import PgError

_COLUMN_CONSTRAINT_WORDS = {"CONSTRAINT", "NOT", "NULL", "DEFAULT", "PRIMARY", "UNIQUE", "CHECK", "REFERENCES",
                            "COLLATE", "GENERATED"}  # fmt: skip


def add_foreign_key(
    sql: str, toks: list[Token], i: int, t: Table, local: list[str], name: str | None, validate: bool
) -> int:
    """Record the foreign key whose REFERENCES clause is at toks[i] (checked and written by alter.py's :func:`plan_alter`
    once every action is applied); the index after the clause."""
    for c in local:
        if t.column(c) is None:
            raise PgError("42703", f'column "{c}" referenced in foreign key constraint does not exist')
    ref = fkeys.parse_references(toks, i, len(toks))
    if ref is None:
        raise Unsupported("REFERENCES")
    t.new_keys.append((name, [t.column(c).name for c in local], ref, validate and not ref.not_valid))  # type: ignore[union-attr]
    return ref.end


def add_column(t: Table, sql: str, toks: list[Token], i: int, b: int) -> None:
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
    typ = text_between(sql, toks, i, j)
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
            col.default = text_between(sql, toks, j + 1, k)
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
            e = group_end(toks, j + 1)
            t.checks.append((text_between(sql, toks, j + 1, e + 1), [name]))
            t.rebuild, plain = True, False
            j = e + 1
        elif word == "REFERENCES":
            t.columns.append(col)  # the check below looks the column up
            named = toks[j - 1].text if j >= 2 and words_at(toks, j - 2, "CONSTRAINT") else None
            j = add_foreign_key(sql, toks, j, t, [name], unquote_ident(named) if named else None, False)
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


def add_constraint(
    cur: duckdb.DuckDBPyConnection, t: Table, sql: str, toks: list[Token], i: int, b: int, cname: str | None
) -> None:
    head = toks[i].text.upper()
    if head == "CHECK":
        e = group_end(toks, i + 1)
        expr = text_between(sql, toks, i + 1, e + 1)
        t.checks.append((expr, [c.name for c in t.columns if refers(expr, c.name)]))
        t.rebuild = True
        return
    k = i + (2 if head in ("PRIMARY", "FOREIGN") else 1)
    if k >= b or toks[k].text != "(":
        raise Unsupported(head)
    e = group_end(toks, k)
    cols = column_list(sql, toks, k, e + 1)
    for c in cols:
        if t.column(c) is None and head != "FOREIGN":
            raise PgError("42703", f'column "{c}" named in key does not exist')
    if head == "FOREIGN":
        if not words_at(toks, e + 1, "REFERENCES"):
            raise Unsupported("FOREIGN KEY")
        add_foreign_key(sql, toks, e + 1, t, cols, cname, True)
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
