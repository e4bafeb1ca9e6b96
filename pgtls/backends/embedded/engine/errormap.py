"""DuckDB exceptions translated to PostgreSQL errors (SQLSTATE, message, detail, position).

``RULES`` is the one table to review: the first rule whose exception class and
message pattern match wins; its message/detail templates use the pattern's named
groups and aim at PostgreSQL's own wording (errcodes.txt for the codes).
Unmatched errors fall back to a per-class SQLSTATE and keep DuckDB's message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import duckdb

from pgtls.errors import PgError


@dataclass(frozen=True)
class Rule:
    exc: str  # DuckDB exception class name ("" = any)
    pattern: re.Pattern[str]
    sqlstate: str
    message: str  # format string over the pattern's groups; "" keeps DuckDB's text
    detail: str = ""
    hint: str = ""


def _r(exc: str, pattern: str, sqlstate: str, message: str = "", detail: str = "", hint: str = "") -> Rule:
    return Rule(exc, re.compile(pattern, re.S), sqlstate, message, detail, hint)


RULES: tuple[Rule, ...] = (
    _r(
        "",
        r'permission denied to examine "(?P<n>[^"]*)"',
        "42501",
        'permission denied to examine "{n}"',
        detail='Only roles with privileges of the "pg_read_all_settings" role may examine this parameter.',
    ),
    _r(
        "ParserException",
        r'syntax error at or near "(?P<tok>.*?)"',
        "42601",
        'syntax error at or near "{tok}"',
    ),
    _r("ParserException", r"syntax error at end of input", "42601", "syntax error at end of input"),
    _r(
        "CatalogException",
        r"Table with name (?P<n>\S+) does not exist",
        "42P01",
        'relation "{n}" does not exist',
    ),
    _r(
        "CatalogException",
        r"Table or view with name (?P<n>\S+) does not exist",
        "42P01",
        'relation "{n}" does not exist',
    ),
    _r(
        "CatalogException",
        r"View with name (?P<n>\S+) does not exist",
        "42P01",
        'relation "{n}" does not exist',
    ),
    _r(
        "CatalogException",
        r"(?:Table|View|Index|Sequence) with name \"?(?P<n>[^\"!\s]+)\"? already exists",
        "42P07",
        'relation "{n}" already exists',
    ),
    _r(
        "CatalogException",
        r"Schema with name \"?(?P<n>[^\"!\s]+)\"? does not exist",
        "3F000",
        'schema "{n}" does not exist',
    ),
    _r(
        "CatalogException",
        r"Schema with name \"?(?P<n>[^\"!\s]+)\"? already exists",
        "42P06",
        'schema "{n}" already exists',
    ),
    _r("CatalogException", r"Type with name (?P<n>\S+) does not exist", "42704", 'type "{n}" does not exist'),
    _r(
        "CatalogException",
        r"(?:Scalar |Aggregate |Table )?Function with name (?P<n>\S+) does not exist",
        "42883",
        "function {n} does not exist",
        hint="No function matches the given name and argument types. You might need to add explicit type casts.",
    ),
    _r(
        "CatalogException",
        r"Index with name (?P<n>\S+) does not exist",
        "42704",
        'index "{n}" does not exist',
    ),
    _r("CatalogException", r"does not exist", "42704"),
    _r("CatalogException", r"already exists", "42710"),
    _r(
        "BinderException",
        r'Referenced column "(?P<c>[^"]+)" not found',
        "42703",
        'column "{c}" does not exist',
    ),
    _r(
        "BinderException",
        r'Referenced table "(?P<c>[^"]+)" not found',
        "42P01",
        'missing FROM-clause entry for table "{c}"',
    ),
    _r(
        "BinderException",
        r'Table "(?P<t>[^"]+)" does not have a column named "(?P<c>[^"]+)"',
        "42703",
        'column "{c}" of relation "{t}" does not exist',
    ),
    _r("BinderException", r"No function matches|Could not choose a best candidate", "42883"),
    _r("BinderException", r"must appear in the GROUP BY clause", "42803"),
    _r(
        "BinderException",
        r"DECIMAL type width must be between 1 and 38",
        "0A000",
        "numeric precision above 38 is not supported",
        detail="pgtls stores numeric in DuckDB's DECIMAL, which holds at most 38 digits.",
        hint="Use numeric(p, s) with p up to 38, or numeric without a precision (docs/embedded.md, Numeric).",
    ),
    _r("BinderException", r"Cannot compare values|Cannot mix values|cannot be cast", "42804"),
    _r("BinderException", r"Ambiguous reference", "42702"),
    _r("BinderException", r"ORDER term out of range", "42P10"),
    _r(
        "ConstraintException",
        r'Duplicate key "(?P<k>.*?)" violates (?:primary key|unique) constraint',
        "23505",
        "duplicate key value violates unique constraint",
        "Key ({k}) already exists.",
    ),
    _r(
        "ConstraintException",
        r"PRIMARY KEY or UNIQUE constraint violation",
        "23505",
        "duplicate key value violates unique constraint",
    ),
    _r(
        "ConstraintException",
        r"NOT NULL constraint failed: (?P<t>[^.\s]+)\.(?P<c>\S+)",
        "23502",
        'null value in column "{c}" of relation "{t}" violates not-null constraint',
    ),
    _r(
        "ConstraintException",
        r"CHECK constraint failed(?:: (?P<t>\S+))?",
        "23514",
        "new row violates check constraint",
    ),
    _r("ConstraintException", r"foreign key", "23503"),
    _r("ConstraintException", r"", "23000"),
    _r("", r"Division by zero|division by zero", "22012", "division by zero"),
    _r(
        "ConversionException",
        r"Could not convert string '(?P<v>.*?)' to (?P<t>\w+)",
        "22P02",
        'invalid input syntax for type {t}: "{v}"',
    ),
    _r("ConversionException", r"out of range|Overflow", "22003"),
    _r("ConversionException", r"", "22P02"),
    _r("OutOfRangeException", r"", "22003"),
    _r("TransactionException", r"Conflict", "40001", "could not serialize access due to concurrent update"),
    _r(
        "TransactionException",
        r"Current transaction is aborted",
        "25P02",
        "current transaction is aborted, commands ignored until end of transaction block",
    ),
    _r("TransactionException", r"no transaction is active", "25P01", "there is no transaction in progress"),
    _r("TransactionException", r"", "25000"),
    _r("InterruptException", r"", "57014", "canceling statement due to user request"),
    _r("PermissionException", r"read-only", "25006"),
    _r("PermissionException", r"", "42501"),
    _r("NotImplementedException", r"", "0A000"),
    _r("OutOfMemoryException", r"", "53200"),
    _r("IOException", r"", "58030"),
    _r("InvalidInputException", r"Values were not provided", "08P01"),
    # jsonb/edit.py's errors, raised through DuckDB's error() with PostgreSQL's text
    _r("InvalidInputException", r"^path element at position \d+ is null", "22004"),
    _r("InvalidInputException", r"^path element at position \d+ is not an integer", "22P02"),
    _r("InvalidInputException", r"^wrong number of array subscripts", "2202E"),
    _r(
        "InvalidInputException",
        r"^JSON value must not be null",
        "22004",
        "JSON value must not be null",
        detail='Exception was raised because null_value_treatment is "raise_exception".',
        hint="To avoid, either change the null_value_treatment argument or ensure that an SQL NULL is not passed.",
    ),
    _r(
        "InvalidInputException",
        r"^cannot replace existing key",
        "22023",
        "cannot replace existing key",
        hint="Try using the function jsonb_set to replace key value.",
    ),
)

# DuckDB's internal type names in messages -> PostgreSQL's.
DUCK_TYPE_NAMES = {
    "INT16": "smallint", "INT32": "integer", "INT64": "bigint", "INT8": "smallint", "DOUBLE": "double precision",
    "FLOAT": "real", "BOOL": "boolean", "BOOLEAN": "boolean", "DATE": "date", "TIMESTAMP": "timestamp",
    "UUID": "uuid", "INTERVAL": "interval", "TIME": "time", "BLOB": "bytea",
}  # fmt: skip

# Fallback per DuckDB class (the exception hierarchy of duckdb's Python module).
CLASS_STATES: dict[str, str] = {
    "ParserException": "42601",
    "BinderException": "42000",
    "CatalogException": "42000",
    "ConstraintException": "23000",
    "ConversionException": "22000",
    "InvalidInputException": "22023",
    "InvalidTypeException": "42804",
    "TypeMismatchException": "42804",
    "SequenceException": "2200H",
    "SyntaxException": "42601",
    "SerializationException": "XX000",
    "InternalException": "XX000",
    "FatalException": "XX000",
    "DependencyException": "2BP01",
    "HTTPException": "58000",
}

_PREFIX = re.compile(r"^[A-Za-z ]*?(?:Error|Exception): ")
_LINE = re.compile(r"\n\nLINE (?P<line>\d+): (?P<text>.*?)\n(?P<pad> *)\^", re.S)


def _position(msg: str, sql: str) -> int | None:
    """1-based character position from DuckDB's ``LINE n: ...`` caret display."""
    m = _LINE.search(msg)
    if not m:
        return None
    text = m.group("text")
    col = len(m.group("pad")) - len(f"LINE {m.group('line')}: ")
    if text.startswith("..."):
        return None
    lines = sql.split("\n")
    line = int(m.group("line"))
    if line < 1 or line > len(lines):
        return None
    return sum(len(x) + 1 for x in lines[: line - 1]) + col + 1


