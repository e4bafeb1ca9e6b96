"""The shared client scenario (scenario.json) and how a client's report is judged.

Every client (psql, psycopg text/binary, asyncpg, pg8000, node-postgres, pgJDBC) runs the same
scenario and reports a JSON document::

    {"values": {type name: [cell, ...]},      # read back with the client's own codecs
     "roundtrip": {type name: [cell, ...]},   # the values read back, sent again as parameters, then v::text
     "errors": {type name: "message"},        # a type whose create/insert/select failed
     "checks": {check name: "result"}}        # transactions, errors, cancel, COPY, prepared, cursor, batch

A cell is null (SQL NULL), a string in the client's own formatting, or a (nested) list of cells for
arrays.  ``same()`` normalises the expected PostgreSQL text and the client's cell to one comparable
form per type, so that e.g. Java's ``1.0E20`` and PostgreSQL's ``1e+20`` are the same float8.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import struct
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCENARIO_FILE = HERE / "scenario.json"


def load() -> dict[str, Any]:
    return json.loads(SCENARIO_FILE.read_text())


SCENARIO = load()
TYPES: list[dict[str, Any]] = SCENARIO["types"]
TYPE_NAMES = [t["name"] for t in TYPES]
CHECKS_EXPECTED: dict[str, str] = SCENARIO["checks_expected"]
CHECK_NAMES = list(CHECKS_EXPECTED)
BY_NAME = {t["name"]: t for t in TYPES}


def base_type(sqltype: str) -> str:
    """'numeric(12,2)' -> 'numeric', 'int4[]' -> 'int4[]', 'varchar(20)' -> 'varchar'."""
    return re.sub(r"\(.*?\)", "", sqltype)


def elem_type(sqltype: str) -> str | None:
    b = base_type(sqltype)
    return b[:-2] if b.endswith("[]") else None


def quote_literal(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def value_sql(t: dict[str, Any]) -> list[str]:
    """The SQL expression of each row's value: '<literal>'::type, NULL, or for arrays an ARRAY[...]
    constructor of typed element literals (array literal input '{...}'::type only where the type says
    "array_input": "literal", so that array output is tested apart from array input)."""
    et = t["type"][:-2] if t["type"].endswith("[]") else None  # the element type with its typmod

    def arr(items: list[Any]) -> str:
        return "[" + ",".join(arr(x) if isinstance(x, list) else "NULL" if x is None else
                              f"{quote_literal(x)}::{et}" for x in items) + "]"  # fmt: skip

    out = []
    for lit in t["literals"]:
        if lit is None:
            out.append("NULL")
        elif et is not None and t.get("array_input") != "literal":
            out.append(f"ARRAY{arr(parse_pg_array(lit))}::{t['type']}")
        else:
            out.append(f"{quote_literal(lit)}::{t['type']}")
    return out


def insert_sql(table: str, t: dict[str, Any]) -> str:
    rows = [f"({i}, {v})" for i, v in enumerate(value_sql(t), 1)]
    return f"INSERT INTO {table} (id, v) VALUES {', '.join(rows)}"


def resolved() -> dict[str, Any]:
    """What the node and Java programs get: each type with the SQL of its values, plus the COPY rows."""
    return {
        "types": [{"name": t["name"], "type": t["type"], "sql": value_sql(t)} for t in TYPES],
        "copy_rows": SCENARIO["copy_rows"],
    }


def create_sql(table: str, t: dict[str, Any]) -> str:
    return f"CREATE TABLE {table} (id int PRIMARY KEY, v {t['type']})"


# --- the flat scenario file for clients without a JSON parser (pgJDBC's Java program) ---


def _esc(s: str | None) -> str:
    if s is None:
        return "\\N"
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def flat_scenario() -> str:
    """One line per type: name, SQL type, value SQL...; then 'copy' lines; tab separated, COPY-text escaped."""
    lines = ["type\t" + "\t".join(_esc(x) for x in [t["name"], t["type"], *value_sql(t)]) for t in TYPES]
    lines += ["copy\t" + "\t".join(_esc(x) for x in row) for row in SCENARIO["copy_rows"]]
    return "\n".join(lines) + "\n"


# --- PostgreSQL array text ---


def parse_pg_array(s: str) -> list[Any]:
    """'{a,"b c",NULL,{1,2}}' -> ['a', 'b c', None, ['1', '2']] (element text, not yet typed)."""
    pos = 0

    def parse() -> list[Any]:
        nonlocal pos
        assert s[pos] == "{", s
        pos += 1
        out: list[Any] = []
        if s[pos] == "}":
            pos += 1
            return out
        while True:
            if s[pos] == "{":
                out.append(parse())
            elif s[pos] == '"':
                pos += 1
                buf = []
                while s[pos] != '"':
                    if s[pos] == "\\":
                        pos += 1
                    buf.append(s[pos])
                    pos += 1
                pos += 1
                out.append("".join(buf))
            else:
                start = pos
                while s[pos] not in ",}":
                    pos += 1
                tok = s[start:pos].strip()
                out.append(None if tok.upper() == "NULL" else tok)
            if s[pos] == ",":
                pos += 1
                continue
            assert s[pos] == "}", s
            pos += 1
            return out

    if s.startswith("["):  # explicit bounds: '[0:1]={...}'
        s = s[s.index("=") + 1 :]
    return parse()


# --- normalisation ---

_IV_UNIT = {"year": 12, "years": 12, "mon": 1, "mons": 1, "month": 1, "months": 1}


def parse_interval(s: str) -> tuple[int, int, int]:
    """PostgreSQL's postgres-style interval text -> (months, days, microseconds)."""
    months = days = micros = 0
    toks = s.split()
    i = 0
    while i < len(toks):
        tok = toks[i]
        if ":" in tok:
            neg = tok.startswith("-")
            h, m, sec = tok.lstrip("+-").split(":")
            us = (int(h) * 3600 + int(m) * 60) * 1_000_000 + round(Decimal(sec) * 1_000_000)
            micros += -us if neg else us
            i += 1
            continue
        n = int(tok)
        unit = toks[i + 1]
        if unit in _IV_UNIT:
            months += n * _IV_UNIT[unit]
        elif unit.startswith("day"):
            days += n
        else:
            raise ValueError(f"unexpected interval unit in {s!r}")
        i += 2
    return months, days, micros


