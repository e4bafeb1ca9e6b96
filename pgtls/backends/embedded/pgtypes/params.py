"""Bind parameters: type inference for Parse, decoding for Bind, and rendering as DuckDB literals.

DuckDB's Python API cannot report parameter types of a prepared statement, so
types are inferred the way a reader of the SQL would: an explicit cast
(``$1::int``), a comparison or assignment against a column (``a = $1``) or a
position in ``INSERT INTO t (cols) VALUES (...)``; anything else is text, as
PostgreSQL reports for ``SELECT $1``.  Bound values are substituted into the
statement as typed literals (``CAST('...' AS INTEGER)``); an untyped text
parameter becomes a plain string literal, which DuckDB, like PostgreSQL, coerces
to whatever the context needs.
"""

from __future__ import annotations

import datetime as dt
import re
import struct
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import duckdb

from pgtls.backends.embedded.pgtypes import encode as C
from pgtls.backends.embedded.pgtypes import typemap as T
from pgtls.backends.embedded.sql.lexer import Token, quote_literal, tokens, unquote_ident
from pgtls.errors import PgError

TYPE_NAMES = T.TYPE_NAMES

_COMPARE = {"=", "<", ">", "<=", ">=", "<>", "!="}


def _cast_type(toks: list[Token], i: int) -> T.PgType | None:
    """Type of ``$n::type`` / ``$n::type[]`` at token i (the parameter)."""
    if i + 3 < len(toks) and toks[i + 1].text == ":" and toks[i + 2].text == ":":
        name = toks[i + 3].text.lower().strip('"')
        t = TYPE_NAMES.get(name)
        if t is not None and i + 5 < len(toks) and toks[i + 4].text == "[" and toks[i + 5].text == "]":
            return T.array_of(t)
        return t
    if i >= 2 and toks[i - 1].text == "(" and toks[i - 2].text.upper() == "CAST":
        if i + 2 < len(toks) and toks[i + 1].text.upper() == "AS":
            return TYPE_NAMES.get(toks[i + 2].text.lower())
    return None


def _tables(toks: list[Token]) -> list[str]:
    out = []
    for i, t in enumerate(toks[:-1]):
        if t.kind == "word" and t.text.upper() in ("FROM", "JOIN", "INTO", "UPDATE"):
            j = i + 1
            while j + 2 < len(toks) and toks[j + 1].text == ".":
                j += 2
            if toks[j].kind in ("word", "ident"):
                out.append(unquote_ident(toks[j].text))
    return out


def _columns(cur: duckdb.DuckDBPyConnection, tables: list[str]) -> dict[str, dict[str, str]]:
    if not tables:
        return {}
    marks = ", ".join("?" for _ in tables)
    rows = cur.execute(
        "SELECT lower(table_name), lower(column_name), data_type FROM duckdb_columns() "
        f"WHERE lower(table_name) IN ({marks}) ORDER BY column_index",
        [t.lower() for t in tables],
    ).fetchall()
    out: dict[str, dict[str, str]] = {}
    for table, col, dtype in rows:
        out.setdefault(table, {})[col] = dtype
    return out


def infer_types(cur: duckdb.DuckDBPyConnection, sql: str, declared: list[int]) -> list[int]:
    """OIDs for all parameters of ``sql``: the declared ones, the rest inferred (text if unknown)."""
    toks = tokens(sql)
    count = max([int(t.text[1:]) for t in toks if t.kind == "param"] + [len(declared)])
    result = [declared[k] if k < len(declared) else 0 for k in range(count)]
    if all(result):
        return result
    try:
        cols = _columns(cur, _tables(toks))
    except duckdb.Error:
        cols = {}
    by_name: dict[str, str] = {}
    for table_cols in cols.values():
        for c, d in table_cols.items():
            by_name.setdefault(c, d)

    def col_type(tok: Token) -> T.PgType | None:
        if tok.kind not in ("word", "ident"):
            return None
        d = by_name.get(unquote_ident(tok.text))
        return T.pg_type_of(d)[0] if d else None

    insert_cols = _insert_columns(toks, cols)
    for i, t in enumerate(toks):
        if t.kind != "param":
            continue
        k = int(t.text[1:]) - 1
        if result[k]:
            continue
        found = _cast_type(toks, i)
        if found is None and i >= 2 and toks[i - 1].text in _COMPARE:
            found = col_type(toks[i - 2])
        if found is None and i >= 3 and toks[i - 1].text + toks[i - 2].text[::-1] in ("=<", "=>", ">!", "=!"):
            found = col_type(toks[i - 3])
        if found is None and i + 2 < len(toks) and toks[i + 1].text in _COMPARE:
            found = col_type(toks[i + 2])
        if found is None and k in insert_cols:
            found = T.pg_type_of(insert_cols[k])[0]
        if found is None:
            found = _series_arg_type(toks, i)
        if found is not None:
            result[k] = found.oid
    return [r or T.TEXT.oid for r in result]


