"""Operands of jsonb's operators in a token list: where one starts and ends, and whether it is jsonb.

Shared by operators.py (``||``, ``@>``, ``<@``, ``->``) and edit.py (``-``, ``#-``); knows tokens only.
"""

from __future__ import annotations

from pgtls.backends.embedded.sql.lexer import Token, unquote_ident

_NOT_FUNCTIONS = {"WHERE", "AND", "OR", "NOT", "SELECT", "ON", "WHEN", "THEN", "ELSE", "BY", "IN", "AS", "CASE",
                  "HAVING", "RETURNING", "SET", "VALUES", "FROM", "JOIN", "USING", "IS", "LIKE", "ALL", "ANY"}  # fmt: skip


def is_cast(toks: list[Token], j: int) -> bool:
    """Whether ``toks[j]`` is the type name of a ``::type`` cast."""
    return (
        j >= 2
        and toks[j - 1].text == ":"
        and toks[j - 2].text == ":"
        and toks[j - 1].start == toks[j - 2].end
    )


def operand_start(toks: list[Token], j: int) -> int | None:
    if j < 0:
        return None
    while toks[j].text == "]" and j >= 1 and toks[j - 1].text == "[":  # text[] in a cast
        j -= 2
    if toks[j].kind == "word" and is_cast(toks, j):
        return operand_start(toks, j - 3)
    if toks[j].kind in ("string", "param"):
        return j
    if toks[j].text == ")":
        depth = 0
        for k in range(j, -1, -1):
            depth += {")": 1, "(": -1}.get(toks[k].text, 0)
            if depth == 0:
                before = toks[k - 1] if k > 0 else None
                if (
                    before is not None
                    and before.kind in ("word", "ident")
                    and before.text.upper() not in _NOT_FUNCTIONS
                ):
                    return k - 1
                return k
        return None
    if toks[j].kind not in ("word", "ident"):
        return None
    while j >= 2 and toks[j - 1].text == "." and toks[j - 2].kind in ("word", "ident"):
        j -= 2
    return j


def operand_end(toks: list[Token], j: int) -> int | None:
    end = value_end(toks, j)
    if end is None:
        return None
    n = len(toks)
    while (
        end + 3 < n
        and toks[end + 1].text == ":"
        and toks[end + 2].text == ":"
        and toks[end + 3].kind == "word"
    ):
        end += 3  # ::type, maybe ::type[]
        while end + 2 < n and toks[end + 1].text == "[" and toks[end + 2].text == "]":
            end += 2
    return end


def value_end(toks: list[Token], j: int) -> int | None:
    if j >= len(toks):
        return None
    t = toks[j]
    if t.kind in ("string", "param"):
        return j
    opener = {"(": ")", "[": "]"}
    if t.kind in ("word", "ident"):
        if j + 1 < len(toks) and toks[j + 1].text in opener:  # ARRAY[...] or a function call
            j += 1
        else:
            while j + 2 < len(toks) and toks[j + 1].text == "." and toks[j + 2].kind in ("word", "ident"):
                j += 2
            return j
    if toks[j].text not in opener:
        return None
    close, depth = opener[toks[j].text], 0
    for k in range(j, len(toks)):
        if toks[k].text == toks[j].text:
            depth += 1
        elif toks[k].text == close:
            depth -= 1
            if depth == 0:
                return k
    return None


def is_jsonb_operand(toks: list[Token], a: int, b: int, names: set[str]) -> bool:
    if b >= 1 and toks[b].kind in ("word", "ident") and toks[b].text.lower() == "jsonb" and is_cast(toks, b):
        return True
    if (toks[a].kind == "word" and toks[a].text.upper() == "CAST" and b - 2 > a and toks[b].text == ")"
            and toks[b - 1].text.lower() == "jsonb" and toks[b - 2].text.upper() == "AS"):  # fmt: skip
        return True
    is_name = (
        (b - a) % 2 == 0
        and all(toks[i].kind in ("word", "ident") for i in range(a, b + 1, 2))
        and all(toks[i].text == "." for i in range(a + 1, b, 2))
    )  # [table.]column
    return is_name and unquote_ident(toks[b].text).lower() in names
