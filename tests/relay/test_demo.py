"""`make demo`: the connection line appears only once the server and its PostgreSQL accept connections.

Run under CPU load (busy processes on every core), the printed psql line is used the instant it
appears; it must work every time, with sslmode=verify-full and the client certificate, and the
acceptance's first steps must succeed through it.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _burn() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def _psql(conninfo: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    return subprocess.run(
        ["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", *args, conninfo],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def _start_demo(tmp_path: Path) -> tuple[subprocess.Popen[str], str]:
    errors = tmp_path / "demo-stderr.log"
    with errors.open("w") as err:
        demo = subprocess.Popen(
            [sys.executable, "-m", "pgtls.demo", "--dir", str(tmp_path / "demo")],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    assert demo.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = demo.stdout.readline()
        if not line:
            break
        m = re.match(r"\s+psql (.+)$", line)
        if m:
            return demo, shlex.split(m.group(1))[0]
    demo.kill()
    demo.wait(timeout=30)
    pytest.fail(
        f"make demo printed no psql line (exit {demo.returncode}); its stderr ends:\n"
        + errors.read_text(errors="replace")[-3000:]
    )


@pytest.mark.parametrize("attempt", range(2))
def test_printed_line_works_at_once_under_load(tmp_path, attempt):
    burners = [_burn() for _ in range(os.cpu_count() or 2)]
    try:
        demo, conninfo = _start_demo(tmp_path)
        try:
            assert "sslmode=verify-full" in conninfo and "sslcert=" in conninfo
            r = _psql(conninfo, "-c", "select ssl_is_used(), ssl_client_dn() is not null, current_user")
            assert r.returncode == 0, r.stderr
            assert r.stdout.strip().startswith("t|t|")
        finally:
            demo.send_signal(signal.SIGINT)
            demo.wait(60)
    finally:
        for b in burners:
            b.kill()
            b.wait()


def test_acceptance_through_the_demo_line(tmp_path):
    """pgbench -i -s 1, pgbench -S -T 5 (no failed transactions), and a PL/pgSQL function."""
    demo, conninfo = _start_demo(tmp_path)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        r = subprocess.run(
            ["pgbench", "-i", "-s", "1", conninfo], capture_output=True, text=True, timeout=120, env=env
        )
        assert r.returncode == 0, r.stderr
        r = subprocess.run(
            ["pgbench", "-S", "-T", "5", conninfo], capture_output=True, text=True, timeout=120, env=env
        )
        assert r.returncode == 0, r.stderr
        assert "number of failed transactions: 0 (0.000%)" in r.stdout, r.stdout
        r = _psql(
            conninfo,
            "-c",
            "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$",
            "-c",
            "SELECT f()",
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip().splitlines()[-1] == "1"
    finally:
        demo.send_signal(signal.SIGINT)
        assert demo.wait(60) == 0