def _hint(rest: str) -> str | None:
    """DuckDB's extra lines, unless they are its spelling suggestions (PostgreSQL gives none there)."""
    rest = rest.strip()
    if not rest or rest.startswith(("Did you mean", "Candidate bindings")):
        return None
    return rest


_TARGET = re.compile(r"^\s*(?:INSERT\s+INTO|UPDATE)\s+(?:\"?[\w$]+\"?\.)?\"?([\w$]+)\"?", re.I)


_KEY_PART = re.compile(r"(?:^|, )([\w$]+): ")


def _key_detail(key: str) -> str:
    """DuckDB's 'b: 2, c: 3' as PostgreSQL's 'Key (b, c)=(2, 3) already exists.'"""
    cols = _KEY_PART.findall(key)
    values = _KEY_PART.split(key)[2::2]
    return f"Key ({', '.join(cols)})=({', '.join(values)}) already exists."


def _constraint_name(body: str, sql: str) -> str:
    """PostgreSQL's default constraint name (t_pkey, t_col_key) for a DuckDB duplicate-key error."""
    m = _TARGET.match(sql)
    if not m:
        return ""
    table = m.group(1)
    if "primary key" in body:
        return f' "{table}_pkey"'
    k = re.search(r'Duplicate key "(.*)" violates', body)
    cols = _KEY_PART.findall(k.group(1)) if k else []
    return f' "{table}_{"_".join(cols)}_key"' if cols else ""


