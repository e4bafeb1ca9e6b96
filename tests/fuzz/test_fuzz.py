"""The fuzz stage of the test suite: every atheris target for a bounded time, plus the regression replay.

* ``test_fuzz_target[<name>]`` -- the target fuzzed for ``$PGTLS_FUZZ_SECONDS`` (default 6) seconds from its
  committed corpus.  The selected targets run together, ``$PGTLS_FUZZ_JOBS`` (default 2) at a time, when the
  first of these tests starts; each test then reports its own target.  Any crash, hang or uncaught exception
  fails it, and the message names the saved input.
* ``test_replay[<name>/<file>]`` -- every file of ``tests/fuzz/crashers/<name>/`` (inputs that once failed)
  and of the seed corpus, run through the target's function in this process: fast, no atheris needed.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fuzz import run

HERE = Path(__file__).resolve().parent
SECONDS = int(os.environ.get("PGTLS_FUZZ_SECONDS", "6"))
JOBS = int(os.environ.get("PGTLS_FUZZ_JOBS", "2"))
TARGETS = run.all_targets()
# Generous: all targets may run inside the first test (pytest-timeout counts fixture setup).
STAGE_TIMEOUT = len(TARGETS) * (SECONDS + 4 * run.PER_INPUT_TIMEOUT + 60) // max(1, JOBS) + 120


@pytest.fixture(scope="session")
def fuzz_results(request: pytest.FixtureRequest) -> dict[str, run.Result]:
    selected = [
        item.callspec.params["target"]
        for item in request.session.items
        if item.originalname == "test_fuzz_target" and hasattr(item, "callspec")
    ]
    return run.run_targets(selected or TARGETS, SECONDS, JOBS)


@pytest.mark.timeout(STAGE_TIMEOUT)
@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_target(target: str, fuzz_results: dict[str, run.Result]) -> None:
    res = fuzz_results[target]
    print(res.summary())
    assert res.ok, (
        f"{res.summary()}\ninput(s): {', '.join(res.artifacts) or '(none)'}; log: {res.saved}/log.txt\n{res.tail}\n"
        f"Reproduce: python tests/fuzz/fuzz_{target}.py <input>; keep it as a regression in "
        f"tests/fuzz/crashers/{target}/ (see docs/fuzzing.md)."
    )


def _replay_cases() -> list[object]:
    cases: list[object] = []
    for kind in ("crashers", "corpus"):
        for target_dir in sorted((HERE / kind).iterdir()) if (HERE / kind).is_dir() else ():
            for f in sorted(target_dir.iterdir()):
                if f.is_file() and not f.name.startswith("."):
                    cases.append(pytest.param(target_dir.name, f, id=f"{kind}/{target_dir.name}/{f.name}"))
    return cases


def _target_function(target: str) -> Callable[[bytes], None]:
    module = importlib.import_module(f"tests.fuzz.fuzz_{target}")
    return module.test_one_input  # type: ignore[no-any-return]


@pytest.mark.parametrize(("target", "path"), _replay_cases())
def test_replay(target: str, path: Path) -> None:
    assert target in TARGETS, f"{path}: no fuzz target named {target!r}"
    _target_function(target)(path.read_bytes())
