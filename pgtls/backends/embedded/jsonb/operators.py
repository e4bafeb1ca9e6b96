"""jsonb's ``||``, ``@>``, ``<@``, ``-`` and ``#-`` as PostgreSQL's, where an operand is jsonb (:func:`with_operators`).

The session runs :func:`with_operators` on a query after the text rewrites, with its cursor: which
columns are jsonb is known per session (marks.py).  The package's other parts: marks.py (which columns are
jsonb), result_types.py (json or jsonb result columns), ddl_marks.py (DDL setting the marks), paths.py,
exists.py and functions.py (text rewrites of rewrite/pipeline.py), containment.py (``@>`` itself), edit.py
(jsonb_set & co.) and operands.py; the package's __init__ registers its engine hooks.
"""

from __future__ import annotations

import duckdb

from pgtls.backends.embedded.jsonb import edit as jsonb_edit
from pgtls.backends.embedded.jsonb.marks import marked_columns
from pgtls.backends.embedded.jsonb.operands import is_jsonb_operand, operand_end, operand_start
from pgtls.backends.embedded.sql.lexer import Token, apply_edits, tokens, unquote_ident


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
