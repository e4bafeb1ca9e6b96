"""pgtls reads CPython's ssl object layout through ctypes: the layout is probed in a child process first,
so a Python that keeps its objects elsewhere makes pgtls fail cleanly instead of crashing."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from pgtls.tls import ffi


def test_probe_passes_here():
    ffi._probe_in_child()  # this machine's Python is a supported one


def test_a_crashing_probe_is_a_clean_error(tmp_path, monkeypatch):
    crasher = tmp_path / "python"
    crasher.write_text("#!/bin/sh\nkill -SEGV $$\n")
    crasher.chmod(crasher.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(ffi.sys, "executable", str(crasher))
    monkeypatch.delenv(ffi._PROBE_ENV, raising=False)
    with pytest.raises(ffi.FfiError) as ei:
        ffi._probe_in_child()
    assert "signal 11" in str(ei.value) and ffi.SUPPORTED in str(ei.value)


def test_server_start_reports_it(tmp_path):
    """The same in a real process: a wrong offset makes the child's check fail, the parent says so."""
    code = (
        "import pgtls.tls.ffi as f; f._CTX_OFFSET += 8\n"
        "try:\n    f.libs()\nexcept f.FfiError as e:\n    print('FfiError', e)\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != ffi._PROBE_ENV},
    )
    assert p.stdout.startswith("FfiError"), p.stdout + p.stderr
