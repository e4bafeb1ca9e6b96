"""jsonb's modification operators and functions, which DuckDB lacks: ``-`` (a key, keys or an array element),
``#-`` (a path), ``jsonb_set``, ``jsonb_set_lax``, ``jsonb_insert``, ``jsonb_pretty``, ``jsonb_strip_nulls``
and ``json_strip_nulls``.

Each is a Python function registered on every database file (:func:`register`, called by backend.py) that
works on the JSON text as PostgreSQL's jsonfuncs.c does (setPath and friends ported, the same errors), and the
query text calls it through a rewrite:

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
import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import duckdb
import duckdb.func

from pgtls.backends.embedded.jsonb.operands import is_jsonb_operand, operand_end, operand_start
from pgtls.backends.embedded.pgtypes.encode import _json_string, _jsonb_out
from pgtls.backends.embedded.sql.lexer import Token, apply_edits, closing_paren, tokens, top_level_items

_ERROR = "\x01"  # an error message follows (no JSON text starts with it)

# setPath's operations (jsonfuncs.c JB_PATH_*)
_CREATE, _DELETE, _REPLACE, _INSERT_BEFORE, _INSERT_AFTER = 1, 2, 4, 8, 16
_CREATE_OR_INSERT = _CREATE | _INSERT_BEFORE | _INSERT_AFTER
_NULL_TREATMENT = ('null_value_treatment must be "delete_key", "return_target", "use_json_null", or '
                   '"raise_exception"')  # fmt: skip
_STRTOINT = re.compile(r"[ \t\n\v\f\r]*[+-]?[0-9]+")


class JsonbError(Exception):
    """An error PostgreSQL raises here (the message is PostgreSQL's; a second line is its detail)."""


class _Raw(str):
    """A JSON number as written (json_strip_nulls keeps it)."""


class _Pairs(list[tuple[str, Any]]):
    """A json object as its (key, value) pairs, duplicates and order kept (json_strip_nulls)."""


def _no_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")


def _load(text: str) -> Any:
    """A jsonb value: objects as dicts (the last duplicate key wins), numbers as Decimal."""
    try:
        return json.loads(text, parse_float=Decimal, parse_int=Decimal, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise JsonbError("invalid input syntax for type json") from None


def _is_scalar(v: Any) -> bool:
    return not isinstance(v, dict | list)


# --- arguments --------------------------------------------------------------------------------------


def _text_array(arg: str) -> list[str | None]:
    """A text[] argument, given as ``to_json(x)``: a JSON array of strings (a DuckDB list) or a JSON string
    holding PostgreSQL's array input (``'{a,b}'``)."""
    v = _load(arg)
    if isinstance(v, str):
        from pgtls.backends.embedded.pgtypes.params import parse_array_text

        try:
            v = parse_array_text(v)
        except Exception:
            raise JsonbError(f'malformed array literal: "{v}"') from None
    if not isinstance(v, list):
        raise JsonbError("path must be a text array")
    if any(isinstance(x, list) for x in v):
        raise JsonbError("wrong number of array subscripts")
    if not all(x is None or isinstance(x, str) for x in v):
        raise JsonbError("path must be a text array")
    return v


def _strtoint(s: str) -> int | None:
    """PostgreSQL's strtoint() for a path element: None unless all of it is a base-10 int4."""
    if not _STRTOINT.fullmatch(s):
        return None
    n = int(s)
    return n if -(2**31) <= n < 2**31 else None


# --- setPath ----------------------------------------------------------------------------------------


def _set_path(v: Any, path: list[str | None], level: int, new: Any, op: int) -> Any:
    if path[level] is None:
        raise JsonbError(f"path element at position {level + 1} is null")
    if isinstance(v, list):
        return _set_path_array(v, path, level, new, op)
    if isinstance(v, dict):
        return _set_path_object(v, path, level, new, op)
    return v  # the path goes on into a scalar: nothing to do


def _set_path_object(
    obj: dict[str, Any], path: list[str | None], level: int, new: Any, op: int
) -> dict[str, Any]:
    key = path[level]
    assert key is not None
    last = level == len(path) - 1
    out = dict(obj)
    if key in obj:
        if not last:
            out[key] = _set_path(obj[key], path, level + 1, new, op)
        elif op & (_INSERT_BEFORE | _INSERT_AFTER):
            raise JsonbError("cannot replace existing key")
        elif op & _DELETE:
            del out[key]
        else:
            out[key] = new
    elif last and op & _CREATE_OR_INSERT:
        out[key] = new
    return out


def _set_path_array(arr: list[Any], path: list[str | None], level: int, new: Any, op: int) -> list[Any]:
    elem = path[level]
    assert elem is not None
    idx = _strtoint(elem)
    if idx is None:
        raise JsonbError(f'path element at position {level + 1} is not an integer: "{elem}"')
    n = len(arr)
    before_all = False  # PostgreSQL's idx = INT_MIN: a negative index before the first element
    if idx < 0:
        if -idx > n:
            before_all = True
        else:
            idx += n
    if idx > n:
        idx = n
    last = level == len(path) - 1
    out: list[Any] = []
    done = False
    if (before_all or n == 0) and last and op & _CREATE_OR_INSERT:
        out.append(new)
        done = True
    for i, x in enumerate(arr):
        if i == idx and not before_all:
            done = True
            if not last:
                out.append(_set_path(x, path, level + 1, new, op))
                continue
            if op & (_INSERT_BEFORE | _CREATE):
                out.append(new)
            if op & (_INSERT_AFTER | _INSERT_BEFORE):
                out.append(x)
            if op & (_INSERT_AFTER | _REPLACE):
                out.append(new)
        else:
            out.append(x)
    if op & _CREATE_OR_INSERT and not done and last:
        out.append(new)
    return out


# --- the functions (JSON text in, jsonb_out text out) -------------------------------------------------


def jsonb_minus(j: str, arg: str) -> str:
    """``j - k``: ``arg`` is ``to_json(k)`` -- a string (a key: jsonb_delete), an array of strings (keys:
    jsonb_delete_array) or an integer (an element, negative from the end: jsonb_delete_idx)."""
    v = _load(j)
    k = json.loads(arg, parse_float=_Raw, parse_int=int, parse_constant=_no_constant)
    if isinstance(k, list):
        if any(isinstance(x, list) for x in k):
            raise JsonbError("wrong number of array subscripts")
        if not all(x is None or type(x) is str for x in k):  # not text[] (a _Raw is a number)
            raise JsonbError("operator does not exist: jsonb - array")
        keys = {x for x in k if x is not None}
    elif type(k) is str:
        keys = {k}
    elif isinstance(k, int) and not isinstance(k, bool):
        return _jsonb_out(_delete_index(v, k))
    else:
        raise JsonbError(f"operator does not exist: jsonb - {_pg_type_of(k)}")
    if _is_scalar(v):
        raise JsonbError("cannot delete from scalar")
    if isinstance(v, dict):
        return _jsonb_out({x: y for x, y in v.items() if x not in keys})
    return _jsonb_out([x for x in v if not (isinstance(x, str) and x in keys)])


def _pg_type_of(k: Any) -> str:
    return "boolean" if isinstance(k, bool) else "numeric" if isinstance(k, _Raw) else "jsonb"


def _delete_index(v: Any, idx: int) -> Any:
    if _is_scalar(v):
        raise JsonbError("cannot delete from scalar")
    if isinstance(v, dict):
        raise JsonbError("cannot delete from object using integer index")
    if not -(2**31) <= idx < 2**31:
        raise JsonbError("operator does not exist: jsonb - bigint")
    n = len(v)
    if idx < 0:
        idx = n if -idx > n else n + idx
    if idx >= n:
        return v
    return v[:idx] + v[idx + 1 :]


def jsonb_delete_path(j: str, path_arg: str) -> str:
    """``j #- path`` (jsonb_delete_path)."""
    v, path = _load(j), _text_array(path_arg)
    if _is_scalar(v):
        raise JsonbError("cannot delete path in scalar")
    if not v or not path:
        return _jsonb_out(v)
    return _jsonb_out(_set_path(v, path, 0, None, _DELETE))


def jsonb_set(j: str, path_arg: str, new: str, create: bool) -> str:
    v, path, nv = _load(j), _text_array(path_arg), _load(new)
    if _is_scalar(v):
        raise JsonbError("cannot set path in scalar")
    if (not v and not create) or not path:
        return _jsonb_out(v)
    return _jsonb_out(_set_path(v, path, 0, nv, _CREATE if create else _REPLACE))


def jsonb_insert(j: str, path_arg: str, new: str, after: bool) -> str:
    v, path, nv = _load(j), _text_array(path_arg), _load(new)
    if _is_scalar(v):
        raise JsonbError("cannot set path in scalar")
    if not path:
        return _jsonb_out(v)
    return _jsonb_out(_set_path(v, path, 0, nv, _INSERT_AFTER if after else _INSERT_BEFORE))


def jsonb_set_lax(j: str | None, path_arg: str | None, new: str | None, create: bool | None,
                  treatment: str | None) -> str | None:  # fmt: skip
    """Not strict: NULL target, path or create_if_missing give NULL; a NULL new value is handled as
    ``treatment`` says."""
    if j is None or path_arg is None or create is None:
        return None
    if treatment is None:
        raise JsonbError(_NULL_TREATMENT)
    if new is not None:
        return jsonb_set(j, path_arg, new, create)
    if treatment == "raise_exception":
        raise JsonbError('JSON value must not be null\nException was raised because null_value_treatment is '
                         '"raise_exception".')  # fmt: skip
    if treatment == "use_json_null":
        return jsonb_set(j, path_arg, "null", create)
    if treatment == "delete_key":
        return jsonb_delete_path(j, path_arg)
    if treatment == "return_target":
        return _jsonb_out(_load(j))
    raise JsonbError(_NULL_TREATMENT)


def jsonb_pretty(j: str) -> str:
    """JsonbToCStringIndent: one element or key a line, indented by four spaces a level; an empty
    container opens and closes on lines of its own."""
    out: list[str] = []
    _pretty(_load(j), 0, out)
    return "".join(out)


def _pretty(v: Any, level: int, out: list[str]) -> None:
    if isinstance(v, dict):
        items: list[tuple[str | None, Any]] = [(k, v[k]) for k in sorted(v, key=lambda k: (len(k.encode()),
                                                                                          k.encode()))]  # fmt: skip
        open_, close = "{", "}"
    elif isinstance(v, list):
        items = [(None, x) for x in v]
        open_, close = "[", "]"
    else:
        out.append(_jsonb_out(v))
        return
    out.append(open_)
    pad = "\n" + "    " * (level + 1)
    for n, (k, x) in enumerate(items):
        out.append("," + pad if n else pad)
        if k is not None:
            out.append(_json_string(k) + ": ")
        _pretty(x, level + 1, out)
    out.append("\n" + "    " * level + close)


def jsonb_strip_nulls(j: str) -> str:
    """Object fields whose value is null removed, at every depth (array elements stay)."""
    return _jsonb_out(_strip(_load(j)))


def _strip(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _strip(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_strip(x) for x in v]
    return v


def json_strip_nulls(j: str) -> str:
    """json_strip_nulls: the json text without null object fields and without whitespace, numbers as
    written, duplicate keys and key order kept, strings escaped again as escape_json() does."""
    try:
        v = json.loads(
            j, parse_float=_Raw, parse_int=_Raw, parse_constant=_no_constant, object_pairs_hook=_Pairs
        )
    except (ValueError, RecursionError):
        raise JsonbError("invalid input syntax for type json") from None
    out: list[str] = []
    _compact(v, out)
    return "".join(out)


def _compact(v: Any, out: list[str]) -> None:
    if isinstance(v, _Raw):
        out.append(str(v))
    elif isinstance(v, str):
        out.append(_json_string(v))
    elif isinstance(v, _Pairs):
        out.append("{")
        first = True
        for k, x in v:
            if x is None:
                continue
            out.append(("" if first else ",") + _json_string(k) + ":")
            first = False
            _compact(x, out)
        out.append("}")
    elif isinstance(v, list):
        out.append("[")
        for n, x in enumerate(v):
            if n:
                out.append(",")
            _compact(x, out)
        out.append("]")
    else:
        out.append("null" if v is None else "true" if v is True else "false")


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
