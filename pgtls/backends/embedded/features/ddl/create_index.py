"""CREATE INDEX as DuckDB takes it (a text rewrite of rewrite/pipeline.py)."""

from __future__ import annotations

from pgtls.backends.embedded.features.ddl.parsing import group_end, split_items
from pgtls.backends.embedded.sql.lexer import apply_edits, tokens, words_at

_INDEX_METHODS_DROPPED = {
    "btree",
    "hash",
}  # DuckDB has one (ART) index: PostgreSQL's default methods map to it


def rewrite_create_index(sql: str) -> str:
    """CREATE [UNIQUE] INDEX: drop operator classes (``varchar_pattern_ops``: Django's LIKE indexes) and
    ``USING btree|hash``, which DuckDB does not know; its one index type serves the same queries."""
    toks = tokens(sql)
    i = 1
    if words_at(toks, i, "UNIQUE"):
        i += 1
    if not words_at(toks, i, "INDEX"):
        return sql
    on = next((k for k in range(i, len(toks)) if words_at(toks, k, "ON")), None)
    if on is None:
        return sql
    edits: list[tuple[int, int, str]] = []
    k = on + 1
    while k < len(toks) and toks[k].text != "(":
        if (
            words_at(toks, k, "USING")
            and k + 1 < len(toks)
            and toks[k + 1].text.lower() in _INDEX_METHODS_DROPPED
        ):
            edits.append((toks[k].start, toks[k + 1].end, ""))
        k += 1
    if k >= len(toks):
        return sql
    end = group_end(toks, k)
    for a, b in split_items(sql, toks, k + 1, end):
        for x in range(a + 1, b):  # never the first token: that is the column or expression
            t = toks[x]
            if t.kind == "word" and t.text.lower().endswith("_ops") and toks[x - 1].text != ".":
                start = t.start
                if x >= a + 3 and toks[x - 1].text == "." and toks[x - 2].kind == "word":
                    start = toks[x - 2].start
                edits.append((start, t.end, ""))
            elif (t.kind == "word" and t.text.lower() == "pg_catalog" and x + 2 < b and toks[x + 1].text == "."
                  and toks[x + 2].text.lower().endswith("_ops")):  # fmt: skip
                edits.append((t.start, toks[x + 2].end, ""))
    return apply_edits(sql, edits) if edits else sql
