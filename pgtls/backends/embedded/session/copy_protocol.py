"""COPY ... FROM STDIN and COPY ... TO STDOUT in PostgreSQL's text and CSV formats.

Formats follow PostgreSQL's copyfromparse.c / copyto.c: text is tab-separated
with backslash escapes and ``\\N`` for NULL; CSV uses quote doubling, an empty
unquoted field for NULL and an optional header line.  COPY TO of a query DuckDB
can describe has DuckDB make the lines (session/copy_out.py); binary COPY TO and COPY TO
of DML with RETURNING format the fetched values in Python.  Incoming rows are
inserted in batches, each sent as one string list per column and unnested by
DuckDB, which casts the strings to the column types (bytea via from_hex); when no transaction
block is open the whole COPY runs in one transaction, so a failing row or a
CopyFail leaves the table as it was.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import struct
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

import duckdb

from pgtls.backends.embedded.catalog import shared as catalog
from pgtls.backends.embedded.engine import errormap as sqlerrors
from pgtls.backends.embedded.engine.execute import Result, _none, describe_only
from pgtls.backends.embedded.pgtypes import encode, params
from pgtls.backends.embedded.pgtypes import typemap as T
from pgtls.backends.embedded.pgtypes.encode import text_encoder
from pgtls.backends.embedded.rewrite.pipeline import rewrite
from pgtls.backends.embedded.session import copy_out
from pgtls.backends.embedded.session.context import SessionContext
from pgtls.backends.embedded.session.copy_options import CopyOptions
from pgtls.backends.embedded.sql.lexer import (
    Token,
    quote_ident,
    string_value,
    tokens,
    unquote_ident,
    words,
)
from pgtls.errors import PgError
from pgtls.protocol import messages as m

if TYPE_CHECKING:
    from pgtls.backends.embedded.session.output import Output

INSERT_BATCH_ROWS = 50000
PARSE_CHUNK_BYTES = 1 << 20  # parse and insert buffered COPY data once this much has arrived
_QUERY_START = {"SELECT", "WITH", "VALUES", "FROM", "("}  # COPY (query) that DuckDB can wrap as a subquery
_UTC_NAMES = {"UTC", "ETC/UTC", "UCT", "ETC/UCT", "GMT", "ETC/GMT", "Z", "ZULU", "ETC/ZULU", "UNIVERSAL",
              "ETC/UNIVERSAL"}  # fmt: skip


@dataclass
class CopyCommand:
    table: str | None  # SQL text of the (possibly qualified) table name
    columns: list[str]
    query: str | None
    direction: str  # "FROM" / "TO"
    target: str  # STDIN / STDOUT / a file name (passed to DuckDB)
    options: CopyOptions


def _option(opts: CopyOptions, name: str, value: str | None) -> None:
    name = name.upper()
    if name == "FORMAT":
        v = (value or "").lower()
        if v not in ("text", "csv", "binary"):
            raise PgError("22023", f'COPY format "{value}" not recognized')
        opts.binary = v == "binary"
        opts.csv = v == "csv"
    elif name == "CSV":
        _option(opts, "FORMAT", "csv")
    elif name == "BINARY":
        _option(opts, "FORMAT", "binary")
    elif name == "DELIMITER":
        opts.delimiter = value or ""
    elif name == "NULL":
        opts.null = value or ""
    elif name == "HEADER":
        opts.header = (value or "true").lower() in ("true", "on", "1", "match", "")
    elif name == "QUOTE":
        opts.quote = value or ""
    elif name == "ESCAPE":
        opts.escape = value or ""
    elif name in ("FORCE_QUOTE", "ENCODING", "FORCE_NOT_NULL", "FORCE_NULL", "FREEZE"):
        pass
    else:
        raise PgError("42601", f'option "{name.lower()}" not recognized')
    opts.given.add(name)


def _force_quote(opts: CopyOptions, names: list[str]) -> None:
    if names == ["*"]:
        opts.force_quote_all = True
    else:
        opts.force_quote += names
    opts.given.add("FORCE_QUOTE")


def _one_byte(value: str) -> bool:
    return len(value.encode()) == 1


def _finish_options(opts: CopyOptions, is_from: bool) -> None:
    """Defaults that depend on the format, then ProcessCopyOptions()'s checks (PostgreSQL 15 copy.c)."""
    given = opts.given
    if "DELIMITER" not in given:
        opts.delimiter = "," if opts.csv else "\t"
    if "NULL" not in given:
        opts.null = "" if opts.csv else "\\N"
    if "QUOTE" not in given:
        opts.quote = '"'
    if "ESCAPE" not in given:
        opts.escape = opts.quote
    forced = bool(opts.force_quote) or opts.force_quote_all
    if opts.binary:
        for name in ("DELIMITER", "NULL"):
            if name in given:
                raise PgError("42601", f"cannot specify {name} in BINARY mode")
        if opts.header:
            raise PgError("0A000", "cannot specify HEADER in BINARY mode")
        return
    d = opts.delimiter
    if not _one_byte(d):
        raise PgError("0A000", "COPY delimiter must be a single one-byte character")
    if d in "\r\n":
        raise PgError("22023", "COPY delimiter cannot be newline or carriage return")
    if "\r" in opts.null or "\n" in opts.null:
        raise PgError("22023", "COPY null representation cannot use newline or carriage return")
    if not opts.csv and d in "\\.abcdefghijklmnopqrstuvwxyz0123456789":
        raise PgError("22023", f'COPY delimiter cannot be "{d}"')
    if not opts.csv and "QUOTE" in given:
        raise PgError("0A000", "COPY quote available only in CSV mode")
    if opts.csv and not _one_byte(opts.quote):
        raise PgError("0A000", "COPY quote must be a single one-byte character")
    if opts.csv and d == opts.quote:
        raise PgError("22023", "COPY delimiter and quote must be different")
    if not opts.csv and "ESCAPE" in given:
        raise PgError("0A000", "COPY escape available only in CSV mode")
    if opts.csv and not _one_byte(opts.escape):
        raise PgError("0A000", "COPY escape must be a single one-byte character")
    if not opts.csv and forced:
        raise PgError("0A000", "COPY force quote available only in CSV mode")
    if forced and is_from:
        raise PgError("0A000", "COPY force quote only available using COPY TO")
    if d in opts.null:
        raise PgError("0A000", "COPY delimiter must not appear in the NULL specification")
    if opts.csv and opts.quote in opts.null:
        raise PgError("0A000", "CSV quote character must not appear in the NULL specification")