def _call_args(toks: list[Token], i: int) -> tuple[str, list[list[Token]]] | None:
    """(function name, its top-level arguments) of the call whose argument list holds token ``i``."""
    depth = 0
    k = i - 1
    while k >= 0 and not (toks[k].text == "(" and depth == 0):
        depth += {")": 1, "(": -1}.get(toks[k].text, 0)
        k -= 1
    if k < 1 or toks[k - 1].kind != "word":
        return None
    args: list[list[Token]] = [[]]
    depth = 0
    for t in toks[k + 1 :]:
        if t.text == ")" and depth == 0:
            return toks[k - 1].text.lower(), args
        if t.text == "," and depth == 0:
            args.append([])
            continue
        depth += {"(": 1, ")": -1}.get(t.text, 0)
        args[-1].append(t)
    return None


def _series_arg_type(toks: list[Token], i: int) -> T.PgType | None:
    """``generate_series(1, $1)``: PostgreSQL resolves the integer form, so the parameter is int4 (int8
    when a literal bound is beyond int4), when every argument is an integer literal or a parameter."""
    call = _call_args(toks, i)
    if call is None or call[0] != "generate_series":
        return None
    wide = False
    for arg in call[1]:
        if len(arg) == 2 and arg[0].text in ("-", "+"):
            arg = arg[1:]
        if len(arg) != 1 or arg[0].kind not in ("number", "param"):
            return None
        if arg[0].kind == "number":
            if not arg[0].text.isdigit():
                return None
            wide = wide or int(arg[0].text) > 2**31 - 1
    return T.INT8 if wide else T.INT4


def _insert_columns(toks: list[Token], cols: dict[str, dict[str, str]]) -> dict[int, str]:
    """Parameter index -> DuckDB column type for ``INSERT INTO t [(c, ...)] VALUES ($1, ...)``."""
    out: dict[int, str] = {}
    for k, typ in insert_positions(toks, cols).items():
        if toks[k].kind == "param":
            out.setdefault(int(toks[k].text[1:]) - 1, typ)
    return out


def insert_positions(toks: list[Token], cols: dict[str, dict[str, str]]) -> dict[int, str]:
    """Token index -> DuckDB type of the column it goes to, for every token directly inside a row of
    ``INSERT INTO t [(c, ...)] VALUES (...), ...`` (not inside a parenthesis of its own)."""
    w = [t.text.upper() for t in toks]
    if "INSERT" not in w[:1] or "VALUES" not in w:
        return {}
    table = _tables(toks)[0].lower() if _tables(toks) else ""
    tcols = cols.get(table, {})
    i = w.index("INTO") + 2 if "INTO" in w else 0
    while i < len(toks) and toks[i].text == ".":
        i += 2
    names: list[str] = list(tcols)
    if i < len(toks) and toks[i].text == "(":
        names = []
        j = i + 1
        while j < len(toks) and toks[j].text != ")":
            if toks[j].kind in ("word", "ident"):
                names.append(unquote_ident(toks[j].text).lower())
            j += 1
    out: dict[int, str] = {}
    pos = 0
    depth = 0
    for k in range(w.index("VALUES") + 1, len(toks)):
        text = toks[k].text
        if text == "(":
            depth += 1
            if depth == 1:
                pos = 0
        elif text == ")":
            depth -= 1
        elif text == "," and depth == 1:
            pos += 1
        elif depth == 1 and pos < len(names) and names[pos] in tcols:
            out[k] = tcols[names[pos]]
    return out


