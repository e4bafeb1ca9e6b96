"""Running one SQL statement on DuckDB and describing its result the PostgreSQL way.

A :class:`Result` carries the RowDescription columns (None for statements that
return no rows), a ``fetch(n)`` for the rows and the command tag, computed as
PostgreSQL would (``INSERT 0 n``, ``SELECT n``, ``CREATE TABLE``, ...).
Query-like statements whose result has INTERVAL columns run again with those
columns cast to text (Python's timedelta would lose months).

Dates and timestamps: DuckDB's Python binding gives infinity and -infinity as the
largest and smallest Python values (date 9999-12-31, datetime 9999-12-31
23:59:59.999999 / 0001-01-01), indistinguishable from those real values, and
values Python cannot hold (BC, years beyond 9999) as DuckDB's text.  Only DuckDB
can tell, so a result with DATE/TIMESTAMP columns is checked as it is first
fetched (:class:`DateProbe`): when it ends within PROBE_ROWS rows and none of them
holds such an extreme (the common case), the rows are used as they are; otherwise
the query runs again with those columns cast to text before any row was sent.
timestamptz needs none of this: its infinities come without a zone, its real
values with one.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import duckdb

from pgtls.backends.embedded.engine.hooks import HOOKS
from pgtls.backends.embedded.pgtypes import typemap as T
from pgtls.backends.embedded.sql.lexer import Token, has_word, quote_ident, tokens, unquote_ident

Row = tuple[Any, ...]

# Statements whose result is a row set in PostgreSQL (DuckDB adds SHOW/DESCRIBE/SUMMARIZE/FROM/PIVOT).
QUERY_WORDS = {"SELECT", "VALUES", "TABLE", "WITH", "SHOW", "DESCRIBE", "SUMMARIZE", "FROM", "PIVOT",
               "UNPIVOT", "EXPLAIN", "CALL", "PRAGMA", "("}  # fmt: skip
DML_WORDS = {"INSERT", "UPDATE", "DELETE", "MERGE"}
_CREATE_SKIP = {"OR", "REPLACE", "TEMP", "TEMPORARY", "UNIQUE", "UNLOGGED", "GLOBAL", "LOCAL", "PERSISTENT",
                "SECRET"}  # fmt: skip
_OBJECT_RENAME = {"MACRO": "FUNCTION"}


@dataclass
class Result:
    columns: list[T.Column] | None
    fetch: Callable[[int], list[Row]]
    tag_for: Callable[[int], str]
    count: int | None = None  # affected rows of DML without RETURNING
    done: bool = False
    sent: int = 0  # rows already sent (a portal resumed after PortalSuspended)
    buffered: list[Row] = field(default_factory=list)

    def tag(self, rows: int) -> str:
        return self.tag_for(self.count if self.count is not None else rows)


def _none(_n: int) -> list[Row]:
    return []


def drain(rows: list[Row]) -> Callable[[int], list[Row]]:
    """A Result's ``fetch`` that hands out ``rows`` (which it consumes), ``n`` at a time."""

    def fetch(n: int) -> list[Row]:
        out = rows[:n]
        del rows[:n]
        return out

    return fetch


def materialized(res: Result) -> Result:
    """``res`` with its rows read (RETURNING): the session's cursor is about to run other statements."""
    if res.columns is None:
        return res
    rows: list[Row] = []
    while chunk := res.fetch(4096):
        rows += chunk
    res.fetch = drain(rows)
    return res


def one_row(column: T.Column, value: object) -> Result:
    """A result of one row and one column, as a function call gives (``SELECT f()``)."""
    return Result([column], drain([(value,)]), lambda n: f"SELECT {n}")


def command_tag(words: list[str], duck_type: str) -> Callable[[int], str]:
    """The CommandComplete tag for a statement starting with ``words``."""
    first = words[0] if words else ""
    if first == "WITH" or first == "(":
        first = {"INSERT": "INSERT", "UPDATE": "UPDATE", "DELETE": "DELETE"}.get(duck_type, "SELECT")
    if first == "INSERT":
        return lambda n: f"INSERT 0 {n}"
    if first in ("UPDATE", "DELETE", "MERGE", "FETCH", "MOVE", "COPY"):
        return lambda n: f"{first} {n}"
    if first in QUERY_WORDS and first not in ("EXPLAIN", "CALL", "PRAGMA"):
        return lambda n: f"SELECT {n}"
    if first in ("CREATE", "DROP", "ALTER", "COMMENT"):
        rest = [w for w in words[1:] if w not in _CREATE_SKIP] if first == "CREATE" else words[1:]
        obj = rest[0] if rest else ""
        if obj == "MATERIALIZED" and len(rest) > 1:
            obj = "MATERIALIZED VIEW"
        obj = _OBJECT_RENAME.get(obj, obj)
        if first == "COMMENT":
            return lambda n: "COMMENT"
        if first == "CREATE" and obj == "TABLE" and "AS" in words:
            return lambda n: f"SELECT {n}"
        tag = f"{first} {obj}".strip()
        return lambda n: tag
    if first == "EXECUTE":  # SQL-level prepared statement: report rows like the statement it runs
        return lambda n: f"SELECT {n}"
    if first == "TRUNCATE":
        return lambda n: "TRUNCATE TABLE"
    tag = first
    return lambda n: tag


