"""COPY ... FROM STDIN and COPY ... TO STDOUT in PostgreSQL's text and CSV formats.

Formats follow PostgreSQL's copyfromparse.c / copyto.c: text is tab-separated
with backslash escapes and ``\\N`` for NULL; CSV uses quote doubling, an empty
unquoted field for NULL and an optional header line.  Incoming rows are
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
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

import duckdb

from pgtls.backends.embedded import codecs, params, sqlerrors
from pgtls.backends.embedded import types as T
from pgtls.backends.embedded.codecs import text_encoder
from pgtls.backends.embedded.execute import Result, _none
from pgtls.backends.embedded.sqltext import (
    Token,
    quote_ident,
    string_value,
    tokens,
    unquote_ident,
)
from pgtls.errors import PgError
from pgtls.protocol import messages as m

if TYPE_CHECKING:
    from pgtls.backends.embedded.session import EmbeddedSession, Output

INSERT_BATCH_ROWS = 50000
PARSE_CHUNK_BYTES = 1 << 20  # parse and insert buffered COPY data once this much has arrived


@dataclass
class CopyOptions:
    csv: bool = False
    delimiter: str = "\t"
    null: str = "\\N"
    header: bool = False
    quote: str = '"'
    escape: str = '"'
    force_quote: list[str] = field(default_factory=list)
    binary: bool = False


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
        if v == "binary":
            opts.binary = True
            return
        if v not in ("text", "csv"):
            raise PgError("22023", f'COPY format "{value}" not recognized')
        opts.csv = v == "csv"
        if opts.csv and opts.null == "\\N":
            opts.null = ""
            if opts.delimiter == "\t":
                opts.delimiter = ","
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
        opts.quote = value or '"'
    elif name == "ESCAPE":
        opts.escape = value or '"'
    elif name in ("FORCE_QUOTE", "ENCODING", "FORCE_NOT_NULL", "FORCE_NULL", "FREEZE"):
        return
    else:
        raise PgError("42601", f'option "{name.lower()}" not recognized')


def _val(t: Token) -> str:
    return string_value(t.text) if t.kind == "string" else unquote_ident(t.text) if t.kind == "ident" else t.text


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
            elif word == "FORCE":
                k += 3
            else:
                _option(opts, word, None)
                k += 1
    if direction not in ("FROM", "TO"):
        raise PgError("42601", f'syntax error at or near "{direction}"')
    return CopyCommand(table, columns, query, direction, target.upper(), opts)


# --- text format ------------------------------------------------------------------------------

_UNESCAPE = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_ESCAPE = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f", "\v": "\\v"}
_ESCAPE_TABLE = str.maketrans(_ESCAPE)
_INT32 = struct.Struct("!i")
COPY_OUT_BATCH = 10000  # rows fetched from DuckDB and framed per send  # one C-level pass per value instead of a Python loop per character


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
    out = []
    for v in values:
        if v is None:
            out.append(opts.null)
        else:
            s = v.translate(_ESCAPE_TABLE)
            if opts.delimiter not in _ESCAPE:
                s = s.replace(opts.delimiter, "\\" + opts.delimiter)
            out.append(s)
    return opts.delimiter.join(out) + "\n"


def format_csv_row(values: list[str | None], opts: CopyOptions) -> str:
    out = []
    q = opts.quote
    for v in values:
        if v is None:
            out.append(opts.null)
        elif v == opts.null or any(ch in v for ch in (opts.delimiter, q, "\n", "\r")) or v == "\\.":
            out.append(q + v.replace(q, opts.escape + q) + q)
        else:
            out.append(v)
    return opts.delimiter.join(out) + "\n"


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
        return codecs.format_timestamptz(v, dt.UTC) if v.tzinfo else codecs.format_timestamp(v)
    if isinstance(v, dt.time):
        return codecs.format_timetz(v) if v.tzinfo else codecs.format_time(v)
    if isinstance(v, Decimal):
        return codecs._numeric_text(v)
    if isinstance(v, float):
        return codecs.format_float(v, t.oid == T.FLOAT4.oid)
    return str(v)


class CopyState:
    """The COPY sub-protocol of one session."""

    def __init__(self, session: EmbeddedSession) -> None:
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
        raise PgError("42501", "COPY to or from a file is not allowed",
                      hint="Anyone can COPY to stdout or from stdin. psql's \\copy command also works for anyone.")

    def _copy_out(self, cmd: CopyCommand) -> Result:
        if cmd.query is not None:
            sql = cmd.query
        else:
            cols = ", ".join(quote_ident(c) for c in cmd.columns) if cmd.columns else "*"
            sql = f"SELECT {cols} FROM {cmd.table}"
        res = self.s.execute(sql)
        if res.columns is None:
            raise PgError("0A000", "COPY query must have a RETURNING clause" if cmd.query else "not a table")
        out = self.s.out
        assert out is not None
        if cmd.options.binary:
            return self._copy_out_binary(res, out)
        encs = [text_encoder(c.type, self.s.tz) for c in res.columns]
        out.add(m.copy_out_response(0, [0] * len(res.columns)))
        fmt = format_csv_row if cmd.options.csv else format_text_row
        if cmd.options.header and cmd.options.csv:
            out.add(m.copy_data(fmt([c.name for c in res.columns], cmd.options).encode()))
        n = 0
        opts = cmd.options
        pack = _INT32.pack
        try:
            while True:
                batch = res.fetch(COPY_OUT_BATCH)
                if not batch:
                    break
                parts = []
                for row in batch:
                    line = fmt([None if v is None else e(v) for e, v in zip(encs, row, strict=True)], opts).encode()
                    parts.append(b"d" + pack(len(line) + 4) + line)  # one CopyData message per row, as PostgreSQL
                out.add(b"".join(parts))
                n += len(batch)
        except duckdb.Error as e:
            raise sqlerrors.translate(e) from None
        out.add(m.copy_done())
        return Result(None, _none, lambda _n: f"COPY {n}")

    def _copy_out_binary(self, res: Result, out: Output) -> Result:
        assert res.columns is not None
        encs = [codecs.binary_encoder(c.type, self.s.tz) for c in res.columns]
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
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=self.cmd.options.delimiter, quotechar="\x00")
        for raw, parsed in zip(reader, rows, strict=False):
            out.append([("" if v is None and r.strip() == q + q else v) for r, v in zip(raw, parsed, strict=False)]
                       if len(raw) == len(parsed) else parsed)  # fmt: skip
        return out + rows[len(out) :]

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
                self.count += len(batch)
        except PgError as e:
            self.error = e
