"""Where a client or the embedded DuckDB backend is known to differ from PostgreSQL in the shared client
scenario (tests/clients/scenario.json): (client or ALL, item) -> the reason, made strict xfails by
:func:`xfail_marks`.  Used by tests/integration/test_client_scenarios.py and
tests/differential/test_client_values.py."""

from __future__ import annotations

import pytest

ALL = "*"

# Bugs of a client, not of any server: the same on PostgreSQL itself (checked against the expected texts).
CLIENT_BUGS: dict[tuple[str, str], str] = {
    (
        "pg8000",
        "interval",
    ): "pg8000 bug, not pgtls: it reads '-00:00:01' as +1 second (the same on PostgreSQL 15)",
    (
        "pg8000",
        "interval_arr",
    ): "pg8000 bug, not pgtls: it reads '-00:00:01' as +1 second (the same on PostgreSQL 15)",
    (
        "pg8000",
        "interval_mixed_signs",
    ): "pg8000 bug, not pgtls: it reads '-04:05:06' as -4 h +5 min +6 s (the same on PostgreSQL 15)",
}

# The embedded DuckDB backend: (client or ALL, type name) -> why pgtls differs from PostgreSQL 15 there.
VALUE_XFAIL: dict[tuple[str, str], str] = {
    (
        ALL,
        "numeric_exact",
    ): "unconstrained numeric is DuckDB DECIMAL(38,8) (docs/embedded.md, Numeric): 30 integer "
    "and 8 fractional digits, printed without trailing zeros; PostgreSQL keeps every digit "
    "and each value's scale ('12345678901234567890.1234567890', '-0.000...01', '-1.50')",
    (ALL, "int4_arr_2d"): "multidimensional arrays in an int4[] column: the column is DuckDB INTEGER[] (one "
    "dimension), so inserting {{1,2},{3,4}} fails with 22P02 (SELECT of the value works)",
    **CLIENT_BUGS,
}

# The embedded DuckDB backend: (client, type name) -> why sending the values back as parameters fails.
ROUNDTRIP_XFAIL: dict[tuple[str, str], str] = {
    (ALL, "numeric_exact"): VALUE_XFAIL[(ALL, "numeric_exact")],
    (ALL, "int4_arr_2d"): "no values to send back: " + VALUE_XFAIL[(ALL, "int4_arr_2d")],
}

CHECK_XFAIL: dict[tuple[str, str], str] = {}


def xfail_marks(table: dict[tuple[str, str], str], client: str, name: str) -> list[pytest.MarkDecorator]:
    reason = table.get((client, name)) or table.get((ALL, name))
    return [pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason)] if reason else []
