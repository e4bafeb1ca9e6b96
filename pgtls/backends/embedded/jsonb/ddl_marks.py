"""Setting the jsonb marks when DDL declares jsonb columns (:func:`after_ddl`, :func:`comment_statement`).

After CREATE TABLE or ALTER TABLE declares a ``jsonb`` column (or CREATE TABLE ... AS a query that gives
one), its comment starts with :data:`types.JSONB_MARK`; a user's own COMMENT goes on the line after the
mark (:func:`comment_statement`), and pg_description shows only that.
"""

from __future__ import annotations

import duckdb

from pgtls.backends.embedded.jsonb.marks import Marks, bump, entry
from pgtls.backends.embedded.jsonb.result_types import jsonb_flags
from pgtls.backends.embedded.pgtypes import typemap as T
from pgtls.backends.embedded.pgtypes.literals import parse_type
from pgtls.backends.embedded.sql.lexer import (
    Token,
    quote_ident,
    quote_literal,
    string_value,
    tokens,
    top_level_items,
    unquote_ident,
)

_CONSTRAINT_WORDS = {"CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN", "LIKE", "EXCLUDE"}


_CREATE_SKIP = {"OR", "REPLACE", "TEMP", "TEMPORARY", "UNLOGGED", "GLOBAL", "LOCAL"}


_DROP_WORDS = {"IF", "EXISTS", "CASCADE", "RESTRICT"}


def _name_end(toks: list[Token], j: int) -> int:
    """Index after a possibly qualified name starting at ``j``."""
    j += 1
    while j + 1 < len(toks) and toks[j].text == "." and toks[j + 1].kind in ("word", "ident"):
        j += 2
    return j


def _split_top(toks: list[Token], start: int) -> tuple[list[list[Token]], int]:
    """The comma-separated elements of the parenthesised list opening at ``start``, and the index after it."""
    parts: list[list[Token]] = [[]]
    depth = 0
    j = start + 1
    while j < len(toks):
        t = toks[j]
        if t.text == "(":
            depth += 1
        elif t.text == ")":
            if depth == 0:
                return parts, j + 1
            depth -= 1
        elif t.text == "," and depth == 0:
            parts.append([])
            j += 1
            continue
        parts[-1].append(t)
        j += 1
    return parts, j


def _type_at(sql: str, toks: list[Token], j: int) -> str | None:
    ref = parse_type(sql, toks, j)
    return ref.name if ref is not None else None


def _column_defs(sql: str, toks: list[Token]) -> tuple[str, list[tuple[str, str | None]]] | None:
    """(table text, [(column token text, type name)]) of CREATE TABLE t (...); None for other statements."""
    w = [t.text.upper() if t.kind == "word" else "" for t in toks]
    j = 1
    while j < len(w) and w[j] in _CREATE_SKIP:
        j += 1
    if j >= len(w) or w[j] != "TABLE":
        return None
    j += 1
    if w[j : j + 3] == ["IF", "NOT", "EXISTS"]:
        j += 3
    if j >= len(toks):
        return None
    end = _name_end(toks, j)
    table = sql[toks[j].start : toks[end - 1].end]
    if end >= len(toks) or toks[end].text != "(":
        return None
    parts, after = _split_top(toks, end)
    if after < len(toks) and toks[after].text.upper() == "AS":  # CREATE TABLE t (a, b) AS query
        return None
    defs = []
    for p in parts:
        if len(p) < 2 or p[0].kind not in ("word", "ident") or (p[0].kind == "word" and p[0].text.upper() in
                                                                 _CONSTRAINT_WORDS):  # fmt: skip
            continue
        k = toks.index(p[1])
        defs.append((p[0].text, _type_at(sql, toks, k)))
    return table, defs


def _alter_actions(sql: str, toks: list[Token]) -> tuple[str, list[tuple[str, str, str | None]]] | None:
    """(table text, [(action, column token text, type name or new name)]) of ALTER TABLE; actions are
    "add", "type" and "rename"."""
    w = [t.text.upper() if t.kind == "word" else t.text for t in toks]
    if w[:2] != ["ALTER", "TABLE"]:
        return None
    j = 2
    if w[j : j + 2] == ["IF", "EXISTS"]:
        j += 2
    if j < len(w) and w[j] == "ONLY":
        j += 1
    if j >= len(toks):
        return None
    end = _name_end(toks, j)
    table = sql[toks[j].start : toks[end - 1].end]
    actions: list[tuple[str, str, str | None]] = []
    for a, b in top_level_items(toks, end, len(toks)):
        p = list(range(a, b))
        ws = [w[k] for k in p]
        i = 1
        if ws[0] == "ADD":
            if i < len(ws) and ws[i] == "COLUMN":
                i += 1
            if ws[i : i + 3] == ["IF", "NOT", "EXISTS"]:
                i += 3
            if i + 1 < len(p) and ws[i] not in _CONSTRAINT_WORDS:
                actions.append(("add", toks[p[i]].text, _type_at(sql, toks, p[i + 1])))
        elif ws[0] == "ALTER":
            if i < len(ws) and ws[i] == "COLUMN":
                i += 1
            col = p[i] if i < len(p) else None
            rest = ws[i + 1 :]
            n = 2 if rest[:3] == ["SET", "DATA", "TYPE"] else 0 if rest[:1] == ["TYPE"] else -1
            if col is not None and n >= 0 and i + 2 + n < len(p):
                actions.append(("type", toks[col].text, _type_at(sql, toks, p[i + 2 + n])))
        elif ws[0] == "RENAME" and "TO" in ws:
            t = ws.index("TO")
            i = 2 if ws[1:2] == ["COLUMN"] else 1
            if t == i + 1 and t + 1 < len(p):
                actions.append(("rename", toks[p[i]].text, unquote_ident(toks[p[t + 1]].text)))
    return table, actions


