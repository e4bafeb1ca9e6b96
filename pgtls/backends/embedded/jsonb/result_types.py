"""Whether a JSON result column is json or jsonb (:func:`jsonb_flags`, :func:`retype`).

DuckDB has one JSON type for both.  A JSON result column is reported as jsonb (and printed the way
jsonb_out prints it, see codecs.jsonb_text) when DuckDB's parse tree of the query says it comes from one:

* a cast to jsonb (``x::jsonb``, ``CAST(x AS jsonb)``, arrays of it);
* a jsonb column of a table the query reads (by name; ``SELECT *`` too; marks.py);
* ``x -> 'k'`` of such a value, COALESCE/CASE/NULLIF/min/max over one, a ``jsonb_*`` function.

Anything else stays json, as before.  What this cannot see: columns of views, a jsonb column renamed by
a subquery alias, and jsonb columns another session created in a transaction it has not committed yet.
"""

from __future__ import annotations

import functools
import json
import threading
from typing import Any

import duckdb

from pgtls.backends.embedded.jsonb.marks import marked_columns
from pgtls.backends.embedded.pgtypes import typemap as T
from pgtls.backends.embedded.sql.lexer import tokens

_PASS_FIRST_ARG = {"nullif", "greatest", "least", "min", "max", "first", "last", "any_value",
                   "arbitrary", "json_extract", "->"}  # fmt: skip


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


def result_columns_hook(cur: duckdb.DuckDBPyConnection, sql: str, names: list[str], ducks: list[str],
                         cols: list[T.Column]) -> list[T.Column]:  # fmt: skip
    if any("JSON" in d for d in ducks):  # json or jsonb? (DuckDB has one type for both)
        return retype(cols, jsonb_flags(cur, sql, names, ducks))
    return cols
