"""COPY ... TO STDOUT in text and CSV format with DuckDB writing the lines.

The query is wrapped as ``SELECT <line> FROM (<query>)``: for every column type whose PostgreSQL text
output DuckDB can produce exactly (:func:`value_sql`: integers, numeric, float4/float8 with PostgreSQL's
shortest-exact digits, bool, text, json, uuid, bytea, date, time, timestamp, timestamptz in UTC), DuckDB
also does the escaping (text format) or quoting (CSV) of copyto.c's CopyAttributeOutText /
CopyAttributeOutCSV, joins the fields and frames each line as one complete CopyData message (PostgreSQL
sends one row per message, and psycopg's ``Copy.rows()`` relies on it).  When every column is such a type,
the messages are read through the Arrow C stream interface (ctypes, no pyarrow): a batch's messages are one
contiguous buffer, copied out in one call, so no Python code runs per row.  Columns whose text only the
Python encoders of pgtypes/encode.py give (interval, arrays, timetz, jsonb, STRUCT/MAP as json, timestamptz outside
UTC, nanosecond types, ...) are fetched as values and formatted between the DuckDB-made segments of the line.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import functools
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import duckdb

from pgtls.backends.embedded.pgtypes import typemap as T
from pgtls.backends.embedded.pgtypes.encode import text_encoder
from pgtls.backends.embedded.session.copy_options import CopyOptions
from pgtls.backends.embedded.sql.lexer import quote_ident, quote_literal

_INT32 = struct.Struct("!i")
ARROW_BATCH_ROWS = 2048  # rows per Arrow batch (DuckDB's vector size): bounded memory for wide rows

# --- PostgreSQL text of one value, as a DuckDB expression ------------------------------------------------

_INTS = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
         "UHUGEINT", "VARINT", "BIGNUM"}  # fmt: skip
_DATETIME_CHARS = "0123456789-:. +()BCinfity"  # digits, separators, "infinity", "(BC)"
_FLOAT_CHARS = "-+.0123456789eNaInfity"
_ANY = None  # the value may contain any character
_UTC = dt.UTC


@dataclass
class Value:
    """PostgreSQL's text output of a column as DuckDB expressions: ``steps`` are layers of (name, expression)
    computed over the previous layer (which keeps every earlier column), ``expr`` the text (NULL exactly when
    the value is) over the last one; ``chars`` the characters the text can contain (None: any)."""

    expr: str
    chars: str | None
    steps: list[list[tuple[str, str]]] = field(default_factory=list)


def _sci(s: str) -> tuple[str, str]:
    """(significant digits without trailing zeros, decimal exponent) of a ``d.ddde+XX`` string."""
    return (f"rtrim(replace(split_part({s}, 'e', 1), '.', ''), '0')",
            f"CAST(split_part({s}, 'e', 2) AS INTEGER)")  # fmt: skip


def _float_text(x: str, g: str, e: str, fixed_below: int) -> str:
    """float4out/float8out's layout of shortest digits ``g`` with exponent ``e``: plain notation for
    -4 <= e < fixed_below, else d.ddde+XX; NaN, Infinity, -0 as PostgreSQL writes them."""
    plain = (f"rpad({g}[1:{e} + 1], {e} + 1, '0') || CASE WHEN strlen({g}) > {e} + 1 THEN '.' || {g}[{e} + 2:] "
             f"ELSE '' END")  # fmt: skip
    small = f"'0.' || repeat('0', -{e} - 1) || {g}"
    sci = (f"{g}[1] || CASE WHEN strlen({g}) > 1 THEN '.' || {g}[2:] ELSE '' END || 'e' "
           f"|| CASE WHEN {e} < 0 THEN '-' ELSE '+' END || CASE WHEN abs({e}) < 10 THEN '0' ELSE '' END "
           f"|| CAST(abs({e}) AS VARCHAR)")  # fmt: skip
    layout = (f"CASE WHEN {e} >= 0 AND {e} < {fixed_below} THEN {plain} WHEN {e} < 0 AND {e} >= -4 THEN {small} "
              f"ELSE {sci} END")  # fmt: skip
    return (f"CASE WHEN {x} IS NULL THEN NULL WHEN isnan({x}) THEN 'NaN' "
            f"WHEN isinf({x}) THEN CASE WHEN {x} > 0 THEN 'Infinity' ELSE '-Infinity' END "
            f"WHEN {x} = 0 THEN CASE WHEN signbit({x}) THEN '-0' ELSE '0' END "
            f"ELSE CASE WHEN {x} < 0 THEN '-' ELSE '' END || {layout} END")  # fmt: skip


def _shortest(x: str, ftype: str, digits: int) -> str:
    """The shortest printf('%.Ne') of |x| that reads back as x and is not exactly half-way to a neighbour
    (ryu as PostgreSQL has it: an interval bound is never taken), correctly rounded; ``digits``: enough."""
    a = f"abs({x})"
    d = f"CAST({a} AS DOUBLE)"
    mids = (f"({d} + CAST(nextafter({a}, CAST(0 AS {ftype})) AS DOUBLE)) / 2",
            f"({d} + CAST(nextafter({a}, CAST('inf' AS {ftype})) AS DOUBLE)) / 2")  # fmt: skip
    whens = []
    for n in range(digits - 1):
        c = f"printf('%.{n}e', {d})"
        ok = f"TRY_CAST({c} AS {ftype}) = {a}"
        if ftype == "FLOAT":  # the half-way points are exact in DOUBLE
            ok += f" AND TRY_CAST({c} AS DOUBLE) NOT IN ({mids[0]}, {mids[1]})"
        else:  # |x| in [2^53, 2^125): neighbours and half-way points are integers (HUGEINT)
            big = f"TRY_CAST(TRY_CAST({c} AS DECIMAL(38,0)) AS HUGEINT) * 2"
            h = f"TRY_CAST({a} AS HUGEINT)"
            ok += (f" AND {big} NOT IN ({h} + TRY_CAST(nextafter({a}, CAST(0 AS DOUBLE)) AS HUGEINT), "
                   f"{h} + TRY_CAST(nextafter({a}, CAST('inf' AS DOUBLE)) AS HUGEINT))")  # fmt: skip
        whens.append(f"WHEN {ok} THEN {c}")
    return f"CASE {' '.join(whens)} ELSE printf('%.{digits - 1}e', {d}) END"


def _float4(ref: str, name: Callable[[str], str]) -> Value:
    s, g, e = name("s"), name("g"), name("e")
    sg, se = _sci(s)
    finite = f"CASE WHEN isfinite({ref}) AND {ref} <> 0 THEN {_shortest(ref, 'FLOAT', 9)} END"
    return Value(_float_text(ref, g, e, 6), _FLOAT_CHARS, [[(s, finite)], [(g, sg), (e, se)]])


def _float8(ref: str, name: Callable[[str], str]) -> Value:
    """DuckDB's VARCHAR of a DOUBLE has the shortest round-trip digits; only from 2^53 on can the shortest
    be exactly half-way between two doubles, where PostgreSQL takes one digit more: those go through
    _shortest()."""
    s, g, e = name("s"), name("g"), name("e")
    a = f"abs({ref})"
    big = f"{a} >= 9007199254740992 AND {a} < 4.2535295865117308e37"
    text = f"CAST({a} AS VARCHAR)"
    first = (f"CASE WHEN isfinite({ref}) AND {ref} <> 0 THEN CASE WHEN {big} THEN {_shortest(ref, 'DOUBLE', 17)} "
             f"ELSE {text} END END")  # fmt: skip
    # s is 'd.ddde+XX', 'de-XX' or plain 'ddd.ddd'
    sg, se = _sci(s)
    digits = f"replace({s}, '.', '')"
    zeros = f"(strlen({digits}) - strlen(ltrim({digits}, '0')))"
    pg = f"CASE WHEN contains({s}, 'e') THEN {sg} ELSE rtrim(ltrim({digits}, '0'), '0') END"
    pe = f"CAST(CASE WHEN contains({s}, 'e') THEN {se} ELSE strpos({s}, '.') - 2 - {zeros} END AS INTEGER)"
    return Value(_float_text(ref, g, e, 15), _FLOAT_CHARS, [[(s, first)], [(g, pg), (e, pe)]])


def value_sql(col: T.Column, ref: str, utc: bool, name: Callable[[str], str]) -> Value | None:
    """PostgreSQL's text output of column ``ref`` as DuckDB expressions, or None when only the Python
    encoder gets it right.  ``utc``: the session time zone is UTC in pgtls and in DuckDB; ``name`` makes
    the names of intermediate columns.  Each case checks the PostgreSQL type too, so that a DuckDB type
    that stands for another PostgreSQL type (json as jsonb, ...) keeps its own encoder."""
    duck, oid = col.duck, col.type.oid
    if col.type.elem:
        return None
    plain = text_encoder(col.type, _UTC) is str  # Python's text is str(value), as DuckDB's cast to VARCHAR
    cast = f"CAST({ref} AS VARCHAR)"
    if duck in _INTS and (plain or oid == T.NUMERIC.oid):
        return Value(cast, "-0123456789")
    if duck == "DOUBLE" and oid == T.FLOAT8.oid:
        return _float8(ref, name)
    if duck == "FLOAT" and oid == T.FLOAT4.oid:
        return _float4(ref, name)
    if duck.startswith("DECIMAL(") and oid == T.NUMERIC.oid:
        if T.is_free_numeric(
            col.type
        ):  # printed without trailing fractional zeros (pgtypes/encode.py _free_numeric)
            return Value(f"rtrim(rtrim({cast}, '0'), '.')", "-.0123456789")
        return Value(cast, "-.0123456789")
    if duck == "BOOLEAN" and oid == T.BOOL.oid:
        return Value(f"CASE {ref} WHEN true THEN 't' WHEN false THEN 'f' END", "tf")
    if (duck in ("VARCHAR", "NULL") or duck.startswith("ENUM(")) and plain:
        return Value(cast, _ANY)
    if duck == "JSON" and oid == T.JSON.oid:
        return Value(cast, _ANY)
    if duck == "BIT" and plain:
        return Value(cast, "01")
    if duck == "UUID" and plain:
        return Value(cast, "0123456789abcdef-")
    if duck == "BLOB" and oid == T.BYTEA.oid:
        return Value(f"'\\x' || lower(hex({ref}))", "\\x0123456789abcdef")
    # DuckDB writes BC after the date ('0044-03-15 (BC) 10:00:00+00'), PostgreSQL at the end ('... BC')
    if duck == "DATE" and oid == T.DATE.oid:
        t = name("t")
        return Value(f"CASE WHEN ends_with({t}, ' (BC)') THEN replace({t}, ' (BC)', ' BC') ELSE {t} END",
                     _DATETIME_CHARS, [[(t, cast)]])  # fmt: skip
    if (duck in ("TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS") and oid == T.TIMESTAMP.oid) or (
        duck == "TIMESTAMP WITH TIME ZONE" and oid == T.TIMESTAMPTZ.oid and utc
    ):
        t = name("t")
        return Value(f"CASE WHEN contains({t}, ' (BC)') THEN replace({t}, ' (BC)', '') || ' BC' ELSE {t} END",
                     _DATETIME_CHARS, [[(t, cast)]])  # fmt: skip
    if duck == "TIME" and oid == T.TIME.oid:
        return Value(cast, "0123456789:.")
    return None


# --- escaping and quoting (copyto.c) ---------------------------------------------------------------------

_TEXT_SPECIALS = {"\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def _may_contain(chars: str | None, c: str) -> bool:
    return chars is None or c in chars


def text_field_sql(v: str, chars: str | None, opts: CopyOptions) -> str:
    """CopyAttributeOutText: backslash escapes for backslash, the control characters and the delimiter;
    NULL becomes the NULL string (not escaped)."""
    specials = dict(_TEXT_SPECIALS)
    specials.setdefault(opts.delimiter, "\\" + opts.delimiter)
    needed = [(c, r) for c, r in specials.items() if _may_contain(chars, c)]
    out = v
    for c, r in needed:
        out = f"replace({out}, {quote_literal(c)}, {quote_literal(r)})"
    if needed and chars is None:  # the common case is a value without any: skip the replace chain
        test = " OR ".join(f"contains({v}, {quote_literal(c)})" for c, _ in needed)
        out = f"CASE WHEN {test} THEN {out} ELSE {v} END"
    return f"coalesce({out}, {quote_literal(opts.null)})"


def csv_field_sql(v: str, chars: str | None, opts: CopyOptions, force: bool, single: bool) -> str:
    """CopyAttributeOutCSV: quoted when forced, equal to the NULL string, containing the delimiter, the
    quote, CR or LF, or (the only column) exactly ``\\.``; inside quotes, quote and escape characters are
    preceded by the escape character.  NULL is the NULL string, unquoted."""
    q, e = opts.quote, opts.escape
    quoted = v
    if _may_contain(chars, e) and e != q:
        quoted = f"replace({quoted}, {quote_literal(e)}, {quote_literal(e + e)})"
    if _may_contain(chars, q):
        quoted = f"replace({quoted}, {quote_literal(q)}, {quote_literal(e + q)})"
    quoted = f"{quote_literal(q)} || {quoted} || {quote_literal(q)}"
    if force:
        field = quoted
    else:
        conds = [f"contains({v}, {quote_literal(c)})" for c in dict.fromkeys((opts.delimiter, q, "\n", "\r"))
                 if _may_contain(chars, c)]  # fmt: skip
        if chars is None or (opts.null and all(c in chars for c in opts.null)):
            conds.insert(0, f"{v} = {quote_literal(opts.null)}")
        if single and chars is None:
            conds.append(f"{v} = '\\.'")
        field = f"CASE WHEN {' OR '.join(conds)} THEN {quoted} ELSE {v} END" if conds else v
    return f"coalesce({field}, {quote_literal(opts.null)})"


_TEXT_ESCAPES = str.maketrans(_TEXT_SPECIALS)


def text_field(s: str, opts: CopyOptions) -> str:
    s = s.translate(_TEXT_ESCAPES)
    if opts.delimiter not in _TEXT_SPECIALS:
        s = s.replace(opts.delimiter, "\\" + opts.delimiter)
    return s


def csv_field(s: str, opts: CopyOptions, force: bool, single: bool) -> str:
    q, e, d = opts.quote, opts.escape, opts.delimiter
    if force or s == opts.null or d in s or q in s or "\n" in s or "\r" in s or (single and s == "\\."):
        if e != q:
            s = s.replace(e, e + e)
        return q + s.replace(q, e + q) + q
    return s


def header_line(names: list[str], opts: CopyOptions) -> str:
    """The HEADER line: column names as text-format or CSV fields (never force-quoted)."""
    if opts.csv:
        single = len(names) == 1
        return opts.delimiter.join(csv_field(n, opts, False, single) for n in names) + "\n"
    return opts.delimiter.join(text_field(n, opts) for n in names) + "\n"


# --- the plan: DuckDB-made segments and Python-formatted columns ------------------------------------------


@dataclass(frozen=True)
class PyColumn:
    """A column Python formats: its text encoder (pgtypes/encode.py) and the escaping/quoting of that text."""

    encode: Callable[[Any], str]
    field: Callable[[str], str]
    override: bool = False  # the next select item is DuckDB's text for values Python cannot hold (infinity)


# One CopyData message from a line: 'd', the Int32 length (big-endian, as BIT -> BLOB gives it), the line.
FRAME = (
    "'d'::BLOB || CAST(CAST(CAST(strlen(pgtls_line) + 4 AS INTEGER) AS BIT) AS BLOB) || encode(pgtls_line)"
)


@dataclass
class Plan:
    layers: list[list[str]]  # intermediate columns ("expr AS name"), layer by layer over the query's columns
    select: list[str]  # the final select list
    python: list[PyColumn | None]  # per select item: a column, or None for a DuckDB-made segment (VARCHAR)
    framed: bool  # every column is DuckDB-made: select[0] is the whole line, and DuckDB frames it


def _intermediate_name(k: int, n: str) -> str:
    return quote_ident(f"c{k + 1}_{n}")


def _csv_field_text(opts: CopyOptions, force: bool, single: bool, s: str) -> str:
    return csv_field(s, opts, force, single)


def _text_field_text(opts: CopyOptions, s: str) -> str:
    return text_field(s, opts)


def column_ref(k: int) -> str:
    return quote_ident(f"c{k + 1}")


def plan(columns: list[T.Column], opts: CopyOptions, tz: dt.tzinfo, utc: bool, force: set[int]) -> Plan:
    """The select list that makes the COPY lines of ``columns`` (text or CSV, per ``opts``); ``force``: the
    indexes of FORCE_QUOTE columns."""
    single = len(columns) == 1
    layers: list[list[str]] = []
    select: list[str] = []
    python: list[PyColumn | None] = []
    segment: list[str] = []  # SQL pieces of the current DuckDB-made segment

    def close_segment() -> None:
        if segment:
            select.append(" || ".join(segment))
            python.append(None)
            segment.clear()

    for k, col in enumerate(columns):
        if k:
            segment.append(quote_literal(opts.delimiter))
        ref = column_ref(k)
        made = value_sql(col, ref, utc, functools.partial(_intermediate_name, k))
        if made is not None:
            for depth, step in enumerate(made.steps):
                if len(layers) <= depth:
                    layers.append([])
                layers[depth] += [f"{expr} AS {alias}" for alias, expr in step]
            if opts.csv:
                segment.append(csv_field_sql(made.expr, made.chars, opts, k in force, single))
            else:
                segment.append(text_field_sql(made.expr, made.chars, opts))
            continue
        close_segment()
        # INTERVAL values come as text (Python's timedelta has no months), as execute.run() fetches them, and
        # so do lists of dates and timestamps (Python has no infinite date, nor one before year 1)
        text = T.text_sql(col.duck, ref)
        if text is None and "INTERVAL" in col.duck:
            text = f"CAST({ref} AS VARCHAR{'[]' * col.duck.count('[]')})"
        select.append(text or ref)
        if opts.csv:
            fq = k in force
            field_text: Callable[[str], str] = functools.partial(_csv_field_text, opts, fq, single)
        else:
            field_text = functools.partial(_text_field_text, opts)
        # Python gets infinite timestamps as datetime.max/min: DuckDB's text ('infinity') is PostgreSQL's
        infinite = col.duck == "TIMESTAMP WITH TIME ZONE"
        python.append(PyColumn(text_encoder(col.type, tz), field_text, infinite))
        if infinite:
            select.append(f"CASE WHEN isinf({ref}) THEN CAST({ref} AS VARCHAR) END")
            python.append(None)
    segment.append(quote_literal("\n"))
    close_segment()
    return Plan(layers, select, python, python == [None])


def wrap(query: str, ncols: int, p: Plan) -> str:
    """The statement that makes the lines (CopyData messages if ``p.framed``) of ``query``'s rows."""
    names = ", ".join(column_ref(k) for k in range(ncols))
    source = f"(\n{query}\n) AS pgtls_q({names})"
    for depth, layer in enumerate(p.layers):
        source = f"(SELECT *, {', '.join(layer)} FROM {source}) AS pgtls_l{depth}"
    if p.framed:
        return f"SELECT {FRAME} FROM (SELECT {p.select[0]} AS pgtls_line FROM {source}) AS pgtls_line"
    return f"SELECT {', '.join(p.select)} FROM {source}"


