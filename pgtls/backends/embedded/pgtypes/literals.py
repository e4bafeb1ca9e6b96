"""PostgreSQL input forms DuckDB lacks, turned into DuckDB expressions: typed literals and bare numeric.

* ``'{1,NULL}'::int4[]`` and ``('{1,NULL}')::int4[]`` (PostgreSQL array input) -> ``CAST(['1', NULL] AS INTEGER[])`` (nested for
  ``'{{1,2},{3,4}}'``), and ``ARRAY[[1,2],[3,4]]::int4[]`` gets as many ``[]`` as it has dimensions;
* ``'ab'::char(5)`` -> ``'ab   '`` (blank-padded, as bpchar's input and output);
* ``'-1 years +3 days'::interval`` -> without the ``+`` signs DuckDB refuses;
* ``'{"b": 2, "a": 1}'::jsonb`` -> PostgreSQL's jsonb text (keys by length then bytes, last duplicate wins);
* a bare ``numeric`` / ``decimal`` type (column definitions, casts) -> :data:`types.FREE_NUMERIC_DUCK`,
  and ``1.50::numeric`` / ``'1.50'::numeric`` -> the DECIMAL(p,s) of the literal, so it keeps its scale.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from pgtls.backends.embedded.pgtypes import typemap as T
from pgtls.backends.embedded.pgtypes.encode import jsonb_text
from pgtls.backends.embedded.sql.lexer import Token, apply_edits, quote_literal, string_value

_MULTI = {("double", "precision"), ("character", "varying"), ("bit", "varying")}
_TZ_WORDS = ("with", "without")
_NUMERIC = ("numeric", "decimal")
_CHAR = ("char", "character", "bpchar")
_DATETIME = ("date", "timestamp", "timestamptz")
# Element types whose DuckDB name differs from PostgreSQL's.
_DUCK_NAMES = {"char": "VARCHAR", "character": "VARCHAR", "bpchar": "VARCHAR", "jsonb": "jsonb", "name": "VARCHAR",
               "oid": "BIGINT", "regclass": "VARCHAR", "regtype": "VARCHAR"}  # fmt: skip
# Words after which a bare ``numeric`` in CREATE/ALTER is not a column type.
_NOT_TYPE_BEFORE = {"SELECT", "WHERE", "AND", "OR", "NOT", "ON", "BY", "FROM", "WHEN", "THEN", "ELSE", "IN", "IS",
                    "DISTINCT", "RETURNING", "SET", "VALUES", "TABLE", "INDEX", "VIEW", "CASE", "END", "LIKE",
                    "ALL", "ANY", "HAVING", "LIMIT", "OFFSET", "USING", "COLUMN", "EXISTS"}  # fmt: skip


class TypeRef:
    """A type name in the token list: ``[pg_catalog.]name[(args)][[]...]``."""

    def __init__(self, name: str, args: list[str], dims: int, start: int, end: int, next_index: int,
                 text: str) -> None:  # fmt: skip
        self.name, self.args, self.dims = name, args, dims
        self.start, self.end, self.next_index, self.text = start, end, next_index, text


def parse_type(sql: str, toks: list[Token], j: int) -> TypeRef | None:
    n = len(toks)
    if j >= n or toks[j].kind not in ("word", "ident"):
        return None
    start = toks[j].start
    if toks[j].text.lower() == "pg_catalog" and j + 2 < n and toks[j + 1].text == ".":
        j += 2
    name = toks[j].text.lower().strip('"')
    end = toks[j].end
    name_start = toks[j].start
    j += 1
    if j < n and (name, toks[j].text.lower()) in _MULTI:
        name += " " + toks[j].text.lower()
        end = toks[j].end
        j += 1
    args: list[str] = []
    if j < n and toks[j].text == "(":
        k = j + 1
        while k < n and toks[k].text != ")":
            if toks[k].text != ",":
                args.append(toks[k].text)
            k += 1
        if k >= n:
            return None
        end = toks[k].end
        j = k + 1
    if name in ("timestamp", "time") and j + 2 < n and toks[j].text.lower() in _TZ_WORDS:
        if toks[j + 1].text.lower() == "time" and toks[j + 2].text.lower() == "zone":
            if toks[j].text.lower() == "with":
                name += "tz"
            end = toks[j + 2].end
            j += 3
    dims = 0
    while j + 1 < n and toks[j].text == "[" and (toks[j + 1].text == "]" or
                                                 (j + 2 < n and toks[j + 2].text == "]")):  # fmt: skip
        k = j + 1 if toks[j + 1].text == "]" else j + 2
        dims += 1
        end = toks[k].end
        j = k + 1
    return TypeRef(name, args, dims, start, end, j, sql[name_start:end])


def decimal_of(text: str) -> str | None:
    """DECIMAL(p,s) holding the numeric literal ``text`` with its own scale; None if DuckDB cannot."""
    try:
        d = Decimal(text.strip())
    except InvalidOperation:
        return None
    if not d.is_finite() or "e" in text.lower():
        return None
    _, digits, exp = d.as_tuple()
    scale = max(-int(exp), 0)
    precision = max(len(digits), scale, 1)
    if len(digits) + max(int(exp), 0) > precision:
        precision = len(digits) + max(int(exp), 0)
    if precision > 38:
        return None
    return f"DECIMAL({precision},{scale})"


def duck_type(t: TypeRef, dims: int | None = None) -> str:
    """The DuckDB spelling of an element/scalar type reference, with ``dims`` list levels."""
    if t.name in _NUMERIC and not t.args:
        base = T.FREE_NUMERIC_DUCK
    elif t.name in _DUCK_NAMES:
        base = _DUCK_NAMES[t.name]
    else:
        base = t.text.split("[")[0]
    return base + "[]" * (t.dims if dims is None else dims)


# --- values ------------------------------------------------------------------------------------


def interval_text(s: str) -> str:
    """PostgreSQL's own interval output ('-1 years -2 mons +3 days -04:05:06') in a form DuckDB reads."""
    return re.sub(r"(^|\s)\+(?=\d)", r"\1", s)