# --- column names -----------------------------------------------------------------------------

_FUNC = re.compile(r"(?:[A-Za-z_][A-Za-z_0-9]*\.)?\"?([A-Za-z_][A-Za-z_0-9]*)\"?\((.*)\)", re.S)
_CAST = re.compile(r"CAST\((.*) AS (\"?[A-Za-z_ ]+\"?[A-Za-z_0-9(), \[\]]*)\)", re.S)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z_0-9$]*")
_ARRAY_SUBQUERY = "(SELECT CASE  WHEN ((array_agg(#1) IS NULL))"  # how DuckDB names ARRAY(SELECT ...)
# DuckDB's function -> PostgreSQL's column name (``trim(x)`` is btrim; ``x ~ 'p'`` binds to regexp_matches).
_FUNC_NAMES = {"count_star": "count", "list_value": "array", "from_hex": "bytea", "trim": "btrim",
               "regexp_matches": "?column?"}  # fmt: skip


def pg_column_name(name: str, toks: list[Token]) -> str:
    """PostgreSQL's column name for DuckDB's: function name for calls, ?column? for expressions."""
    if name in ("true", "false", "NULL") or name.startswith("'"):
        return "?column?"
    if (rewritten := HOOKS.column_name(name)) is not None:  # jsonb functions DuckDB names otherwise
        return rewritten
    if name.startswith(("(ARRAY[", "ARRAY[", _ARRAY_SUBQUERY)):
        return "array"
    if name.startswith("CASE "):
        return "case"
    for t in toks:
        if t.kind == "ident" and unquote_ident(t.text) == name:
            return name
        if t.kind == "word" and t.text == name:
            return name
    if _IDENT.fullmatch(name):
        return name
    m = _CAST.fullmatch(name)
    if m:  # as FigureColname(): the name of a column or function cast, else the type's name
        inner = m.group(1).strip()
        if _IDENT.fullmatch(inner) and inner not in ("true", "false", "NULL"):
            return inner
        if inner.startswith(("(ARRAY[", "ARRAY[")):
            return "array"
        # (list_value(...) is an array literal that literals.py rewrote: a constant, named after the type)
        if not inner.startswith(("(", "CAST(", "'", "CASE ", "list_value(")) and _FUNC.fullmatch(inner):
            return pg_column_name(inner, toks)
        return _cast_type_name(m.group(2).strip().split("(")[0].rstrip("[] ").strip('"'))
    m = _FUNC.fullmatch(name)
    if m:
        fn = m.group(1)
        return _FUNC_NAMES.get(fn, fn.lower())
    return "?column?"


# DuckDB spells SQL-standard type keywords its own way (INTEGER, DOUBLE, DECIMAL(10, 2)): PostgreSQL's names
# for those that pg_type_of does not give (DuckDB's FLOAT is float4, and a varchar cast is named varchar).
_DUCK_CAST_NAMES = {"VARCHAR": "varchar", "FLOAT": "float4", "REAL": "float4"}


def _cast_type_name(tname: str) -> str:
    """PostgreSQL's column name for a cast to ``tname`` (as DuckDB prints it; ``[]`` and typmods removed)."""
    if tname.isupper():
        return _DUCK_CAST_NAMES.get(tname) or T.pg_type_of(tname)[0].name
    t = T.TYPE_NAMES.get(tname.lower())
    return t.name if t is not None else tname.lower()


def _contains_interval(duck: str) -> bool:
    return "INTERVAL" in duck


def _text_expr(k: int, name: str, duck: str) -> str:
    """Select item ``k`` of a wrapped query: cast to text where Python's value would lose something."""
    expr = T.text_sql(duck, f"#{k + 1}")
    if expr is None and _contains_interval(duck):  # a STRUCT with an INTERVAL: DuckDB's text of it
        expr = f"CAST(#{k + 1} AS VARCHAR{'[]' * duck.count('[]')})"
    return f"{expr or f'#{k + 1}'} AS {quote_ident(name)}"


def as_text_sql(sql: str, names: list[str], ducks: list[str]) -> str:
    """``sql`` with its INTERVAL, DATE and TIMESTAMP columns (and lists of them) cast to text."""
    exprs = ", ".join(_text_expr(k, n, d) for k, (n, d) in enumerate(zip(names, ducks, strict=True)))
    return f"SELECT {exprs} FROM (\n{sql}\n) AS pgtls_q"