def _name_list(toks: list[Token], k: int) -> tuple[list[str], int]:
    """``*``, ``(col, ...)`` or (the pre-9.0 syntax) ``col, ...`` from ``toks[k]``: the names and the index
    after them."""
    if k < len(toks) and toks[k].text == "*":
        return ["*"], k + 1
    paren = k < len(toks) and toks[k].text == "("
    k += paren
    names: list[str] = []
    while k < len(toks) and toks[k].kind in ("word", "ident"):
        names.append(unquote_ident(toks[k].text))
        k += 1
        more = k + 1 < len(toks) and toks[k].text == "," and toks[k + 1].kind in ("word", "ident")
        if not more:
            break
        k += 1
    if paren and k < len(toks) and toks[k].text == ")":
        k += 1
    return names, k


def _val(t: Token) -> str:
    return (
        string_value(t.text) if t.kind == "string" else unquote_ident(t.text) if t.kind == "ident" else t.text
    )


def parse_copy(sql: str) -> CopyCommand:
    toks = tokens(sql)[1:]
    i = 0
    table = None
    query = None
    if toks and toks[0].text == "(":
        depth = 0
        for j, t in enumerate(toks):
            depth += t.text == "("
            depth -= t.text == ")"
            if depth == 0:
                query = sql[toks[0].end : t.start]
                i = j + 1
                break
    else:
        start = toks[0].start
        while i + 2 < len(toks) and toks[i + 1].text == ".":
            i += 2
        table = sql[start : toks[i].end]
        i += 1
    columns: list[str] = []
    if table is not None and i < len(toks) and toks[i].text == "(":
        i += 1
        while i < len(toks) and toks[i].text != ")":
            if toks[i].kind in ("word", "ident"):
                columns.append(unquote_ident(toks[i].text))
            i += 1
        i += 1
    if i >= len(toks):
        raise PgError("42601", "syntax error at end of input")
    direction = toks[i].text.upper()
    target = _val(toks[i + 1]) if i + 1 < len(toks) else ""
    i += 2
    opts = CopyOptions()
    rest = toks[i:]
    if rest and rest[0].text.upper() == "WITH":
        rest = rest[1:]
    if rest and rest[0].text == "(":
        k = 1
        while k < len(rest) and rest[k].text != ")":
            name = rest[k].text
            k += 1
            if name.upper() in ("FORCE_QUOTE", "FORCE_NOT_NULL", "FORCE_NULL"):
                if k < len(rest) and rest[k].text not in ("(", "*"):
                    raise PgError(
                        "22023", f'argument to option "{name.lower()}" must be a list of column names'
                    )
                names, k = _name_list(rest, k)
                if name.upper() == "FORCE_QUOTE":
                    _force_quote(opts, names)
            else:
                value = None
                if k < len(rest) and rest[k].text not in (",", ")"):
                    value = _val(rest[k])
                    k += 1
                _option(opts, name, value)
            if k < len(rest) and rest[k].text == ",":
                k += 1
    else:
        k = 0
        while k < len(rest):
            word = rest[k].text.upper()
            if word in ("DELIMITER", "NULL", "QUOTE", "ESCAPE") and k + 1 < len(rest):
                if rest[k + 1].text.upper() == "AS":
                    k += 1
                _option(opts, word, _val(rest[k + 1]))
                k += 2
            elif word == "FORCE":  # FORCE QUOTE cols | * , FORCE NOT NULL cols
                k += 1
                what = rest[k].text.upper() if k < len(rest) else ""
                k += 1 if what == "QUOTE" else 2
                names, k = _name_list(rest, k)
                if what == "QUOTE":
                    _force_quote(opts, names)
            else:
                _option(opts, word, None)
                k += 1
    if direction not in ("FROM", "TO"):
        raise PgError("42601", f'syntax error at or near "{direction}"')
    _finish_options(opts, direction == "FROM")
    return CopyCommand(table, columns, query, direction, target.upper(), opts)