def pad_char(s: str, n: int) -> str:
    s = s[:n] if len(s) > n and not s[n:].strip(" ") else s
    return s.ljust(n)


def parse_array_text(s: str) -> list[Any]:
    from pgtls.backends.embedded.pgtypes.params import parse_array_text as parse

    return parse(s)


def _depth(items: list[Any]) -> int:
    d = 1
    while items and isinstance(items[0], list):
        d += 1
        items = items[0]
    return d


def element_sql(value: str, t: TypeRef) -> str:
    """A DuckDB expression for one (scalar) value of type ``t`` given as PostgreSQL input text."""
    if t.name == "bytea" and value.startswith("\\x"):
        return f"from_hex({quote_literal(value[2:])})"
    if t.name == "interval":
        return quote_literal(interval_text(value))
    if t.name in _CHAR and t.args and t.args[0].isdigit():
        return quote_literal(pad_char(value, int(t.args[0])))
    if t.name == "jsonb":
        return quote_literal(jsonb_text(value))
    return quote_literal(value)


def array_sql(value: str, t: TypeRef) -> str:
    items = parse_array_text(value)
    depth = max(_depth(items), t.dims)

    def lst(xs: list[Any]) -> str:
        return "[" + ", ".join(lst(x) if isinstance(x, list) else "NULL" if x is None else element_sql(x, t)
                               for x in xs) + "]"  # fmt: skip

    return f"CAST({lst(items)} AS {duck_type(t, depth)})"


def typed_string(value: str, t: TypeRef) -> str | None:
    """The replacement of ``'value'::t`` (None: leave it)."""
    if t.dims:
        return array_sql(value, t)
    if t.name in _NUMERIC and not t.args:
        dec = decimal_of(value)
        return f"CAST({quote_literal(value.strip())} AS {dec})" if dec else None
    if t.name == "interval" and "+" in value:
        return f"CAST({quote_literal(interval_text(value))} AS INTERVAL)"
    if t.name in _CHAR and t.args and t.args[0].isdigit():
        return f"CAST({quote_literal(pad_char(value, int(t.args[0])))} AS VARCHAR)"
    if t.name == "jsonb":
        return f"CAST({quote_literal(jsonb_text(value))} AS jsonb)"
    if t.name in _DATETIME and "bc" in value.lower():
        from pgtls.backends.embedded.pgtypes.params import duck_datetime_input

        duck = duck_datetime_input(value)  # '0044-03-15 BC' -> '0044-03-15 (BC)', the only form DuckDB reads
        return f"CAST({quote_literal(duck)} AS {duck_type(t)})" if duck != value else None
    return None


def array_depth_before(toks: list[Token], close: int) -> int:
    """Dimensions of an ``ARRAY[...]`` constructor ending at token ``close`` (0: not one)."""
    depth = 0
    k = close
    while k >= 0:
        if toks[k].text == "]":
            depth += 1
        elif toks[k].text == "[":
            depth -= 1
            if depth == 0:
                break
        k -= 1
    if k <= 0 or toks[k - 1].text.upper() != "ARRAY":
        return 0
    dims = 1
    j = k + 1
    while j + 1 < len(toks):
        if toks[j].text == "[":
            dims += 1
            j += 1
        elif toks[j].text.upper() == "ARRAY" and toks[j + 1].text == "[":
            dims += 1
            j += 2
        else:
            break
    return dims


