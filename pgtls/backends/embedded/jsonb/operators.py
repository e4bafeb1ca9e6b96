"""Telling jsonb from json: DuckDB has one JSON type for both, so pgtls keeps the difference itself.

A PostgreSQL ``jsonb`` column is a DuckDB JSON column whose comment starts with
:data:`types.JSONB_MARK` (set by :func:`after_ddl` when CREATE TABLE or ALTER TABLE
declares one; a user's own COMMENT goes on the line after the mark, see
:func:`comment_statement`, and pg_description shows only that).  A JSON result
column is reported as jsonb (and printed the way jsonb_out prints it, see
codecs.jsonb_text) when DuckDB's parse tree of the query says it comes from one:

* a cast to jsonb (``x::jsonb``, ``CAST(x AS jsonb)``, arrays of it);
* a jsonb column of a table the query reads (by name; ``SELECT *`` too);
* ``x -> 'k'`` of such a value, COALESCE/CASE/NULLIF/min/max over one, a ``jsonb_*`` function.

Anything else stays json, as before.  What this cannot see: columns of views, a jsonb column renamed by
a subquery alias, and jsonb columns another session created in a transaction it has not committed yet.
"""

from __future__ import annotations

import functools
import json
import threading
import time
import weakref
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import duckdb

from pgtls.backends.embedded.engine.hooks import HOOKS
from pgtls.backends.embedded.jsonb import edit as jsonb_edit
from pgtls.backends.embedded.jsonb.operands import is_jsonb_operand, operand_end, operand_start
from pgtls.backends.embedded.pgtypes import typemap as T
from pgtls.backends.embedded.pgtypes.literals import parse_type
from pgtls.backends.embedded.sql.lexer import (
    Token,
    apply_edits,
    closing_paren,
    quote_ident,
    quote_literal,
    string_value,
    tokens,
    top_level_items,
    unquote_ident,
)

# Seconds a session trusts its copy of the catalog's marks (another session's DDL may commit after it ran).
MARKS_TTL = 2.0
_CONSTRAINT_WORDS = {"CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN", "LIKE", "EXCLUDE"}
_CREATE_SKIP = {"OR", "REPLACE", "TEMP", "TEMPORARY", "UNLOGGED", "GLOBAL", "LOCAL"}
_DROP_WORDS = {"IF", "EXISTS", "CASCADE", "RESTRICT"}
_PASS_FIRST_ARG = {"nullif", "greatest", "least", "min", "max", "first", "last", "any_value",
                   "arbitrary", "json_extract", "->"}  # fmt: skip
_MARKS_SQL = (
    "SELECT lower(table_name), lower(column_name) FROM duckdb_columns() WHERE starts_with(comment, ?)"
)


@dataclass
class _Marks:
    generation: int
    at: float
    # table (lower-case) -> its jsonb columns, as the committed catalog says
    columns: dict[str, set[str]]
    # tables this session (re)defined (maybe not committed yet, or temporary): these win over ``columns``
    own: dict[str, set[str]] = field(default_factory=dict)


_lock = threading.Lock()
_generation = 0  # bumped by every DDL statement of any session: cached marks are then read again
_marks: weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, _Marks] = weakref.WeakKeyDictionary()


def _bump() -> None:
    global _generation
    with _lock:
        _generation += 1


def _entry(cur: duckdb.DuckDBPyConnection) -> _Marks:
    with _lock:
        m = _marks.get(cur)
        if m is None:
            m = _marks[cur] = _Marks(-1, 0.0, {})
        return m


def set_session_columns(cur: duckdb.DuckDBPyConnection, table: str, columns: set[str]) -> None:
    """The jsonb columns of ``table`` as this session's transaction has made them (DDL that is not yet
    committed; the committed marks are read on another connection)."""
    _entry(cur).own[table.lower()] = columns


