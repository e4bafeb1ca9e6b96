"""Shared pieces of the fuzz targets: the libFuzzer entry point, input splitting, a scratch directory.

A target module defines ``test_one_input(data: bytes) -> None`` that returns normally for every input the
code under test handles as designed (including its documented refusals) and raises for anything else: an
unexpected exception type, or an ``AssertionError`` from a broken invariant.  ``main`` hands that function to
libFuzzer; the regression replay (tests/fuzz/test_fuzz.py) calls it directly.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

SEP = b"\n%%\n"  # separates the parts of a multi-part input (files, messages)

_scratch: Path | None = None


def scratch() -> Path:
    """An empty directory for this input's files (one per process, emptied before each use).

    The runner points TMPDIR at a directory it removes afterwards, so nothing is left behind even when
    libFuzzer ends the process without running atexit handlers.
    """
    global _scratch
    if _scratch is None:
        _scratch = Path(tempfile.mkdtemp(prefix="pgtls-fuzz-"))
        atexit.register(shutil.rmtree, _scratch, True)
    for entry in os.scandir(_scratch):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            os.unlink(entry.path)
    return _scratch


def parts(data: bytes, n: int) -> list[bytes]:
    """``data`` split at :data:`SEP` into exactly ``n`` parts (missing ones empty, extra ones joined to the last)."""
    out = data.split(SEP, n - 1)
    return out + [b""] * (n - len(out))


def chunked(data: bytes, seed: int) -> Iterator[bytes]:
    """``data`` cut into chunks whose sizes follow ``seed`` (0: one chunk), as TCP/TLS might deliver it."""
    if seed == 0:
        yield data
        return
    sizes = [1 + (seed >> s & 0x7) * (1 + (seed >> 4 & 0xF)) for s in (0, 3, 5)]
    pos = i = 0
    while pos < len(data):
        n = sizes[i % len(sizes)]
        yield data[pos : pos + n]
        pos += n
        i += 1


def may_escape(text: bytes, *, escapes: bool = True) -> bool:
    """True if a configuration file could name a file outside the scratch directory.

    ``include``/``@file``/a file setting resolve relative paths next to the including file, which is in
    the scratch directory; an absolute path or ``..`` could reach ``/dev/zero`` or the whole file system,
    and so could an escape in a quoted postgresql.conf string (``\\057`` is ``/``; ``escapes=False`` for the
    authentication files, which have none).  Such inputs are skipped: reading what a path names is
    PostgreSQL's behaviour, not a parser bug.
    """
    return b"/" in text or b".." in text or (escapes and b"\\" in text)


_AUTH_INCLUDE = re.compile(rb"include|(?:^|[ \t\r\n,])@")


def auth_file_may_escape(text: bytes) -> bool:
    """:func:`may_escape` for pg_hba.conf/pg_ident.conf: only when the file includes another (``include*``,
    a token starting with ``@``)."""
    return _AUTH_INCLUDE.search(text) is not None and may_escape(text, escapes=False)


def instrumented(module_name: str) -> AbstractContextManager[object]:
    """Around a target's pgtls imports: atheris instruments them for coverage when the target runs as the
    fuzzer (``__main__``); imported by the replay tests, the modules stay as they are."""
    if module_name != "__main__":
        return contextlib.nullcontext()
    import atheris

    return atheris.instrument_imports(include=["pgtls"])  # type: ignore[no-any-return]


def main(test_one_input: Callable[[bytes], None]) -> None:
    import atheris

    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