# --- decoding binary parameters ---------------------------------------------------------------


def _numeric_recv(b: bytes) -> Decimal:
    """numeric_recv(): exact at any precision (no decimal context rounding)."""
    ndigits, weight, sign, dscale = struct.unpack_from("!hhHH", b)
    if sign == 0xC000:
        return Decimal("NaN")
    if sign in (0xD000, 0xF000):
        return Decimal("Infinity") if sign == 0xD000 else Decimal("-Infinity")
    if sign not in (0, 0x4000) or ndigits < 0 or dscale & 0xC000:
        raise PgError("22P03", 'invalid sign in external "numeric" value')
    digits = struct.unpack_from(f"!{ndigits}H", b, 8)
    if any(d >= 10000 for d in digits):
        raise PgError("22P03", 'invalid digit in external "numeric" value')
    coef = 0
    for d in digits:
        coef = coef * 10000 + d
    exp = 4 * (weight - ndigits + 1)  # value = coef * 10^exp
    if exp < -dscale:  # more digits than the display scale: drop the extra zeros (or round, as PostgreSQL)
        q, r = divmod(coef, 10 ** (-dscale - exp))
        coef = q + (2 * r >= 10 ** (-dscale - exp))
    elif exp > -dscale:
        coef *= 10 ** (exp + dscale)
    return Decimal((1 if sign == 0x4000 else 0, tuple(int(c) for c in str(coef)), -dscale))


def _array_recv(b: bytes) -> list[Any]:
    ndim, _flags, elem_oid = struct.unpack_from("!iiI", b)
    pos = 12
    dims = []
    for _ in range(ndim):
        n, _lb = struct.unpack_from("!ii", b, pos)
        dims.append(n)
        pos += 8
    elem_t = T.BY_OID.get(elem_oid, T.TEXT)
    flat: list[Any] = []
    total = 1
    for d in dims:
        total *= d
    for _ in range(total if dims else 0):
        (n,) = struct.unpack_from("!i", b, pos)
        pos += 4
        if n < 0:
            flat.append(None)
        else:
            flat.append(decode_binary(elem_t.oid, b[pos : pos + n]))
            pos += n

    def nest(items: list[Any], ds: list[int]) -> list[Any]:
        if len(ds) <= 1:
            return items
        step = len(items) // ds[0]
        return [nest(items[i * step : (i + 1) * step], ds[1:]) for i in range(ds[0])]

    return nest(flat, dims)


_INT32_MIN, _INT32_MAX = -(1 << 31), (1 << 31) - 1
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


@dataclass(frozen=True)
class Infinite:
    """PostgreSQL's infinite date / timestamp (Python's datetime has none); DuckDB has them too."""

    duck: str
    positive: bool

    def text(self) -> str:
        return "infinity" if self.positive else "-infinity"


@dataclass(frozen=True)
class DuckText:
    """A date or timestamp Python's datetime cannot hold (before year 1, after 9999), as DuckDB's text;
    ``str()`` gives that text (binary COPY FROM casts it)."""

    duck: str
    text: str

    def __str__(self) -> str:
        return self.text


