"""Rewriting of PostgreSQL query text into DuckDB's dialect, token by token.

Only what DuckDB cannot take as it is.  First the rules decided on the parse tree (tree.py: oid aggregates,
collation lookups, multi-argument ``unnest``); then, on PostgreSQL's scanner's tokens (sql/lexer.py):
``pg_catalog.``-qualified names lose their qualifier, so that the session's temp shims (catalog/shared.py,
catalog/shims.py) are found first and DuckDB's own pg_catalog objects after them; PostgreSQL-only casts
(``::regclass``, ``::oid``, ``::name``) and the ``OPERATOR(pg_catalog.~)`` spelling psql uses become DuckDB
equivalents; ``COLLATE pg_catalog.default`` is dropped; CREATE INDEX loses operator classes and ``USING
btree``, and CREATE TABLE the foreign keys pgtls keeps itself (foreignkeys.py); ``FROM generate_series(...)
g`` gets the column alias PostgreSQL implies (``g(g)``: a scalar function's one column takes the table
alias).  Literals, quoted identifiers and comments are never touched.  Every edit is placed at a location
PostgreSQL's parser or scanner reported, so the text around it, and error positions, stay the client's.
"""

from __future__ import annotations

import functools
import re

from pgtls.backends.embedded.features.ddl.create_index import rewrite_create_index
from pgtls.backends.embedded.features.ddl.foreign_keys import strip_kept_foreign_keys
from pgtls.backends.embedded.jsonb.exists import exists_edits
from pgtls.backends.embedded.jsonb.functions import function_edits
from pgtls.backends.embedded.jsonb.paths import path_edits
from pgtls.backends.embedded.pgtypes.literals import rewrite_literals
from pgtls.backends.embedded.rewrite.tree import tree_edits
from pgtls.backends.embedded.sql.lexer import Token, apply_edits, tokens

# Casts to PostgreSQL-only types: the DuckDB type that behaves the same for our purposes.
CAST_TYPES = {
    "regclass": "VARCHAR", "regtype": "VARCHAR", "regproc": "VARCHAR", "regprocedure": "VARCHAR",
    "regnamespace": "VARCHAR", "regrole": "VARCHAR", "oid": "BIGINT", "name": "VARCHAR", "xid": "BIGINT",
    "int2vector": "VARCHAR", "oidvector": "VARCHAR", "bpchar": "VARCHAR", "char": "VARCHAR",
    "regconfig": "VARCHAR", "aclitem": "VARCHAR", "pg_node_tree": "VARCHAR",
}  # fmt: skip

# OPERATOR(pg_catalog.x) forms -> DuckDB operator or function (regex match operators).
OPERATORS = {"~": "~", "!~": "!~", "~*": "~*", "!~*": "!~*", "=": "=", "<>": "<>", "<": "<", ">": ">",
             "~~": "~~", "!~~": "!~~"}  # fmt: skip


def _is(t: Token, text: str) -> bool:
    return t.kind in ("word", "op") and t.text.lower() == text


# Words that end a FROM item rather than alias it (PostgreSQL's reserved keywords a bare alias cannot be).
_NOT_ALIAS = {"where", "join", "inner", "left", "right", "full", "cross", "natural", "on", "using", "group", "order",
              "having", "limit", "offset", "union", "intersect", "except", "window", "with", "fetch", "for",
              "returning", "lateral", "tablesample", "qualify", "as", "select", "from", "into", "then", "else",
              "end", "and", "or", "not", "is", "in", "when"}  # fmt: skip
# Clause keywords: the nearest one before a function call tells whether the call is a FROM item.
_CLAUSES = {"select", "from", "join", "where", "group", "order", "having", "limit", "offset", "on", "using",
            "returning", "values", "set", "lateral", "window", "qualify"}  # fmt: skip
