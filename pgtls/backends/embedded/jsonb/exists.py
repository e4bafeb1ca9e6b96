"""jsonb's key-exists operators ``?``, ``?|`` and ``?&`` (a text rewrite of rewrite/pipeline.py)."""

from __future__ import annotations

from pgtls.backends.embedded.jsonb.operands import operand_end, operand_start
from pgtls.backends.embedded.sql.lexer import Token

EXISTS_MACROS = {"": "pgtls_jsonb_exists", "|": "pgtls_jsonb_exists_any", "&": "pgtls_jsonb_exists_all"}


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
        edits.append((toks[lo].start, toks[hi].end, f"{EXISTS_MACROS[variant]}({left_sql}, {right_sql})"))
        i = hi + 1
    return edits