def python_lines(rows: list[tuple[Any, ...]], p: Plan, null: str) -> list[bytes]:
    """Complete CopyData messages for fetched rows of a plan with Python-formatted columns."""
    out = []
    pack = _INT32.pack
    steps: list[tuple[int, PyColumn | None]] = []
    i = 0
    while i < len(p.python):
        item = p.python[i]
        steps.append((i, item))
        i += 2 if item is not None and item.override else 1
    for row in rows:
        parts = []
        for i, item in steps:
            v = row[i]
            if item is None:
                parts.append(v)
            elif v is None:
                parts.append(null)
            elif item.override and row[i + 1] is not None:
                parts.append(item.field(row[i + 1]))
            else:
                parts.append(item.field(item.encode(v)))
        line = "".join(parts).encode()
        out.append(b"d" + pack(len(line) + 4) + line)
    return out


# --- the Arrow C stream interface (arrow.apache.org/docs/format/CStreamInterface.html) -------------------


class _ArrowSchema(ctypes.Structure):
    pass


_ArrowSchema._fields_ = [
    ("format", ctypes.c_char_p),
    ("name", ctypes.c_char_p),
    ("metadata", ctypes.c_void_p),
    ("flags", ctypes.c_int64),
    ("n_children", ctypes.c_int64),
    ("children", ctypes.POINTER(ctypes.POINTER(_ArrowSchema))),
    ("dictionary", ctypes.c_void_p),
    ("release", ctypes.CFUNCTYPE(None, ctypes.POINTER(_ArrowSchema))),
    ("private_data", ctypes.c_void_p),
]


