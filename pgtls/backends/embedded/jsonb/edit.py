"""jsonb's modification operators and functions, which DuckDB lacks: ``-`` (a key, keys or an array element),
``#-`` (a path), ``jsonb_set``, ``jsonb_set_lax``, ``jsonb_insert``, ``jsonb_pretty``, ``jsonb_strip_nulls``
and ``json_strip_nulls``.

Each is a Python function of jsonb/jsonfuncs.py (on the JSON text, as PostgreSQL's jsonfuncs.c) registered on
every database file (:func:`register`, called by backend.py), and the query text calls it through a rewrite:

* ``jsonb_set(...)`` and the other functions by name (:func:`call_text`, run from ``jsonb.function_edits``);
* ``j #- path`` always (only jsonb has it; the left operand is the whole chain of operators before it, as
  PostgreSQL groups them), ``j - k`` when ``j`` is known to be jsonb: a ``::jsonb``/``CAST(… AS jsonb)``
  value, a rewritten jsonb call, or a jsonb column (names from ``jsonb.operators``) -- a number's minus
  stays DuckDB's (:func:`operator_text`).

A path or right operand goes over as ``to_json(x)``, so that one function tells a ``'{a,b}'`` literal (text[]
input) from a list, a key from an index.  An error comes back as its message behind ``\\x01``, raised by
DuckDB's ``error()`` in the wrapper of :func:`_checked`, so that clients see PostgreSQL's message (its SQLSTATE
is the fallback of engine/errormap.py for DuckDB's invalid-input errors, 22023, which is PostgreSQL's for all but
the null/not-integer path element and multi-dimensional path errors).  Results are written as jsonb_out does
(codecs), and the calls are wrapped in ``CAST(… AS jsonb)`` so that the result column is sent as jsonb.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import duckdb
import duckdb.func

from pgtls.backends.embedded.jsonb.jsonfuncs import (
    JsonbError,
    json_strip_nulls,
    jsonb_delete_path,
    jsonb_insert,
    jsonb_minus,
    jsonb_pretty,
    jsonb_set,
    jsonb_set_lax,
    jsonb_strip_nulls,
)
from pgtls.backends.embedded.jsonb.operands import is_jsonb_operand, operand_end, operand_start
from pgtls.backends.embedded.sql.lexer import Token, apply_edits, closing_paren, tokens, top_level_items

_ERROR = "\x01"  # an error message follows (no JSON text starts with it)

# --- registration -------------------------------------------------------------------------------------


def _udf(fn: Callable[..., str | None]) -> Callable[..., str | None]:
    """``fn`` with its errors given back as ``\\x01`` + message (see :func:`_checked`)."""

    @functools.wraps(fn)
    def call(*args: Any) -> str | None:
        try:
            return fn(*args)
        except JsonbError as e:
            return _ERROR + str(e)
        except RecursionError:
            return _ERROR + "stack depth limit exceeded"

    return call


V, B = "VARCHAR", "BOOLEAN"
# DuckDB function -> (Python function, parameter types, strict: NULL in gives NULL without a call)
FUNCTIONS: dict[
    str, tuple[Callable[..., str | None], list[Any], bool]
] = {  # list[Any]: duckdb's parameter type list
    "pgtls_jsonb_minus": (jsonb_minus, [V, V], True),
    "pgtls_jsonb_delete_path": (jsonb_delete_path, [V, V], True),
    "pgtls_jsonb_set": (jsonb_set, [V, V, V, B], True),
    "pgtls_jsonb_insert": (jsonb_insert, [V, V, V, B], True),
    "pgtls_jsonb_set_lax": (jsonb_set_lax, [V, V, V, B, V], False),
    "pgtls_jsonb_pretty": (jsonb_pretty, [V], True),
    "pgtls_jsonb_strip_nulls": (jsonb_strip_nulls, [V], True),
    "pgtls_json_strip_nulls": (json_strip_nulls, [V], True),
}


def register(con: duckdb.DuckDBPyConnection) -> None:
    """Register the functions on a database file's connection (its cursors see them)."""
    for name, (fn, params, strict) in FUNCTIONS.items():
        con.create_function(
            name, _udf(fn), params, V, null_handling=duckdb.func.DEFAULT if strict else duckdb.func.SPECIAL
        )


# --- query text ---------------------------------------------------------------------------------------

