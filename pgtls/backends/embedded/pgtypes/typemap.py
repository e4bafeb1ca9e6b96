"""PostgreSQL type descriptions and the mapping from DuckDB types to them.

OIDs and typlen come from PostgreSQL's pg_type.dat.  DuckDB types with no
PostgreSQL twin map to the nearest type that can hold every value (see
docs/embedded.md): unsigned and 128-bit integers widen, STRUCT/MAP/UNION become
json, ENUM and BIT become text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class PgType:
    oid: int
    name: str
    typlen: int
    array_oid: int = 0
    duck: str = "VARCHAR"  # DuckDB type used to cast a parameter of this type
    elem: int = 0  # element type for array types


BOOL = PgType(16, "bool", 1, 1000, "BOOLEAN")
BYTEA = PgType(17, "bytea", -1, 1001, "BLOB")
CHAR = PgType(18, "char", 1, 1002, "VARCHAR")
NAME = PgType(19, "name", 64, 1003, "VARCHAR")
INT8 = PgType(20, "int8", 8, 1016, "BIGINT")
INT2 = PgType(21, "int2", 2, 1005, "SMALLINT")
INT4 = PgType(23, "int4", 4, 1007, "INTEGER")
TEXT = PgType(25, "text", -1, 1009, "VARCHAR")
OID = PgType(26, "oid", 4, 1028, "UINTEGER")
JSON = PgType(114, "json", -1, 199, "JSON")
FLOAT4 = PgType(700, "float4", 4, 1021, "FLOAT")
FLOAT8 = PgType(701, "float8", 8, 1022, "DOUBLE")
UNKNOWN = PgType(705, "unknown", -2, 0, "VARCHAR")
BPCHAR = PgType(1042, "bpchar", -1, 1014, "VARCHAR")
VARCHAR = PgType(1043, "varchar", -1, 1015, "VARCHAR")
DATE = PgType(1082, "date", 4, 1182, "DATE")
TIME = PgType(1083, "time", 8, 1183, "TIME")
TIMESTAMP = PgType(1114, "timestamp", 8, 1115, "TIMESTAMP")
TIMESTAMPTZ = PgType(1184, "timestamptz", 8, 1185, "TIMESTAMPTZ")
INTERVAL = PgType(1186, "interval", 16, 1187, "INTERVAL")
TIMETZ = PgType(1266, "timetz", 12, 1270, "TIMETZ")
NUMERIC = PgType(1700, "numeric", -1, 1231, "DECIMAL(38,10)")
UUID = PgType(2950, "uuid", 16, 2951, "UUID")
VOID = PgType(
    2278, "void", 4
)  # what pg_notify() and pg_advisory_lock() return: '' as text, nothing in binary
JSONB = PgType(3802, "jsonb", -1, 3807, "jsonb")  # a DuckDB alias of JSON (catalog/shims.py, databases.py)

# DuckDB has one JSON type for json and jsonb (a type alias does not survive binding), so a jsonb column is a
# JSON column whose comment starts with this mark (jsonb/ddl_marks.py sets it and jsonb/marks.py reads it back;
# a user's own comment follows it on the next line, and pg_description shows only that).
JSONB_MARK = "pgtls:jsonb"

# A bare ``numeric`` (column or cast) becomes this DuckDB type (literals.py): 30 integer and 8 fractional
# digits, printed without trailing fractional zeros (PostgreSQL keeps each value's own scale; see docs).
FREE_NUMERIC_DUCK = "DECIMAL(38,8)"
NUMERIC_FREE = PgType(1700, "numeric", -1, 1231, FREE_NUMERIC_DUCK)

SCALARS: tuple[PgType, ...] = (
    BOOL, BYTEA, CHAR, NAME, INT8, INT2, INT4, TEXT, OID, JSON, FLOAT4, FLOAT8, UNKNOWN, BPCHAR,
    VARCHAR, DATE, TIME, TIMESTAMP, TIMESTAMPTZ, INTERVAL, TIMETZ, NUMERIC, UUID, JSONB,
)  # fmt: skip

BY_OID: dict[int, PgType] = {t.oid: t for t in SCALARS}
for _t in SCALARS:
    if _t.array_oid:
        BY_OID[_t.array_oid] = PgType(_t.array_oid, "_" + _t.name, -1, 0, _t.duck + "[]", _t.oid)
BY_NAME: dict[str, PgType] = {t.name: t for t in BY_OID.values()}
NUMERIC_FREE_ARRAY = PgType(1231, "_numeric", -1, 0, FREE_NUMERIC_DUCK + "[]", 1700)


def element_of(t: PgType) -> PgType:
    """The element type of array type ``t`` (the unconstrained numeric keeps its output rule)."""
    return NUMERIC_FREE if t is NUMERIC_FREE_ARRAY else BY_OID[t.elem]


def is_free_numeric(t: PgType) -> bool:
    return t.duck == FREE_NUMERIC_DUCK


# SQL type names in casts -> PostgreSQL type.
TYPE_NAMES: dict[str, PgType] = {
    "int": INT4, "integer": INT4, "int4": INT4, "smallint": INT2, "int2": INT2, "bigint": INT8,
    "int8": INT8, "real": FLOAT4, "float4": FLOAT4, "float": FLOAT8, "float8": FLOAT8,
    "double": FLOAT8, "numeric": NUMERIC, "decimal": NUMERIC, "text": TEXT, "varchar": VARCHAR,
    "bool": BOOL, "boolean": BOOL, "bytea": BYTEA, "date": DATE, "time": TIME, "timetz": TIMETZ,
    "timestamp": TIMESTAMP, "timestamptz": TIMESTAMPTZ, "interval": INTERVAL, "uuid": UUID,
    "json": JSON, "jsonb": JSONB, "name": NAME, "oid": OID, "char": BPCHAR, "bpchar": BPCHAR,
}  # fmt: skip


def array_of(t: PgType) -> PgType:
    return BY_OID[t.array_oid] if t.array_oid else TEXT


@dataclass(frozen=True)
class Column:
    """One RowDescription field: its PostgreSQL type plus the DuckDB type the value came from."""

    name: str
    type: PgType
    typmod: int
    duck: str

    def field(self, fmt: int) -> tuple[str, int, int, int, int]:
        return (self.name, self.type.oid, self.type.typlen, self.typmod, fmt)


_SIMPLE: dict[str, PgType] = {
    "BOOLEAN": BOOL,
    "TINYINT": INT2,
    "SMALLINT": INT2,
    "UTINYINT": INT2,
    "INTEGER": INT4,
    "USMALLINT": INT4,
    "BIGINT": INT8,
    "UINTEGER": OID,  # the same range as PostgreSQL's oid; catalog shims use it for oid columns
    "UBIGINT": NUMERIC,
    "HUGEINT": NUMERIC,
    "UHUGEINT": NUMERIC,
    "BIGNUM": NUMERIC,
    "VARINT": NUMERIC,
    "FLOAT": FLOAT4,
    "DOUBLE": FLOAT8,
    "VARCHAR": TEXT,
    "BLOB": BYTEA,
    "DATE": DATE,
    "TIME": TIME,
    "TIME_NS": TIME,
    "TIME WITH TIME ZONE": TIMETZ,
    "TIMESTAMP": TIMESTAMP,
    "TIMESTAMP_S": TIMESTAMP,
    "TIMESTAMP_MS": TIMESTAMP,
    "TIMESTAMP_NS": TIMESTAMP,
    "TIMESTAMP WITH TIME ZONE": TIMESTAMPTZ,
    "INTERVAL": INTERVAL,
    "UUID": UUID,
    "JSON": JSON,
    "NULL": TEXT,
    "BIT": TEXT,
}

_DECIMAL = re.compile(r"DECIMAL\((\d+),(\d+)\)")


def pg_type_of(duck: str) -> tuple[PgType, int]:
    """(PostgreSQL type, typmod) for a DuckDB type string such as ``DECIMAL(10,2)`` or ``INTEGER[]``."""
    if duck.endswith("]"):
        inner = duck[: duck.rfind("[")]
        elem, _ = pg_type_of(inner)
        if elem.elem:  # nested list: PostgreSQL arrays are multi-dimensional of the same type
            return elem, -1
        return (NUMERIC_FREE_ARRAY if elem is NUMERIC_FREE else array_of(elem)), -1
    t = _SIMPLE.get(duck) or TYPE_NAMES.get(duck.lower())
    if t is not None:
        return t, -1
    if duck == FREE_NUMERIC_DUCK:
        return NUMERIC_FREE, -1
    m = _DECIMAL.fullmatch(duck)
    if m:
        if (m.group(1), m.group(2)) == ("18", "3"):  # DuckDB's DECIMAL for a bare NUMERIC: no typmod
            return NUMERIC, -1
        return NUMERIC, ((int(m.group(1)) << 16) | int(m.group(2))) + 4
    if duck.startswith(("STRUCT", "MAP", "UNION")):
        return JSON, -1
    return TEXT, -1  # ENUM(...), user types and anything new: text


_LIST_OF = re.compile(r"([A-Z_ ]+)((?:\[\d*\])*)")
# DuckDB types whose Python values lose what PostgreSQL prints: INTERVAL (timedelta has no months), and dates
# and timestamps, whose infinities DuckDB's Python binding turns into the largest and smallest Python values
# (date 9999-12-31, datetime 9999-12-31 23:59:59.999999 / 0001-01-01), which are also real values.
TEXT_FETCHED = {"INTERVAL", "DATE", "TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS"}


def list_base(duck: str) -> tuple[str, str]:
    """(element type, list suffix) of a DuckDB type: ``DATE[][3]`` -> (``DATE``, ``[][3]``); ``(duck, "")``
    for anything else (STRUCT, MAP, DECIMAL(p,s), ...)."""
    m = _LIST_OF.fullmatch(duck)
    return (m.group(1), m.group(2)) if m else (duck, "")


def text_sql(duck: str, ref: str) -> str | None:
    """``ref`` cast to VARCHAR (lists to VARCHAR lists of the same shape) when its DuckDB type is one whose
    PostgreSQL text only DuckDB's own text keeps (TEXT_FETCHED), else None."""
    base, suffix = list_base(duck)
    if base not in TEXT_FETCHED:
        return None
    return f"CAST({ref} AS VARCHAR{suffix})"


def column(name: str, duck: str) -> Column:
    t, typmod = pg_type_of(duck)
    return Column(name, t, typmod, duck)


def duck_cast_name(oid: int) -> str | None:
    """DuckDB type to cast a parameter declared with ``oid`` to; None for unknown/unsupported."""
    t = BY_OID.get(oid)
    if t is None or t is UNKNOWN:
        return None
    return t.duck
