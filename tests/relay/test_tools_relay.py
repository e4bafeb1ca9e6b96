"""Real tools through pgtls's relay over TLS (sslmode=verify-full, client certificate, ``cert`` in pg_hba.conf):
pgbench (initialise, select-only, a new connection per transaction, TPC-B with several clients, the
extended and prepared protocols), COPY of 100 MB both ways (psycopg and psql ``\\copy``), a bad COPY row
(compared with the same PostgreSQL 18 run directly), LISTEN/NOTIFY between two clients, and cancel.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from pgtls.protocol.startup import cancel_request_packet
from tests.pgserver import RealPostgres, shared_tmpdir
from tests.pgtlsserver import PgtlsServer
from tests.relay.sidebyside import (
    client_env,
    conninfo,
    direct_params,
    side_by_side,
    tls_params,
)

BENCH = "bench"
DB = "tools"


@dataclass
class Setup:
    ours: PgtlsServer
    pg: RealPostgres
    certs: object
    keys: Path
    home: Path
    scratch: Path

    def params(self, dbname: str = DB, **extra: object) -> dict[str, object]:
        return tls_params(self.ours, self.certs, self.keys, dbname, **extra)

    def connect(self, dbname: str = DB, **kw: object) -> psycopg.Connection:
        return psycopg.connect(**self.params(dbname), autocommit=True, **kw)  # type: ignore[arg-type]

    def libpq_env(self, dbname: str) -> dict[str, str]:
        """pgbench takes the connection from the environment: verify-full and the client certificate."""
        p = self.params(dbname)
        return client_env(
            self.home,
            PGHOST=str(p["host"]),
            PGHOSTADDR=str(p["hostaddr"]),
            PGPORT=str(p["port"]),
            PGUSER=str(p["user"]),
            PGDATABASE=dbname,
            PGSSLMODE="verify-full",
            PGSSLROOTCERT=str(p["sslrootcert"]),
            PGSSLCERT=str(p["sslcert"]),
            PGSSLKEY=str(p["sslkey"]),
            PGCONNECT_TIMEOUT="15",
        )


@pytest.fixture(scope="module")
def setup(certs, client_home) -> Iterator[Setup]:
    scratch = shared_tmpdir("pgtls-relay-copy-")
    try:
        with side_by_side(certs, (BENCH, DB), (DB,)) as (ours, pg, keys):
            yield Setup(ours, pg, certs, keys, client_home, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# --- pgbench -----------------------------------------------------------------------------------------------


def pgbench(s: Setup, *args: str, timeout: float = 60) -> str:
    p = subprocess.run(
        ["pgbench", *args], capture_output=True, text=True, env=s.libpq_env(BENCH), timeout=timeout
    )
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    assert "error" not in p.stderr.lower(), out
    return out


@pytest.fixture(scope="module")
def initialised(setup) -> Setup:
    out = pgbench(setup, "-i", "-s", "1", "-q")
    assert "done in" in out, out
    with setup.connect(BENCH) as c:
        counts = c.execute(
            "SELECT (SELECT count(*) FROM pgbench_accounts), (SELECT count(*) FROM pgbench_branches),"
            " (SELECT count(*) FROM pgbench_tellers), current_user, ssl_is_used(), ssl_client_dn()"
        ).fetchone()
    assert counts == (100000, 1, 10, "ssltestuser", True, "/CN=ssltestuser"), counts
    return setup


RUNS = {
    "select-only": ["-S", "-T", "3"],
    "select-only-connect-each": ["-S", "-C", "-T", "3"],
    "tpcb-4-clients": ["-T", "3", "-c", "4", "-j", "2"],
    "select-only-extended": ["-S", "-M", "extended", "-T", "2", "-c", "2"],
    "tpcb-prepared": ["-M", "prepared", "-T", "2", "-c", "4", "-j", "2"],
}


BALANCES = (
    "SELECT (SELECT sum(abalance) FROM pgbench_accounts), (SELECT sum(tbalance) FROM pgbench_tellers),"
    " (SELECT sum(bbalance) FROM pgbench_branches), (SELECT coalesce(sum(delta), 0) FROM pgbench_history),"
    " (SELECT count(*) FROM pgbench_history)"
)


@pytest.mark.parametrize("name", list(RUNS))
def test_pgbench(initialised, name):
    with initialised.connect(BENCH) as c:
        before = c.execute(BALANCES).fetchone()
    out = pgbench(initialised, *RUNS[name])
    processed = re.search(r"number of transactions actually processed: (\d+)", out)
    failed = re.search(r"number of failed transactions: (\d+)", out)
    assert processed and int(processed.group(1)) > 0, out
    assert failed and int(failed.group(1)) == 0, out
    if "-M" in RUNS[name]:
        assert f"query mode: {RUNS[name][RUNS[name].index('-M') + 1]}" in out
    # TPC-B's invariant: each delta went to one account, one teller, one branch and the history (which
    # pgbench truncates before a run)
    with initialised.connect(BENCH) as c:
        after = c.execute(BALANCES).fetchone()
    changes = {after[0] - before[0], after[1] - before[1], after[2] - before[2], after[3]}
    assert len(changes) == 1, (before, after)
    assert after[4] == (0 if "-S" in RUNS[name] else int(processed.group(1))), (after, out)


# --- COPY ----------------------------------------------------------------------------------------------------

COPY_ROWS = 1_000_000
PAYLOAD = 96  # bytes of text per row: ~105 bytes a line, ~100 MB in all


def copy_lines(start: int, n: int) -> bytes:
    seed = hashlib.sha256(str(start).encode()).hexdigest() * 2  # 128 characters of [0-9a-f]
    return "".join(f"{i}\t{seed[i % 32 : i % 32 + PAYLOAD]}\n" for i in range(start, start + n)).encode()


def test_copy_100mb_both_ways(setup):
    with setup.connect() as c:
        c.execute("CREATE TABLE copyt (id int, payload text)")
        c.execute("CREATE TABLE copyt2 (id int, payload text)")
        # in: psycopg COPY FROM STDIN, 1 MB CopyData messages, generated as it goes
        digest = hashlib.sha256()
        size = 0
        with c.cursor().copy("COPY copyt FROM STDIN") as cp:
            for start in range(0, COPY_ROWS, 10_000):
                chunk = copy_lines(start, 10_000)
                digest.update(chunk)
                size += len(chunk)
                cp.write(chunk)
        assert size > 100_000_000
        assert c.execute("SELECT count(*), sum(length(payload)) FROM copyt").fetchone() == (
            COPY_ROWS,
            COPY_ROWS * PAYLOAD,
        )
        # out: psycopg COPY TO STDOUT, streamed
        out = hashlib.sha256()
        with c.cursor().copy("COPY (SELECT * FROM copyt ORDER BY id) TO STDOUT") as cp:
            for block in cp:
                out.update(block)
        assert out.hexdigest() == digest.hexdigest()
    # out and back in again with psql's \copy (a file on the client side)
    dump = setup.scratch / "copyt.tsv"
    back = subprocess.run(
        [
            "psql",
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            conninfo(setup.params()),
            "-c",
            f"\\copy (SELECT * FROM copyt ORDER BY id) TO '{dump}'",
            "-c",
            f"\\copy copyt2 FROM '{dump}'",
        ],
        capture_output=True,
        text=True,
        env=client_env(setup.home),
        timeout=120,
    )
    assert back.returncode == 0, back.stderr
    assert back.stdout.split() == ["COPY", str(COPY_ROWS), "COPY", str(COPY_ROWS)], back.stdout
    h = hashlib.sha256()
    with open(dump, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    assert h.hexdigest() == digest.hexdigest()
    dump.unlink()
    with setup.connect() as c:
        differ = c.execute(
            "SELECT count(*) FROM copyt a FULL JOIN copyt2 b USING (id)"
            " WHERE a.payload IS DISTINCT FROM b.payload"
        ).fetchone()
        assert differ == (0,)
        c.execute("DROP TABLE copyt, copyt2")


BAD_COPY_SCRIPT = """\
CREATE TABLE badcopy (id int, name text, at date);
COPY badcopy FROM STDIN;
1\tone\t2026-01-01
2\ttwo\t2026-13-01
\\.
COPY badcopy FROM STDIN;
3\tx
\\.
COPY badcopy FROM STDIN;
4\tfour\t2026-01-04\textra
\\.
COPY badcopy FROM STDIN (FORMAT csv);
5,"unterminated
\\.
COPY badcopy FROM STDIN;
6\tsix\t2026-01-06
x\tseven\t2026-01-07
\\.
COPY badcopy FROM STDIN;
8\teight\t2026-01-08
\\.
SELECT * FROM badcopy ORDER BY id;
DROP TABLE badcopy;
"""


def _psql(params: dict[str, object], home: Path, script: str) -> tuple[int, str, str]:
    p = subprocess.run(
        [
            "psql",
            "-X",
            "-a",
            "-v",
            "ON_ERROR_STOP=0",
            "-v",
            "VERBOSITY=verbose",
            "-d",
            conninfo(params),
            "-f",
            "-",
        ],
        input=script,
        capture_output=True,
        text=True,
        env=client_env(home),
        timeout=60,
    )
    return p.returncode, p.stdout, p.stderr


def _copy_errors(params: dict[str, object]) -> list[object]:
    """psycopg: a bad row early in a 10 MB stream (PostgreSQL answers while the client is still sending)."""
    out: list[object] = []
    with psycopg.connect(**params, autocommit=True) as c:  # type: ignore[arg-type]
        c.execute("CREATE TEMP TABLE bc (id int, payload text)")
        for bad_at in (3, 50_005):  # early in the first CopyData message, and mid-stream
            try:
                with c.cursor().copy("COPY bc FROM STDIN") as cp:
                    for start in range(0, 100_000, 10_000):
                        chunk = copy_lines(start, 10_000)
                        if start <= bad_at < start + 10_000:
                            chunk = chunk.replace(f"\n{bad_at}\t".encode(), f"\n{bad_at}x\t".encode())
                        cp.write(chunk)
            except psycopg.Error as e:
                out.append((e.sqlstate, e.diag.message_primary, e.diag.context))
            out.append(c.execute("SELECT count(*) FROM bc").fetchone())
    return out


def test_copy_bad_row_gives_postgres_error(setup):
    ours = _psql(setup.params(), setup.home, BAD_COPY_SCRIPT)
    theirs = _psql(direct_params(setup.pg, DB), setup.home, BAD_COPY_SCRIPT)
    assert ours == theirs, (
        f"--- pgtls ---\n{ours[2]}\n{ours[1]}\n--- PostgreSQL ---\n{theirs[2]}\n{theirs[1]}"
    )
    assert 'ERROR:  22008: date/time field value out of range: "2026-13-01"' in ours[2]
    assert 'CONTEXT:  COPY badcopy, line 2, column at: "2026-13-01"' in ours[2]
    errors = _copy_errors(setup.params())
    assert errors == _copy_errors(direct_params(setup.pg, DB))
    assert errors == [
        ("22P02", 'invalid input syntax for type integer: "3x"', 'COPY bc, line 4, column id: "3x"'),
        (0,),
        (
            "22P02",
            'invalid input syntax for type integer: "50005x"',
            'COPY bc, line 50006, column id: "50005x"',
        ),
        (0,),
    ]


# --- LISTEN / NOTIFY ---------------------------------------------------------------------------------------------


def test_listen_notify_across_clients(setup):
    with setup.connect() as listener, setup.connect() as sender:
        (listener_pid,) = listener.execute("SELECT pg_backend_pid()").fetchone()
        listener.execute("LISTEN relay_chan")
        (sender_pid,) = sender.execute("SELECT pg_backend_pid()").fetchone()
        sender.execute("NOTIFY relay_chan, 'hello through pgtls'")
        sender.execute("SELECT pg_notify('relay_chan', %s)", ["second, with ünïcode"])
        sender.execute("NOTIFY other_chan, 'not for the listener'")
        got = [(n.channel, n.payload, n.pid) for n in listener.notifies(timeout=5, stop_after=2)]
        assert got == [
            ("relay_chan", "hello through pgtls", sender_pid),
            ("relay_chan", "second, with ünïcode", sender_pid),
        ]
        # a notification inside a transaction is delivered at commit, from the sender's upstream backend
        with sender.transaction():
            sender.execute("NOTIFY relay_chan, 'at commit'")
            assert list(listener.notifies(timeout=0.3)) == []
        got = [(n.channel, n.payload, n.pid) for n in listener.notifies(timeout=5, stop_after=1)]
        assert got == [("relay_chan", "at commit", sender_pid)]
        # to itself
        listener.execute("NOTIFY relay_chan, 'self'")
        got = [(n.payload, n.pid) for n in listener.notifies(timeout=5, stop_after=1)]
        assert got == [("self", listener_pid)]
    # the listener's upstream session, back in the pool after DISCARD ALL, listens no more
    time.sleep(0.5)
    with setup.connect() as again, setup.connect() as sender:
        pids = {again.execute("SELECT pg_backend_pid()").fetchone()[0]}
        assert again.execute("SELECT count(*) FROM pg_listening_channels()").fetchone() == (0,)
        sender.execute("NOTIFY relay_chan, 'nobody listens'")
        assert list(again.notifies(timeout=0.5)) == []
        pids.add(sender.execute("SELECT pg_backend_pid()").fetchone()[0])
    assert listener_pid in pids or sender_pid in pids  # a pooled session was reused


# --- cancel ------------------------------------------------------------------------------------------------------


def _cancelled_sleep(
    c: psycopg.Connection, cancel: object, delay: float = 0.5
) -> tuple[psycopg.Error, float]:
    timer = threading.Timer(delay, cancel)  # type: ignore[arg-type]
    t0 = time.monotonic()
    timer.start()
    try:
        with pytest.raises(psycopg.errors.QueryCanceled) as ei:
            c.execute("SELECT pg_sleep(30)")
    finally:
        timer.cancel()
    return ei.value, time.monotonic() - t0


@pytest.mark.parametrize("how", ["cancel", "cancel_safe"])
def test_cancel_pg_sleep(setup, how):
    """``cancel``: libpq's PQcancel (a plain CancelRequest on a new connection); ``cancel_safe``: libpq 17+'s
    PQcancelBlocking, which opens the cancel connection with the same sslmode and client certificate."""
    with setup.connect() as c:
        err, elapsed = _cancelled_sleep(c, getattr(c, how))
        assert err.sqlstate == "57014"
        assert err.diag.message_primary == "canceling statement due to user request"
        assert elapsed < 5, elapsed
        assert c.execute("SELECT 41 + 1").fetchone() == (42,)
        # in a transaction block: the block is aborted, as PostgreSQL does, and ROLLBACK recovers it
        c.autocommit = False
        err, _ = _cancelled_sleep(c, getattr(c, how))
        assert err.sqlstate == "57014"
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            c.execute("SELECT 1")
        c.rollback()
        assert c.execute("SELECT 'usable'").fetchone() == ("usable",)


def test_psql_ctrl_c_cancels(setup):
    """psql 15 on SIGINT sends libpq's CancelRequest: the statement ends with PostgreSQL's error."""
    p = subprocess.Popen(
        ["psql", "-X", "-d", conninfo(setup.params()), "-c", "SELECT pg_sleep(30)"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=client_env(setup.home),
    )
    try:
        time.sleep(1.0)
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert time.monotonic() - t0 < 5
    assert "ERROR:  canceling statement due to user request" in err, (out, err)


def _raw_cancel(port: int, pid: int, key: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(cancel_request_packet(pid, key))
        sock.settimeout(5)
        assert sock.recv(1) == b""  # the server closes without an answer, as PostgreSQL does


def test_cancel_with_wrong_key_cancels_nothing(setup):
    with setup.connect() as c:
        (upstream_pid,) = c.execute("SELECT pg_backend_pid()").fetchone()
        pgtls_pid = c.info.backend_pid  # pgtls's own BackendKeyData
        wrong = [
            (pgtls_pid, secrets.randbits(31)),
            (upstream_pid, secrets.randbits(31)),
            (pgtls_pid + 1, secrets.randbits(31)),
        ]

        def send_wrong() -> None:
            for pid, key in wrong:
                _raw_cancel(setup.ours.port, pid, key)

        timer = threading.Timer(0.3, send_wrong)
        t0 = time.monotonic()
        timer.start()
        assert c.execute("SELECT pg_sleep(1.5), 'finished'").fetchone() == ("", "finished")
        timer.join()
        assert time.monotonic() - t0 >= 1.5
        assert c.execute("SELECT 1").fetchone() == (1,)
    log = setup.ours.log()
    assert (
        f"PID {pgtls_pid} in cancel request did not match any process" in log
        or f"wrong key in cancel request for process {pgtls_pid}" in log
    )


def test_wrong_key_logged_like_postgres(setup):
    for port, params, server in (
        (setup.pg.port, direct_params(setup.pg, DB), setup.pg),
        (setup.ours.port, setup.params(), setup.ours),
    ):
        with psycopg.connect(**params) as c:  # type: ignore[arg-type]
            pid = c.info.backend_pid
            _raw_cancel(port, pid, secrets.randbits(31))
            line = f"LOG:  wrong key in cancel request for process {pid}"
            deadline = time.monotonic() + 3
            while line not in server.full_log() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert line in server.full_log(), server.full_log()[-2000:]
