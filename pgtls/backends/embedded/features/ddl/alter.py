"""ALTER TABLE: the statements that do it in the session's transaction (:func:`plan_alter`).

DuckDB refuses most changes to a table that has an index (``Cannot alter entry ... because there are
entries that depend on it``; dropping the index first does not help inside a transaction), cannot add CHECK
or FOREIGN KEY constraints to an existing table, cannot drop a constraint and takes one action per
statement.  pgtls therefore does what DuckDB can do itself as it is (actions.py), and otherwise *rebuilds*
the table (:func:`rebuild`), all in the session's transaction (so ROLLBACK undoes it, as in PostgreSQL): a
new table with the changed definition (columns, defaults, NOT NULL, PRIMARY KEY, UNIQUE, CHECK, DuckDB
foreign keys, column and table comments such as the jsonb marks), the rows copied over (``USING``/casts for
a new type, defaults for a new column), the old table dropped, the new one renamed, and the indexes that
are still valid created again (those on a dropped column go, as in PostgreSQL; a renamed column is renamed
in them).  ``ADD CONSTRAINT name UNIQUE (...)`` becomes a unique index of that name (so ``DROP CONSTRAINT
name`` can drop it).  A table that another table's DuckDB foreign key references cannot be rebuilt (0A000).
"""

from __future__ import annotations

from dataclasses import replace

import duckdb

from pgtls.backends.embedded.features import foreignkeys as fkeys
from pgtls.backends.embedded.features.ddl.actions import apply_action, rename_column
from pgtls.backends.embedded.features.ddl.foreign_keys import add_kept_keys
from pgtls.backends.embedded.features.ddl.model import NOOP, Table, load_table
from pgtls.backends.embedded.features.ddl.parsing import split_items
from pgtls.backends.embedded.jsonb.marks import set_session_columns
from pgtls.backends.embedded.sql.lexer import Token, quote_ident, quote_literal, unquote_ident, words_at
from pgtls.errors import PgError


def plan_alter(
    cur: duckdb.DuckDBPyConnection, sql: str, toks: list[Token], notices: list[PgError]
) -> list[str] | None:
    """The statements for ALTER TABLE ``sql`` (planner.py's :func:`plan`), or None to let DuckDB run it."""
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
            rename_column(t, old, new)
            t.others += fkeys.rename_statements(cur, t.database, t.schema, t.name, column=(old, new))
    else:
        for a, b in split_items(sql, toks, i, len(toks)):
            apply_action(cur, t, sql, toks, a, b)
    add_kept_keys(cur, t)
    notices += t.notices
    if t.comment != comment and not t.rebuild:
        t.native.append(fkeys.comment_statement(t.database, t.schema, t.name, t.comment))
    stmts = (rebuild(t, new_name) if t.rebuild else t.native) + t.others
    after = _jsonb_columns(t)
    if after != before or new_name != t.name:
        _own_jsonb(cur, new_name, after)
    return stmts or [NOOP]


def _jsonb_columns(t: Table) -> set[str]:
    from pgtls.backends.embedded.pgtypes.typemap import JSONB_MARK

    return {c.name.lower() for c in t.columns if c.comment is not None and c.comment.startswith(JSONB_MARK)}


def _own_jsonb(cur: duckdb.DuckDBPyConnection, table: str, columns: set[str]) -> None:
    """Tell jsonb/marks.py which columns of ``table`` are jsonb for this session now (its committed marks are read
    on another connection, which does not see this transaction's comments yet)."""
    set_session_columns(cur, table, columns)


def rebuild(t: Table, new_name: str) -> list[str]:
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