# Set-returning functions whose FROM item has one column that DuckDB names after the function.
_SCALAR_SRFS = {
    "generate_series",
    "json_object_keys",
    "jsonb_object_keys",
    "json_array_elements",
    "jsonb_array_elements",
    "json_array_elements_text",
    "jsonb_array_elements_text",
}


def _in_from_clause(toks: list[Token], i: int) -> bool:
    """Whether the call starting at token ``i`` is a FROM item (the nearest clause keyword at its level)."""
    depth = 0
    k = i - 1
    while k >= 0:
        t = toks[k]
        if t.text == ")":
            depth += 1
        elif t.text == "(":
            if depth == 0:
                return False  # the start of a subquery or an argument list
            depth -= 1
        elif depth == 0 and t.kind == "word" and t.text.lower() in _CLAUSES:
            return t.text.lower() in ("from", "join", "lateral")
        k -= 1
    return False


def srf_alias_edits(toks: list[Token]) -> list[tuple[int, int, str]]:
    """``FROM generate_series(1, 3) [AS] g`` -> ``... g(g)``: in PostgreSQL the one column of a function that
    returns a scalar takes the table alias as its name (DuckDB keeps the function's name, and ``g`` alone
    would be the whole row).  ``WITH ORDINALITY`` calls DuckDB's own generate_series (see catalog/shims.py)."""
    edits: list[tuple[int, int, str]] = []
    n = len(toks)
    for i, t in enumerate(toks):
        if t.kind != "word" or t.text.lower() not in _SCALAR_SRFS or i + 1 >= n or toks[i + 1].text != "(":
            continue
        if i > 0 and toks[i - 1].text == "." and not (i > 1 and toks[i - 2].text.lower() == "pg_catalog"):
            continue
        start = i - 2 if i > 1 and toks[i - 1].text == "." else i
        if not _in_from_clause(toks, start):
            continue
        depth = 0
        j = i + 1
        while j < n:
            if toks[j].text == "(":
                depth += 1
            elif toks[j].text == ")":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        j += 1
        if j + 1 < n and toks[j].text.lower() == "with" and toks[j + 1].text.lower() == "ordinality":
            # DuckDB drops WITH ORDINALITY after a table macro: DuckDB's own function keeps it (int8 values)
            edits.append((toks[start].start, t.end, "system.main." + t.text))
            continue
        if j < n and toks[j].kind == "word" and toks[j].text.lower() == "as":
            j += 1
        if j >= n or toks[j].kind not in ("word", "ident") or toks[j].text.lower() in _NOT_ALIAS:
            continue
        if j + 1 < n and toks[j + 1].text in ("(", "."):
            continue
        edits.append((toks[j].end, toks[j].end, f"({toks[j].text})"))
    return edits


_LOCK_STRENGTHS = (("UPDATE",), ("SHARE",), ("NO", "KEY", "UPDATE"), ("KEY", "SHARE"))


def locking_edits(toks: list[Token]) -> list[tuple[int, int, str]]:
    """Remove ``FOR UPDATE | NO KEY UPDATE | SHARE | KEY SHARE [OF t, ...] [NOWAIT | SKIP LOCKED]``.

    DuckDB has no row locks (and no such clause).  Its optimistic concurrency still forbids lost
    updates: where PostgreSQL would make a second locker wait, the second transaction that writes the
    row gets 40001 instead (docs/embedded.md)."""
    edits: list[tuple[int, int, str]] = []
    up = [t.text.upper() if t.kind == "word" else t.text for t in toks]
    n = len(toks)
    i = 0
    while i < n:
        if up[i] != "FOR":
            i += 1
            continue
        j = next((i + 1 + len(s) for s in _LOCK_STRENGTHS if tuple(up[i + 1 : i + 1 + len(s)]) == s), None)
        if j is None:
            i += 1
            continue
        if j < n and up[j] == "OF":
            j += 1
            while j < n and toks[j].kind in ("word", "ident"):
                j += 1
                while j + 1 < n and up[j] == "." and toks[j + 1].kind in ("word", "ident"):
                    j += 2
                if j < n and up[j] == ",":
                    j += 1
                    continue
                break
        if j < n and up[j] == "NOWAIT":
            j += 1
        elif j + 1 < n and up[j] == "SKIP" and up[j + 1] == "LOCKED":
            j += 2
        edits.append((toks[i].start, toks[j - 1].end, ""))
        i = j
    return edits