# What DuckDB's Python binding makes of -infinity/infinity, and real values can be too.
_DATE_EXTREMES = frozenset({dt.date.min, dt.date.max})
_TS_EXTREMES = frozenset({dt.datetime.min, dt.datetime.max})
_EXTREMES = {"DATE": _DATE_EXTREMES, "TIMESTAMP": _TS_EXTREMES, "TIMESTAMP_S": _TS_EXTREMES,
             "TIMESTAMP_MS": _TS_EXTREMES, "TIMESTAMP_NS": _TS_EXTREMES}  # fmt: skip
# A result with date columns and more rows than the probe reads is run again with them as text.  The probe
# reads PROBE_ROWS rows, or more when the query took long to start (a sort, an aggregate: running it again
# would cost that again): as many as fetching costs about as much as that start (PROBE_ROW_SECONDS a row).
PROBE_ROWS = 1000
PROBE_ROWS_MAX = 100_000
PROBE_ROW_SECONDS = 2e-6
Checks = list[tuple[int, frozenset[Any], int]]  # (column, values that may stand for an infinity, list depth)


def _checks(ducks: list[str]) -> Checks:
    """The Checks of the date and timestamp columns (and lists of them) among ``ducks``."""
    out = []
    for k, d in enumerate(ducks):
        base, suffix = T.list_base(d)
        ext = _EXTREMES.get(base)
        if ext is not None:
            out.append((k, ext, suffix.count("[")))
    return out


def _has_extreme(rows: list[Row], checks: Checks) -> bool:
    for k, ext, depth in checks:
        if depth == 0:
            if not ext.isdisjoint(map(itemgetter(k), rows)):
                return True
            continue
        values: list[Any] = [r[k] for r in rows if r[k] is not None]
        for _ in range(depth):
            values = [x for v in values for x in v if x is not None]
        if not ext.isdisjoint(values):
            return True
    return False


class DateProbe:
    """``fetch`` of a query result with DATE/TIMESTAMP columns: the first call reads up to PROBE_ROWS rows
    (or as many as asked) plus one; if that is the whole result and no date holds an extreme value, those
    rows are the result.  Otherwise, before anything was handed out, the query runs again as ``text_sql``
    (the date columns as DuckDB's text: ``infinity``, ``0044-03-15 (BC)``, ...) and that is the result.

    Results longer than the probe thus run twice: the second run costs DuckDB a plan and whatever it did
    before the first row (``started``, seconds: a sort, an aggregate), which is why the probe then reads
    more rows (see PROBE_ROWS); Python's text output of the VARCHAR values is cheaper than of datetime
    objects, binary output a little dearer.  Not re-run: statements with side effects (nextval, setval)
    and DML ... RETURNING, whose extreme dates stay as the binding gives them (finite)."""

    def __init__(
        self, cur: duckdb.DuckDBPyConnection, text_sql: str, checks: Checks, started: float = 0.0
    ) -> None:
        self.cur = cur
        self.text_sql = text_sql
        self.checks = checks
        self.probe = min(PROBE_ROWS_MAX, max(PROBE_ROWS, int(started / PROBE_ROW_SECONDS)))
        self.rows: list[Row] = []  # read by the probe, handed out from self.pos on
        self.pos = 0
        self.source: Callable[[int], list[Row]] | None = None
        self.rerun = False  # whether the query ran again as text_sql

    def fetch(self, n: int) -> list[Row]:
        if self.source is None:
            want = max(n, self.probe)
            rows = self.cur.fetchmany(want + 1)
            if len(rows) <= want and not _has_extreme(rows, self.checks):
                self.rows, self.source = rows, _none
            else:
                self.cur.execute(self.text_sql)
                self.source, self.rerun = self.cur.fetchmany, True
        if self.pos < len(self.rows):
            if self.pos == 0 and n >= len(self.rows):
                out, self.rows = self.rows, []  # the common case: all of a short result at once
            else:
                out = self.rows[self.pos : self.pos + n]
                self.pos += len(out)
            return out
        return self.source(n)


def _reruns(sql: str) -> bool:
    """Whether running ``sql`` again is the same as running it once (nothing was fetched yet)."""
    low = sql.lower()
    return "nextval" not in low and "setval" not in low


def statement_type(sql: str) -> str:
    """DuckDB's StatementType name (SELECT, INSERT, ...); raises DuckDB's parser errors."""
    stmts = duckdb.extract_statements(sql)
    if not stmts:
        return "EMPTY"
    return stmts[0].type.name


