"""jsonb's modification functions on JSON text, as PostgreSQL's jsonfuncs.c computes them: ``-`` (a key,
keys or an array element), ``#-`` (a path), ``jsonb_set``, ``jsonb_set_lax``, ``jsonb_insert``,
``jsonb_pretty``, ``jsonb_strip_nulls`` and ``json_strip_nulls`` (setPath and friends ported, the same errors
as :class:`JsonbError`).  Plain Python on JSON text: no DuckDB, no SQL; jsonb/edit.py registers them as
DuckDB functions and rewrites the query text to call them.  Results are written as jsonb_out does.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from pgtls.backends.embedded.pgtypes.encode import _json_string, _jsonb_out

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