_IN_TX_KEY = re.compile(r'constraint violation: duplicate key "(?P<v>.*)"')


def _unique_in_transaction(
    body: str, sql: str, cur: duckdb.DuckDBPyConnection | None
) -> tuple[str, str | None]:
    """Constraint name and detail for DuckDB's in-transaction duplicate-key error, which names neither.

    The failed transaction cannot be asked, so a second cursor reads the table's committed constraints; the
    one whose column count matches the key's values is named (nothing if that is ambiguous)."""
    m = _TARGET.match(sql)
    v = _IN_TX_KEY.search(body)
    if cur is None or not m or not v:
        return "", None
    table, values = m.group(1), v.group("v")
    try:
        other = cur.cursor()
        try:
            found = other.execute(
                "SELECT constraint_type, constraint_column_names FROM duckdb_constraints() "
                "WHERE table_name = ? AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')",
                [table],
            ).fetchall()
        finally:
            other.close()
    except duckdb.Error:
        return "", None
    fits = [(kind, cols) for kind, cols in found if len(cols) == values.count(", ") + 1]
    if len(fits) != 1:
        return "", None
    kind, cols = fits[0]
    name = f"{table}_pkey" if kind == "PRIMARY KEY" else f"{table}_{'_'.join(cols)}_key"
    return f' "{name}"', f"Key ({', '.join(cols)})=({values}) already exists."


def translate(
    exc: BaseException, sql: str = "", offset: int = 0, cur: duckdb.DuckDBPyConnection | None = None
) -> PgError:
    """A PgError for a DuckDB exception raised running ``sql`` (which starts at ``offset`` in the query);
    ``cur``, if given, may be asked for what the error message leaves out."""
    if isinstance(exc, PgError):
        return exc
    raw = str(exc)
    cls = type(exc).__name__
    position = _position(raw, sql)
    body = _LINE.split(raw)[0] if _LINE.search(raw) else raw
    body = _PREFIX.sub("", body.strip(), count=1)
    first, _, rest = body.partition("\n")
    for rule in RULES:
        if rule.exc and rule.exc != cls:
            continue
        m = rule.pattern.search(body)
        if not m:
            continue
        groups = {k: DUCK_TYPE_NAMES.get(v or "", v or "") for k, v in m.groupdict().items()}
        message = rule.message.format(**groups) if rule.message else first.rstrip("!")
        detail = rule.detail.format(**groups).replace(": ", ")=(", 1) if rule.detail else None
        if rule.sqlstate == "23505" and rule.detail:
            detail = _key_detail(groups["k"])
        if rule.sqlstate == "23505":
            if rule.detail:
                message += _constraint_name(body, sql)
            else:
                name, detail = _unique_in_transaction(body, sql, cur)
                message += name
        return PgError(
            rule.sqlstate,
            message,
            detail=detail,
            hint=rule.hint or _hint(rest),
            position=position + offset if position is not None else None,
        )
    state = CLASS_STATES.get(cls, "XX000" if not isinstance(exc, duckdb.Error) else "42000")
    return PgError(
        state,
        first.rstrip("!"),
        detail=rest.strip() or None,
        position=position + offset if position is not None else None,
    )


def canceled() -> PgError:
    return PgError("57014", "canceling statement due to user request")


def aborted_transaction() -> PgError:
    return PgError("25P02", "current transaction is aborted, commands ignored until end of transaction block")


def internal_error(e: Exception) -> PgError:
    """An ErrorResponse for an exception nobody expected (the session survives it)."""
    if isinstance(e, duckdb.Error):
        return translate(e)
    return PgError("XX000", f"internal error: {type(e).__name__}: {e}")
