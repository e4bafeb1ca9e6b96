"""The foreign keys pgtls keeps (foreignkeys.py: a mark in the child table's comment) as DDL changes tables.

CREATE TABLE: such keys are taken out of the statement DuckDB runs (:func:`strip_kept_foreign_keys`, a text
rewrite of rewrite/pipeline.py) and recorded once the table exists (:func:`kept_keys_after_create`, called by
features/kept_keys.py).  A foreign key added by ALTER TABLE is checked against the existing rows and
recorded (:func:`add_kept_keys`).  DROP TABLE / DROP COLUMN of what they reference is refused as PostgreSQL
does, or with CASCADE the foreign key is dropped (:func:`drop_table_plan`, :func:`drop_referenced`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import duckdb

from pgtls.backends.embedded.features import foreignkeys as fkeys
from pgtls.backends.embedded.features.ddl.model import Table, load_table
from pgtls.backends.embedded.features.ddl.parsing import (
    column_list,
    create_table_name,
    create_table_schema,
    group_end,
    split_items,
)
from pgtls.backends.embedded.sql.lexer import (
    Token,
    apply_edits,
    closing_paren,
    table_list,
    tokens,
    unquote_ident,
    words_at,
)
from pgtls.errors import PgError


def create_table_keys(
    sql: str, toks: list[Token]
) -> list[tuple[int, int, int, str | None, list[str], fkeys.References]]:
    """The foreign keys of CREATE TABLE that pgtls keeps (foreignkeys.py): (item start, item end, start of
    the clause to remove, constraint name, local columns, the REFERENCES clause) for each."""
    found = create_table_name(toks)
    if found is None:
        return []
    _, open_paren = found
    close = closing_paren(toks, open_paren)
    if close is None:
        return []
    out = []
    for a, b in split_items(sql, toks, open_paren + 1, close):
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
            local = column_list(sql, toks, k, group_end(toks, k) + 1)
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
    found = create_table_name(toks)
    if found is None:
        return sql
    _, open_paren = found
    close = group_end(toks, open_paren)
    kept = {a: (start, ref.end) for a, _b, start, _n, _l, ref in create_table_keys(sql, toks)}
    edits: list[tuple[int, int, str]] = []
    items = split_items(sql, toks, open_paren + 1, close)
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


def keeps_keys(cur: duckdb.DuckDBPyConnection, sql: str) -> bool:
    """Before CREATE TABLE ``sql`` runs: whether it declares foreign keys pgtls keeps and creates the table
    (``IF NOT EXISTS`` of a table that exists changes nothing)."""
    toks = tokens(sql)
    if not create_table_keys(sql, toks):
        return False
    found = create_table_name(toks)
    if found is None:
        return False
    if any(words_at(toks, x, "IF", "NOT", "EXISTS") for x in range(found[1])):
        return load_table(cur, create_table_schema(toks, found[1]), found[0]) is None
    return True


def kept_keys_after_create(cur: duckdb.DuckDBPyConnection, sql: str) -> list[str]:
    """After CREATE TABLE ``sql`` (as the client sent it) ran: the statements that record its foreign keys
    that pgtls keeps, checked as PostgreSQL checks them (raises PgError)."""
    toks = tokens(sql)
    keys = create_table_keys(sql, toks)
    found = create_table_name(toks)
    if not keys or found is None:
        return []
    t = load_table(cur, create_table_schema(toks, found[1]), found[0])
    if t is None:
        return []
    t.new_keys = [(name, local, ref, False) for _a, _b, _s, name, local, ref in keys]
    for _n, local, _r, _v in t.new_keys:
        for c in local:
            if t.column(c) is None:
                raise PgError("42703", f'column "{c}" referenced in foreign key constraint does not exist')
    add_kept_keys(cur, t)
    return [fkeys.comment_statement(t.database, t.schema, t.name, t.comment)]


def add_kept_keys(cur: duckdb.DuckDBPyConnection, t: Table) -> None:
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


def drop_referenced(
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