class _ArrowArray(ctypes.Structure):
    pass


_ArrowArray._fields_ = [
    ("length", ctypes.c_int64),
    ("null_count", ctypes.c_int64),
    ("offset", ctypes.c_int64),
    ("n_buffers", ctypes.c_int64),
    ("n_children", ctypes.c_int64),
    ("buffers", ctypes.POINTER(ctypes.c_void_p)),
    ("children", ctypes.POINTER(ctypes.POINTER(_ArrowArray))),
    ("dictionary", ctypes.c_void_p),
    ("release", ctypes.CFUNCTYPE(None, ctypes.POINTER(_ArrowArray))),
    ("private_data", ctypes.c_void_p),
]


class _ArrowArrayStream(ctypes.Structure):
    pass


_ArrowArrayStream._fields_ = [
    (
        "get_schema",
        ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(_ArrowArrayStream), ctypes.POINTER(_ArrowSchema)),
    ),
    (
        "get_next",
        ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(_ArrowArrayStream), ctypes.POINTER(_ArrowArray)),
    ),
    ("get_last_error", ctypes.CFUNCTYPE(ctypes.c_char_p, ctypes.POINTER(_ArrowArrayStream))),
    ("release", ctypes.CFUNCTYPE(None, ctypes.POINTER(_ArrowArrayStream))),
    ("private_data", ctypes.c_void_p),
]