def _months_as_days(months: int) -> int:
    """How psycopg and asyncpg turn months into a timedelta: a year is 365 days, a month 30."""
    y, m = divmod(abs(months), 12)
    return (365 * y + 30 * m) * (1 if months >= 0 else -1)


def _f32(x: float) -> float:
    if math.isnan(x) or math.isinf(x):
        return x
    try:
        return struct.unpack("f", struct.pack("f", x))[0]
    except OverflowError:  # a float8 just above float4's max that PostgreSQL rounds down to it
        return math.copysign(3.4028234663852886e38, x)


def _float_key(x: float) -> str:
    return "nan" if math.isnan(x) else repr(x)


def _parse_ts(s: str) -> dt.datetime:
    if re.search(r"[+-]\d\d$", s):  # '+00' -> '+00:00'
        s += ":00"
    return dt.datetime.fromisoformat(s)


def _parse_time(s: str) -> dt.time:
    if re.search(r"[+-]\d\d$", s):
        s += ":00"
    return dt.time.fromisoformat(s)


def norm(sqltype: str, cell: Any, *, exact_json: bool = False) -> Any:
    """A comparable form of one cell (expected PostgreSQL text or a client's report)."""
    if cell is None:
        return None
    b = base_type(sqltype)
    et = elem_type(sqltype)
    if et is not None:
        items = parse_pg_array(cell) if isinstance(cell, str) else cell
        return _norm_list(et, items, exact_json)
    if isinstance(cell, list):
        return ("unexpected list", cell)
    s = str(cell)
    try:
        if b == "bool":
            return {"t": True, "true": True, "f": False, "false": False}[s.lower()]
        if b in ("int2", "int4", "int8"):
            return int(s)
        if b == "float8":
            return _float_key(float(s))
        if b == "float4":
            return _float_key(_f32(float(s)))
        if b == "numeric":
            d = Decimal(s)
            return "NaN" if d.is_nan() else format(d, "f")
        if b == "bytea":
            return s.lower()
        if b == "date":
            return s
        if b in ("time", "timetz"):
            if s.startswith("td:"):
                return s
            t = _parse_time(s)
            return (t.replace(tzinfo=None), t.utcoffset())
        if b in ("timestamp", "timestamptz"):
            ts = _parse_ts(s)
            return (ts.replace(tzinfo=None), ts.utcoffset())
        if b == "interval":
            if s.startswith("td:"):  # a client that maps intervals to timedelta (months lost)
                d, sec, us = (int(x) for x in s[3:].split(":"))
                return ("td", dt.timedelta(days=d, seconds=sec, microseconds=us))
            if s.startswith("iv:"):
                return tuple(int(x) for x in s[3:].split(":"))
            return parse_interval(s)
        if b == "uuid":
            return str(uuid.UUID(s))
        if b in ("json", "jsonb"):
            return s if exact_json else json.loads(s)
    except (ValueError, KeyError, ArithmeticError) as e:
        return ("unparsable", s, str(e))
    return s