def regclass_edit(
    sql: str, toks: list[Token], i: int, edits: list[tuple[int, int, str]]
) -> tuple[int, str] | None:
    """``x::regclass`` where ``toks[i]`` is the first ``:``: for a column (``conrelid``, ``c.oid``) the
    relation's name, as PostgreSQL prints a regclass (the catalog's pgtls_regclass: psql's ``\\d`` shows the
    tables that reference this one so); for a literal oid (``'16394'``) that oid, to compare with oid
    columns.  (start of the replaced text, the text before the type's end), or None to keep the VARCHAR
    stand-in."""
    prev = toks[i - 1] if i > 0 else None
    if prev is None:
        return None
    if prev.kind == "string" and re.fullmatch(r"'[0-9]+'", prev.text):
        return prev.start, f"CAST({prev.text} AS BIGINT)"
    if prev.kind not in ("word", "ident") or prev.text.upper() in ("NULL", "TRUE", "FALSE"):
        return None
    k = i - 1
    while k >= 2 and toks[k - 1].text == "." and toks[k - 2].kind in ("word", "ident"):
        k -= 2
    if k > 0 and toks[k - 1].text in (".", ":"):
        return None
    start = toks[k].start
    if any(a < prev.end and start < b for a, b, _ in edits):
        return None
    return start, f"pgtls_regclass({sql[start : prev.end]})"


REWRITE_CACHE_SIZE = 256
"""Statement texts whose rewriting is remembered (least recently used dropped first): it depends on the text
alone, and clients repeat theirs (prepared statements, catalog queries)."""

REWRITE_CACHE_MAX_TEXT = 8192
"""Longer texts' rewriting is not remembered (a bulk INSERT would pin its memory)."""


def rewrite(sql: str) -> str:
    """``sql`` in DuckDB's dialect (see the module's docstring); the same text always gives the same result."""
    if len(sql) <= REWRITE_CACHE_MAX_TEXT:
        return _cached_rewrite(sql)
    return _rewrite(sql)


@functools.lru_cache(maxsize=REWRITE_CACHE_SIZE)
def _cached_rewrite(sql: str) -> str:
    return _rewrite(sql)