_capsule_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_pointer.restype = ctypes.c_void_p
_capsule_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]

# Arrow formats of a variable-size binary/string column -> its offsets' C type
_OFFSETS = {b"z": ctypes.c_int32, b"u": ctypes.c_int32, b"Z": ctypes.c_int64, b"U": ctypes.c_int64}
_ERROR_KIND = re.compile(r"([A-Za-z][A-Za-z ]*?) Error: ")


class StreamError(Exception):
    """The Arrow stream cannot be read the way this module reads it (use fetchmany instead)."""


def duck_error(message: str) -> duckdb.Error:
    """The DuckDB exception a message like ``Conversion Error: ...`` comes from (for sqlerrors.translate)."""
    m = _ERROR_KIND.match(message)
    cls: Any = None
    if m:
        name = "".join(w[0].upper() + (w[1:].lower() if w.isupper() else w[1:]) for w in m.group(1).split())
        cls = getattr(duckdb, name + "Exception", None)
    if not (isinstance(cls, type) and issubclass(cls, duckdb.Error)):
        cls = duckdb.Error
    return cls(message)


def open_stream(cur: duckdb.DuckDBPyConnection, sql: str) -> Any:  # noqa: ANN401 - a PyCapsule
    """Run ``sql`` with the result as an ArrowArrayStream capsule, in batches of ARROW_BATCH_ROWS where
    this DuckDB lets us choose (its ``_submit``), else through the Arrow PyCapsule interface (131072 rows a
    batch in DuckDB 2.0); StreamError when neither is there."""
    submit = getattr(cur, "_submit", None)
    if submit is not None:
        try:
            result = submit(sql, None, "stream", ARROW_BATCH_ROWS)
        except TypeError:  # another signature: fall through to the public interface
            result = None
        if result is not None:
            capsule = getattr(result, "arrow_capsule", None)
            if capsule is not None:
                return capsule()
            result.close()
    relation = cur.sql(sql)
    if not hasattr(relation, "__arrow_c_stream__"):
        raise StreamError("no Arrow PyCapsule interface")
    return relation.__arrow_c_stream__()