# PostgreSQL function -> (DuckDB function, argument counts, defaults of the optional trailing arguments,
# result type); the second argument (a path) goes over as to_json().
CALLS: dict[str, tuple[str, tuple[int, ...], tuple[str, ...], str]] = {
    "jsonb_set": ("pgtls_jsonb_set", (3, 4), ("true",), "jsonb"),
    "jsonb_insert": ("pgtls_jsonb_insert", (3, 4), ("false",), "jsonb"),
    "jsonb_set_lax": ("pgtls_jsonb_set_lax", (3, 4, 5), ("true", "'use_json_null'"), "jsonb"),
    "jsonb_pretty": ("pgtls_jsonb_pretty", (1,), (), ""),
    "jsonb_strip_nulls": ("pgtls_jsonb_strip_nulls", (1,), (), "jsonb"),
    "json_strip_nulls": ("pgtls_json_strip_nulls", (1,), (), "JSON"),
}
_CHECK = (
    "lambda pgtls_r: CASE WHEN starts_with(pgtls_r, chr(1)) THEN error(substr(pgtls_r, 2)) ELSE pgtls_r END"
)
_HEAD = "list_transform(list_value("  # how DuckDB names the start of :func:`_checked`


def _checked(fn: str, args: str, result: str) -> str:
    """A call of one of :data:`FUNCTIONS`, its error marker raised as an error (the call made once)."""
    call = f"list_transform(list_value({fn}({args})), {_CHECK})[1]"
    return f"CAST({call} AS {result})" if result else call


# (start of DuckDB's name for a rewritten call, PostgreSQL's column name), for jsonb.column_name
COLUMN_NAMES: list[tuple[str, str]] = [
    ("CAST(" + _HEAD + "pgtls_jsonb_minus(", "?column?"),
    ("CAST(" + _HEAD + "pgtls_jsonb_delete_path(", "?column?"),
] + [(("CAST(" if result else "") + _HEAD + fn + "(", name) for name, (fn, _, _, result) in CALLS.items()]


def delete_path_sql(left: str, path: str) -> str:
    """``left #- path`` as a call."""
    return _checked("pgtls_jsonb_delete_path", f"{left}, to_json({path})", "jsonb")


def call_text(sql: str) -> str | None:
    """``sql`` with the calls of :data:`CALLS` rewritten (arguments too); None if it has none."""
    toks = tokens(sql)
    edits: list[tuple[int, int, str]] = []
    n = len(toks)
    i = 0
    while i < n:
        t = toks[i]
        spec = CALLS.get(t.text.lower()) if t.kind == "word" else None
        if spec is None or i + 1 >= n or toks[i + 1].text != "(":
            i += 1
            continue
        start = t.start
        if i > 0 and toks[i - 1].text == ".":  # pg_catalog.jsonb_set(...), but no other qualifier
            if i < 2 or toks[i - 2].text.lower() != "pg_catalog":
                i += 1
                continue
            start = toks[i - 2].start
        close = closing_paren(toks, i + 1)
        if close is None:
            break
        fn, counts, defaults, result = spec
        ranges = top_level_items(toks, i + 2, close, keep_empty=True)
        named = any(toks[k].text == "=" and toks[k + 1].text == ">" for k in range(i + 2, close - 1))
        if len(ranges) not in counts or named or any(a >= b for a, b in ranges):
            i += 1  # left to DuckDB, which knows no such function
            continue
        args = [sql[toks[a].start : toks[b - 1].end] for a, b in ranges]
        args = [call_text(a) or a for a in args]
        args += defaults[len(args) - counts[0] :] if len(args) < counts[-1] else ()
        if len(args) > 1:
            args[1] = f"to_json({args[1]})"
        edits.append((start, toks[close].end, _checked(fn, ", ".join(args), result)))
        i = close + 1
    return apply_edits(sql, edits) if edits else None


def operator_text(sql: str, names: Callable[[], set[str]]) -> str | None:
    """``sql`` with ``a #- path`` and, where ``a`` is jsonb, ``a - k`` as calls; None if there are none.
    ``names()``: the statement's jsonb column names (asked only when a name is the left operand of a minus).
    One operator at a time, the leftmost first, so that ``a - 'x' - 'y'`` folds from the left."""
    if "-" not in sql:
        return None
    known: list[set[str]] = []

    def jsonb_names() -> set[str]:
        if not known:
            known.append(names())
        return known[0]

    out = sql
    for _ in range(sql.count("-")):
        edit = _first_operator(out, tokens(out), jsonb_names)
        if edit is None:
            break
        out = apply_edits(out, [edit])
    return out if out != sql else None


