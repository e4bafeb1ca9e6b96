"""Values DuckDB returns (Python objects) encoded in PostgreSQL's text and binary formats.

Text output follows PostgreSQL's output functions with DateStyle ISO,
IntervalStyle postgres, extra_float_digits 1 (shortest exact floats, ryu
thresholds of d2s.c / f2s.c), bytea_output hex.  Binary output follows each
type's ``*send`` function (timestamps as microseconds since 2000-01-01, numeric
as base-10000 digits, arrays with the array_send header).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import struct
import uuid
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

from pgtls.backends.embedded.pgtypes import typemap as T

PG_EPOCH = dt.datetime(2000, 1, 1)
PG_EPOCH_TZ = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
PG_EPOCH_DATE = dt.date(2000, 1, 1)

# --- floats -----------------------------------------------------------------------------------


def _neighbours(v: float, single: bool) -> tuple[float, float]:
    """The floats (float4 values when ``single``) just below and above ``v`` > 0."""
    if not single:
        return math.nextafter(v, 0.0), math.nextafter(v, math.inf)
    (bits,) = struct.unpack("!I", struct.pack("!f", v))
    return tuple(struct.unpack("!f", struct.pack("!I", b))[0] for b in (bits - 1, bits + 1))


def _half_way(s: str, v: float, single: bool) -> bool:
    """Whether the decimal ``s`` lies exactly half-way between ``v`` and a neighbour: PostgreSQL's ryu never
    takes such a bound (it reads back as ``v`` only by round-half-even), it prints one digit more."""
    if not single and v < 9007199254740992.0:  # below 2^53 no short decimal is a float8 half-way point
        return False
    q = Fraction(Decimal(s))
    fv = Fraction(v)
    return any(math.isfinite(n) and q * 2 == fv + Fraction(n) for n in _neighbours(v, single))


def _shortest_digits(v: float, single: bool) -> tuple[str, int]:
    """(significant digits, decimal exponent of the first digit) of PostgreSQL's shortest round-trip form."""
    if single:
        target = struct.unpack("!f", struct.pack("!f", v))[0]
        for n in range(1, 10):
            s = f"{v:.{n - 1}e}"
            try:
                if struct.unpack("!f", struct.pack("!f", float(s)))[0] == target and not _half_way(
                    s, target, True
                ):
                    break
            except OverflowError:  # rounded up beyond float4's range (3.4028235e38 -> 3.403e38)
                continue
    else:
        s = repr(v)
        n = len(Decimal(s).as_tuple().digits)
        while n < 17 and _half_way(s, v, False):
            n += 1
            s = f"{v:.{n - 1}e}"
    d = Decimal(s)
    sign, digits, exp = d.as_tuple()
    ds = "".join(map(str, digits)).rstrip("0") or "0"
    return ds, len(digits) + int(exp) - 1


def format_float(v: float, single: bool = False) -> str:
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "Infinity" if v > 0 else "-Infinity"
    if v == 0:
        return "-0" if str(v).startswith("-") else "0"
    sign = "-" if v < 0 else ""
    digits, e = _shortest_digits(abs(v), single)
    if -4 <= e < (6 if single else 15):
        if e >= 0:
            ip = digits[: e + 1].ljust(e + 1, "0")
            fp = digits[e + 1 :]
            return sign + ip + ("." + fp if fp else "")
        return sign + "0." + "0" * (-e - 1) + digits
    mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{mant}e{'-' if e < 0 else '+'}{abs(e):02d}"


# --- date/time --------------------------------------------------------------------------------


def _frac(us: int) -> str:
    return ("." + f"{us:06d}".rstrip("0")) if us else ""


def format_offset(off: dt.timedelta | None) -> str:
    secs = int(off.total_seconds()) if off is not None else 0
    sign = "-" if secs < 0 else "+"
    secs = abs(secs)
    h, rem = divmod(secs, 3600)
    m, s = divmod(rem, 60)
    out = f"{sign}{h:02d}"
    if m or s:
        out += f":{m:02d}"
    if s:
        out += f":{s:02d}"
    return out


def format_date(d: dt.date) -> str:
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"


def format_time(t: dt.time) -> str:
    return f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}{_frac(t.microsecond)}"


def format_timestamp(v: dt.datetime) -> str:
    return f"{format_date(v)} {format_time(v.time())}"


