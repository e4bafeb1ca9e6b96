"""The embedded backend's packages import one way (EMBEDDED_LAYERS.md): no cycle among its modules (imports
inside functions and under TYPE_CHECKING count), no package imports a higher one, nothing imports the server,
sql/ does without DuckDB, and no module name shadows the standard library."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pgtls.backends.embedded

ROOT = Path(pgtls.backends.embedded.__file__).parent
PKG = "pgtls.backends.embedded"
# lowest first; backend.py and __init__.py are the top
LAYERS = ["sql", "pgtypes", "engine", "jsonb", "catalog", "features", "rewrite", "fastpath", "session"]


def _modules() -> dict[str, Path]:
    mods = {}
    for p in ROOT.rglob("*.py"):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        mods[".".join([PKG] + (parts[:-1] if parts[-1] == "__init__" else parts))] = p
    return mods


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every module ``name`` imports, wherever the import statement is."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            subs = [f"{mod}.{a.name}" for a in node.names]
            found.update(s for s in subs if s in MODULES)
            if not all(s in MODULES for s in subs):
                found.add(mod)
    return found


def _internal(mod: str) -> str | None:
    while mod and mod not in MODULES:
        mod = mod.rpartition(".")[0]
    return mod or None


GRAPH = {n: {m for i in _imports(n, p) if (m := _internal(i)) and m != n} for n, p in MODULES.items()}


def _layer(mod: str) -> int:
    top = mod.removeprefix(PKG).lstrip(".").split(".")[0]
    return LAYERS.index(top) if top in LAYERS else len(LAYERS)


def test_no_import_cycle():
    state: dict[str, int] = {}  # 1 on the path, 2 done
    path: list[str] = []

    def visit(n: str) -> None:
        state[n] = 1
        path.append(n)
        for m in sorted(GRAPH[n]):
            if state.get(m) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(m):] + [m]))
            if m not in state:
                visit(m)
        path.pop()
        state[n] = 2

    for n in sorted(GRAPH):
        if n not in state:
            visit(n)


def test_packages_import_only_their_own_or_lower_ones():
    upward = sorted(f"{a} -> {b}" for a, deps in GRAPH.items() for b in deps if _layer(b) > _layer(a))
    assert upward == []


def test_no_server_import_and_no_duckdb_in_sql():
    assert sorted(n for n, p in MODULES.items() if any(i.startswith("pgtls.server") for i in _imports(n, p))) == []
    assert sorted(n for n, p in MODULES.items() if n.startswith(f"{PKG}.sql") and "duckdb" in _imports(n, p)) == []


def test_no_module_shadows_the_standard_library():
    names = [p.stem for p in ROOT.rglob("*.py")] + [p.name for p in ROOT.rglob("*") if p.is_dir()]
    assert sorted(n for n in names if n in sys.stdlib_module_names) == []