def _last_name(table: str) -> str:
    toks = [t for t in tokens(table) if t.kind in ("word", "ident")]
    return unquote_ident(toks[-1].text).lower() if toks else table.lower()


def _comment_of(cur: duckdb.DuckDBPyConnection, table: str, column: str) -> str | None:
    rows = cur.execute(
        "SELECT comment FROM duckdb_columns() WHERE lower(table_name) = ? AND lower(column_name) = ? LIMIT 1",
        [table, column],
    ).fetchall()
    return rows[0][0] if rows else None


def _set_mark(cur: duckdb.DuckDBPyConnection, table: str, col: str, jsonb: bool) -> None:
    old = _comment_of(cur, _last_name(table), unquote_ident(col).lower())
    marked = old is not None and old.startswith(T.JSONB_MARK)
    if marked == jsonb:
        return
    if jsonb:
        new: str | None = T.JSONB_MARK + ("\n" + old if old else "")
    else:
        new = (old or "")[len(T.JSONB_MARK) + 1 :] or None
    value = quote_literal(new) if new is not None else "NULL"
    try:
        cur.execute(f"COMMENT ON COLUMN {table}.{col} IS {value}")
    except duckdb.Error:
        pass  # not commentable (a temporary table?): the session's own record below still knows


def after_ddl(cur: duckdb.DuckDBPyConnection, sql: str, first: str) -> None:
    """After CREATE/ALTER/DROP/COMMENT ran: mark jsonb columns and make every session read the marks again."""
    bump()
    if first not in ("CREATE", "ALTER", "DROP"):
        return
    toks = tokens(sql)
    m = entry(cur)
    if first == "CREATE":
        parsed = _column_defs(sql, toks)
        if parsed is None:
            _mark_created_as(cur, sql, toks, m)
            return
        table, defs = parsed
        for col, typ in defs:
            if typ == "jsonb":
                _set_mark(cur, table, col, True)
        m.own[_last_name(table)] = {unquote_ident(c).lower() for c, typ in defs if typ == "jsonb"}
    elif first == "ALTER":
        parsed2 = _alter_actions(sql, toks)
        if parsed2 is None:
            return
        table, actions = parsed2
        name = _last_name(table)
        current = set(m.own.get(name, m.columns.get(name, set())))
        for action, col, arg in actions:
            c = unquote_ident(col).lower()
            if action in ("add", "type"):
                if arg == "jsonb" or action == "type":
                    _set_mark(cur, table, col, arg == "jsonb")
                if arg == "jsonb":
                    current.add(c)
                else:
                    current.discard(c)
            elif action == "rename" and arg is not None and c in current:
                current.discard(c)
                current.add(arg.lower())
        m.own[name] = current
    else:
        w = [t.text.upper() for t in toks[:2]]
        if w == ["DROP", "TABLE"]:
            for t in toks[2:]:
                if t.kind in ("word", "ident") and t.text.upper() not in _DROP_WORDS:
                    m.own[unquote_ident(t.text).lower()] = set()


def _mark_created_as(cur: duckdb.DuckDBPyConnection, sql: str, toks: list[Token], m: Marks) -> None:
    """CREATE TABLE t AS query: t's columns that the query gives as jsonb are jsonb (as in PostgreSQL)."""
    w = [t.text.upper() if t.kind == "word" else t.text for t in toks]
    j = 1
    while j < len(w) and w[j] in _CREATE_SKIP:
        j += 1
    if j >= len(w) or w[j] != "TABLE":
        return
    j += 4 if w[j + 1 : j + 4] == ["IF", "NOT", "EXISTS"] else 1
    if j >= len(toks):
        return
    end = _name_end(toks, j)
    table = sql[toks[j].start : toks[end - 1].end]
    if end < len(toks) and toks[end].text == "(":
        _, end = _split_top(toks, end)
    if end + 1 >= len(toks) or w[end] != "AS":
        return
    query = sql[toks[end + 1].start :]
    desc = cur.execute(f"SELECT * FROM {table} LIMIT 0").description or []
    names, ducks = [d[0] for d in desc], [str(d[1]) for d in desc]
    if not any("JSON" in d for d in ducks):
        return
    flags = jsonb_flags(cur, query, names, ducks)
    for name, flag in zip(names, flags, strict=True):
        if flag:
            _set_mark(cur, table, quote_ident(name), True)
    m.own[_last_name(table)] = {n.lower() for n, f in zip(names, flags, strict=True) if f}


def comment_statement(cur: duckdb.DuckDBPyConnection, sql: str) -> str:
    """``COMMENT ON COLUMN t.c IS '...'`` on a jsonb column keeps the mark in front of the user's text."""
    toks = tokens(sql)
    w = [t.text.upper() for t in toks]
    if w[:3] != ["COMMENT", "ON", "COLUMN"] or "IS" not in w:
        return sql
    k = w.index("IS")
    names = [t for t in toks[3:k] if t.kind in ("word", "ident")]
    if len(names) < 2 or k + 1 >= len(toks):
        return sql
    table, col = unquote_ident(names[-2].text).lower(), unquote_ident(names[-1].text).lower()
    old = _comment_of(cur, table, col)
    if old is None or not old.startswith(T.JSONB_MARK):
        return sql
    val = toks[k + 1]
    text = string_value(val.text) if val.kind == "string" else ""
    new = T.JSONB_MARK + ("\n" + text if text else "")
    return sql[: val.start] + quote_literal(new) + sql[toks[k + 1].end :]


def comment_hook(cur: duckdb.DuckDBPyConnection, sql: str) -> str:
    return comment_statement(cur, sql) if "column" in sql.lower() else sql