def format_timestamptz(v: dt.datetime, tz: dt.tzinfo) -> str:
    if v.tzinfo is None:
        # DuckDB's infinities come without a zone (its real timestamptz values with one)
        if v == _TS_MAX:
            return "infinity"
        if v == _TS_MIN:
            return "-infinity"
        v = v.replace(tzinfo=dt.UTC)
    try:
        local = v.astimezone(tz)
    except (OverflowError, ValueError):  # the local time is before year 1 or after 9999
        return format_timestamptz_us(_ts_micros(v), tz)
    return format_timestamp(local) + format_offset(local.utcoffset())


def format_timetz(t: dt.time) -> str:
    return format_time(t) + format_offset(t.utcoffset())


# --- dates and timestamps Python cannot hold --------------------------------------------------
#
# DuckDB's Python binding gives dates and timestamps before year 1 or after 9999 as DuckDB's text
# ('0044-03-15 (BC)', '20000-01-01 00:00:00', timestamptz in UTC: '0044-03-15 (BC) 10:00:00+00'), and
# execute.py fetches date columns as that text when they may hold infinities ('infinity', '-infinity').
# PostgreSQL writes BC after the value ('0044-03-15 10:00:00+00 BC'); binary formats count days or
# microseconds from 2000-01-01, with INT32/INT64 min and max for -infinity and infinity.

_TS_MAX, _TS_MIN = dt.datetime.max, dt.datetime.min
_INT32 = struct.Struct("!i")
_INT64 = struct.Struct("!q")
DAY_US = 86_400_000_000
_DUCK_DATETIME = re.compile(
    r"(\d+)-(\d\d)-(\d\d)( \(BC\))?(?: (\d\d):(\d\d):(\d\d)(?:\.(\d+))?)?(?:([+-])(\d\d)(?::(\d\d))?(?::(\d\d))?)?"
)
_BC = " (BC)"


def days_from_civil(y: int, m: int, d: int) -> int:
    """Days from 2000-01-01 to y-m-d in the proleptic Gregorian calendar (astronomical years: 0 is 1 BC)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 730425


def civil_from_days(days: int) -> tuple[int, int, int]:
    """(astronomical year, month, day) of the date ``days`` after 2000-01-01."""
    z = days + 730425
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    m = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (m <= 2), m, doy - (153 * mp + 2) // 5 + 1


def duck_date_text(y: int, m: int, d: int) -> str:
    """DuckDB's text (and input) of a date given by its astronomical year."""
    return f"{y:04d}-{m:02d}-{d:02d}" if y > 0 else f"{1 - y:04d}-{m:02d}-{d:02d}{_BC}"


def _duck_us(s: str) -> int:
    """Microseconds from 2000-01-01 00:00 (UTC when ``s`` has an offset) of DuckDB's text of a finite date,
    timestamp or timestamptz."""
    g = _DUCK_DATETIME.fullmatch(s)
    if g is None:
        raise ValueError(f"not a DuckDB date/time: {s!r}")
    y = int(g.group(1))
    if g.group(4):
        y = 1 - y
    us = days_from_civil(y, int(g.group(2)), int(g.group(3))) * DAY_US
    if g.group(5):
        us += ((int(g.group(5)) * 60 + int(g.group(6))) * 60 + int(g.group(7))) * 1_000_000
        if g.group(8):
            us += int(g.group(8)[:6].ljust(6, "0"))  # TIMESTAMP_NS: truncated, as the binding does
    if g.group(9):
        off = (int(g.group(10)) * 60 + int(g.group(11) or 0)) * 60 + int(g.group(12) or 0)
        us -= (off if g.group(9) == "+" else -off) * 1_000_000
    return us


def duck_date_pg(s: str) -> str:
    """PostgreSQL's text of a date DuckDB gave as text."""
    return s[:-5] + " BC" if s.endswith(_BC) else s


def duck_timestamp_pg(s: str) -> str:
    """PostgreSQL's text of a timestamp DuckDB gave as text (its own fractional digits, BC at the end)."""
    bc = _BC in s
    if bc:
        s = s.replace(_BC, "")
    dot = s.find(".")
    if dot > 0 and len(s) - dot > 7:  # TIMESTAMP_NS: truncated to microseconds
        s = s[:dot] + _frac(int(s[dot + 1 : dot + 7]))
    return s + " BC" if bc else s