def _beyond(oid: int, us: int) -> DuckText:
    """DuckText of a timestamp[tz] ``us`` microseconds after 2000-01-01 (UTC)."""
    days, rem = divmod(us, C.DAY_US)
    secs, frac = divmod(rem, 1_000_000)
    clock = dt.time(secs // 3600, secs // 60 % 60, secs % 60, frac)
    text = f"{C.duck_date_text(*C.civil_from_days(days))} {C.format_time(clock)}"
    if oid == T.TIMESTAMP.oid:
        return DuckText("TIMESTAMP", text)
    return DuckText("TIMESTAMPTZ", text + "+00")


def decode_binary(oid: int, b: bytes) -> Any:
    t = T.BY_OID.get(oid)
    if t is not None and t.elem:
        return _array_recv(b)
    if oid == T.BOOL.oid:
        return b != b"\x00"
    if oid in (T.INT2.oid, T.INT4.oid, T.INT8.oid, T.OID.oid):
        if len(b) not in (2, 4, 8):
            raise PgError("22P03", f"incorrect binary data format in bind parameter ({len(b)} bytes)")
        return int.from_bytes(b, "big", signed=oid != T.OID.oid)
    if oid == T.FLOAT4.oid:
        return struct.unpack("!f", b)[0]
    if oid == T.FLOAT8.oid:
        return struct.unpack("!d", b)[0]
    if oid == T.NUMERIC.oid:
        return _numeric_recv(b)
    if oid == T.BYTEA.oid:
        return bytes(b)
    if oid == T.DATE.oid:
        (days,) = struct.unpack("!i", b)
        if days in (_INT32_MIN, _INT32_MAX):  # DATEVAL_NOBEGIN / DATEVAL_NOEND
            return Infinite("DATE", days > 0)
        try:
            return C.PG_EPOCH_DATE + dt.timedelta(days=days)
        except OverflowError:
            return DuckText("DATE", C.duck_date_text(*C.civil_from_days(days)))
    if oid == T.TIME.oid:
        return (dt.datetime(2000, 1, 1) + dt.timedelta(microseconds=struct.unpack("!q", b)[0])).time()
    if oid == T.TIMETZ.oid:
        us, zone = struct.unpack("!qi", b)
        t0 = (dt.datetime(2000, 1, 1) + dt.timedelta(microseconds=us)).time()
        return t0.replace(tzinfo=dt.timezone(dt.timedelta(seconds=-zone)))
    if oid in (T.TIMESTAMP.oid, T.TIMESTAMPTZ.oid):
        (us,) = struct.unpack("!q", b)
        duck = "TIMESTAMP" if oid == T.TIMESTAMP.oid else "TIMESTAMPTZ"
        if us in (_INT64_MIN, _INT64_MAX):  # DT_NOBEGIN / DT_NOEND
            return Infinite(duck, us > 0)
        try:
            return (C.PG_EPOCH if oid == T.TIMESTAMP.oid else C.PG_EPOCH_TZ) + dt.timedelta(microseconds=us)
        except OverflowError:
            return _beyond(oid, us)
    if oid == T.INTERVAL.oid:
        us, days, months = struct.unpack("!qii", b)
        return ("interval", months, days, us)
    if oid == T.UUID.oid:
        return uuid.UUID(bytes=bytes(b))
    if oid == T.JSONB.oid:
        return b[1:].decode()
    return b.decode()


# --- PostgreSQL array text -> nested lists ---------------------------------------------------


def parse_array_text(s: str) -> list[Any]:
    """``{1,2,"a b",NULL,{3}}`` -> nested lists of strings / None."""
    pos = 0
    if s.startswith("["):  # optional dimension decoration: [1:3]={...}
        pos = s.find("=") + 1
        if pos == 0:
            raise PgError("22P02", f'malformed array literal: "{s}"')

    def parse(i: int) -> tuple[list[Any], int]:
        if i >= len(s) or s[i] != "{":
            raise PgError("22P02", f'malformed array literal: "{s}"')
        i += 1
        out: list[Any] = []
        while i < len(s):
            c = s[i]
            if c == "}":
                return out, i + 1
            if c in ", \t\n":
                i += 1
            elif c == "{":
                sub, i = parse(i)
                out.append(sub)
            elif c == '"':
                buf = []
                i += 1
                while i < len(s) and s[i] != '"':
                    if s[i] == "\\":
                        i += 1
                        if i >= len(s):
                            break
                    buf.append(s[i])
                    i += 1
                if i >= len(s):
                    break  # an unterminated quoted element
                out.append("".join(buf))
                i += 1
            else:
                j = i
                while j < len(s) and s[j] not in ",}":
                    j += 1
                word = s[i:j].strip()
                out.append(None if word.upper() == "NULL" else word)
                i = j
        raise PgError("22P02", f'malformed array literal: "{s}"')

    return parse(pos)[0]


# --- rendering as DuckDB literals -------------------------------------------------------------


def _cast(text: str, duck: str) -> str:
    return f"CAST({quote_literal(text)} AS {duck})"


def literal(value: Any, t: T.PgType | None) -> str:
    """A DuckDB SQL expression for a decoded parameter value of PostgreSQL type ``t``."""
    if value is None:
        return f"CAST(NULL AS {t.duck})" if t is not None and t is not T.UNKNOWN else "NULL"
    if t is not None and t.elem:
        elem = T.BY_OID[t.elem]
        items = value if isinstance(value, list) else parse_array_text(str(value))
        dims = 1
        probe = items
        while probe and isinstance(probe[0], list):
            dims += 1
            probe = probe[0]
        base = elem.duck
        return f"CAST({_list_literal(items, elem)} AS {base}{'[]' * dims})"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Infinite):
        return _cast(value.text(), value.duck)
    if isinstance(value, DuckText):
        return _cast(value.text, value.duck)
    if isinstance(value, int):
        return _cast(str(value), t.duck) if t is not None and t.duck != "VARCHAR" else str(value)
    if isinstance(value, float):
        return _cast(C.format_float(value), t.duck if t is not None else "DOUBLE")
    if isinstance(value, Decimal):
        text = C._numeric_text(value)
        return _cast(text, "DOUBLE") if not value.is_finite() else text
    if isinstance(value, bytes):
        return f"from_hex({quote_literal(value.hex())})"
    if isinstance(value, tuple) and value and value[0] == "interval":
        _, months, days, us = value
        return f"(to_months({months}) + to_days({days}) + to_microseconds({us}))"
    if isinstance(value, dt.datetime):
        text = C.format_timestamptz(value, dt.UTC) if value.tzinfo else C.format_timestamp(value)
        return _cast(text, "TIMESTAMPTZ" if value.tzinfo else "TIMESTAMP")
    if isinstance(value, dt.date):
        return _cast(C.format_date(value), "DATE")
    if isinstance(value, dt.time):
        return (
            _cast(C.format_timetz(value), "TIMETZ") if value.tzinfo else _cast(C.format_time(value), "TIME")
        )
    if isinstance(value, uuid.UUID):
        return _cast(str(value), "UUID")
    text = str(value)
    if t is None or t in (T.UNKNOWN, T.TEXT, T.VARCHAR, T.NAME, T.BPCHAR, T.NUMERIC):
        return quote_literal(text)
    if t is T.BYTEA:
        if text.startswith("\\x"):
            return f"from_hex({quote_literal(text[2:])})"
        return _cast(text, "BLOB")
    if t in _DATETIMES and ("B" in text or "b" in text):
        text = duck_datetime_input(text)
    return _cast(text, t.duck)


_DATETIMES = (T.DATE, T.TIMESTAMP, T.TIMESTAMPTZ)
_BC_WORD = re.compile(r"\s*\(?\bBC\b\)?", re.IGNORECASE)
_LEADING_DATE = re.compile(r"\s*\d+-\d+-\d+")


def duck_datetime_input(text: str) -> str:
    """PostgreSQL's ``BC`` (anywhere in an ISO date or timestamp: ``0044-03-15 10:00:00+00 BC``) where
    DuckDB reads it, right after the date (``0044-03-15 (BC) 10:00:00+00``); other text unchanged."""
    bare, n = _BC_WORD.subn("", text)
    m = _LEADING_DATE.match(bare)
    if n != 1 or m is None:
        return text
    return f"{m.group(0).strip()} (BC){bare[m.end() :]}"


def _list_literal(items: list[Any], elem: T.PgType) -> str:
    parts = []
    for x in items:
        if isinstance(x, list):
            parts.append(_list_literal(x, elem))
        elif x is None:
            parts.append("NULL")
        else:
            parts.append(literal(x, elem))
    return "[" + ", ".join(parts) + "]"
