"""CREATE TABLE's ``serial`` and identity columns, which DuckDB lacks.

``serial`` / ``bigserial`` / ``smallserial`` and ``GENERATED {ALWAYS | BY DEFAULT} AS IDENTITY`` become a
sequence named as PostgreSQL names it (``<table>_<column>_seq``) plus ``DEFAULT nextval('<sequence>')`` on a
column of the matching integer type.  (``jsonb`` needs no rewrite: every database file has a ``jsonb`` type
alias of JSON.)  Differences: the sequence is not owned by the column, so DROP TABLE leaves it behind, and
GENERATED ALWAYS does not refuse explicit values.
"""

from __future__ import annotations

from pgtls.backends.embedded.features.ddl.parsing import create_table_name
from pgtls.backends.embedded.sql.lexer import apply_edits, quote_ident, quote_literal, tokens, unquote_ident

SERIAL_TYPES = {"serial": "INTEGER", "serial4": "INTEGER", "bigserial": "BIGINT", "serial8": "BIGINT",
                "smallserial": "SMALLINT", "serial2": "SMALLINT"}  # fmt: skip


def rewrite_create_table(sql: str) -> list[str] | None:
    """The statements to run instead of ``sql`` (sequences first), or None if nothing to change."""
    toks = tokens(sql)
    if len(toks) < 4 or toks[0].text.upper() != "CREATE":
        return None
    found = create_table_name(toks)
    if found is None:
        return None
    table, open_paren = found
    edits: list[tuple[int, int, str]] = []
    sequences: list[str] = []
    depth = 0
    column_start = True
    column = ""
    i = open_paren
    while i < len(toks):
        t = toks[i]
        if t.text == "(":
            depth += 1
            if depth == 1:
                column_start = True
            i += 1
            continue
        if t.text == ")":
            depth -= 1
            if depth == 0:
                break
            i += 1
            continue
        if depth == 1 and t.text == ",":
            column_start = True
            i += 1
            continue
        if depth == 1 and column_start:
            column_start = False
            column = unquote_ident(t.text) if t.kind in ("word", "ident") else ""
            i += 1
            continue
        if depth == 1 and column and t.kind == "word" and t.text.lower() in SERIAL_TYPES:
            seq = f"{table}_{column}_seq"
            sequences.append(seq)
            edits.append(
                (t.start, t.end, f"{SERIAL_TYPES[t.text.lower()]} DEFAULT nextval({quote_literal(seq)})")
            )
        elif depth == 1 and column and t.kind == "word" and t.text.upper() == "GENERATED":
            j = i + 1
            while j < len(toks) and toks[j].text.upper() != "IDENTITY" and toks[j].text not in (",", ")"):
                j += 1
            if j < len(toks) and toks[j].text.upper() == "IDENTITY":
                end = toks[j].end
                if j + 1 < len(toks) and toks[j + 1].text == "(":  # sequence options: dropped
                    k, d = j + 1, 0
                    while k < len(toks):
                        d += (toks[k].text == "(") - (toks[k].text == ")")
                        if d == 0:
                            break
                        k += 1
                    end = toks[k].end if k < len(toks) else end
                    j = k
                seq = f"{table}_{column}_seq"
                sequences.append(seq)
                edits.append((t.start, end, f"DEFAULT nextval({quote_literal(seq)})"))
                i = j + 1
                continue
        i += 1
    if not edits:
        return None
    return [f"CREATE SEQUENCE IF NOT EXISTS {quote_ident(s)}" for s in sequences] + [apply_edits(sql, edits)]