def rewrite_types(sql: str, toks: list[Token]) -> list[tuple[int, int, str]]:
    """Edits (start, end, replacement) for the forms in the module docstring."""
    edits: list[tuple[int, int, str]] = []
    n = len(toks)
    ddl = bool(toks) and toks[0].text.upper() in ("CREATE", "ALTER")
    parens: list[str] = []  # the word before each open parenthesis
    i = 0
    while i < n:
        t = toks[i]
        if t.text == "(":
            parens.append(toks[i - 1].text.upper() if i else "")
        elif t.text == ")" and parens:
            parens.pop()
        if t.text == ":" and i + 2 < n and toks[i + 1].text == ":" and toks[i + 1].start == t.end:
            ref = parse_type(sql, toks, i + 2)
            if ref is None:
                i += 2
                continue
            prev = toks[i - 1] if i else None
            rep = None
            start = prev.start if prev is not None else 0
            if (
                prev is not None
                and prev.text == ")"
                and i >= 3
                and toks[i - 2].kind == "string"
                and toks[i - 3].text == "("
            ):
                start, prev = toks[i - 3].start, toks[i - 2]  # ('...')::type, as Django writes its parameters
            if (
                prev is not None
                and prev.kind == "string"
                and not prev.text.upper().startswith(("E'", "U&", "B'", "X'"))
            ):
                rep = typed_string(string_value(prev.text), ref)
                if rep is not None:
                    edits.append((start, ref.end, rep))
            elif (
                prev is not None
                and prev.kind == "number"
                and ref.name in _NUMERIC
                and not ref.args
                and not ref.dims
            ):
                dec = decimal_of(prev.text)
                if dec:
                    edits.append((ref.start, ref.end, dec))
                    rep = dec
            elif prev is not None and prev.text == "]" and ref.dims:
                dims = array_depth_before(toks, i - 1)
                if dims > ref.dims:
                    edits.append((ref.start, ref.end, duck_type(ref, dims)))
                    rep = ""
            if rep is None and ref.name in _NUMERIC and not ref.args:
                edits.append((ref.start, ref.end, duck_type(ref)))
            i = ref.next_index
            continue
        low = t.text.lower()
        if (
            t.kind == "word"
            and low in _NUMERIC
            and i > 0
            and (i + 1 >= n or toks[i + 1].text not in ("(", "."))
        ):
            prev = toks[i - 1]
            up = prev.text.upper()
            in_cast = up == "AS" and parens and parens[-1] in ("CAST", "TRY_CAST")
            in_ddl = ddl and (up == "TYPE" or (prev.kind in ("word", "ident") and up not in _NOT_TYPE_BEFORE))
            if prev.text != "." and (in_cast or in_ddl):
                ref = parse_type(sql, toks, i)
                if ref is not None:
                    edits.append((ref.start, ref.end, duck_type(ref)))
                    i = ref.next_index
                    continue
        i += 1
    return edits


def apply(sql: str, edits: list[tuple[int, int, str]]) -> str:
    return apply_edits(sql, edits)


def rewrite_prepare(sql: str, toks: list[Token]) -> list[tuple[int, int, str]]:
    """``PREPARE p (int8, text) AS stmt`` -> ``PREPARE p AS stmt`` with ``CAST($1 AS int8)`` ... in stmt
    (DuckDB's PREPARE takes no type list)."""
    if len(toks) < 4 or toks[0].text.upper() != "PREPARE" or toks[2].text != "(":
        return []
    types: list[TypeRef] = []
    j = 3
    while j < len(toks) and toks[j].text != ")":
        ref = parse_type(sql, toks, j)
        if ref is None:
            return []
        types.append(ref)
        j = ref.next_index
        if j < len(toks) and toks[j].text == ",":
            j += 1
    if j + 1 >= len(toks) or toks[j + 1].text.upper() != "AS":
        return []
    edits = [(toks[1].end, toks[j].end, "")]
    for t in toks[j + 2 :]:
        if t.kind == "param":
            k = int(t.text[1:])
            if 0 < k <= len(types):
                edits.append((t.start, t.end, f"CAST({t.text} AS {duck_type(types[k - 1])})"))
    return edits


_HINTS = ("::", "numeric", "decimal", "prepare")


def rewrite_literals(sql: str, toks: list[Token] | None = None) -> str:
    low = sql.lower()
    if not any(h in low for h in _HINTS):
        return sql
    from pgtls.backends.embedded.sql.lexer import tokens

    toks = tokens(sql) if toks is None else toks
    edits = rewrite_types(sql, toks)
    if toks and toks[0].text.upper() == "PREPARE":
        edits += rewrite_prepare(sql, toks)
    return apply(sql, edits) if edits else sql
