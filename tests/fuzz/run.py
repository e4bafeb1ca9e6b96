"""Run the atheris fuzz targets of tests/fuzz for a bounded time each; exit non-zero if any found something.

    python tests/fuzz/run.py [--seconds N] [--jobs J] [--keep-corpus DIR] [targets...]

Each target (``tests/fuzz/fuzz_<name>.py``) runs as its own process under libFuzzer with
``-max_total_time=N -timeout=10 -rss_limit_mb=2048 -print_final_stats=1``, starting from a scratch copy of
``tests/fuzz/corpus/<name>`` plus ``tests/fuzz/crashers/<name>`` (the repository is never written), with
``TMPDIR`` and the working directory inside that scratch directory, which is removed afterwards.  Up to J
targets run at once.  A crash, a hang (libFuzzer's per-input timeout), an out-of-memory or an uncaught
exception fails the target; the input is kept under a temporary directory whose path is printed, with
the target's log.  One summary line per target: result, executions, coverage (cov/ft), corpus size.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CORPUS = HERE / "corpus"
CRASHERS = HERE / "crashers"
PER_INPUT_TIMEOUT = 10
RSS_LIMIT_MB = 2048
DEFAULT_SECONDS = 30


def all_targets() -> list[str]:
    return sorted(p.stem.removeprefix("fuzz_") for p in HERE.glob("fuzz_*.py"))


@dataclass
class Result:
    target: str
    result: str = "not run"  # ok | crash | hang | oom | exception | error
    execs: int = 0
    cov: int = 0
    ft: int = 0
    corpus: int = 0
    seconds: float = 0.0
    returncode: int | None = None
    artifacts: list[str] = field(default_factory=list)
    saved: str | None = None  # directory holding the failing input(s) and the log
    tail: str = ""

    @property
    def ok(self) -> bool:
        return self.result == "ok"

    def summary(self) -> str:
        line = (
            f"{self.target:<9} {self.result:<9} execs={self.execs:<9} cov={self.cov:<5} ft={self.ft:<6} "
            f"corpus={self.corpus:<5} {self.seconds:5.1f}s"
        )
        if self.saved:
            line += f"  saved: {self.saved}"
        return line


def _classify(rc: int, log: str) -> str:
    if "ERROR: libFuzzer: timeout" in log:
        return "hang"
    if "out-of-memory" in log or "ERROR: libFuzzer: out-of-memory" in log:
        return "oom"
    if "Uncaught Python exception" in log:
        return "exception"
    if "ERROR: libFuzzer: deadly signal" in log or "ERROR: AddressSanitizer" in log or rc < 0:
        return "crash"
    if rc != 0:
        return "error"
    return "ok"


def _stats(res: Result, log: str) -> None:
    m = re.search(r"stat::number_of_executed_units:\s*(\d+)", log)
    if m:
        res.execs = int(m.group(1))
    status = re.findall(r"#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+)(?: corp: (\d+))?", log)
    if status:
        n, cov, ft, corp = status[-1]
        res.cov, res.ft = int(cov), int(ft)
        res.corpus = int(corp) if corp else res.corpus
        res.execs = res.execs or int(n)
    res.artifacts = re.findall(r"Test unit written to (\S+)", log)


def run_target(target: str, seconds: int, keep_corpus: Path | None = None) -> Result:
    """Fuzz one target for ``seconds``; never raises for what the target finds."""
    res = Result(target)
    script = HERE / f"fuzz_{target}.py"
    if not script.is_file():
        res.result, res.tail = "error", f"no such target: {script}"
        return res
    scratch = Path(tempfile.mkdtemp(prefix=f"pgtls-fuzz-{target}-"))
    try:
        corpus = scratch / "corpus"
        corpus.mkdir()
        for src in (CORPUS / target, CRASHERS / target):
            if src.is_dir():
                for f in src.iterdir():
                    if f.is_file():
                        shutil.copyfile(
                            f, corpus / f"{src.name}-{f.name}" if src.parent == CRASHERS else corpus / f.name
                        )
        artifacts = scratch / "artifacts"
        artifacts.mkdir()
        tmp = scratch / "tmp"
        tmp.mkdir()
        env = dict(
            os.environ,
            TMPDIR=str(tmp),
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            PYTHONDONTWRITEBYTECODE="1",
        )
        cmd = [
            sys.executable,
            str(script),
            f"-max_total_time={seconds}",
            f"-timeout={PER_INPUT_TIMEOUT}",
            f"-rss_limit_mb={RSS_LIMIT_MB}",
            "-print_final_stats=1",
            f"-artifact_prefix={artifacts}/",
            str(corpus),
        ]
        log_path = scratch / "log.txt"
        start = time.monotonic()
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(
                cmd, cwd=scratch, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
            )
            try:
                # libFuzzer stops itself; the margin covers start-up and a last slow input (-timeout).
                proc.wait(timeout=seconds + 4 * PER_INPUT_TIMEOUT + 60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                log_file.write(b"\nrun.py: ERROR: libFuzzer: timeout (the whole run overran; killed)\n")
        res.seconds = time.monotonic() - start
        res.returncode = proc.returncode
        log = log_path.read_text("utf-8", "replace")
        res.result = _classify(proc.returncode, log)
        _stats(res, log)
        res.corpus = res.corpus or sum(1 for _ in corpus.iterdir())
        if keep_corpus is not None:
            dest = keep_corpus / target
            dest.mkdir(parents=True, exist_ok=True)
            for f in corpus.iterdir():
                shutil.copyfile(f, dest / f.name)
        if not res.ok:
            saved = Path(
                tempfile.mkdtemp(
                    prefix=f"pgtls-fuzz-{target}-found-", dir=os.environ.get("PGTLS_FUZZ_ARTIFACTS") or None
                )
            )
            shutil.copyfile(log_path, saved / "log.txt")
            for f in artifacts.iterdir():
                shutil.copyfile(f, saved / f.name)
            res.saved = str(saved)
            res.artifacts = [str(saved / Path(a).name) for a in res.artifacts]
            res.tail = "\n".join(log.splitlines()[-40:])
        return res
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run_targets(
    targets: list[str], seconds: int, jobs: int = 2, keep_corpus: Path | None = None
) -> dict[str, Result]:
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {t: pool.submit(run_target, t, seconds, keep_corpus) for t in targets}
        return {t: f.result() for t, f in futures.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument("targets", nargs="*", help=f"default: all ({', '.join(all_targets())})")
    p.add_argument(
        "--seconds",
        type=int,
        default=int(os.environ.get("PGTLS_FUZZ_SECONDS", DEFAULT_SECONDS)),
        help="fuzzing time per target (default: $PGTLS_FUZZ_SECONDS or %(default)s)",
    )
    p.add_argument("--jobs", type=int, default=2, help="targets run at once (default: %(default)s)")
    p.add_argument(
        "--keep-corpus",
        type=Path,
        default=None,
        help="copy each target's final corpus to DIR/<target> (to grow the committed seeds by hand)",
    )
    args = p.parse_args(argv)
    targets = args.targets or all_targets()
    unknown = [t for t in targets if t not in all_targets()]
    if unknown:
        p.error(f"unknown target(s): {', '.join(unknown)}")
    results = run_targets(targets, args.seconds, args.jobs, args.keep_corpus)
    failed = [r for r in results.values() if not r.ok]
    for r in results.values():
        print(r.summary(), flush=True)
    for r in failed:
        print(
            f"\n--- {r.target}: {r.result}; input(s): {', '.join(r.artifacts) or '(none)'}; log: {r.saved}/log.txt"
        )
        print(r.tail)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
