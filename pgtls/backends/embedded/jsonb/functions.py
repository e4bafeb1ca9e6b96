"""JSON functions DuckDB has under other names (:func:`function_edits`, a text rewrite of rewrite/pipeline.py),
and PostgreSQL's column names for the calls this package rewrites (:func:`column_name`)."""

from __future__ import annotations

from pgtls.backends.embedded.jsonb import edit as jsonb_edit
from pgtls.backends.embedded.jsonb.exists import EXISTS_MACROS
from pgtls.backends.embedded.sql.lexer import Token, apply_edits, closing_paren, tokens

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
    out = [(f"{name}(", "?column?") for name in EXISTS_MACROS.values()]  # operators: PostgreSQL's ?column?
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


def column_name_hook(duck_name: str) -> str | None:
    return column_name(duck_name) if "json" in duck_name else None