def _norm_list(et: str, items: list[Any], exact_json: bool) -> list[Any]:
    return [_norm_list(et, x, exact_json) if isinstance(x, list) else norm(et, x, exact_json=exact_json)
            for x in items]  # fmt: skip


def _td_equivalent(expected: Any, got: Any) -> Any:
    """Map an expected (months, days, micros) to the timedelta a client with no months would give."""
    if isinstance(expected, tuple) and len(expected) == 3 and isinstance(got, tuple) and got[:1] == ("td",):
        m, d, us = expected
        return ("td", dt.timedelta(days=d + _months_as_days(m), microseconds=us))
    if isinstance(expected, list) and isinstance(got, list) and len(expected) == len(got):
        return [_td_equivalent(e, g) for e, g in zip(expected, got, strict=True)]
    return expected


def same(sqltype: str, expected: Any, got: Any, *, exact_json: bool = False) -> bool:
    e = norm(sqltype, expected, exact_json=exact_json)
    g = norm(sqltype, got, exact_json=exact_json)
    return _td_equivalent(e, g) == g


def compare_values(t: dict[str, Any], got: list[Any] | None, *, exact_json: bool = False) -> list[str]:
    """Human-readable mismatches between the expected texts of type t and a client's cells."""
    exp = t["expected"]
    if got is None:
        return ["no values reported"]
    if len(got) != len(exp):
        return [f"expected {len(exp)} rows {exp!r}, got {len(got)}: {got!r}"]
    return [f"row {i}: expected {e!r}, got {g!r}" for i, (e, g) in enumerate(zip(exp, got, strict=True), 1)
            if not same(t["type"], e, g, exact_json=exact_json)]  # fmt: skip


# --- formatting Python values (psycopg, asyncpg, pg8000) as report cells ---


def py_cell(sqltype: str, v: Any, *, raw_json: bool = False) -> Any:
    """A Python value as a report cell; raw_json: the client hands json as its text (asyncpg)."""
    if v is None:
        return None
    et = elem_type(sqltype)
    if et is not None:
        if isinstance(v, str):  # a client that left the array as text
            return v
        return [py_cell(et + "[]", x, raw_json=raw_json) if isinstance(x, list) else
                py_cell(et, x, raw_json=raw_json) for x in v]  # fmt: skip
    b = base_type(sqltype)
    if b in ("json", "jsonb"):
        return v if raw_json else json.dumps(v)
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, float):
        return "-0" if v == 0 and math.copysign(1, v) < 0 else repr(v)
    if isinstance(v, Decimal):
        return "NaN" if v.is_nan() else format(v, "f")
    if isinstance(v, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(v).hex()
    if isinstance(v, dt.datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, (dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        return f"td:{v.days}:{v.seconds}:{v.microseconds}"
    if type(v).__name__ == "PGInterval":  # pg8000 keeps intervals with months as its own type

        def f(k: str) -> Any:
            return getattr(v, k, None) or 0

        months = 12 * (10 * f("decades") + 100 * f("centuries") + 1000 * f("millennia") + f("years")) + f(
            "months"
        )
        days = 7 * f("weeks") + f("days")
        us = round((f("hours") * 3600 + f("minutes") * 60 + f("seconds")) * 1_000_000 + f("milliseconds") * 1000
                   + f("microseconds"))  # fmt: skip
        return f"iv:{months}:{days}:{us}"
    return str(v)
