"""jsonb's ``#>`` and ``#>>`` path operators (a text rewrite of rewrite/pipeline.py)."""

from __future__ import annotations

from pgtls.backends.embedded.jsonb import edit as jsonb_edit
from pgtls.backends.embedded.jsonb.operands import operand_end, operand_start
from pgtls.backends.embedded.sql.lexer import Token, quote_literal, string_value


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
