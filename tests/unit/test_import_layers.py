"""The shape of the ``pgtls`` package, checked from its source (stdlib ``ast`` only, no module is imported):

* no import cycle between pgtls modules;
* no import that runs up a layer (:data:`LAYERS`, lowest first), nor sideways between the independent parts
  of one layer;
* no module named like a standard-library module;
* PostgreSQL's limits defined once (pgtls/protocol/limits.py);
* no test module importing another (shared fixtures go in a conftest.py, shared helpers in support modules).

What counts as an import: every ``import`` / ``from … import`` statement, at module level or inside a
function (a function-level import is still a dependency: it only moves the moment it bites), except those
under ``if TYPE_CHECKING:`` for the cycle check (they never run).  ``from pgtls.x import y`` where ``y`` is a
submodule imports ``pgtls.x.y``; an import of ``pgtls.x.y`` also runs the ``__init__`` of ``pgtls.x``.

A lower module that needs something of a higher one gets it as a :class:`typing.Protocol` it declares, as a
value or callable passed in, or by moving the shared piece down (docs/architecture.md).
"""

from __future__ import annotations

import ast
import re
import sys
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "pgtls"
PACKAGE_DIR = Path(__file__).resolve().parents[2] / PACKAGE  # this checkout's, whatever is installed

# The layers of pgtls, lowest first.  A module may import from its own part and from lower layers; the parts
# of one layer are independent of each other (neither imports the other).  An entry names a module or a
# package with everything under it; a module belongs to its longest matching entry (so
# "pgtls.backends.relay" takes the relay out of "pgtls.backends").  The root entry "pgtls" is only the
# package's own __init__ (its version).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("pgtls", "pgtls.errors", "pgtls.osproc", "pgtls.log"),  # no pgtls imports at all
    ("pgtls.protocol",),  # the wire format (sans-IO) and PostgreSQL's limits (protocol/limits.py)
    ("pgtls.config",),  # the configuration files
    ("pgtls.tls",),  # TLS contexts, handshakes, certificate facts (uses config for SNI files)
    ("pgtls.auth", "pgtls.certs"),  # roles and authentication exchanges; certificate tooling
    ("pgtls.backends",),  # the package and base.py: what a backend and a session are
    ("pgtls.backends.relay", "pgtls.backends.embedded"),  # the two backends, unaware of each other
    ("pgtls.server", "pgtls.role_cli"),  # the server (listeners, connections, workers); `pgtls role`
    ("pgtls.cli",),  # the command line
    ("pgtls.demo", "pgtls.__main__"),  # entry points over the command line
)

# Packages with layers of their own, lowest first, with the same rules inside them (docs/architecture.md).
# The DuckDB backend: SQL text, then types, DuckDB execution, jsonb, the catalog, features, rewrites, point
# lookups, the session, the backend object, and the package's __init__ on top.
_EMBEDDED = "pgtls.backends.embedded"
SUBLAYERS: dict[str, tuple[tuple[str, ...], ...]] = {
    _EMBEDDED: (
        *(
            (f"{_EMBEDDED}.{part}",)
            for part in (
                "sql",
                "pgtypes",
                "engine",
                "jsonb",
                "catalog",
                "features",
                "rewrite",
                "fastpath",
                "session",
            )
        ),
        (f"{_EMBEDDED}.backend",),
        (_EMBEDDED,),  # its __init__: what the package exports
    ),
}
# Packages in which an import of a third-party module would be out of place: (package, module).
FORBIDDEN_THIRD_PARTY: tuple[tuple[str, str], ...] = ((f"{_EMBEDDED}.sql", "duckdb"),)

# Cycles among the modules inside these packages are not reported (each package counts as one node, so a
# cycle through it and the rest of pgtls still is).  None now; kept for a package being untangled.
CYCLE_CHECK_EXCLUDES: tuple[str, ...] = ()

# Known imports up a layer, as (importing module or package, imported module or package).  None now.
KNOWN_UP_LAYER_IMPORTS: tuple[tuple[str, str], ...] = ()

# Module names inside these packages that still shadow the standard library.  None now.
STDLIB_SHADOW_PENDING: tuple[str, ...] = ()

# Not the standard library's, but misleading all the same: a setup.py reads as a packaging script.
MISLEADING_NAMES: tuple[str, ...] = ("setup",)

# PostgreSQL's limits are defined once, in pgtls/protocol/limits.py.  LIMITS_DEFINED_AGAIN_PENDING: packages
# still defining one again (none now).
LIMITS_MODULE = "pgtls.protocol.limits"
LIMITS_DEFINED_AGAIN_PENDING: tuple[str, ...] = ()