def _adjacent(a: Token, b: Token) -> bool:
    return a.end == b.start


def _first_operator(
    sql: str, toks: list[Token], names: Callable[[], set[str]]
) -> tuple[int, int, str] | None:
    n = len(toks)
    for i, t in enumerate(toks):
        if t.kind != "op" or t.text != "-" or i == 0:
            continue
        if i + 1 < n and toks[i + 1].text == ">" and _adjacent(t, toks[i + 1]):
            continue  # -> or ->>
        if toks[i - 1].text == "#" and _adjacent(toks[i - 1], t):  # #-
            lo = _chain_start(toks, i - 1)
            hi = operand_end(toks, i + 1)
            if lo is None or hi is None:
                continue
            left = sql[toks[lo].start : toks[i - 2].end]
            return toks[lo].start, toks[hi].end, delete_path_sql(left, sql[toks[i + 1].start : toks[hi].end])
        lo = operand_start(toks, i - 1)
        hi = _minus_operand_end(toks, i + 1)
        if lo is None or hi is None or not _known_jsonb(toks, lo, i - 1, names):
            continue
        left, right = sql[toks[lo].start : toks[i - 1].end], sql[toks[i + 1].start : toks[hi].end]
        return (
            toks[lo].start,
            toks[hi].end,
            _checked("pgtls_jsonb_minus", f"{left}, to_json({right})", "jsonb"),
        )
    return None


def _minus_operand_end(toks: list[Token], j: int) -> int | None:
    """The last token of the right operand of ``j - k``: a value as for the other jsonb operators, or an
    integer (signed); a number with a fraction is left to DuckDB, which has no such operator either."""
    n = len(toks)
    k = j + 1 if j < n and toks[j].text in ("+", "-") else j
    if k < n and toks[k].kind == "number":
        if not toks[k].text.isdigit():
            return None
        end = k
        while (
            end + 3 < n
            and toks[end + 1].text == ":"
            and toks[end + 2].text == ":"
            and toks[end + 3].kind == "word"
        ):
            if toks[end + 3].text.lower() not in _INT4_NAMES:  # 1::bigint: jsonb - bigint does not exist
                return None
            end += 3
        return end
    return operand_end(toks, j) if k == j else None


_INT4_NAMES = {"int", "int4", "integer", "int2", "smallint"}


def _known_jsonb(toks: list[Token], a: int, b: int, names: Callable[[], set[str]]) -> bool:
    """Whether ``toks[a..b]`` (one operand) is jsonb: a cast to jsonb, a parenthesised jsonb operand, or
    a jsonb column."""
    if is_jsonb_operand(toks, a, b, set()):
        return True
    if toks[a].text == "(" and closing_paren(toks, a) == b and b - a >= 2:
        inner = operand_start(toks, b - 1)
        return inner == a + 1 and _known_jsonb(toks, a + 1, b - 1, names)
    is_name = toks[b].kind in ("word", "ident") and all(toks[k].text == "." for k in range(a + 1, b, 2))
    return is_name and is_jsonb_operand(toks, a, b, names())


def _chain_start(toks: list[Token], j: int) -> int | None:
    """The first token of the left operand of the operator whose first token is ``toks[j + 1]`` (``#-``):
    operands joined by operators PostgreSQL binds as tightly or tighter (other operators such as ``->``,
    ``||`` and ``#>``, left-associative, and arithmetic)."""

    lo = operand_start(toks, j - 1)
    while lo is not None and lo > 0:
        op = _operator_ending_at(toks, lo - 1)
        if op is None or op == 0:
            break
        prev = operand_start(toks, op - 1)
        if prev is None:
            break
        lo = prev
    return lo


def _operator_ending_at(toks: list[Token], k: int) -> int | None:
    """The first token of a binary operator that :func:`_chain_start` crosses and that ends at ``toks[k]``."""
    t = toks[k]
    if t.kind != "op":
        return None
    prev = toks[k - 1] if k > 0 and _adjacent(toks[k - 1], t) else None
    if t.text == ">":
        if prev is not None and prev.text == ">":  # ->> or #>>
            k -= 1
            prev = toks[k - 1] if k > 0 and _adjacent(toks[k - 1], toks[k]) else None
        return k - 1 if prev is not None and prev.text in ("-", "#") else None
    if t.text == "|":
        return k - 1 if prev is not None and prev.text == "|" else None
    if t.text == "-" and prev is not None and prev.text == "#":
        return k - 1
    if t.text in ("+", "-", "*", "/", "%"):
        return k
    return None