def _column(name: str, duck: str, toks: list[Token]) -> T.Column:
    col = T.column(pg_column_name(name, toks), duck)
    if (
        col.typmod != -1
        and col.type.oid == T.NUMERIC.oid
        and not (_IDENT.fullmatch(name) or _CAST.fullmatch(name))
    ):
        # DuckDB gives every DECIMAL a precision and scale; PostgreSQL's numeric expressions have no typmod
        # (only a column or a cast to numeric(p,s) has one)
        col = T.Column(col.name, col.type, -1, col.duck)
    return col


def _columns(cur: duckdb.DuckDBPyConnection, names: list[str], ducks: list[str], sql: str) -> list[T.Column]:
    toks: list[Token] = [] if all(_IDENT.fullmatch(n) for n in names) else tokens(sql)
    cols = [_column(n, d, toks) for n, d in zip(names, ducks, strict=True)]
    return HOOKS.retype(cur, sql, names, ducks, cols)  # json or jsonb? (jsonb/result_types.py)


_DDL = ("CREATE", "ALTER", "DROP", "COMMENT")


def run(cur: duckdb.DuckDBPyConnection, sql: str, words: list[str], duck_type: str | None = None) -> Result:
    """Execute ``sql`` (one statement, already rewritten) on ``cur``; ``duck_type`` if already known."""
    if duck_type is None:
        # A query that starts like one is one (DuckDB has no SELECT ... INTO); anything else is asked of
        # DuckDB's parser, which costs about as much as a point lookup
        duck_type = (
            "SELECT" if words and words[0] in ("SELECT", "VALUES", "TABLE", "FROM") else statement_type(sql)
        )
    tag = command_tag(words, duck_type)
    if duck_type == "SELECT":
        t0 = time.perf_counter()
        cur.execute(sql)
        started = time.perf_counter() - t0
        desc = cur.description
        if not desc:
            return Result(None, _none, tag)
        names = [d[0] for d in desc]
        ducks = [str(d[1]) for d in desc]
        fetch: Callable[[int], list[Row]] = cur.fetchmany
        if any(_contains_interval(d) for d in ducks):
            if _reruns(sql):  # run again with INTERVAL (and date) columns as text: timedelta has no months
                cur.execute(as_text_sql(sql, names, ducks))
        elif (checks := _checks(ducks)) and _reruns(sql):
            fetch = DateProbe(cur, as_text_sql(sql, names, ducks), checks, started).fetch
        return Result(_columns(cur, names, ducks, sql), fetch, tag)
    first = words[0] if words else ""
    if first == "COMMENT":
        sql = HOOKS.comment_statement(cur, sql)  # features keep marks in comments (jsonb, foreign keys)
    cur.execute(sql)
    desc = cur.description
    if first == "EXPLAIN" and desc:
        return explain_result(cur.fetchall())
    returning = has_word(sql, "RETURNING")
    if first in DML_WORDS or (first == "WITH" and duck_type in DML_WORDS):
        if returning and desc:
            cols = _columns(cur, [d[0] for d in desc], [str(d[1]) for d in desc], sql)
            return Result(cols, cur.fetchmany, tag)
        row = cur.fetchone() if desc else None
        return Result(None, _none, tag, count=int(row[0]) if row and row[0] is not None else 0)
    if first in _DDL:
        row = cur.fetchone() if desc and first == "CREATE" else None
        if row is not None and tag(0) == "CREATE TABLE":  # CREATE TABLE [IF NOT EXISTS] t (a, b) AS ...
            tag = command_tag(["CREATE", "TABLE", "AS"], duck_type)
        HOOKS.ddl_done(cur, sql, first)  # a column that could not be marked jsonb stays json
        if tag(0).startswith("SELECT"):
            return Result(None, _none, tag, count=int(row[0]) if row and row[0] is not None else 0)
        return Result(None, _none, tag)
    if desc and (first in QUERY_WORDS or (first == "EXECUTE" and [d[0] for d in desc] != ["Count"])):
        return Result(_columns(cur, [d[0] for d in desc], [str(d[1]) for d in desc], sql), cur.fetchmany, tag)
    return Result(None, _none, tag)


EXPLAIN_COLUMNS = [T.Column("QUERY PLAN", T.TEXT, -1, "VARCHAR")]


def explain_result(rows: list[Row]) -> Result:
    """DuckDB's (explain_key, explain_value) rows as PostgreSQL's one-column "QUERY PLAN" text lines."""
    lines: list[Row] = [(line,) for row in rows for line in str(row[-1]).rstrip("\n").split("\n")]
    return Result(list(EXPLAIN_COLUMNS), drain(lines), lambda n: "EXPLAIN")


def describe_only(cur: duckdb.DuckDBPyConnection, sql: str) -> list[T.Column] | None:
    """Result columns of a query-like statement without running it (None when it returns no rows)."""
    if statement_type(sql) != "SELECT":
        return None
    rel = cur.sql(sql)
    if rel is None:
        return None
    return _columns(cur, list(rel.columns), [str(d) for d in rel.types], sql)