# Test modules that still import another test module (none now): prefixes of their names.
TEST_IMPORTS_PENDING: tuple[str, ...] = ()
TESTS_DIR = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Import:
    importer: str
    target: str  # the module the statement names (a submodule, for ``from package import submodule``)
    runs: tuple[str, ...]  # every pgtls module the statement may run: the target and its packages' __init__s
    line: int
    type_checking: bool  # under ``if TYPE_CHECKING:``
    in_function: bool


def find_modules(package_dir: Path, package: str) -> dict[str, Path]:
    """Every module of the package under ``package_dir``: dotted name → file (a package → its __init__.py)."""
    modules: dict[str, Path] = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join([package, *parts])] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Collector(ast.NodeVisitor):
    def __init__(self) -> None:
        self.found: list[tuple[ast.Import | ast.ImportFrom, bool, bool]] = []
        self._type_checking = 0
        self._functions = 0

    def visit_If(self, node: ast.If) -> None:
        if not _is_type_checking(node.test):
            self.generic_visit(node)
            return
        self._type_checking += 1
        for stmt in node.body:
            self.visit(stmt)
        self._type_checking -= 1
        for stmt in node.orelse:
            self.visit(stmt)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        self._functions += 1
        self.generic_visit(node)
        self._functions -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def _import(self, node: ast.Import | ast.ImportFrom) -> None:
        self.found.append((node, self._type_checking > 0, self._functions > 0))

    visit_Import = visit_ImportFrom = _import