def _rewrite(sql: str) -> str:
    nodes = tree_edits(sql)  # first: the parser reads the client's own text
    if nodes:
        sql = apply_edits(sql, nodes)
    if "#>" in sql:  # before the literals, as ? below
        paths = path_edits(sql, tokens(sql))
        if paths:
            sql = apply_edits(sql, paths)
    if "?" in sql:  # before the literals: '{a,b}' becomes a text[] here
        exists = exists_edits(sql, tokens(sql))
        if exists:
            sql = apply_edits(sql, exists)
    sql = rewrite_literals(sql)
    low = sql.lower()
    if "for " in low and ("update" in low or "share" in low):
        locks = locking_edits(tokens(sql))
        if locks:
            sql = apply_edits(sql, locks)
    head = sql.lstrip()[:6].lower()
    if head == "create":
        low = sql.lower()
        if "index" in low and ("_ops" in low or "using" in low):
            sql = rewrite_create_index(sql)
        if "references" in low:
            sql = strip_kept_foreign_keys(sql)
    if "generate_series" in sql.lower() or "_object_keys" in sql.lower() or "_array_elements" in sql.lower():
        alias_edits = srf_alias_edits(tokens(sql))
        if alias_edits:
            sql = apply_edits(sql, alias_edits)
    low = sql.lower()
    if "json" in low:  # json[b]_build_object, jsonb_agg, ... (jsonb/functions.py)
        calls = function_edits(sql, tokens(sql))
        if calls:
            sql = apply_edits(sql, calls)
            low = sql.lower()
    if not any(k in low for k in ("pg_catalog", "::", "operator", "collate", "bytea", "cast")):
        return sql
    toks = tokens(sql)
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement)
    i = 0
    n = len(toks)
    in_cast: list[bool] = []  # per open parenthesis: whether it is CAST's
    while i < n:
        t = toks[i]
        if t.text == "(":
            in_cast.append(i > 0 and toks[i - 1].kind == "word" and toks[i - 1].text.upper() == "CAST")
        elif t.text == ")" and in_cast:
            in_cast.pop()
        elif t.kind == "word" and t.text.upper() == "AS" and in_cast and in_cast[-1] and i + 1 < n:
            # CAST(x AS regclass): the same DuckDB stand-ins as for x::regclass
            j = i + 1
            start_type = toks[j].start
            if toks[j].text.lower() == "pg_catalog" and j + 2 < n and toks[j + 1].text == ".":
                j += 2
            name = toks[j].text.lower().strip('"')
            if name in CAST_TYPES and j + 1 < n and toks[j + 1].text == ")":
                edits.append((start_type, toks[j].end, CAST_TYPES[name]))
                i = j + 1
                continue
        if (
            t.kind == "word"
            and t.text.lower() == "pg_catalog"
            and i + 2 < n
            and toks[i + 1].text == "."
            and toks[i + 2].kind in ("word", "ident")
        ):
            edits.append((t.start, toks[i + 1].end, ""))
            i += 2
            continue
        if t.kind == "word" and t.text.upper() == "OPERATOR" and i + 1 < n and toks[i + 1].text == "(":
            j = i + 2
            op = ""
            while j < n and toks[j].text != ")":
                if toks[j].kind == "op" and toks[j].text != ".":
                    op += toks[j].text
                j += 1
            if j < n and op in OPERATORS:
                edits.append((t.start, toks[j].end, OPERATORS[op]))
                i = j + 1
                continue
        if (
            t.kind == "word"
            and t.text.lower() == "bytea"
            and i + 1 < n
            and toks[i + 1].kind == "string"
            and toks[i + 1].text.startswith("'\\x")
        ):
            edits.append((t.start, toks[i + 1].end, f"from_hex('{toks[i + 1].text[3:-1]}')"))
            i += 2
            continue
        if t.kind == "word" and t.text.upper() == "COLLATE" and i + 1 < n:
            j = i + 1
            end = toks[j].end
            if j + 2 < n and toks[j + 1].text == ".":
                end = toks[j + 2].end
                j += 2
            edits.append((t.start, end, ""))
            i = j + 1
            continue
        if t.text == ":" and i + 2 < n and toks[i + 1].text == ":" and toks[i + 1].start == t.end:
            j = i + 2
            tt = toks[j]
            start_type = tt.start
            if (
                tt.kind == "word"
                and tt.text.lower() == "pg_catalog"
                and j + 2 < n
                and toks[j + 1].text == "."
            ):
                j += 2
                tt = toks[j]
            name = tt.text.lower().strip('"')
            prev = toks[i - 1] if i > 0 else None
            if (
                name == "bytea"
                and prev is not None
                and prev.kind == "string"
                and prev.text.startswith("'\\x")
            ):
                edits.append((prev.start, tt.end, f"from_hex('{prev.text[3:-1]}')"))
            elif name == "regclass" and (reg := regclass_edit(sql, toks, i, edits)) is not None:
                edits.append((reg[0], tt.end, reg[1]))
            elif name in CAST_TYPES:
                edits.append((start_type, tt.end, CAST_TYPES[name]))
            elif start_type != tt.start:
                edits.append((start_type, tt.start, ""))
            i = j + 1
            continue
        i += 1
    if not edits:
        return sql
    return apply_edits(sql, edits)
