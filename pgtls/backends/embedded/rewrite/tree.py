"""Rewrites decided on PostgreSQL's parse tree and placed at the parser's locations.

Some catalog queries need more than tokens to recognise: the rule is about what a node *is* (a scalar
subquery over ``pg_collation``, an aggregate over an oid column, a multi-argument ``unnest`` in FROM),
wherever it sits and however the client spelled it.  The statement is read by PostgreSQL's own parser
(pglast's binding of libpg_query); each rule finds its nodes, takes the start from the node's ``location``
and the end from the scanner's tokens from there (a node has a start but no end), and returns text edits
for :func:`apply_edits`.  Text the parser refuses gets no edit here.

The rules (each general, none keyed on one client's query text):

* ``array_agg(<pg_attribute oid column>)`` aggregates oids, so PostgreSQL's result is ``oid[]``; DuckDB's
  pg_attribute types ``atttypid``/``attrelid`` as BIGINT, which would make it ``int8[]`` (asyncpg's type
  introspection has a codec for ``oid[]`` but recurses on an array of int8).  The column is cast to
  UINTEGER, pgtls's oid.
* A scalar subquery over ``pg_collation`` matched against a column's ``attcollation`` is ``NULL``: pgtls keeps
  no per-column collation (``COLLATE`` is dropped), so no column has a pg_collation row, and DuckDB's binder
  cannot resolve such a correlated subquery at all (SQLAlchemy's column reflection sends one).
* ``FROM unnest(a, b, ...) [WITH ORDINALITY] [AS] alias(names)``, PostgreSQL's multi-argument form, becomes
  ``(SELECT unnest(a) AS n1, unnest(b) AS n2, ...[, unnest(range(1, greatest(len(a), ...) + 1)) AS nk])
  alias``: DuckDB zips the unnests of one SELECT list the same way, padding the shorter lists with NULLs
  (Django's bulk_create and index introspection send it).  An argument that is one of pgtls's int2vector
  columns (``pg_index.indkey``, ``indoption``) is read as the SMALLINT[] it stands for, so the column is int2
  as in PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from pglast.parser import ParseError, parse_sql_json

from pgtls.backends.embedded.sql.lexer import (
    Token,
    closing_paren,
    quote_ident,
    tokens,
    top_level_items,
    words_at,
)

Edit = tuple[int, int, str]
Node = dict[str, Any]

OID_ATTRIBUTE_COLUMNS = frozenset(("atttypid", "attrelid", "attcollation"))
"""pg_attribute's oid columns, which DuckDB's own pg_attribute types as integers."""

INT2VECTOR_COLUMNS = {
    "indkey": "CAST({} AS SMALLINT[])",
    "indoption": "CAST(string_split({}, ' ') AS SMALLINT[])",
}
"""pgtls catalog columns of type int2vector (catalog/constraints.py: ``indkey`` a list of integers, ``indoption``
int2vector's text) and how an unnest argument reads each as the SMALLINT[] it stands for."""

# Cheap tests on the lower-cased text before anything is parsed: each rule's necessary words.
_MARKERS = ("array_agg", "pg_collation", "unnest")


def tree_edits(sql: str) -> list[Edit]:
    """The edits of every rule above for the one statement ``sql`` (empty: none applies, or no parse)."""
    low = sql.lower()
    if not any(m in low for m in _MARKERS):
        return []
    try:
        stmts = json.loads(parse_sql_json(sql)).get("stmts", [])
    except ParseError:
        return []
    if len(stmts) != 1:
        return []
    where = _Locator(sql)
    edits: list[Edit] = []
    for kind, body in _nodes(stmts[0]):
        if kind == "FuncCall":
            edits.extend(_oid_array_agg(body, where))
        elif kind == "SubLink":
            edits.extend(_collation_lookup(body, where))
        elif kind == "RangeFunction":
            edits.extend(_multi_unnest(body, where))
    return edits


class _Locator:
    """Character offsets and token ranges of the statement from the parser's byte locations."""

    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.toks: list[Token] = tokens(sql)
        self._starts = {t.start: i for i, t in enumerate(self.toks)}
        self._ascii = sql.isascii()

    def token_at(self, location: int) -> int | None:
        """Index of the token starting at the parser's (byte) ``location``."""
        if location < 0:
            return None
        if not self._ascii:
            location = len(self.sql.encode("utf-8")[:location].decode("utf-8", "ignore"))
        return self._starts.get(location)

    def text(self, a: int, b: int) -> str:
        """Source text of tokens ``a`` to ``b`` inclusive."""
        return self.sql[self.toks[a].start : self.toks[b].end]

    def column_end(self, i: int, fields: int) -> int:
        """Last token of a column reference of ``fields`` names starting at token ``i`` (``a.b.c``)."""
        return min(i + 2 * fields - 2, len(self.toks) - 1)


def _nodes(tree: Any) -> Iterator[tuple[str, Node]]:
    """Every node of the tree as (node type, its fields), in no particular order."""
    stack = [tree]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            for k, v in x.items():
                if isinstance(v, dict) and k[:1].isupper():
                    yield k, v
                stack.append(v)
        elif isinstance(x, list):
            stack.extend(x)


def _names(items: list[Node] | None) -> list[str]:
    return [i.get("String", {}).get("sval", "") for i in items or []]


def _column(node: Node) -> tuple[list[str], int] | None:
    """A column reference's names and location, or None for anything else."""
    ref = node.get("ColumnRef")
    if ref is None or any("String" not in f for f in ref.get("fields", [])):
        return None
    return _names(ref["fields"]), ref.get("location", -1)


def _oid_array_agg(call: Node, where: _Locator) -> list[Edit]:
    args = call.get("args") or []
    if _names(call.get("funcname"))[-1:] != ["array_agg"] or len(args) != 1:
        return []
    col = _column(args[0])
    if col is None or col[0][-1] not in OID_ATTRIBUTE_COLUMNS:
        return []
    i = where.token_at(col[1])
    if i is None:
        return []
    j = where.column_end(i, len(col[0]))
    return [(where.toks[i].start, where.toks[j].end, f"CAST({where.text(i, j)} AS UINTEGER)")]


def _collation_lookup(link: Node, where: _Locator) -> list[Edit]:
    select = link.get("subselect", {}).get("SelectStmt")
    if link.get("subLinkType") != "EXPR_SUBLINK" or select is None:
        return []
    tables = {
        body.get("relname") for kind, body in _nodes(select.get("fromClause", [])) if kind == "RangeVar"
    }
    refs = [
        _column({"ColumnRef": body})
        for kind, body in _nodes(select.get("whereClause", {}))
        if kind == "ColumnRef"
    ]
    if "pg_collation" not in tables or not any(r is not None and r[0][-1] == "attcollation" for r in refs):
        return []
    i = where.token_at(link.get("location", -1))
    if i is None or where.toks[i].text != "(":
        return []
    j = closing_paren(where.toks, i)
    return [] if j is None else [(where.toks[i].start, where.toks[j].end, "NULL")]


def _multi_unnest(rf: Node, where: _Locator) -> list[Edit]:
    funcs = rf.get("functions") or []
    if len(funcs) != 1 or rf.get("is_rowsfrom"):
        return []
    items = funcs[0].get("List", {}).get("items") or [{}]
    call = items[0].get("FuncCall")
    # only the unqualified name: PostgreSQL expands unnest(a, b) but not pg_catalog.unnest(a, b) (parse_clause.c)
    if call is None or _names(call.get("funcname")) != ["unnest"] or len(call.get("args") or []) < 2:
        return []
    toks = where.toks
    i = where.token_at(call.get("location", -1))
    if i is None:
        return []
    opened = i + 1
    if opened >= len(toks) or toks[opened].text != "(":
        return []
    closed = closing_paren(toks, opened)
    if closed is None:
        return []
    ranges = top_level_items(toks, opened + 1, closed)
    if len(ranges) != len(call["args"]):
        return []
    texts = [_argument(node, where.text(x, y - 1)) for node, (x, y) in zip(call["args"], ranges, strict=True)]
    if not rf.get("ordinality"):
        parts = ", ".join(f"unnest({a})" for a in texts)
        return [(toks[i].start, toks[closed].end, f"(SELECT {parts})")]
    alias = rf.get("alias")
    if alias is None:
        return []
    names = _names(alias.get("colnames"))
    names += ["unnest"] * (len(texts) - len(names)) + ["ordinality"]
    end = _alias_end(toks, closed + 1)
    if end is None:
        return []
    cols = [f"unnest({a}) AS {quote_ident(n)}" for a, n in zip(texts, names, strict=False)]
    longest = ", ".join(f"len({a})" for a in texts)
    cols.append(f"unnest(range(1, greatest({longest}) + 1)) AS {quote_ident(names[len(texts)])}")
    return [(toks[i].start, toks[end].end, f"(SELECT {', '.join(cols)}) {quote_ident(alias['aliasname'])}")]


def _argument(node: Node, text: str) -> str:
    """An unnest argument's text, an int2vector column kept as text read as its SMALLINT[]."""
    col = _column(node)
    return (
        INT2VECTOR_COLUMNS[col[0][-1]].format(text)
        if col is not None and col[0][-1] in INT2VECTOR_COLUMNS
        else text
    )


def _alias_end(toks: list[Token], j: int) -> int | None:
    """The last token of ``WITH ORDINALITY [AS] alias [(names)]`` starting at token ``j``."""
    if not words_at(toks, j, "WITH", "ORDINALITY"):
        return None
    j += 2
    if words_at(toks, j, "AS"):
        j += 1
    if j >= len(toks) or toks[j].kind not in ("word", "ident"):
        return None
    if j + 1 < len(toks) and toks[j + 1].text == "(":
        return closing_paren(toks, j + 1)
    return j