# --- text format ------------------------------------------------------------------------------

_UNESCAPE = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_INT32 = struct.Struct("!i")
COPY_OUT_BATCH = 10000  # rows fetched from DuckDB and framed per send (the Python-formatted path)


def parse_text_line(line: str, opts: CopyOptions) -> list[str | None]:
    if "\\" not in line:  # the common case: no escapes, so NULL is only \\N-free custom markers
        null = opts.null
        return [None if f == null else f for f in line.split(opts.delimiter)]
    fields: list[str | None] = []
    buf: list[str] = []
    raw: list[str] = []
    i = 0
    n = len(line)
    while True:
        if i >= n or line[i] == opts.delimiter:
            value = "".join(buf)
            fields.append(None if "".join(raw) == opts.null else value)
            buf, raw = [], []
            if i >= n:
                return fields
            i += 1
            continue
        c = line[i]
        raw.append(c)
        if c == "\\" and i + 1 < n:
            d = line[i + 1]
            raw.append(d)
            i += 2
            if d in _UNESCAPE:
                buf.append(_UNESCAPE[d])
            elif d in "01234567":
                j = i
                while j < n and j < i + 2 and line[j] in "01234567":
                    j += 1
                buf.append(chr(int(d + line[i:j], 8)))
                raw.append(line[i:j])
                i = j
            elif d == "x" and i < n and line[i] in "0123456789abcdefABCDEF":
                j = i
                while j < n and j < i + 2 and line[j] in "0123456789abcdefABCDEF":
                    j += 1
                buf.append(chr(int(line[i:j], 16)))
                raw.append(line[i:j])
                i = j
            else:
                buf.append(d)
            continue
        buf.append(c)
        i += 1


