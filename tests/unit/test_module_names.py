"""No module of pgtls, tests or bench binds the same name twice at its top level or in a class body (stdlib
``ast`` only).

A second ``NAME = ...`` at module level silently wins over the first for every function that reads it at call
time, including functions written above it: a test sized by the first value then runs with the second (one did,
1,000 idle clients that became 10,000).  A second ``def test_x`` in a module or a test class hides the first,
which then never runs.  ruff's F811 covers functions and imports redefined while unused, not constants; this
covers both, in modules and class bodies (property setters and deleters and ``@overload`` excepted).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TREES = ("pgtls", "tests", "bench")


def _rebinds(decorators: list[ast.expr]) -> bool:
    """A def that adds to an earlier one of its name instead of replacing it."""
    return any(
        (isinstance(d, ast.Attribute) and d.attr in ("setter", "deleter"))
        or (isinstance(d, ast.Name) and d.id == "overload")
        or (isinstance(d, ast.Attribute) and d.attr == "overload")
        for d in decorators
    )


def bindings_twice(body: list[ast.stmt]) -> dict[str, list[int]]:
    """Each name that the statements of one module or class body bind more than once by an assignment, def or
    class, with the lines that bind it (imports and conditional blocks such as ``if TYPE_CHECKING:`` or
    ``try: import …`` are not counted)."""
    seen: dict[str, list[int]] = defaultdict(list)
    for node in body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if not _rebinds(node.decorator_list):
                seen[node.name].append(node.lineno)
        elif isinstance(node, ast.ClassDef):
            seen[node.name].append(node.lineno)
        for target in targets:
            if isinstance(target, ast.Name):
                seen[target.id].append(node.lineno)
    return {name: lines for name, lines in seen.items() if len(lines) > 1}


def names_bound_twice(tree: ast.Module) -> dict[str, list[int]]:
    """:func:`bindings_twice` for the module's top level and every class body in it (``Class.name``)."""
    found = bindings_twice(tree.body)
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            found.update({f"{node.name}.{k}": v for k, v in bindings_twice(node.body).items()})
    return found


def test_the_check_sees_names_bound_twice() -> None:
    tree = ast.parse("N = 1\n\ndef f() -> int:\n    return N\n\nN = 10\nclass C: ...\nM: int = 2\n")
    assert names_bound_twice(tree) == {"N": [1, 6]}
    assert names_bound_twice(ast.parse("def g(): ...\nasync def g(): ...\n")) == {"g": [1, 2]}
    hidden = "class TestX:\n    def test_a(self): ...\n    def test_a(self): ...\n"
    assert names_bound_twice(ast.parse(hidden)) == {"TestX.test_a": [2, 3]}
    prop = "class P:\n    @property\n    def v(self): ...\n    @v.setter\n    def v(self, x): ...\n"
    assert names_bound_twice(ast.parse(prop)) == {}


@pytest.mark.parametrize("top", TREES)
def test_no_name_is_bound_twice_in_a_module_or_class(top: str) -> None:
    problems = []
    for path in sorted((ROOT / top).rglob("*.py")):
        for name, lines in names_bound_twice(ast.parse(path.read_text(), str(path))).items():
            problems.append(f"{path.relative_to(ROOT)}: {name} bound at lines {', '.join(map(str, lines))}")
    assert not problems, "\n".join(problems)
