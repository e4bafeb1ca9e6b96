"""Issue 5 differential: the shared client scenario (tests/clients/scenario.json) against a real
PostgreSQL 15 and against `pgtls serve` (embedded backend), both over TLS with verify-full; each client
must get back exactly the same values (its own decoded form, cell by cell) and the same check results.

The PostgreSQL side also pins the scenario itself: its values must match the expected texts.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import prereq
from tests.clients import pydrivers
from tests.clients.expectations import ALL, CHECK_XFAIL, ROUNDTRIP_XFAIL, VALUE_XFAIL, xfail_marks
from tests.clients.harness import Reports, client_report, start_pgtls, start_realpg
from tests.clients.scenario import BY_NAME, CHECK_NAMES, CHECKS_EXPECTED, TYPE_NAMES, compare_values

pytestmark = pytest.mark.pg

CLIENTS = ("psycopg-text", "psycopg-binary", "asyncpg", "pg8000", "node-pg", "pgjdbc")
CLIENT_BUGS = {k: v for k, v in VALUE_XFAIL.items() if "not pgtls" in v}  # the same on PostgreSQL
DIFF_VALUE_XFAIL = {
    **{k: v for k, v in VALUE_XFAIL.items() if k not in CLIENT_BUGS},
    **{k: v for k, v in ROUNDTRIP_XFAIL.items() if k[0] != ALL},  # values sent back as parameters
}


def _params(table: dict[tuple[str, str], str], names: list[str]) -> list[object]:
    return [pytest.param(c, n, id=f"{c}-{n}", marks=xfail_marks(table, c, n)) for c in CLIENTS for n in names]


@pytest.fixture(scope="module")
def servers(certs, client_home) -> Iterator[tuple[Reports, Reports]]:
    if not pydrivers.have_postgres():
        prereq.missing("PostgreSQL 15 server binaries are not installed")
    pg = start_realpg(certs)
    ours = start_pgtls(certs)
    try:
        root = certs.path("root_ca.crt")
        yield (Reports(pydrivers.Target(pg.port, root, client_home), "dpg"),
               Reports(pydrivers.Target(ours.port, root, client_home), "dtls"))  # fmt: skip
    finally:
        ours.cleanup()
        pg.cleanup()


@pytest.mark.parametrize("client,name", _params(CLIENT_BUGS, TYPE_NAMES))
def test_postgres_gives_the_expected_values(servers, client, name):
    rep = client_report(servers[0], client)
    assert name not in rep["errors"], rep["errors"].get(name)
    problems = compare_values(BY_NAME[name], rep["values"].get(name))
    assert not problems, f"{client} {name} on PostgreSQL: " + "; ".join(problems)


@pytest.mark.parametrize("client,name", _params(DIFF_VALUE_XFAIL, TYPE_NAMES))
def test_same_values_as_postgres(servers, client, name):
    theirs, ours = client_report(servers[0], client), client_report(servers[1], client)
    assert ours["errors"].get(name) is None, f"pgtls: {ours['errors'][name]}"
    assert ours["values"].get(name) == theirs["values"].get(name)
    if name in theirs["roundtrip"]:
        assert ours["roundtrip"].get(name) == theirs["roundtrip"][name], "values sent back as parameters"


@pytest.mark.parametrize("client,name", _params(CHECK_XFAIL, CHECK_NAMES))
def test_same_checks_as_postgres(servers, client, name):
    theirs, ours = client_report(servers[0], client), client_report(servers[1], client)
    assert theirs["checks"].get(name) == CHECKS_EXPECTED[name], "PostgreSQL itself"
    assert ours["checks"].get(name) == theirs["checks"][name]