def format_text_row(values: list[str | None], opts: CopyOptions) -> str:
    """One line of text-format COPY output (CopyAttributeOutText for each value)."""
    null = opts.null
    return opts.delimiter.join(null if v is None else copy_out.text_field(v, opts) for v in values) + "\n"


def format_csv_row(values: list[str | None], opts: CopyOptions, force: list[bool] | None = None) -> str:
    """One line of CSV COPY output (CopyAttributeOutCSV for each value); ``force``: FORCE_QUOTE per column."""
    single = len(values) == 1
    null = opts.null
    return (
        opts.delimiter.join(
            null if v is None else copy_out.csv_field(v, opts, bool(force and force[k]), single)
            for k, v in enumerate(values)
        )
        + "\n"
    )


BINARY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"


def _binary_field_text(t: T.PgType, b: bytes, tz: dt.tzinfo) -> str:
    """One binary COPY field as the text DuckDB casts to the column type."""
    try:
        v = params.decode_binary(t.oid, b)
    except (ValueError, IndexError, struct.error, UnicodeDecodeError) as e:
        raise PgError("22P03", f"incorrect binary data format: {e}") from None
    if isinstance(v, params.Infinite):
        return v.text()
    if isinstance(v, bytes):
        return "\\x" + v.hex()
    if isinstance(v, tuple) and v and v[0] == "interval":
        return f"{v[1]} months {v[2]} days {v[3]} microseconds"
    if isinstance(v, list):
        return json.dumps(v, default=str)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dt.datetime):
        return encode.format_timestamptz(v, dt.UTC) if v.tzinfo else encode.format_timestamp(v)
    if isinstance(v, dt.time):
        return encode.format_timetz(v) if v.tzinfo else encode.format_time(v)
    if isinstance(v, Decimal):
        return encode._numeric_text(v)
    if isinstance(v, float):
        return encode.format_float(v, t.oid == T.FLOAT4.oid)
    return str(v)