def marked_columns(cur: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    """Table -> jsonb columns for the session ``cur`` (read again when the cached copy is stale, on a fresh
    cursor of the same database: ``cur`` may hold a pending result)."""
    m = _entry(cur)
    now = time.monotonic()
    if m.generation != _generation or now - m.at > MARKS_TTL:
        gen = _generation
        cols: dict[str, set[str]] = {}
        reader = cur.cursor()
        try:
            for table, col in reader.execute(_MARKS_SQL, [T.JSONB_MARK]).fetchall():
                cols.setdefault(table, set()).add(col)
        finally:
            reader.close()
        m.generation, m.at, m.columns = gen, now, cols
    if not m.own:
        return m.columns
    return {**m.columns, **m.own}


_parser_lock = threading.Lock()
_parser: duckdb.DuckDBPyConnection | None = None


def _shape(sql: str) -> str:
    """``sql`` with its literals blanked: what the parse tree's shape depends on (bound parameters arrive as
    literals, so the statement differs at every execution; its shape does not)."""
    out: list[str] = []
    pos = 0
    for t in tokens(sql):
        if t.kind in ("string", "number"):
            out.append(sql[pos : t.start])
            out.append("''" if t.kind == "string" else "0")
            pos = t.end
    out.append(sql[pos:])
    return "".join(out)


@functools.lru_cache(maxsize=512)
def parse_tree(sql: str) -> dict[str, Any]:
    """DuckDB's parse tree of ``sql`` (json_serialize_sql: SELECT statements only, else ``{"error": true}``)."""
    global _parser
    with _parser_lock:
        if _parser is None:
            _parser = duckdb.connect(config={"enable_external_access": False})
        try:
            tree = json.loads(_parser.execute("SELECT json_serialize_sql(?)", [sql]).fetchall()[0][0])
        except (duckdb.Error, ValueError, IndexError):
            tree = None
    return tree if isinstance(tree, dict) else {"error": True}


# --- result columns -----------------------------------------------------------------------------


def _type_is_jsonb(t: Any) -> bool:
    if not isinstance(t, dict):
        return False
    name = str(t.get("type_name") or "").lower()
    if name == "jsonb":
        return True
    children = t.get("children") or []
    return name == "list" and bool(children) and _type_is_jsonb(children[0])


def _args(e: dict[str, Any]) -> list[Any]:
    return [a.get("expression") if isinstance(a, dict) and "expression" in a else a
            for a in e.get("arguments") or e.get("children") or []]  # fmt: skip


def is_jsonb(e: Any, cols: set[str]) -> bool:
    """Whether the parse-tree expression ``e`` is a jsonb value (``cols``: jsonb column names in scope)."""
    if not isinstance(e, dict):
        return False
    cls = e.get("class")
    if cls == "CAST":
        return _type_is_jsonb(e.get("type_expr"))
    if cls == "COLUMN_REF":
        names = e.get("column_names") or []
        return bool(names) and str(names[-1]).lower() in cols
    if cls == "LAMBDA":  # DuckDB parses ``j -> 'k'`` as a lambda until it binds it
        return e.get("syntax_type") == "SINGLE_ARROW" and is_jsonb(e.get("lhs"), cols)
    if cls == "OPERATOR":  # COALESCE(...), ARRAY[...] (jsonb[])
        return e.get("type") in ("OPERATOR_COALESCE", "ARRAY_CONSTRUCTOR") and any(
            is_jsonb(c, cols) for c in e.get("children") or []
        )
    if cls == "CASE":
        checks = [c.get("then_expr") for c in e.get("case_checks") or [] if isinstance(c, dict)]
        return any(is_jsonb(x, cols) for x in [*checks, e.get("else_expr")])
    if cls == "FUNCTION":
        fn = str(e.get("function_name") or "").lower()
        if fn.startswith("jsonb_") or fn == "to_jsonb":
            return True
        args = _args(e)
        if fn in ("list_value", "array_value", "coalesce"):  # ARRAY[...] of jsonb: jsonb[]
            return any(is_jsonb(a, cols) for a in args)
        return fn in _PASS_FIRST_ARG and bool(args) and is_jsonb(args[0], cols)
    if cls == "SUBQUERY":
        node = _select_node((e.get("subquery") or {}).get("node"))
        items = node.get("select_list") if node else None
        return is_jsonb(items[0], cols) if items else False
    return False


def _select_node(node: Any) -> dict[str, Any] | None:
    while isinstance(node, dict) and node.get("type") == "SET_OPERATION_NODE":
        node = node.get("left")
    return node if isinstance(node, dict) and node.get("type") == "SELECT_NODE" else None


def _base_tables(tree: Any, out: set[str]) -> set[str]:
    if isinstance(tree, dict):
        if tree.get("type") == "BASE_TABLE" and tree.get("table_name"):
            out.add(str(tree["table_name"]).lower())
        for v in tree.values():
            if isinstance(v, dict | list):
                _base_tables(v, out)
    elif isinstance(tree, list):
        for v in tree:
            _base_tables(v, out)
    return out


def _token_tables(sql: str) -> set[str]:
    from pgtls.backends.embedded.pgtypes.params import _tables

    return {t.lower() for t in _tables(tokens(sql))}


def jsonb_flags(cur: duckdb.DuckDBPyConnection, sql: str, names: list[str], ducks: list[str]) -> list[bool]:
    """For each result column (DuckDB ``names``/types ``ducks`` of ``sql``, run on the session ``cur``): whether
    it is jsonb."""
    marks = marked_columns(cur)
    if not marks and "jsonb" not in sql.lower():
        return [False] * len(names)
    tree = parse_tree(_shape(sql))
    stmts = tree.get("statements") if not tree.get("error") else None
    node = _select_node(stmts[0].get("node")) if stmts and len(stmts) == 1 else None
    tables = _base_tables(stmts, set()) if node is not None else _token_tables(sql)
    cols: set[str] = set().union(*(marks.get(t, set()) for t in tables)) if tables else set()
    is_json = ["JSON" in d for d in ducks]
    if node is None:  # INSERT/UPDATE/DELETE ... RETURNING: by column name
        return [j and n.lower() in cols for j, n in zip(is_json, names, strict=True)]
    items = [x for x in node.get("select_list") or [] if isinstance(x, dict)]
    star = any(x.get("class") == "STAR" for x in items)
    if not star and len(items) == len(names):
        return [j and is_jsonb(x, cols) for j, x in zip(is_json, items, strict=True)]
    named: dict[str, dict[str, Any]] = {}
    for x in items:
        alias = x.get("alias") or ""
        if alias:
            named[alias.lower()] = x
        elif x.get("class") == "COLUMN_REF" and x.get("column_names"):
            named.setdefault(str(x["column_names"][-1]).lower(), x)
    out = []
    for j, n in zip(is_json, names, strict=True):
        item = named.get(n.lower())
        out.append(j and (is_jsonb(item, cols) if item is not None else star and n.lower() in cols))
    return out


def retype(columns: list[T.Column], flags: list[bool]) -> list[T.Column]:
    """``columns`` with the flagged json (and json[]) ones turned into jsonb (jsonb[])."""
    out = []
    for c, flag in zip(columns, flags, strict=True):
        if flag and c.type.oid in (T.JSON.oid, T.BY_OID[T.JSON.array_oid].oid):
            t = T.JSONB if c.type.oid == T.JSON.oid else T.BY_OID[T.JSONB.array_oid]
            c = T.Column(c.name, t, c.typmod, c.duck)
        out.append(c)
    return out


# --- DDL: setting the marks ------------------------------------------------------------------------


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
    _bump()
    if first not in ("CREATE", "ALTER", "DROP"):
        return
    toks = tokens(sql)
    m = _entry(cur)
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


def _mark_created_as(cur: duckdb.DuckDBPyConnection, sql: str, toks: list[Token], m: _Marks) -> None:
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


# --- jsonb's key-exists operators -------------------------------------------------------------

_EXISTS = {"": "pgtls_jsonb_exists", "|": "pgtls_jsonb_exists_any", "&": "pgtls_jsonb_exists_all"}


def exists_edits(sql: str, toks: list[Token]) -> list[tuple[int, int, str]]:
    """``j ? k``, ``j ?| ks`` and ``j ?& ks`` (which DuckDB's parser does not have) as calls of the
    catalog's ``pgtls_jsonb_exists[_any|_all]`` macros.  The left side is a (qualified) name or a
    parenthesised expression, possibly a function call; the right side one value: a string, a parameter,
    a name, ``ARRAY[...]`` or a parenthesised expression.  Anything else is left for DuckDB to refuse."""
    edits: list[tuple[int, int, str]] = []
    n = len(toks)
    i = 0
    while i < n:
        t = toks[i]
        if t.kind != "op" or t.text != "?":
            i += 1
            continue
        variant = (
            toks[i + 1].text if i + 1 < n and toks[i + 1].start == t.end and toks[i + 1].text in "|&" else ""
        )
        right = i + 1 + (1 if variant else 0)
        lo = operand_start(toks, i - 1)
        hi = operand_end(toks, right)
        if lo is None or hi is None:
            i += 1
            continue
        left_sql = sql[toks[lo].start : toks[i - 1].end]
        right_sql = sql[toks[right].start : toks[hi].end]
        if variant and hi == right and toks[right].kind == "string":
            right_sql += "::text[]"  # an unknown literal: PostgreSQL reads it as text[] here
        edits.append((toks[lo].start, toks[hi].end, f"{_EXISTS[variant]}({left_sql}, {right_sql})"))
        i = hi + 1
    return edits


# --- JSON functions DuckDB has under other names ------------------------------------------------

# PostgreSQL name -> (DuckDB call, {} standing for the parenthesised arguments; result is jsonb; the value
# of an aggregate over no rows, which PostgreSQL gives as NULL).  json_agg goes through list(), which
# takes ORDER BY and FILTER and is NULL over no rows.
JSON_FUNCTIONS: dict[str, tuple[str, bool, str | None]] = {
    "json_build_object": ("json_object{}", False, None),
    "json_build_array": ("json_array{}", False, None),
    "jsonb_build_object": ("json_object{}", True, None),
    "jsonb_build_array": ("json_array{}", True, None),
    "to_jsonb": ("to_json{}", True, None),
    "json_agg": ("to_json(list{})", False, None),
    "jsonb_agg": ("to_json(list{})", True, None),
    "json_object_agg": ("json_group_object{}", False, "{}"),
    "jsonb_object_agg": ("json_group_object{}", True, "{}"),
}


def function_edits(sql: str, toks: list[Token]) -> list[tuple[int, int, str]]:
    """:func:`_function_edits`, then jsonb_set & co., ``#-`` and ``-`` of a jsonb value (jsonb/edit.py; one
    edit of the whole text then)."""
    edits = _function_edits(sql, toks)
    low = sql.lower()
    calls = any(name in low for name in jsonb_edit.CALLS)
    if not calls and "-" not in sql:
        return edits
    text = apply_edits(sql, edits) if edits else sql
    if calls:
        text = jsonb_edit.call_text(text) or text
    text = jsonb_edit.operator_text(text, set) or text
    return [(0, len(sql), text)] if text != sql else edits


def _function_edits(sql: str, toks: list[Token]) -> list[tuple[int, int, str]]:
    """Calls of :data:`JSON_FUNCTIONS` renamed to DuckDB's; a jsonb result wrapped in ``CAST(... AS jsonb)``
    (so that it is sent as jsonb), and an aggregate over no rows made NULL as in PostgreSQL (DuckDB
    gives ``[]``/``{}``, which the aggregate of one row or more never is).  A FILTER or OVER clause stays
    with its aggregate inside the wrapping; calls inside the arguments are rewritten too."""
    edits: list[tuple[int, int, str]] = []
    n = len(toks)
    i = 0
    while i < n:
        t = toks[i]
        spec = JSON_FUNCTIONS.get(t.text.lower()) if t.kind == "word" else None
        if spec is None or i + 1 >= n or toks[i + 1].text != "(" or (i > 0 and toks[i - 1].text == "."):
            i += 1
            continue
        duck, is_jsonb, empty = spec
        if duck.endswith("{}") and "(" not in duck and not is_jsonb and empty is None:
            edits.append((t.start, t.end, duck[:-2]))  # a plain rename
            i += 1
            continue
        end = closing_paren(toks, i + 1)
        if end is None:
            i += 1
            continue
        while (
            end + 1 < n and toks[end + 1].kind == "word" and toks[end + 1].text.upper() in ("FILTER", "OVER")
        ):
            if end + 2 < n and toks[end + 2].text == "(":
                close = closing_paren(toks, end + 2)
                if close is None:
                    break
                end = close
            elif end + 2 < n and toks[end + 2].kind in ("word", "ident"):  # OVER window_name
                end += 2
            else:
                break
        rest = sql[t.end : toks[end].end]
        inner = _function_edits(rest, tokens(rest))
        call = duck.replace("{}", apply_edits(rest, inner) if inner else rest)
        if empty is not None:
            call = f"nullif({call}, '{empty}')"
        if is_jsonb:
            call = f"CAST({call} AS jsonb)"
        edits.append((t.start, toks[end].end, call))
        i = end + 1
    return edits


def _column_names() -> list[tuple[str, str]]:
    """(start of DuckDB's name for a rewritten call, PostgreSQL's column name), longest first."""
    out = [(f"{name}(", "?column?") for name in _EXISTS.values()]  # operators: PostgreSQL's ?column?
    out += [
        ("CAST(pgtls_jsonb_concat(", "?column?"),
        ("CAST(pgtls_jsonb_path(", "?column?"),
        ("pgtls_jsonb_contains(", "?column?"),
        ("pgtls_jsonb_path_text(", "?column?"),
        *jsonb_edit.COLUMN_NAMES,
    ]
    for pg, (template, is_jsonb, empty) in JSON_FUNCTIONS.items():
        head = template.split("{}")[0] + "("
        if empty is not None:
            head = '"nullif"(' + head  # (DuckDB quotes nullif, a keyword, in its names)
        if is_jsonb:
            head = "CAST(" + head
        out.append((head, pg))
    return sorted(out, key=lambda p: -len(p[0]))


COLUMN_NAMES = _column_names()


def column_name(duck_name: str) -> str | None:
    """PostgreSQL's column name for a call this module rewrote, from DuckDB's name for it."""
    for head, pg in COLUMN_NAMES:
        if duck_name.startswith(head):
            return pg
    return None


# --- jsonb || jsonb --------------------------------------------------------------------------------


def concat_edits(cur: duckdb.DuckDBPyConnection, sql: str, toks: list[Token]) -> list[tuple[int, int, str]]:
    """``a || b || ...`` where an operand is jsonb, as ``pgtls_jsonb_concat`` calls (PostgreSQL's jsonb
    concatenation: objects merged, right side winning; otherwise arrays joined, a non-array taken as an
    array of one).  DuckDB's json is text to its ``||``, which would silently join the two texts.

    An operand is jsonb when it is a ``::jsonb`` or ``CAST(… AS jsonb)`` value (jsonb functions are
    rewritten to those before this runs) or a column that is jsonb in every table of the statement that
    has a column of that name (jsonb marks, see :func:`marked_columns`)."""
    bars = [i for i in range(len(toks) - 1) if toks[i].text == "|" and toks[i + 1].text == "|"
            and toks[i + 1].start == toks[i].end]  # fmt: skip
    if not bars:
        return []
    names = _jsonb_names(cur, toks)
    edits: list[tuple[int, int, str]] = []
    k = 0
    while k < len(bars):
        lo = operand_start(toks, bars[k] - 1)
        if lo is None:
            k += 1
            continue
        operands = [(lo, bars[k] - 1)]
        j = k
        while True:  # a || b || c: one chain, folded from the left as PostgreSQL groups it
            hi = operand_end(toks, bars[j] + 2)
            if hi is None:
                break
            operands.append((bars[j] + 2, hi))
            if j + 1 < len(bars) and bars[j + 1] == hi + 1:
                j += 1
                continue
            break
        k = j + 1
        if len(operands) < 2 or not any(is_jsonb_operand(toks, a, b, names) for a, b in operands):
            continue
        texts = [sql[toks[a].start : toks[b].end] for a, b in operands]
        call = texts[0]
        for t in texts[1:]:
            call = f"pgtls_jsonb_concat({call}, {t})"
        edits.append((toks[operands[0][0]].start, toks[operands[-1][1]].end, f"CAST({call} AS jsonb)"))
    return edits


def _jsonb_names(cur: duckdb.DuckDBPyConnection, toks: list[Token]) -> set[str]:
    """Column names that are jsonb wherever the statement's tables have them."""
    from pgtls.backends.embedded.pgtypes.params import _columns, _tables

    marks = marked_columns(cur)
    candidates = {c for cols in marks.values() for c in cols}
    words = {unquote_ident(t.text).lower() for t in toks if t.kind in ("word", "ident")}
    candidates &= words
    if not candidates:
        return set()
    try:
        cols = _columns(cur, _tables(toks))
    except duckdb.Error:
        return set()
    out = set()
    for name in candidates:
        having = [table for table, tcols in cols.items() if name in tcols]
        if having and all(name in marks.get(table, set()) for table in having):
            out.add(name)
    return out


def with_operators(cur: duckdb.DuckDBPyConnection, sql: str) -> str:
    """:func:`operators` applied to ``sql`` (rewritten) where it may change it: ``||``, ``@>`` or ``<@``, or a
    ``-`` where a jsonb value may be an operand (``#-``, a json word, or a database with jsonb columns).
    The session runs this on a query; Parse and Describe too, so that they see what will run."""
    if "||" in sql or "@>" in sql or "<@" in sql or (
            "-" in sql and ("#-" in sql or "json" in sql.lower() or marked_columns(cur))):  # fmt: skip
        return operators(cur, sql)
    return sql


def operators(cur: duckdb.DuckDBPyConnection, sql: str) -> str:
    """``sql`` with its jsonb ``||``, ``@>``, ``<@``, ``-`` and ``#-`` as PostgreSQL's (:func:`concat_edits`,
    :func:`containment_edits`, jsonb_edit.operator_text)."""
    if (
        "-" in sql
    ):  # #- and the minus of a jsonb column (jsonb/edit.py), first: - binds tighter than || and @>
        text = sql
        sql = jsonb_edit.operator_text(sql, lambda: _jsonb_names(cur, tokens(text))) or sql
    if "||" in sql:
        edits = concat_edits(cur, sql, tokens(sql))
        if edits:
            sql = apply_edits(sql, edits)
    if "@>" in sql or "<@" in sql:  # on the text with the concatenations rewritten: a || b @> c
        edits = containment_edits(cur, sql, tokens(sql))
        if edits:
            sql = apply_edits(sql, edits)
    return sql


def containment_edits(
    cur: duckdb.DuckDBPyConnection, sql: str, toks: list[Token]
) -> list[tuple[int, int, str]]:
    """``a @> b`` and ``a <@ b`` where an operand is jsonb, as ``pgtls_jsonb_contains`` calls (the same
    operators on arrays stay DuckDB's)."""
    names: set[str] | None = None
    edits: list[tuple[int, int, str]] = []
    n = len(toks)
    i = 1
    while i + 1 < n:
        pair = toks[i].text + toks[i + 1].text
        if pair not in ("@>", "<@") or toks[i + 1].start != toks[i].end:
            i += 1
            continue
        lo, hi = operand_start(toks, i - 1), operand_end(toks, i + 2)
        if lo is None or hi is None:
            i += 1
            continue
        if names is None:
            names = _jsonb_names(cur, toks)
        if not (is_jsonb_operand(toks, lo, i - 1, names) or is_jsonb_operand(toks, i + 2, hi, names)):
            i += 1
            continue
        left = sql[toks[lo].start : toks[i - 1].end]
        right = sql[toks[i + 2].start : toks[hi].end]
        outer, inner = (left, right) if pair == "@>" else (right, left)
        edits.append((toks[lo].start, toks[hi].end, f"pgtls_jsonb_contains({outer}, {inner})"))
        i = hi + 1
    return edits


# --- #> and #>> ----------------------------------------------------------------------------------


def _arrow_at(toks: list[Token], i: int) -> tuple[str, int] | None:
    """The operator ``->``, ``->>``, ``#>``, ``#>>`` or ``#-`` starting at ``toks[i]`` (lexed a character a
    token), and the index of the token after it."""
    n = len(toks)
    if i + 1 < n and toks[i].text == "#" and toks[i + 1].text == "-" and toks[i + 1].start == toks[i].end:
        return "#-", i + 2
    if (
        i + 1 >= n
        or toks[i].text not in ("-", "#")
        or toks[i + 1].text != ">"
        or toks[i + 1].start != toks[i].end
    ):
        return None
    if i + 2 < n and toks[i + 2].text == ">" and toks[i + 2].start == toks[i + 1].end:
        return toks[i].text + ">>", i + 3
    return toks[i].text + ">", i + 2


def path_edits(sql: str, toks: list[Token]) -> list[tuple[int, int, str]]:
    """``j #> path`` and ``j #>> path`` (which DuckDB's parser lacks) as JSON Pointer lookups, which read an
    element as an array index or a key as PostgreSQL does.  A chain such as ``j -> 'a' #>> '{b,0}'`` is
    folded from the left, as PostgreSQL groups these operators; the path is a text[] literal, an ARRAY[...]
    or any text[] value.  ``#-`` in such a chain is jsonb_edit's call."""
    edits: list[tuple[int, int, str]] = []
    n = len(toks)
    i = 0
    while i < n:
        op = _arrow_at(toks, i)
        if op is None or op[0][0] != "#":
            i += 1
            continue
        # the chain of ->, ->>, #>, #>> this operator belongs to, from its first operand
        lo = operand_start(toks, i - 1)
        while lo is not None and lo >= 2:
            back = next((k for k in (lo - 2, lo - 3) if k >= 0 and (arrow := _arrow_at(toks, k)) is not None and arrow[1] == lo),
                        None)  # fmt: skip
            if back is None:
                break
            lo = operand_start(toks, back - 1)
        if lo is None:
            i += 1
            continue
        first_op = next(k for k in range(lo, n) if _arrow_at(toks, k))
        acc = sql[toks[lo].start : toks[first_op - 1].end]
        j = first_op
        end = first_op - 1
        while j < n and (found := _arrow_at(toks, j)) is not None:
            name, after = found
            hi = operand_end(toks, after)
            if hi is None:
                break
            right = sql[toks[after].start : toks[hi].end]
            if name[0] == "-":
                acc = f"({acc} {name} {right})"
            elif name == "#-":
                acc = jsonb_edit.delete_path_sql(acc, right)
            else:
                pointer = _pointer(toks, after, hi, right)
                acc = (f"CAST(pgtls_jsonb_path({acc}, {pointer}) AS jsonb)" if name == "#>"
                       else f"pgtls_jsonb_path_text({acc}, {pointer})")  # fmt: skip
            end = hi
            j = hi + 1
        if end < i:
            i += 1
            continue
        edits.append((toks[lo].start, toks[end].end, acc))
        i = end + 1
    return edits


def _pointer(toks: list[Token], a: int, b: int, text: str) -> str:
    """The JSON Pointer for a path operand: computed here for a text[] literal, else by a catalog macro."""
    if a == b and toks[a].kind == "string" and not toks[a].text.upper().startswith("E"):
        from pgtls.backends.embedded.pgtypes.literals import parse_array_text

        try:
            items = parse_array_text(string_value(toks[a].text))
        except Exception:
            items = None
        if isinstance(items, list) and all(isinstance(x, str) for x in items):
            escaped = [x.replace("~", "~0").replace("/", "~1") for x in items]
            return quote_literal("".join("/" + e for e in escaped))
        if isinstance(items, list) and all(isinstance(x, str) or x is None for x in items):
            return "CAST(NULL AS VARCHAR)"  # a NULL element: the result is NULL
    return f"pgtls_json_pointer({text})"


# --- jsonb @> and <@ --------------------------------------------------------------------------------


def contains_text(a: str | None, b: str | None) -> bool | None:
    """PostgreSQL's ``jsonb @> jsonb`` (JsonbDeepContains) on two JSON texts: an object contains the
    keys of the other with contained values; an array contains each element of the other (a scalar
    equal to one of its scalars, a container contained in one of its containers of the same kind); at
    the top level only, an array also contains a scalar it has as an element.  DuckDB's json_contains
    looks at every depth (``{"a": {"b": 1}}`` would contain ``{"b": 1}``), so pgtls registers this as a
    function instead (databases are opened with it, backend.py)."""
    if a is None or b is None:
        return None
    x, y = json.loads(a, parse_float=Decimal), json.loads(b, parse_float=Decimal)
    if isinstance(x, list) and not isinstance(y, (list, dict)):
        return any(_same_scalar(e, y) for e in x if not isinstance(e, (list, dict)))
    return _contains(x, y)


def _contains(x: Any, y: Any) -> bool:
    if isinstance(y, dict):
        return isinstance(x, dict) and all(k in x and _contains(x[k], v) for k, v in y.items())
    if isinstance(y, list):
        if not isinstance(x, list):
            return False
        for e in y:
            if isinstance(e, (list, dict)):
                if not any(isinstance(c, type(e)) and _contains(c, e) for c in x):
                    return False
            elif not any(not isinstance(c, (list, dict)) and _same_scalar(c, e) for c in x):
                return False
        return True
    return not isinstance(x, (list, dict)) and _same_scalar(x, y)


def _same_scalar(x: Any, y: Any) -> bool:
    """jsonb scalar equality: numbers by value, and a boolean is not a number."""
    if isinstance(x, bool) or isinstance(y, bool):
        return isinstance(x, bool) and isinstance(y, bool) and x == y
    if isinstance(x, (int, Decimal)) or isinstance(y, (int, Decimal)):
        return isinstance(x, (int, Decimal)) and isinstance(y, (int, Decimal)) and x == y
    return type(x) is type(y) and x == y  # strings, null


# --- what the engine calls (engine/hooks.py) ------------------------------------------------------


def _column_name_hook(duck_name: str) -> str | None:
    return column_name(duck_name) if "json" in duck_name else None


def _result_columns_hook(cur: duckdb.DuckDBPyConnection, sql: str, names: list[str], ducks: list[str],
                         cols: list[T.Column]) -> list[T.Column]:  # fmt: skip
    if any("JSON" in d for d in ducks):  # json or jsonb? (DuckDB has one type for both)
        return retype(cols, jsonb_flags(cur, sql, names, ducks))
    return cols


def _comment_hook(cur: duckdb.DuckDBPyConnection, sql: str) -> str:
    return comment_statement(cur, sql) if "column" in sql.lower() else sql


HOOKS.column_names.append(_column_name_hook)
HOOKS.result_columns.append(_result_columns_hook)
HOOKS.comment_statements.append(_comment_hook)
HOOKS.after_ddl.append(after_ddl)
