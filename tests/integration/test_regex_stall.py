"""Issue 12, finding 5: one slow regular expression must not stall the server.

With Python's backtracking ``re``, the pg_hba.conf user ``/^(a|aa)+$`` against a 39-character user
name ``aaa...ab`` took about 5 s, holding the event loop (and the GIL): every other session froze.
pgtls now matches pg_hba.conf / pg_ident.conf regular expressions with RE2 (linear time), so another
session's queries keep being answered promptly while such logins arrive.
"""

from __future__ import annotations

import struct
import threading
import time

import psycopg
import pytest

from tests.pgtlsserver import PgtlsServer
from tests.rawclient import Raw, first_error

pytestmark = pytest.mark.timeout(180)

EVIL_USER = "a" * 39 + "b"
HBA = "local all all trust\nhost all /^(a|aa)+$ 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 trust\n"
# A query answered later than this means the loop was held (the old code: about 5 s per login).
BOUND = 1.0


def startup_packet(user: str, database: str = "postgres") -> bytes:
    body = struct.pack("!i", 196608) + f"user\0{user}\0database\0{database}\0\0".encode()
    return struct.pack("!i", len(body) + 4) + body


def test_slow_hba_regex_does_not_stall_other_sessions(pgtls_factory) -> None:
    s: PgtlsServer = pgtls_factory().init()
    s.write("pg_hba.conf", HBA)
    s.start()
    login_times: list[float] = []
    answers: list[dict[str, str] | None] = []
    stop = threading.Event()

    def attack() -> None:
        while not stop.is_set() or len(answers) < 3:
            t0 = time.monotonic()
            r = Raw(s.port, timeout=60)
            try:
                r.send(startup_packet(EVIL_USER))
                answers.append(first_error(r.recv_all(timeout=60)))
            finally:
                r.close()
            login_times.append(time.monotonic() - t0)
            time.sleep(0.02)

    with psycopg.connect(
        host="127.0.0.1", port=s.port, user="postgres", dbname="postgres", connect_timeout=10, autocommit=True
    ) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
        latencies: list[float] = []
        attacker = threading.Thread(target=attack)
        attacker.start()
        deadline = time.monotonic() + 2.0
        while attacker.is_alive():
            t0 = time.monotonic()
            assert conn.execute("select 1").fetchone() == (1,)
            latencies.append(time.monotonic() - t0)
            if t0 > deadline:
                stop.set()
            time.sleep(0.01)
        attacker.join()

    assert max(latencies) < BOUND, f"another session waited {max(latencies):.2f} s for select 1"
    assert max(login_times) < BOUND, f"a login took {max(login_times):.2f} s"
    assert len(latencies) >= 10
    # the evil user matched no regex line: it fell through to the trust line, and has no role
    assert len(answers) >= 3
    for err in answers:
        assert err is not None and err["C"] == "28000" and err["M"] == f'role "{EVIL_USER}" does not exist'