def _ancestors(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _known(name: str, modules: Mapping[str, Path]) -> str | None:
    """``name`` or its longest prefix that is a module of the package (None: not one of ours)."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        candidate = ".".join(parts[:i])
        if candidate in modules:
            return candidate
    return None


def imports_of(module: str, modules: Mapping[str, Path]) -> list[Import]:
    """The imports of package modules in one module's source."""
    path = modules[module]
    is_package = path.name == "__init__.py"
    collector = _Collector()
    collector.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    out: list[Import] = []
    for node, type_checking, in_function in collector.found:
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [t for alias in node.names if (t := _known(alias.name, modules)) is not None]
        else:
            if node.level:
                base_parts = module.split(".") if is_package else module.split(".")[:-1]
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            known_base = _known(base, modules)
            if known_base is None:
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.append(sub if sub in modules else known_base)
        for target in dict.fromkeys(targets):
            if target == module:
                continue
            runs = [
                a
                for a in _ancestors(target)
                if a in modules and a != module and not module.startswith(a + ".")
            ]
            out.append(
                Import(module, target, tuple([*runs, target]), node.lineno, type_checking, in_function)
            )
    return out


def all_imports(modules: Mapping[str, Path]) -> list[Import]:
    return [imp for module in sorted(modules) for imp in imports_of(module, modules)]


def _unit(module: str, collapse: Iterable[str]) -> str:
    for package in collapse:
        if module == package or module.startswith(package + "."):
            return package
    return module


def import_graph(imports: Iterable[Import], collapse: Iterable[str] = ()) -> dict[str, set[str]]:
    """Module → the modules its imports run (``if TYPE_CHECKING:`` ones left out); the packages in
    ``collapse`` are one node each."""
    collapse = tuple(collapse)
    graph: dict[str, set[str]] = {}
    for imp in imports:
        source = _unit(imp.importer, collapse)
        graph.setdefault(source, set())
        if imp.type_checking:
            continue
        for ran in imp.runs:
            target = _unit(ran, collapse)
            if target != source:
                graph[source].add(target)
                graph.setdefault(target, set())
    return graph


def tangles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected sets of more than one module (Tarjan's algorithm, iteratively), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def find_cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """One shortest cycle per tangle (strongly connected set of modules), as a chain that ends where it
    starts: ``[a, b, c, a]``."""
    cycles = []
    for component in tangles(graph):
        members = set(component)
        start = component[0]
        came_from: dict[str, str] = {}
        queue = deque([start])
        while queue:
            node = queue.popleft()
            if start in graph[node] and node in members:
                chain = [node]
                while chain[-1] != start:
                    chain.append(came_from[chain[-1]])
                cycles.append([*reversed(chain), start])
                break
            for child in sorted(graph[node]):
                if child in members and child not in came_from and child != start:
                    came_from[child] = node
                    queue.append(child)
    return cycles


def _matches(module: str, entry: str, root: str) -> bool:
    return module == entry or (entry != root and module.startswith(entry + "."))


def layer_of(module: str, layers: tuple[tuple[str, ...], ...], root: str = PACKAGE) -> tuple[int, str] | None:
    """(layer index, part) of a module: its longest matching entry in ``layers``; None if in none."""
    best: tuple[int, str] | None = None
    for i, layer in enumerate(layers):
        for entry in layer:
            if _matches(module, entry, root) and (best is None or len(entry) > len(best[1])):
                best = (i, entry)
    return best


def layer_violations(
    imports: Iterable[Import],
    layers: tuple[tuple[str, ...], ...],
    root: str = PACKAGE,
    allowed: Iterable[tuple[str, str]] = (),
) -> list[str]:
    """Imports that run up a layer or sideways between two parts of one layer (``if TYPE_CHECKING:`` ones
    included: a lower layer should not know a higher one's types either), as readable lines."""
    allowed = tuple(allowed)
    out = []
    for imp in imports:
        here, there = layer_of(imp.importer, layers, root), layer_of(imp.target, layers, root)
        if here is None or there is None or here[1] == there[1] or there[0] < here[0]:
            continue
        if any(_matches(imp.importer, a, root) and _matches(imp.target, b, root) for a, b in allowed):
            continue
        how = "up from layer" if there[0] > here[0] else "sideways in layer"
        out.append(
            f"{imp.importer} (line {imp.line}) imports {imp.target}: {how} {here[0]} ({here[1]}) "
            f"to {there[0]} ({there[1]})"
        )
    return out


def stdlib_shadows(modules: Iterable[str], also: Iterable[str] = ()) -> list[str]:
    """Modules whose own name is a standard-library module's (``import types`` next to one reads wrong,
    and a script run from that directory would import it instead), or one of ``also``."""
    names = set(sys.stdlib_module_names) | set(also)
    return sorted(m for m in modules if m.rsplit(".", 1)[-1] in names)


# --- pgtls itself ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def modules() -> dict[str, Path]:
    return find_modules(PACKAGE_DIR, PACKAGE)


@pytest.fixture(scope="module")
def imports(modules: dict[str, Path]) -> list[Import]:
    return all_imports(modules)


def test_no_import_cycles(imports: list[Import]) -> None:
    graph = import_graph(imports, collapse=CYCLE_CHECK_EXCLUDES)
    report = [
        f"{' -> '.join(cycle)}\n    (tangled together: {', '.join(tangle)})"
        for cycle, tangle in zip(find_cycles(graph), tangles(graph), strict=True)
    ]
    assert not report, "import cycles:\n" + "\n".join(report)


def test_every_module_has_a_layer(modules: dict[str, Path]) -> None:
    assert [m for m in modules if layer_of(m, LAYERS) is None] == []


def test_no_imports_up_a_layer(imports: list[Import]) -> None:
    bad = layer_violations(imports, LAYERS, allowed=KNOWN_UP_LAYER_IMPORTS)
    assert not bad, "imports against the layers (LAYERS in this file):\n" + "\n".join(bad)


@pytest.mark.parametrize("package", sorted(SUBLAYERS))
def test_no_imports_up_a_layer_inside(package: str, imports: list[Import], modules: dict[str, Path]) -> None:
    layers = SUBLAYERS[package]
    inside = [m for m in modules if _matches(m, package, PACKAGE)]
    assert [m for m in inside if layer_of(m, layers, package) is None] == []
    bad = layer_violations(
        [i for i in imports if i.importer in inside and i.target in inside], layers, package
    )
    assert not bad, f"imports against {package}'s layers (SUBLAYERS in this file):\n" + "\n".join(bad)


def _third_party_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_no_forbidden_third_party_imports(modules: dict[str, Path]) -> None:
    bad = [
        f"{name} imports {lib}"
        for package, lib in FORBIDDEN_THIRD_PARTY
        for name, path in modules.items()
        if _matches(name, package, PACKAGE) and lib in _third_party_imports(path)
    ]
    assert bad == []


def test_known_up_layer_imports_still_exist(imports: list[Import]) -> None:
    """An exception that no longer matches anything is stale: remove it."""
    for low, high in KNOWN_UP_LAYER_IMPORTS:
        assert any(
            _matches(i.importer, low, PACKAGE) and _matches(i.target, high, PACKAGE) for i in imports
        ), (low, high)


def test_no_stdlib_names(modules: dict[str, Path]) -> None:
    shadows = stdlib_shadows(modules, also=MISLEADING_NAMES)
    pending = [m for m in shadows if any(_matches(m, p, PACKAGE) for p in STDLIB_SHADOW_PENDING)]
    assert [m for m in shadows if m not in pending] == []
    if pending:
        pytest.xfail(f"being renamed on another branch: {', '.join(pending)}")


def _module_level_names(path: Path) -> set[str]:
    names = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign)
            else []
        )
        names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def test_limits_defined_once(modules: dict[str, Path]) -> None:
    limits = _module_level_names(modules[LIMITS_MODULE])
    assert "NAMEDATALEN" in limits
    assigned = re.compile(rf"^(?:{'|'.join(sorted(limits))})\b\s*(?::[^=]*)?=", re.M)
    again = {
        name: sorted(limits & _module_level_names(path))
        for name, path in modules.items()
        if name != LIMITS_MODULE and assigned.search(path.read_text(encoding="utf-8"))
    }
    pending = [n for n in again if any(_matches(n, p, PACKAGE) for p in LIMITS_DEFINED_AGAIN_PENDING)]
    assert {n: v for n, v in again.items() if n not in pending and v} == {}, (
        f"import them from {LIMITS_MODULE}"
    )


# A line that may import a test module (only those files are parsed).
_MAY_IMPORT_A_TEST = re.compile(
    r"^\s*(?:from\s+tests\S*test_\w*\s+import|from\s+tests\S*\s+import\s+(?:\([^)]*|[^\n]*)test_|import\s+tests\S*test_)",
    re.M,
)


def test_no_test_module_imports_another() -> None:
    """Shared fixtures live in a conftest.py, shared helpers and data in support modules (no ``test_``
    prefix): a test module imported by another would also run its tests there, or hide that it is shared."""
    modules = find_modules(TESTS_DIR, "tests")
    bad = [
        f"{i.importer} (line {i.line}) imports {i.target}"
        for name, path in modules.items()
        if _MAY_IMPORT_A_TEST.search(path.read_text(encoding="utf-8"))
        for i in imports_of(name, modules)
        if i.target.rsplit(".", 1)[-1].startswith("test_") and not i.importer.startswith(TEST_IMPORTS_PENDING)
    ]
    assert bad == []


# --- the checker can fail -------------------------------------------------------------------------


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_checker_reports_cycles_and_up_layer_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "toy"
    _write(
        pkg,
        {
            "__init__.py": "",
            "low/__init__.py": "from toy.low.a import A\n",
            "low/a.py": "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from toy.high import H  # type-only: no cycle, but against the layers\n"
            "A = 1\n"
            "def f():\n    from toy.low import b\n    return b\n",
            "low/b.py": "from . import c\n",
            "low/c.py": "import toy.low.a\n",  # a -> b -> c -> a: only the function-level import closes it
            "high.py": "from toy.low import a\nH = 2\n",
            "mid.py": "import toy.high\n",  # up a layer, and a package's __init__ runs: no cycle here
            "copy.py": "",
            "setup.py": "",
        },
    )
    modules = find_modules(pkg, "toy")
    assert set(modules) == {
        "toy",
        "toy.low",
        "toy.low.a",
        "toy.low.b",
        "toy.low.c",
        "toy.high",
        "toy.mid",
        "toy.copy",
        "toy.setup",
    }
    imports = all_imports(modules)
    b_imports = [i for i in imports if i.importer == "toy.low.b"]
    assert [(i.target, i.runs) for i in b_imports] == [("toy.low.c", ("toy.low.c",))]

    cycles = find_cycles(import_graph(imports))
    assert cycles == [["toy.low.a", "toy.low.b", "toy.low.c", "toy.low.a"]]
    assert find_cycles(import_graph(imports, collapse=("toy.low",))) == []

    layers = (("toy", "toy.copy", "toy.setup"), ("toy.low",), ("toy.mid",), ("toy.high",))
    bad = layer_violations(imports, layers, root="toy")
    assert bad == [
        "toy.low.a (line 3) imports toy.high: up from layer 1 (toy.low) to 3 (toy.high)",
        "toy.mid (line 1) imports toy.high: up from layer 2 (toy.mid) to 3 (toy.high)",
    ]
    assert (
        layer_violations(
            imports, layers, root="toy", allowed=[("toy.low", "toy.high"), ("toy.mid", "toy.high")]
        )
        == []
    )
    sideways = layer_violations(imports, (("toy",), ("toy.low", "toy.high", "toy.mid")), root="toy")
    assert "toy.high (line 1) imports toy.low.a: sideways in layer 1 (toy.high) to 1 (toy.low)" in sideways
    assert layer_of("toy.low.c", layers, "toy") == (1, "toy.low")
    assert layer_of("toy.other", layers, "toy") is None  # the root entry is the __init__ only
    assert stdlib_shadows(modules) == ["toy.copy"]
    assert stdlib_shadows(modules, also=["setup"]) == ["toy.copy", "toy.setup"]