class CopyState:
    """The COPY sub-protocol of one session."""

    def __init__(self, session: SessionContext) -> None:
        self.s = session
        self.active = False
        self.extended = False
        self.cmd: CopyCommand | None = None
        self.buffer = b""
        self.count = 0
        self.error: PgError | None = None
        self.own_tx = False
        self.insert_sql = ""
        self.blob_cols: list[bool] = []
        self.header_pending = False
        self.pending_sql: list[tuple[int, str]] = []
        self.pg_types: list[T.PgType] = []
        self.binary_header_done = False

    # --- start --------------------------------------------------------------------------------
    def start(self, sql: str) -> Result:
        cmd = parse_copy(sql)
        if cmd.direction == "TO" and cmd.target == "STDOUT":
            return self._copy_out(cmd)
        if cmd.direction == "FROM" and cmd.target == "STDIN":
            return self._copy_in(cmd)
        raise PgError(
            "42501",
            "COPY to or from a file is not allowed",
            hint="Anyone can COPY to stdout or from stdin. psql's \\copy command also works for anyone.",
        )

    def _copy_out(self, cmd: CopyCommand) -> Result:
        if cmd.query is not None:
            sql = cmd.query
        else:
            cols = ", ".join(quote_ident(c) for c in cmd.columns) if cmd.columns else "*"
            sql = f"SELECT {cols} FROM {cmd.table}"
        opts = cmd.options
        if not opts.binary:
            described = self._describe(sql)
            if described is not None:
                return self._copy_out_lines(cmd, *described)
        # Binary, DML with RETURNING and whatever DuckDB cannot describe: row values formatted in Python.
        res = self.s.execute(sql)
        if res.columns is None:
            raise PgError("0A000", "COPY query must have a RETURNING clause" if cmd.query else "not a table")
        out = self.s.out
        assert out is not None
        if opts.binary:
            return self._copy_out_binary(res, out)
        force = self._forced(cmd, res.columns)
        encs = [text_encoder(c.type, self.s.tz) for c in res.columns]
        out.add(m.copy_out_response(0, [0] * len(res.columns)))
        if opts.header:
            out.add(m.copy_data(copy_out.header_line([c.name for c in res.columns], opts).encode()))
        flags = [k in force for k in range(len(res.columns))]
        n = 0
        pack = _INT32.pack
        try:
            self.s.running.set()
            while True:
                batch = res.fetch(COPY_OUT_BATCH)
                if not batch:
                    break
                parts = []
                for row in batch:
                    values = [None if v is None else e(v) for e, v in zip(encs, row, strict=True)]
                    text = format_csv_row(values, opts, flags) if opts.csv else format_text_row(values, opts)
                    line = text.encode()
                    # one CopyData message per row, as PostgreSQL
                    parts.append(b"d" + pack(len(line) + 4) + line)
                out.add(b"".join(parts))
                n += len(batch)
        except duckdb.Error as e:
            raise sqlerrors.translate(e) from None
        finally:
            self.s.running.clear()
        out.add(m.copy_done())
        return Result(None, _none, lambda _n: f"COPY {n}")

    def _describe(self, sql: str) -> tuple[str, list[T.Column]] | None:
        """(the query in DuckDB's dialect, its result columns) for a query DuckDB can run as a subquery;
        None for anything else (DML with RETURNING, SHOW, ...) and for queries DuckDB rejects, so that
        the usual path runs them and reports their errors."""
        w = words(sql, 1)
        if not w or w[0] not in _QUERY_START or "pg_cancel_backend" in sql:
            return None
        sql2 = rewrite(sql)
        catalog.refresh(self.s, sql2)
        try:
            cols = describe_only(self.s.cur, sql2)
        except duckdb.Error:
            return None
        return (sql2, cols) if cols else None

    def _forced(self, cmd: CopyCommand, columns: list[T.Column]) -> set[int]:
        """Indexes of the FORCE_QUOTE columns (errors as CopyGetAttnums for names not in the output)."""
        opts = cmd.options
        if opts.force_quote_all:
            return set(range(len(columns)))
        names = [c.name for c in columns]
        lower = [c.lower() for c in names]
        out: set[int] = set()
        for f in opts.force_quote:
            if f in names:
                out.add(names.index(f))
            elif f.lower() in lower:
                out.add(lower.index(f.lower()))
            elif cmd.table is None:
                raise PgError("42703", f'column "{f}" does not exist')
            elif cmd.columns:
                raise PgError("42P10", f'FORCE_QUOTE column "{f}" not referenced by COPY')
            else:
                rel = unquote_ident(tokens(cmd.table)[-1].text)
                raise PgError("42703", f'column "{f}" of relation "{rel}" does not exist')
        return out

    def _utc(self) -> bool:
        """Whether timestamptz values print in UTC both for pgtls (session tz) and for DuckDB's casts."""
        if getattr(self.s.tz, "key", None) != "UTC":
            return False
        try:
            rows = self.s.cur.execute("SELECT current_setting('TimeZone')").fetchall()
        except duckdb.Error:
            return False
        return bool(rows) and str(rows[0][0]).upper() in _UTC_NAMES

    def _copy_out_lines(self, cmd: CopyCommand, sql: str, columns: list[T.Column]) -> Result:
        """Text/CSV COPY TO with DuckDB making the lines (session/copy_out.py): CopyData messages come out of DuckDB
        ready to send when every column type allows, else DuckDB-made segments are joined with the values
        Python formats.  CopyOutResponse waits for the first rows, so that errors DuckDB raises before
        any row comes (as the usual path's execute would) come before it."""
        opts = cmd.options
        cur = self.s.cur
        force = self._forced(cmd, columns)
        utc = any(c.duck == "TIMESTAMP WITH TIME ZONE" for c in columns) and self._utc()
        plan = copy_out.plan(columns, opts, self.s.tz, utc, force)
        stmt = copy_out.wrap(sql, len(columns), plan)
        out = self.s.out
        assert out is not None
        head = [m.copy_out_response(0, [0] * len(columns))]
        if opts.header:
            head.append(m.copy_data(copy_out.header_line([c.name for c in columns], opts).encode()))
        n = 0
        stream: copy_out.BlobStream | None = None
        running = self.s.running
        try:
            running.set()
            if plan.framed:
                try:
                    stream = copy_out.BlobStream(copy_out.open_stream(cur, stmt))
                except copy_out.StreamError:
                    stream = None  # the capsule is gone with the half-made reader: fetch the messages as rows
            if stream is not None:
                for rows, data in stream.batches():
                    if head:
                        out.add(b"".join(head))
                        head = []
                    out.add(data)
                    n += rows
            else:
                cur.execute(stmt)
                while batch := cur.fetchmany(COPY_OUT_BATCH):
                    if head:
                        out.add(b"".join(head))
                        head = []
                    if plan.framed:
                        out.add(b"".join([r[0] for r in batch]))
                    else:
                        out.add(b"".join(copy_out.python_lines(batch, plan, opts.null)))
                    n += len(batch)
        except duckdb.Error as e:
            raise sqlerrors.translate(e) from None
        finally:
            running.clear()
            if stream is not None:
                stream.close()
        if head:
            out.add(b"".join(head))
        out.add(m.copy_done())
        return Result(None, _none, lambda _n: f"COPY {n}")

    def _copy_out_binary(self, res: Result, out: Output) -> Result:
        assert res.columns is not None
        encs = [encode.binary_encoder(c.type, self.s.tz) for c in res.columns]
        ncols = len(res.columns)
        out.add(m.copy_out_response(1, [1] * ncols))
        out.add(m.copy_data(BINARY_SIGNATURE + struct.pack("!iI", 0, 0)))
        head = struct.pack("!h", ncols)
        n = 0
        try:
            while True:
                batch = res.fetch(1000)
                if not batch:
                    break
                for row in batch:
                    parts = [head]
                    for e, v in zip(encs, row, strict=True):
                        if v is None:
                            parts.append(b"\xff\xff\xff\xff")
                        else:
                            b = e(v)
                            parts.append(struct.pack("!i", len(b)) + b)
                    out.add(m.copy_data(b"".join(parts)))
                n += len(batch)
        except duckdb.Error as e:
            raise sqlerrors.translate(e) from None
        out.add(m.copy_data(struct.pack("!h", -1)))
        out.add(m.copy_done())
        return Result(None, _none, lambda _n: f"COPY {n}")

    def _copy_in(self, cmd: CopyCommand) -> Result:
        assert cmd.table is not None
        try:
            rel = self.s.cur.sql(f"SELECT * FROM {cmd.table} LIMIT 0")
            types = {c.lower(): str(t) for c, t in zip(rel.columns, rel.types, strict=True)}
            names = cmd.columns or list(rel.columns)
        except duckdb.Error as e:
            raise sqlerrors.translate(e) from None
        for c in names:
            if c.lower() not in types:
                raise PgError("42703", f'column "{c}" of relation "{cmd.table}" does not exist')
        self.cmd = cmd
        self.blob_cols = [types[c.lower()] == "BLOB" for c in names]
        self.pg_types = [T.pg_type_of(types[c.lower()])[0] for c in names]
        # Each batch travels as one list per column (strings; DuckDB casts them to the column types).
        exprs = [
            f"CASE WHEN starts_with(c{k}, '\\x') THEN from_hex(substr(c{k}, 3)) ELSE CAST(c{k} AS BLOB) END"
            if blob else f"c{k}"
            for k, blob in enumerate(self.blob_cols)
        ]  # fmt: skip
        unnests = ", ".join(f"unnest(${k + 1}) AS c{k}" for k in range(len(names)))
        self.insert_sql = (
            f"INSERT INTO {cmd.table} ({', '.join(quote_ident(c) for c in names)}) "
            f"SELECT {', '.join(exprs)} FROM (SELECT {unnests})"
        )
        self.active = True
        self.buffer = b""
        self.count = 0
        self.error = None
        self.header_pending = cmd.options.header
        self.binary_header_done = False
        self.own_tx = self.s.tx == "I" and not self.s.implicit
        if self.own_tx:
            self.s.cur.execute("BEGIN")
        out = self.s.out
        assert out is not None
        fmt = 1 if cmd.options.binary else 0
        out.add(m.copy_in_response(fmt, [fmt] * len(names)))
        return Result(None, _none, lambda _n: "COPY")

    # --- incoming data ------------------------------------------------------------------------
    def message(self, kind: bytes, body: bytes, out: Output) -> str | None:
        if not self.active:
            if kind == b"d" or kind == b"c" or kind == b"f":
                return None  # stray copy messages after an error are ignored, as PostgreSQL does
            return None
        if kind == b"d":
            if self.error is None:
                self.buffer += body
                if len(self.buffer) >= PARSE_CHUNK_BYTES:
                    self._consume(final=False)
            return None
        self.active = False
        if kind == b"f":
            reason = m.Reader(body).cstring()
            self.error = PgError("57014", f"COPY from stdin failed: {reason}")
        elif self.error is None:
            self._consume(final=True)
        if self.error is None:
            self._check_foreign_keys()
        if self.error is None and self.own_tx:
            try:
                self.s.cur.execute("COMMIT")
            except duckdb.Error as e:
                self.error = sqlerrors.translate(e)
        if self.error is not None:
            if self.own_tx:
                try:
                    self.s.cur.execute("ROLLBACK")
                except duckdb.Error:
                    pass
            self.s.fail(self.error, out)
            if self.extended:
                self.s.extended.skipping = True
                return None
            self.pending_sql.clear()
            return self.s.ready(out)
        out.add(m.command_complete(f"COPY {self.count}"))
        if self.extended:
            return None
        pending, self.pending_sql = self.pending_sql, []
        return self.s.continue_query(pending, out)

    def _split(self, final: bool) -> list[list[str | None]]:
        assert self.cmd is not None
        opts = self.cmd.options
        if opts.binary:
            return self._split_binary(final)
        data = self.buffer
        if not final:
            cut = data.rfind(b"\n")
            if opts.csv:
                while cut >= 0 and data[: cut + 1].count(opts.quote.encode()) % 2:
                    cut = data.rfind(b"\n", 0, cut)
            if cut < 0:
                return []
            data, self.buffer = data[: cut + 1], data[cut + 1 :]
        else:
            self.buffer = b""
        try:
            text = data.decode()
        except UnicodeDecodeError:
            raise PgError("22021", 'invalid byte sequence for encoding "UTF8"') from None
        rows: list[list[str | None]] = []
        if opts.csv:
            reader = csv.reader(io.StringIO(text, newline=""), delimiter=opts.delimiter, quotechar=opts.quote,
                                doublequote=opts.escape == opts.quote,
                                escapechar=None if opts.escape == opts.quote else opts.escape)  # fmt: skip
            for rec in reader:
                if rec == ["\\."]:
                    break
                rows.append([None if v == opts.null else v for v in rec] if rec else [None])
            # quoted empty strings are not NULL in PostgreSQL's CSV; csv.reader cannot tell, so re-check
            if opts.null == "" and '""' in text:
                rows = self._csv_quoted_empties(text, rows)
        else:
            for line in text.split("\n"):
                if line.endswith("\r"):
                    line = line[:-1]
                if line == "\\.":
                    break
                if line == "" and not rows and final and not text.strip("\n"):
                    continue
                rows.append(parse_text_line(line, opts))
            if rows and text.endswith("\n") and rows[-1] == [None if opts.null == "" else ""]:
                rows.pop()
        if self.header_pending and rows:
            rows.pop(0)
            self.header_pending = False
        return rows

    def _split_binary(self, final: bool) -> list[list[str | None]]:
        """PostgreSQL's binary COPY format (copyfromparse.c): signature, flags, header extension, then per
        tuple an Int16 field count and Int32-length values (-1 NULL); -1 ends the data.  Values are decoded
        with the binary parameter decoders and passed on as text for the insert."""
        data = self.buffer
        pos = 0
        if not self.binary_header_done:
            if len(data) < 19:
                if final:
                    raise PgError("22P04", "COPY file signature not recognized")
                return []
            if data[:11] != BINARY_SIGNATURE:
                raise PgError("22P04", "COPY file signature not recognized")
            (flags, ext) = struct.unpack_from("!iI", data, 11)
            if flags & (1 << 16):
                raise PgError("22P04", "invalid COPY file header (WITH OIDS)")
            if len(data) < 19 + ext:
                return []
            pos = 19 + ext
            self.binary_header_done = True
        rows: list[list[str | None]] = []
        ncols = len(self.pg_types)
        n = len(data)
        while pos + 2 <= n:
            (count,) = struct.unpack_from("!h", data, pos)
            if count == -1:
                pos = n
                break
            if count != ncols:
                raise PgError("22P04", f"row field count is {count}, expected {ncols}")
            p = pos + 2
            row: list[str | None] = []
            for t in self.pg_types:
                if p + 4 > n:
                    break
                (ln,) = struct.unpack_from("!i", data, p)
                p += 4
                if ln < 0:
                    row.append(None)
                    continue
                if p + ln > n:
                    break
                row.append(_binary_field_text(t, data[p : p + ln], self.s.tz))
                p += ln
            if len(row) < ncols:
                break  # an incomplete tuple: wait for more data
            rows.append(row)
            pos = p
        self.buffer = data[pos:]
        if final and self.buffer:
            raise PgError("22P04", "unexpected EOF in COPY data")
        return rows

    def _csv_quoted_empties(self, text: str, rows: list[list[str | None]]) -> list[list[str | None]]:
        assert self.cmd is not None
        q = self.cmd.options.quote
        out = []
        reader = csv.reader(
            io.StringIO(text, newline=""), delimiter=self.cmd.options.delimiter, quotechar="\x00"
        )
        for raw, parsed in zip(reader, rows, strict=False):
            out.append([("" if v is None and r.strip() == q + q else v) for r, v in zip(raw, parsed, strict=False)]
                       if len(raw) == len(parsed) else parsed)  # fmt: skip
        return out + rows[len(out) :]

    def _check_foreign_keys(self) -> None:
        """The checks of foreign keys pgtls keeps on the table (foreignkeys.py); with its own transaction, the
        deferred ones too."""
        assert self.cmd is not None and self.cmd.table is not None
        guard = self.s.fkeys
        try:
            guard.after_copy(self.s.cur, self.cmd.table)
            if self.own_tx:
                guard.before_commit(self.s.cur)
        except PgError as e:
            self.error = e
        except duckdb.Error as e:
            self.error = sqlerrors.translate(e)
        finally:
            if self.own_tx:
                guard.end_transaction()

    def _consume(self, final: bool) -> None:
        try:
            rows = self._split(final)
            ncols = len(self.blob_cols)
            for row in rows:
                if len(row) != ncols:
                    raise PgError("22P04", "missing data for column" if len(row) < ncols
                                  else "extra data after last expected column")  # fmt: skip
            for start in range(0, len(rows), INSERT_BATCH_ROWS):
                batch = rows[start : start + INSERT_BATCH_ROWS]
                columns = [[row[k] for row in batch] for k in range(ncols)]
                try:
                    self.s.cur.execute(self.insert_sql, columns)
                except duckdb.Error as e:
                    raise sqlerrors.translate(e) from None
                if not self.own_tx:  # inside the session's transaction: kept for ROLLBACK TO SAVEPOINT
                    size = sum(len(v) + 8 if v is not None else 8 for col in columns for v in col)
                    self.s.journal.record(self.insert_sql, columns, size)
                self.count += len(batch)
        except PgError as e:
            self.error = e
