"""A missing prerequisite (PostgreSQL 15; a client: node-postgres, pgJDBC) fails its tests under CI=true or
`make test` instead of skipping them (tests/prereq.py), and every client test goes through that check."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from tests import prereq
from tests.clients import harness, pydrivers


@pytest.fixture
def node_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        pydrivers, "unavailable", lambda client: "node is not installed" if client == "node-pg" else None
    )
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("MAKELEVEL", raising=False)


@pytest.mark.parametrize(("var", "value"), [("CI", "true"), ("CI", "TRUE"), ("MAKELEVEL", "1")])
def test_missing_client_fails_when_required(node_missing: None, monkeypatch: pytest.MonkeyPatch, var: str,
                                            value: str) -> None:  # fmt: skip
    monkeypatch.setenv(var, value)
    with pytest.raises(pytest.fail.Exception, match="node-pg: node is not installed"):
        harness.client_missing("node-pg")
    harness.client_missing("psycopg-binary")  # present: nothing happens


def test_missing_client_skips_otherwise(node_missing: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="node is not installed"):
        harness.client_missing("node-pg")


@pytest.mark.parametrize(("env", "outcome"), [({"CI": "true"}, pytest.fail.Exception),
                                              ({"MAKELEVEL": "2"}, pytest.fail.Exception),
                                              ({"CI": "0"}, pytest.skip.Exception), ({}, pytest.skip.Exception)])  # fmt: skip
def test_missing_postgres(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], outcome: type[BaseException]
) -> None:
    """The same rule for PostgreSQL 15 (tests/conftest.py's fixtures, pgwire_util.postgres_and_session, ...)."""
    for var in ("CI", "MAKELEVEL"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    with pytest.raises(outcome, match="PostgreSQL 15 server binaries are not installed"):
        prereq.missing("PostgreSQL 15 server binaries are not installed")


def test_no_plain_skip_for_postgres() -> None:
    """No test skips on a missing PostgreSQL 15 but through prereq.missing (a skipif marker aside: listed)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    offenders = [f"{p.relative_to(root)}" for p in root.rglob("*.py")
                 if "skip(\"PostgreSQL 15" in p.read_text() or "skip(\"no PostgreSQL 15" in p.read_text()]  # fmt: skip
    assert offenders == [], offenders


def test_every_client_test_checks_for_its_client() -> None:
    """Each test taking a ``client`` parameter gets its report through client_report/_pair, which call
    client_missing first (so none can reach a missing program another way, or skip on its own).  The test
    modules are read, not imported (a test module imports no other)."""
    root = Path(__file__).resolve().parents[1]
    sources = {
        f: (root / f).read_text()
        for f in ("integration/test_client_scenarios.py", "differential/test_client_values.py")
    }
    trees = {f: ast.parse(text) for f, text in sources.items()}
    pair = next(
        node
        for node in trees["integration/test_client_scenarios.py"].body
        if isinstance(node, ast.FunctionDef) and node.name == "_pair"
    )
    for helper_src in (
        inspect.getsource(harness.client_report),
        ast.get_source_segment(sources["integration/test_client_scenarios.py"], pair),
    ):
        assert "client_missing(client)" in (helper_src or "")
    checked = 0
    for f, tree in trees.items():
        for node in tree.body:
            if (
                isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                and node.name.startswith("test_")
                and "client" in [a.arg for a in node.args.args]
            ):
                src = ast.get_source_segment(sources[f], node) or ""
                assert "_report(" in src or "_pair(" in src, (
                    f"{f}::{node.name} does not call client_report/_pair"
                )
                checked += 1
    assert checked >= 10


def test_client_servers_accept_tls_only() -> None:
    """The pg_hba.conf of the scenario servers (pgtls with either backend, PostgreSQL 15): TCP only as
    hostssl.  (test_client_scenarios.py::test_refuses_plain_tcp checks that both pgtls servers refuse it.)"""
    tcp = [line.split()[0] for line in harness.HBA.splitlines() if line and not line.startswith("local")]
    assert tcp and set(tcp) == {"hostssl"}
