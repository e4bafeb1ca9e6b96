#!/usr/bin/env python3
"""What pgtls's own login pieces cost when run alone, one after the other, with warm caches.

Each piece of a trust login over TLS that is pgtls's own pure code (no I/O, no event loop) runs in a tight
loop with the inputs a ``pgbench -C`` login gives it; printed: microseconds per login for each piece and
their sum.  Set against ``bench/python_floor.py``'s ~500 us of pgtls login code above ``floor+both``, the
sum says how much of that is the pieces' own work and how much is what joins them (coroutines and their
wake-ups, futures, timeouts, channel and upstream plumbing, and caches cold after PostgreSQL and pgbench ran).

    .venv/bin/python bench/login_parts.py [--n 20000]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pgtls.backends.base import SessionInfo, TlsInfo  # noqa: E402
from pgtls.backends.relay import identity, roles, wire  # noqa: E402
from pgtls.config.hba import ConnFacts, match_detail, parse_hba_text  # noqa: E402
from pgtls.protocol import messages as m  # noqa: E402
from pgtls.protocol.startup import StartupMachine, ssl_request_packet, startup_packet  # noqa: E402

HBA = "local all all trust\nhostssl all scram_bench 127.0.0.1/32 scram-sha-256\nhostssl all all 127.0.0.1/32 trust\n"
STARTUP = startup_packet({"user": "postgres", "database": "postgres", "application_name": "pgbench"})
ROLE_ROW: list[str | None] = ["10", "postgres", "t", "t", None, None, "-1", "t", "t", "t", "{}"]
PARAMS = [
    ("in_hot_standby", "off"),
    ("integer_datetimes", "on"),
    ("TimeZone", "Etc/UTC"),
    ("IntervalStyle", "postgres"),
    ("search_path", '"$user", public'),
    ("is_superuser", "on"),
    ("application_name", "pgbench"),
    ("default_transaction_read_only", "off"),
    ("scram_iterations", "4096"),
    ("DateStyle", "ISO, MDY"),
    ("standard_conforming_strings", "on"),
    ("session_authorization", "postgres"),
    ("client_encoding", "UTF8"),
    ("server_version", "18.1"),
    ("server_encoding", "UTF8"),
]


def piece_startup() -> None:
    sm = StartupMachine()
    sm.receive_data(ssl_request_packet())
    sm.next_event()
    sm.answered_ssl()
    sm.tls_started(direct=False)
    sm.receive_data(STARTUP)
    sm.next_event()


RULES = parse_hba_text(HBA)
FACTS = ConnFacts(local=False, addr="127.0.0.1", ssl=True, gss=False, user="postgres", database="postgres")
VIEW = roles.role_view("postgres", [ROLE_ROW])


def piece_hba() -> None:
    match_detail(RULES, FACTS, VIEW)


ROLE_REPLY = bytes(
    wire.message(b"1")
    + wire.message(b"2")
    + wire.message(
        b"D",
        b"\0\x0b"
        + b"".join(
            (len(v).to_bytes(4, "big") + v.encode()) if v is not None else b"\xff\xff\xff\xff"
            for v in ROLE_ROW
        ),
    )
    + wire.message(b"C", b"SELECT 1\0")
    + wire.message(b"Z", b"I")
)


def piece_role_lookup() -> None:
    wire.bind_execute_sync("pgtls_role", ["postgres"])
    rows = []
    for kind, body in wire.split_messages(bytearray(ROLE_REPLY)):
        if kind == b"D":
            rows.append(wire.data_row(body))
    roles.role_view("postgres", rows)


TLS = TlsInfo(version="TLSv1.3", cipher="TLS_AES_256_GCM_SHA384", bits=256)


def piece_identity() -> None:
    info = SessionInfo(
        pid=12345,
        user="postgres",
        database="postgres",
        client_addr="127.0.0.1",
        client_port=40000,
        application_name="pgbench",
        options={"application_name": "pgbench"},
        tls=TLS,
    )
    wire.bind_execute_sync("pgtls_identity", identity.upsert_params(4242, info))


def piece_login_reply() -> None:
    out = [m.parameter_status(k, v) for k, v in PARAMS]
    out.append(m.backend_key_data(12345, b"\1\2\3\4"))
    out.append(m.ready_for_query("I"))
    b"".join(out)


PIECES: dict[str, Callable[[], None]] = {
    "startup packet (SSLRequest, StartupMachine)": piece_startup,
    "hba match (3 lines)": piece_hba,
    "role lookup: Bind/Execute/Sync, reply parsed, RoleView": piece_role_lookup,
    "identity row: parameters and Bind/Execute/Sync": piece_identity,
    "login reply: 15 ParameterStatus, BackendKeyData, ReadyForQuery": piece_login_reply,
}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000)
    args = ap.parse_args(argv)
    total = 0.0
    for name, fn in PIECES.items():
        for _ in range(1000):
            fn()
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(args.n):
                fn()
            best = min(best, (time.perf_counter() - t0) / args.n * 1e6)
        total += best
        print(f"{best:7.2f} us  {name}")
    print(f"{total:7.2f} us  all of them")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
