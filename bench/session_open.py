"""Micro-benchmark: CPU per embedded session (open + startup_parameters + SELECT 1 + close), in process.

    .venv/bin/python bench/session_open.py [-n 200] [--concurrent]

``--concurrent`` keeps one other session open all the time (so the database file stays open
even without the backend's keep-open policy); the default opens sessions one at a time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pgtls.backends.base import SessionInfo, TlsInfo  # noqa: E402
from pgtls.backends.embedded import EmbeddedBackend, create_database  # noqa: E402
from pgtls.protocol import messages as m  # noqa: E402
from tests.pgwire_util import FakeSettings, SimpleRegistry  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("--concurrent", action="store_true")
    ap.add_argument("--fake-settings", action="store_true", help="a 4-parameter settings object")
    args = ap.parse_args()
    tls = TlsInfo("TLSv1.3", "TLS_AES_256_GCM_SHA384", 256)
    q = b"Q", b"SELECT 1\0"
    with tempfile.TemporaryDirectory() as d:
        create_database(Path(d), "postgres")
        settings: object = FakeSettings()
        if not args.fake_settings:  # the server's real settings snapshot (100-odd parameters)
            from pgtls.config.settings import load_settings

            (Path(d) / "postgresql.conf").write_text("")
            settings = load_settings(Path(d))
        be = EmbeddedBackend(Path(d), settings)
        reg = SimpleRegistry()
        keep = (
            be.open_session(SessionInfo(1, "u", "postgres", "127.0.0.1", 1, tls=tls), reg)
            if args.concurrent
            else None
        )
        sink: list[bytes] = []
        for warm in (True, False):
            n = 20 if warm else args.n
            t_open = t_query = t_close = 0.0
            for i in range(n):
                t0 = time.process_time()
                s = be.open_session(
                    SessionInfo(100 + i, "alice", "postgres", "127.0.0.1", 40000 + i, tls=tls), reg
                )
                for k, v in s.startup_parameters():
                    sink.append(m.parameter_status(k, v))
                t1 = time.process_time()
                s.handle(*q, sink.append)
                t2 = time.process_time()
                s.close()
                t3 = time.process_time()
                t_open += t1 - t0
                t_query += t2 - t1
                t_close += t3 - t2
                sink.clear()
            if not warm:
                print(
                    f"{n} sessions: open {t_open / n * 1000:.2f} ms, SELECT 1 {t_query / n * 1000:.2f} ms, "
                    f"close {t_close / n * 1000:.2f} ms, total {(t_open + t_query + t_close) / n * 1000:.2f} "
                    "ms CPU per session"
                )
        if keep is not None:
            keep.close()
        be.close()


if __name__ == "__main__":
    main()
