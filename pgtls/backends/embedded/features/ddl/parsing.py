"""Reading DDL text for the DDL modules: the name of CREATE TABLE's table, parenthesised lists, names."""

from __future__ import annotations

from pgtls.backends.embedded.sql.lexer import (
    Token,
    apply_edits,
    closing_paren,
    quote_ident,
    tokens,
    top_level_items,
    unquote_ident,
)

CREATE_SKIP = {"TEMP", "TEMPORARY", "UNLOGGED", "GLOBAL", "LOCAL", "OR", "REPLACE"}


class Unsupported(Exception):
    """A form planner.py's :func:`plan` leaves to DuckDB as it is."""


def create_table_name(toks: list[Token]) -> tuple[str, int] | None:
    """(unquoted table name, index of the opening parenthesis) of CREATE TABLE."""
    i = 1
    while i < len(toks) and toks[i].text.upper() in CREATE_SKIP:
        i += 1
    if i >= len(toks) or toks[i].text.upper() != "TABLE":
        return None
    i += 1
    if i + 2 < len(toks) and [t.text.upper() for t in toks[i : i + 3]] == ["IF", "NOT", "EXISTS"]:
        i += 3
    name = ""
    while i < len(toks) and toks[i].kind in ("word", "ident"):
        name = unquote_ident(toks[i].text)
        if i + 1 < len(toks) and toks[i + 1].text == ".":
            i += 2
            continue
        i += 1
        break
    if not name or i >= len(toks) or toks[i].text != "(":
        return None
    return name, i


def create_table_schema(toks: list[Token], open_paren: int) -> str | None:
    if (
        open_paren >= 3
        and toks[open_paren - 2].text == "."
        and toks[open_paren - 3].kind in ("word", "ident")
    ):
        return unquote_ident(toks[open_paren - 3].text)
    return None


def group_end(toks: list[Token], i: int) -> int:
    """Index of the parenthesis closing the one at ``toks[i]``."""
    end = closing_paren(toks, i)
    if end is None:
        raise Unsupported("unbalanced parentheses")
    return end


def split_items(sql: str, toks: list[Token], start: int, end: int) -> list[tuple[int, int]]:
    """Token ranges [a, b) of the comma-separated items of toks[start:end] (top level only)."""
    return top_level_items(toks, start, end)


def text_between(sql: str, toks: list[Token], a: int, b: int) -> str:
    return sql[toks[a].start : toks[b - 1].end] if b > a else ""


def column_list(sql: str, toks: list[Token], a: int, b: int) -> list[str]:
    """Identifiers of a parenthesised column list toks[a:b] (a at ``(``)."""
    return [unquote_ident(toks[x].text) for x, y in split_items(sql, toks, a + 1, b - 1) if y == x + 1]


def refers(expr: str, column: str) -> bool:
    low = column.lower()
    return any(t.kind in ("word", "ident") and unquote_ident(t.text).lower() == low
               or t.kind == "word" and t.text.lower() == low for t in tokens(expr))  # fmt: skip


def rename_in(expr: str, old: str, new: str) -> str:
    low = old.lower()
    edits = [
        (t.start, t.end, quote_ident(new))
        for t in tokens(expr)
        if t.kind in ("word", "ident") and (unquote_ident(t.text).lower() == low or t.text.lower() == low)
    ]
    return apply_edits(expr, edits)
