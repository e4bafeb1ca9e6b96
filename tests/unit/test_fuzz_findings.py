"""Regression tests for what the fuzz targets of tests/fuzz found (docs/fuzzing.md, "Findings")."""

from __future__ import annotations

import resource
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

from pgtls.backends.relay.wire import WATCH_PREFIX, FrontendTracker


def _msg(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


def test_watched_start_is_whole_when_the_body_is_split_across_chunks():
    """fuzz_frontend: a Query whose body arrived in two reads was handed over cut at the first read's end, so
    the relay's check for DROP DATABASE / ALTER ROLE ... SET (which closes idle pooled sessions first) saw
    ``DR`` and missed it."""
    q = _msg(b"Q", b"DROP DATABASE app\0")
    t = FrontendTracker(frozenset(b"QP"))
    out = b""
    for i in range(len(q)):  # one byte per read
        out += t.feed(q[i : i + 1])
    assert out == q
    assert t.watched == [q]


def test_watched_start_is_capped_and_whole_across_many_chunks():
    body = b"alter role bob set work_mem = '1MB'" + b" " * 500 + b"\0"
    q = _msg(b"Q", body)
    stream = q + _msg(b"P", b"s\0DROP DATABASE x\0\0\0") + _msg(b"S", b"")
    t = FrontendTracker(frozenset(b"QP"))
    for i in range(0, len(stream), 7):
        t.feed(stream[i : i + 7])
    assert t.watched == [q[:WATCH_PREFIX], _msg(b"P", b"s\0DROP DATABASE x\0\0\0")]
    assert t.synced


def test_watched_start_of_an_unfinished_message_is_not_handed_over():
    q = _msg(b"Q", b"DROP DATABASE app\0")
    t = FrontendTracker(frozenset(b"Q"))
    t.feed(q[:9])
    assert t.watched == []
    t.feed(q[9:])
    assert t.watched == [q]


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def test_check_reads_a_device_named_as_certificate_boundedly(tmp_path: Path):
    """fuzz_check/fuzz_pem: ``ssl_cert_file = '/dev/zero'`` made ``pgtls check`` read until memory ran out
    (a device reports size 0, so the size check passed); key_is_encrypted() read the whole file too."""
    (tmp_path / "postgresql.conf").write_text(
        "ssl = on\nssl_cert_file = '/dev/zero'\nssl_key_file = '/dev/zero'\n"
    )
    code = textwrap.dedent(f"""
        from pathlib import Path
        from pgtls.certs.checkdir import run_check
        from pgtls.certs.pemfiles import key_is_encrypted
        findings = run_check(Path({str(tmp_path)!r}))
        print([f.message for f in findings if f.file == "/dev/zero"])
        print(key_is_encrypted("/dev/zero"))
    """)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, preexec_fn=_limited
    )
    assert proc.returncode == 0, proc.stderr
    assert 'server certificate file "/dev/zero" is too large' in proc.stdout
    assert "MemoryError" not in proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[-1] == "False"