_CYCLE_DAYS = 146097  # 400 Gregorian years: the calendar, and a time zone's rules, repeat
_FIRST_DAY = days_from_civil(1, 1, 3)  # Python's datetime range, a day's margin for the zone offset
_LAST_DAY = days_from_civil(9999, 12, 29)


def format_timestamptz_us(us: int, tz: dt.tzinfo) -> str:
    """timestamptz_out of ``us`` microseconds from 2000-01-01 UTC in zone ``tz``, any year: the instant is
    moved by whole 400-year cycles into Python's range (into the years 1-400 before year 1, where zones
    keep their local mean time as in PostgreSQL, and 9600-9999 after 9999, where their rules repeat)."""
    days = us // DAY_US
    cycles = 0
    if days < _FIRST_DAY:
        cycles = -((_FIRST_DAY - days + _CYCLE_DAYS - 1) // _CYCLE_DAYS)
    elif days > _LAST_DAY:
        cycles = (days - _LAST_DAY + _CYCLE_DAYS - 1) // _CYCLE_DAYS
    local = (PG_EPOCH_TZ + dt.timedelta(microseconds=us - cycles * _CYCLE_DAYS * DAY_US)).astimezone(tz)
    y = local.year + 400 * cycles
    date = f"{y:04d}" if y > 0 else f"{1 - y:04d}"
    text = f"{date}-{local.month:02d}-{local.day:02d} {format_time(local.time())}"
    text += format_offset(local.utcoffset())
    return text if y > 0 else text + " BC"


def duck_timestamptz_pg(s: str, tz: dt.tzinfo) -> str:
    """PostgreSQL's text, in zone ``tz``, of a timestamptz DuckDB gave as text."""
    if s.endswith("infinity"):
        return s
    return format_timestamptz_us(_duck_us(s), tz)


_date_iso = dt.date.fromisoformat
_datetime_iso = dt.datetime.fromisoformat  # digits beyond microseconds are dropped, as _duck_us does


def _date_send(v: Any) -> bytes:
    if v.__class__ is not str:
        return _INT32.pack((v - PG_EPOCH_DATE).days)
    try:  # DuckDB's text; years 1-9999: Python's parser is the fast one
        return _INT32.pack((_date_iso(v) - PG_EPOCH_DATE).days)
    except ValueError:
        pass
    if v.endswith("infinity"):
        return _INT32.pack(-(1 << 31) if v[0] == "-" else (1 << 31) - 1)
    return _INT32.pack(_duck_us(v) // DAY_US)


def _duck_ts_send(v: str) -> bytes:
    if v.endswith("infinity"):
        return _INT64.pack(-(1 << 63) if v[0] == "-" else (1 << 63) - 1)
    return _INT64.pack(_duck_us(v))


def _timestamp_send(v: Any) -> bytes:
    if v.__class__ is not str:
        return _INT64.pack(_ts_micros(v))
    try:  # DuckDB's text; years 1-9999: Python's parser is the fast one
        return _INT64.pack(_ts_micros(_datetime_iso(v)))
    except ValueError:
        return _duck_ts_send(v)


def _timestamptz_send(v: Any) -> bytes:
    if not isinstance(v, dt.datetime):
        return _duck_ts_send(v)
    if v.tzinfo is None:  # DuckDB's infinities come without a zone
        if v == _TS_MAX:
            return _INT64.pack((1 << 63) - 1)
        if v == _TS_MIN:
            return _INT64.pack(-(1 << 63))
        v = v.replace(tzinfo=dt.UTC)
    return _INT64.pack(_ts_micros(v))


# --- interval ---------------------------------------------------------------------------------

_IV_PART = re.compile(r"(-?\d+) (year|month|day)s?")
_IV_TIME = re.compile(r"(-?)(\d+):(\d\d):(\d\d)(?:\.(\d+))?")


def interval_parts(v: object) -> tuple[int, int, int]:
    """(months, days, microseconds) of a DuckDB interval given as its VARCHAR text or a timedelta."""
    if isinstance(v, dt.timedelta):
        return 0, v.days, v.seconds * 1_000_000 + v.microseconds
    s = str(v)
    months = days = 0
    for num, unit in _IV_PART.findall(s):
        n = int(num)
        if unit == "year":
            months += 12 * n
        elif unit == "month":
            months += n
        else:
            days += n
    micros = 0
    m = _IV_TIME.search(s)
    if m:
        frac = (m.group(5) or "").ljust(6, "0")[:6]
        micros = ((int(m.group(2)) * 60 + int(m.group(3))) * 60 + int(m.group(4))) * 1_000_000 + int(frac)
        if m.group(1):
            micros = -micros
    return months, days, micros


def format_interval(v: object) -> str:
    """IntervalStyle postgres, as EncodeInterval() in PostgreSQL's datetime.c."""
    months, days, micros = interval_parts(v)
    year = int(months / 12)
    mon = months - year * 12
    parts: list[str] = []
    is_before = False
    is_zero = True
    for value, unit in ((year, "year"), (mon, "mon"), (days, "day")):
        if value == 0:
            continue
        plus = "+" if is_before and value > 0 else ""
        parts.append(f"{plus}{value} {unit}{'s' if value != 1 else ''}")
        is_before = value < 0
        is_zero = False
    if micros != 0 or is_zero:
        minus = micros < 0
        a = abs(micros)
        h, rem = divmod(a, 3_600_000_000)
        mi, rem = divmod(rem, 60_000_000)
        sec, us = divmod(rem, 1_000_000)
        sign = "-" if minus else ("+" if is_before else "")
        parts.append(f"{sign}{h:02d}:{mi:02d}:{sec:02d}{_frac(us)}")
    return " ".join(parts)


# --- arrays -----------------------------------------------------------------------------------

_ARRAY_SPECIAL = re.compile(r'[{},"\\\s]')


def _quote_array_elem(s: str) -> str:
    if s == "" or _ARRAY_SPECIAL.search(s) or s.upper() == "NULL":
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return s


def format_array(v: list[Any], elem: Callable[[Any], str]) -> str:
    out: list[str] = []
    for x in v:
        if x is None:
            out.append("NULL")
        elif isinstance(x, list | tuple):
            out.append(format_array(list(x), elem))
        else:
            out.append(_quote_array_elem(elem(x)))
    return "{" + ",".join(out) + "}"


# --- text encoders by type --------------------------------------------------------------------


def _json_text(v: object) -> str:
    if isinstance(v, str):
        return v
    return json.dumps(v, default=str, separators=(", ", ": "))


def _json_string(s: str) -> str:
    """A JSON string as PostgreSQL's escape_json() writes it (only quote, backslash and controls escaped)."""
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in "\b\f\n\r\t":
            out.append({"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _jsonb_out(v: Any) -> str:
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, Decimal):
        return format(v.copy_abs() if v.is_zero() else v, "f")
    if isinstance(v, str):
        return _json_string(v)
    if isinstance(v, list):
        return "[" + ", ".join(_jsonb_out(x) for x in v) + "]"
    keys = sorted(v, key=lambda k: (len(k.encode()), k.encode()))
    return "{" + ", ".join(f"{_json_string(k)}: {_jsonb_out(v[k])}" for k in keys) + "}"


def _no_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")


def jsonb_text(s: str) -> str:
    """jsonb_out(jsonb_in(s)): keys ordered by length then bytes, the last of duplicate keys kept, ``": "`` and
    ``", "`` spacing, numbers as numeric prints them (``1e3`` -> ``1000``, ``2.50`` kept); ``s`` unchanged if
    it is not JSON (DuckDB reports the error where it matters)."""
    try:
        v = json.loads(s, parse_float=Decimal, parse_int=Decimal, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return s
    try:
        return _jsonb_out(v)
    except RecursionError:
        return s


def _jsonb_value_text(v: object) -> str:
    """Text of a jsonb value: DuckDB hands JSON over as its text; anything else is serialised first."""
    return jsonb_text(v if isinstance(v, str) else _json_text(v))


def _numeric_text(v: object) -> str:
    if isinstance(v, Decimal):
        if v.is_nan():
            return "NaN"
        if v.is_infinite():
            return "Infinity" if v > 0 else "-Infinity"
        return format(v, "f")
    if isinstance(v, float):
        return format_float(v)
    return str(v)


def _free_numeric(v: object) -> Decimal | object:
    """A value of an unconstrained numeric column (DuckDB DECIMAL(38,8)) without trailing fractional zeros."""
    if isinstance(v, Decimal) and v.is_finite():
        sign, digits, exp = v.as_tuple()
        exp = int(exp)
        if exp < 0 and digits and digits[-1] == 0:
            k = len(digits)
            while k > 0 and exp < 0 and digits[k - 1] == 0:
                k -= 1
                exp += 1
            return Decimal((sign, digits[:k], exp)) if k else Decimal(0)
    return v


def text_encoder(t: T.PgType, tz: dt.tzinfo) -> Callable[[Any], str]:
    """A function value -> PostgreSQL text output for type ``t``."""
    oid = t.oid
    if t.elem:
        inner = text_encoder(T.element_of(t), tz)
        return lambda v: format_array(list(v), inner) if isinstance(v, list | tuple) else str(v)
    if oid == T.BOOL.oid:
        return lambda v: "t" if v else "f"
    if oid in (T.FLOAT8.oid, T.FLOAT4.oid):
        single = oid == T.FLOAT4.oid
        return lambda v: format_float(float(v), single)
    if oid == T.NUMERIC.oid:
        if T.is_free_numeric(t):
            return lambda v: _numeric_text(_free_numeric(v))
        return _numeric_text
    if oid == T.BYTEA.oid:
        return lambda v: "\\x" + bytes(v).hex()
    if oid == T.DATE.oid:
        return lambda v: format_date(v) if isinstance(v, dt.date) else duck_date_pg(v)
    if oid == T.TIME.oid:
        return lambda v: format_time(v) if isinstance(v, dt.time) else str(v)
    if oid == T.TIMETZ.oid:
        return lambda v: format_timetz(v) if isinstance(v, dt.time) else str(v)
    if oid == T.TIMESTAMP.oid:
        return lambda v: format_timestamp(v) if isinstance(v, dt.datetime) else duck_timestamp_pg(v)
    if oid == T.TIMESTAMPTZ.oid:
        return lambda v: (
            format_timestamptz(v, tz) if isinstance(v, dt.datetime) else duck_timestamptz_pg(v, tz)
        )
    if oid == T.INTERVAL.oid:
        return format_interval
    if oid == T.JSONB.oid:
        return _jsonb_value_text
    if oid == T.JSON.oid:
        return _json_text
    return str


# --- binary encoders --------------------------------------------------------------------------

_NBASE = 10000
_NUMERIC_HEAD = struct.Struct("!hhHH")


def numeric_send(v: object) -> bytes:
    """numeric_send(): sign, dscale and base-10000 digits with the weight of the first one."""
    d = v if isinstance(v, Decimal) else Decimal(str(v))
    if not d.is_finite():
        if d.is_nan():
            return _NUMERIC_HEAD.pack(0, 0, 0xC000, 0)
        return _NUMERIC_HEAD.pack(0, 0, 0xD000 if d > 0 else 0xF000, 0)
    sign, digits, exp = d.as_tuple()
    exp = int(exp)
    dscale = -exp if exp < 0 else 0
    coef = int("".join(map(str, digits))) if digits else 0
    # n = |value| * 10^(4k) with 4k >= dscale, so that base-10000 groups line up with the decimal point
    frac_groups = (dscale + 3) // 4
    n = coef * 10 ** (exp + 4 * frac_groups)
    groups: list[int] = []
    while n:
        n, g = divmod(n, _NBASE)
        groups.append(g)
    if not groups:
        return _NUMERIC_HEAD.pack(0, 0, 0, dscale)
    groups.reverse()
    weight = len(groups) - 1 - frac_groups
    while groups[-1] == 0:
        groups.pop()
    return _NUMERIC_HEAD.pack(len(groups), weight, 0x4000 if sign else 0, dscale) + struct.pack(
        f"!{len(groups)}H", *groups
    )


_ONE_US = dt.timedelta(microseconds=1)


def _ts_micros(v: dt.datetime) -> int:
    return (v - (PG_EPOCH if v.tzinfo is None else PG_EPOCH_TZ)) // _ONE_US


def _time_micros(t: dt.time) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000 + t.microsecond


def _interval_send(v: object) -> bytes:
    months, days, micros = interval_parts(v)
    return struct.pack("!qii", micros, days, months)


def _timetz_send(t: dt.time) -> bytes:
    off = t.utcoffset()
    return struct.pack("!qi", _time_micros(t), -int(off.total_seconds()) if off else 0)


def _uuid_send(v: object) -> bytes:
    return v.bytes if isinstance(v, uuid.UUID) else uuid.UUID(str(v)).bytes


def _array_dims(v: list[Any]) -> list[int]:
    dims = [len(v)]
    if v and isinstance(v[0], list | tuple):
        dims += _array_dims(list(v[0]))
    return dims


def _flatten(v: list[Any], depth: int) -> list[Any]:
    if depth <= 1:
        return list(v)
    out: list[Any] = []
    for x in v:
        out.extend(_flatten(list(x or []), depth - 1))
    return out


def binary_encoder(t: T.PgType, tz: dt.tzinfo) -> Callable[[Any], bytes]:
    oid = t.oid
    if t.elem:
        elem_t = T.element_of(t)
        inner = binary_encoder(elem_t, tz)

        def array_send(v: Any) -> bytes:
            v = list(v)
            dims = _array_dims(v) if v else []
            flat = _flatten(v, len(dims)) if dims else []
            has_null = any(x is None for x in flat)
            out = [struct.pack("!iii", len(dims), 1 if has_null else 0, elem_t.oid)]
            out += [struct.pack("!ii", d, 1) for d in dims]
            for x in flat:
                if x is None:
                    out.append(b"\xff\xff\xff\xff")
                else:
                    b = inner(x)
                    out.append(struct.pack("!i", len(b)) + b)
            return b"".join(out)

        return array_send
    simple: dict[int, Callable[[Any], bytes]] = {
        T.BOOL.oid: lambda v: b"\x01" if v else b"\x00",
        T.INT2.oid: lambda v: struct.pack("!h", v),
        T.INT4.oid: lambda v: struct.pack("!i", v),
        T.INT8.oid: lambda v: struct.pack("!q", v),
        T.OID.oid: lambda v: struct.pack("!I", v),
        T.FLOAT4.oid: lambda v: struct.pack("!f", v),
        T.FLOAT8.oid: lambda v: struct.pack("!d", v),
        T.NUMERIC.oid: numeric_send,
        T.BYTEA.oid: bytes,
        T.DATE.oid: _date_send,
        T.TIME.oid: lambda v: struct.pack("!q", _time_micros(v)),
        T.TIMETZ.oid: _timetz_send,
        T.TIMESTAMP.oid: _timestamp_send,
        T.TIMESTAMPTZ.oid: _timestamptz_send,
        T.INTERVAL.oid: _interval_send,
        T.UUID.oid: _uuid_send,
        # jsonb_send: version 1, then the text
        T.JSONB.oid: lambda v: b"\x01" + _jsonb_value_text(v).encode(),
    }
    if T.is_free_numeric(t):
        return lambda v: numeric_send(_free_numeric(v))
    if oid in simple:
        return simple[oid]
    text = text_encoder(t, tz)
    return lambda v: text(v).encode()


_LEN = struct.Struct("!i")
_NULL = b"\xff\xff\xff\xff"


def _fast_text(t: T.PgType, tz: dt.tzinfo) -> Callable[[Any], bytes]:
    if t.oid in (T.INT2.oid, T.INT4.oid, T.INT8.oid, T.OID.oid):
        return lambda v: b"%d" % v
    if t.oid in (T.TEXT.oid, T.VARCHAR.oid, T.NAME.oid, T.BPCHAR.oid):
        return lambda v: v.encode() if isinstance(v, str) else str(v).encode()
    if t.oid == T.BOOL.oid:
        return lambda v: b"t" if v else b"f"
    te = text_encoder(t, tz)
    return lambda v: te(v).encode()


def row_encoder(
    columns: list[T.Column], formats: list[int], tz: dt.tzinfo
) -> Callable[[tuple[Any, ...]], bytes]:
    """One function that turns a fetched row into a complete DataRow message in the requested formats."""
    encs = [
        binary_encoder(col.type, tz) if fmt == 1 else _fast_text(col.type, tz)
        for col, fmt in zip(columns, formats, strict=True)
    ]
    head = struct.pack("!h", len(columns))
    pack = _LEN.pack

    def encode(row: tuple[Any, ...]) -> bytes:
        parts = [head]
        for enc, v in zip(encs, row):  # noqa: B905 - row width is the description's
            if v is None:
                parts.append(_NULL)
            else:
                b = enc(v)
                parts.append(pack(len(b)))
                parts.append(b)
        body = b"".join(parts)
        return b"D" + pack(len(body) + 4) + body

    return encode
