"""No module of pgtls, tests or bench binds the same top-level name twice (stdlib ``ast`` only).

A second ``NAME = ...`` at module level silently wins over the first for every function that reads it at call
time, including functions written above it: a test sized by the first value then runs with the second (one did,
1,000 idle clients that became 10,000).  ruff's F811 covers functions and imports redefined while unused, not
constants; this covers both, at the top level of every module.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TREES = ("pgtls", "tests", "bench")


def top_level_bindings(tree: ast.Module) -> dict[str, list[int]]:
    """Each name bound by a top-level assignment, def or class, with the lines that bind it (imports and
    conditional blocks such as ``if TYPE_CHECKING:`` or ``try: import …`` are not counted)."""
    seen: dict[str, list[int]] = defaultdict(list)
    for node in tree.body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            seen[node.name].append(node.lineno)
        for target in targets:
            if isinstance(target, ast.Name):
                seen[target.id].append(node.lineno)
    return {name: lines for name, lines in seen.items() if len(lines) > 1}


def test_the_check_sees_a_constant_bound_twice() -> None:
    tree = ast.parse("N = 1\n\ndef f() -> int:\n    return N\n\nN = 10\nclass C: ...\nM: int = 2\n")
    assert top_level_bindings(tree) == {"N": [1, 6]}
    assert top_level_bindings(ast.parse("def g(): ...\nasync def g(): ...\n")) == {"g": [1, 2]}


@pytest.mark.parametrize("top", TREES)
def test_no_top_level_name_is_bound_twice(top: str) -> None:
    problems = []
    for path in sorted((ROOT / top).rglob("*.py")):
        for name, lines in top_level_bindings(ast.parse(path.read_text(), str(path))).items():
            problems.append(f"{path.relative_to(ROOT)}: {name} bound at lines {', '.join(map(str, lines))}")
    assert not problems, "\n".join(problems)