class BlobStream:
    """The values of the first (BLOB) column of an ArrowArrayStream, one ``bytes`` per batch."""

    def __init__(self, capsule: Any) -> None:  # noqa: ANN401 - a PyCapsule
        self._capsule = capsule
        ptr = _capsule_pointer(capsule, b"arrow_array_stream")
        self._stream = ctypes.cast(ptr, ctypes.POINTER(_ArrowArrayStream)).contents
        schema = _ArrowSchema()
        self._check(self._stream.get_schema(ctypes.byref(self._stream), ctypes.byref(schema)))
        try:
            if schema.n_children < 1:
                raise StreamError("no columns")
            fmt = schema.children[0].contents.format
        finally:
            schema.release(ctypes.byref(schema))
        if fmt not in _OFFSETS:
            raise StreamError(f"unexpected Arrow format {fmt!r}")
        self._offsets = ctypes.POINTER(_OFFSETS[fmt])

    def _check(self, rc: int) -> None:
        if rc:
            err = self._stream.get_last_error(ctypes.byref(self._stream))
            raise duck_error(err.decode(errors="replace") if err else f"Arrow stream error {rc}")

    def batches(self) -> Iterator[tuple[int, bytes]]:
        """(rows, the rows' values concatenated) per batch."""
        stream = self._stream
        while True:
            arr = _ArrowArray()
            self._check(stream.get_next(ctypes.byref(stream), ctypes.byref(arr)))
            if not arr.release:  # end of stream
                return
            try:
                n = arr.length
                if n == 0:
                    continue
                col = arr.children[0].contents
                if col.null_count:
                    raise StreamError("NULL line")  # cannot happen: every field is coalesced
                first = arr.offset + col.offset  # a struct's offset applies to its children too
                offsets = ctypes.cast(col.buffers[1], self._offsets)
                start, end = offsets[first], offsets[first + n]
                data = ctypes.string_at(col.buffers[2] + start, end - start) if end > start else b""
            finally:
                arr.release(ctypes.byref(arr))
            yield n, data

    def close(self) -> None:
        """Release the stream (and with it DuckDB's open result) now rather than when garbage collected."""
        stream, self._capsule = self._capsule, None
        del stream
