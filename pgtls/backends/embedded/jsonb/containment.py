"""PostgreSQL's ``jsonb @> jsonb`` on JSON texts (:func:`contains_text`): the Python function that
databases are opened with as ``pgtls_jsonb_contains`` (backend.py); operators.py rewrites ``@>`` and ``<@``
of jsonb values to calls of it."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any


def contains_text(a: str | None, b: str | None) -> bool | None:
    """PostgreSQL's ``jsonb @> jsonb`` (JsonbDeepContains) on two JSON texts: an object contains the
    keys of the other with contained values; an array contains each element of the other (a scalar
    equal to one of its scalars, a container contained in one of its containers of the same kind); at
    the top level only, an array also contains a scalar it has as an element.  DuckDB's json_contains
    looks at every depth (``{"a": {"b": 1}}`` would contain ``{"b": 1}``), so pgtls registers this as a
    function instead (databases are opened with it, backend.py)."""
    if a is None or b is None:
        return None
    x, y = json.loads(a, parse_float=Decimal), json.loads(b, parse_float=Decimal)
    if isinstance(x, list) and not isinstance(y, (list, dict)):
        return any(_same_scalar(e, y) for e in x if not isinstance(e, (list, dict)))
    return _contains(x, y)


def _contains(x: Any, y: Any) -> bool:
    if isinstance(y, dict):
        return isinstance(x, dict) and all(k in x and _contains(x[k], v) for k, v in y.items())
    if isinstance(y, list):
        if not isinstance(x, list):
            return False
        for e in y:
            if isinstance(e, (list, dict)):
                if not any(isinstance(c, type(e)) and _contains(c, e) for c in x):
                    return False
            elif not any(not isinstance(c, (list, dict)) and _same_scalar(c, e) for c in x):
                return False
        return True
    return not isinstance(x, (list, dict)) and _same_scalar(x, y)


def _same_scalar(x: Any, y: Any) -> bool:
    """jsonb scalar equality: numbers by value, and a boolean is not a number."""
    if isinstance(x, bool) or isinstance(y, bool):
        return isinstance(x, bool) and isinstance(y, bool) and x == y
    if isinstance(x, (int, Decimal)) or isinstance(y, (int, Decimal)):
        return isinstance(x, (int, Decimal)) and isinstance(y, (int, Decimal)) and x == y
    return type(x) is type(y) and x == y  # strings, null
