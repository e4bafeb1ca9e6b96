"""Frontend-message builders and a backend-message parser for tests (protocol v3).

``fe.query("SELECT 1")`` returns ``(kind, body)`` ready for ``Session.handle``;
:func:`parse_messages` splits a byte stream into :class:`BackendMessage` objects
with the interesting fields decoded (rows, tags, error fields, ...).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgtls.backends.base import SessionInfo, TlsInfo


def _cstr(s: str) -> bytes:
    return s.encode() + b"\0"


class fe:  # noqa: N801 - a namespace of builders
    @staticmethod
    def query(sql: str) -> tuple[bytes, bytes]:
        return b"Q", _cstr(sql)

    @staticmethod
    def parse(sql: str, name: str = "", oids: Sequence[int] = ()) -> tuple[bytes, bytes]:
        return b"P", _cstr(name) + _cstr(sql) + struct.pack("!h", len(oids)) + b"".join(
            struct.pack("!I", o) for o in oids
        )

    @staticmethod
    def bind(
        params: Sequence[bytes | str | None] = (),
        portal: str = "",
        stmt: str = "",
        param_formats: Sequence[int] = (),
        result_formats: Sequence[int] = (),
    ) -> tuple[bytes, bytes]:
        body = _cstr(portal) + _cstr(stmt)
        body += struct.pack("!h", len(param_formats)) + b"".join(struct.pack("!h", f) for f in param_formats)
        body += struct.pack("!h", len(params))
        for p in params:
            if p is None:
                body += struct.pack("!i", -1)
            else:
                b = p.encode() if isinstance(p, str) else p
                body += struct.pack("!i", len(b)) + b
        body += struct.pack("!h", len(result_formats)) + b"".join(
            struct.pack("!h", f) for f in result_formats
        )
        return b"B", body

    @staticmethod
    def describe(which: str = "P", name: str = "") -> tuple[bytes, bytes]:
        return b"D", which.encode() + _cstr(name)

    @staticmethod
    def execute(portal: str = "", max_rows: int = 0) -> tuple[bytes, bytes]:
        return b"E", _cstr(portal) + struct.pack("!i", max_rows)

    @staticmethod
    def sync() -> tuple[bytes, bytes]:
        return b"S", b""

    @staticmethod
    def flush() -> tuple[bytes, bytes]:
        return b"H", b""

    @staticmethod
    def close(which: str = "S", name: str = "") -> tuple[bytes, bytes]:
        return b"C", which.encode() + _cstr(name)

    @staticmethod
    def copy_data(data: bytes | str) -> tuple[bytes, bytes]:
        return b"d", data.encode() if isinstance(data, str) else data

    @staticmethod
    def copy_done() -> tuple[bytes, bytes]:
        return b"c", b""

    @staticmethod
    def copy_fail(message: str) -> tuple[bytes, bytes]:
        return b"f", _cstr(message)


@dataclass
class BackendMessage:
    kind: str
    body: bytes
    fields: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.fields[key]


def _cstrings(body: bytes) -> list[str]:
    return [s.decode() for s in body.split(b"\0")[:-1]]


def decode(kind: str, body: bytes) -> BackendMessage:
    msg = BackendMessage(kind, body)
    f = msg.fields
    if kind == "T":
        (n,) = struct.unpack_from("!h", body)
        pos = 2
        cols = []
        for _ in range(n):
            end = body.index(b"\0", pos)
            name = body[pos:end].decode()
            table, attnum, oid, typlen, typmod, fmt = struct.unpack_from("!ihIhih", body, end + 1)
            cols.append({"name": name, "oid": oid, "typlen": typlen, "typmod": typmod, "format": fmt})
            pos = end + 1 + 18
        f["columns"] = cols
    elif kind == "D":
        (n,) = struct.unpack_from("!h", body)
        pos = 2
        vals: list[bytes | None] = []
        for _ in range(n):
            (ln,) = struct.unpack_from("!i", body, pos)
            pos += 4
            if ln < 0:
                vals.append(None)
            else:
                vals.append(body[pos : pos + ln])
                pos += ln
        f["values"] = vals
    elif kind == "C":
        f["tag"] = body[:-1].decode()
    elif kind in ("E", "N"):
        pos = 0
        while body[pos] != 0:
            code = chr(body[pos])
            end = body.index(b"\0", pos + 1)
            f[code] = body[pos + 1 : end].decode()
            pos = end + 1
    elif kind == "Z":
        f["status"] = body.decode()
    elif kind == "S":
        name, value = _cstrings(body)
        f["name"], f["value"] = name, value
    elif kind == "t":
        (n,) = struct.unpack_from("!h", body)
        f["oids"] = list(struct.unpack_from(f"!{n}I", body, 2))
    elif kind in ("G", "H"):
        fmt, n = struct.unpack_from("!bh", body)
        f["format"] = fmt
        f["column_formats"] = list(struct.unpack_from(f"!{n}h", body, 3))
    elif kind == "d":
        f["data"] = body
    return msg


def parse_messages(data: bytes) -> list[BackendMessage]:
    out = []
    pos = 0
    while pos < len(data):
        kind = chr(data[pos])
        (ln,) = struct.unpack_from("!i", data, pos + 1)
        out.append(decode(kind, data[pos + 5 : pos + 1 + ln]))
        pos += 1 + ln
    if pos != len(data):
        raise ValueError("trailing bytes")
    return out


class Collector:
    """A ``send`` callable that keeps everything the session wrote."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def __call__(self, data: bytes) -> None:
        self.chunks.append(data)

    def take(self) -> list[BackendMessage]:
        data = b"".join(self.chunks)
        self.chunks.clear()
        return parse_messages(data)


def rows(msgs: list[BackendMessage]) -> list[list[str | None]]:
    """Text-format DataRow values of ``msgs`` as strings."""
    return [[None if v is None else v.decode() for v in m["values"]] for m in msgs if m.kind == "D"]


def tags(msgs: list[BackendMessage]) -> list[str]:
    return [m["tag"] for m in msgs if m.kind == "C"]


def errors(msgs: list[BackendMessage]) -> list[dict[str, str]]:
    return [m.fields for m in msgs if m.kind == "E"]


# --- driving a backend Session directly (no server) -------------------------------------------


@dataclass
class ActivityRowStub:
    info: Any
    state: str = "active"
    query: str = ""


class SimpleRegistry:
    """The server's session registry reduced to what a backend may ask (sessions())."""

    def __init__(self) -> None:
        self.rows: list[ActivityRowStub] = []

    def sessions(self) -> list[ActivityRowStub]:
        return list(self.rows)


class SessionDriver:
    """Feeds frontend messages to a Session and returns the parsed backend messages."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.out = Collector()
        self.status: str | None = None

    def send(self, *messages: tuple[bytes, bytes]) -> list[BackendMessage]:
        for kind, body in messages:
            self.status = self.session.handle(kind, body, self.out)
        return self.out.take()

    def query(self, sql: str) -> list[BackendMessage]:
        return self.send(fe.query(sql))

    def rows(self, sql: str) -> list[list[str | None]]:
        msgs = self.query(sql)
        errs = errors(msgs)
        if errs:
            raise AssertionError(f"{sql!r} failed: {errs}")
        return rows(msgs)

    def value(self, sql: str) -> str | None:
        return self.rows(sql)[0][0]

    def error(self, sql: str) -> dict[str, str]:
        errs = errors(self.query(sql))
        if not errs:
            raise AssertionError(f"{sql!r} did not fail")
        return errs[0]


# --- an embedded-backend session for unit tests (the fixtures are in tests/unit/embedded/conftest.py) ---
TLS = TlsInfo("TLSv1.3", "TLS_AES_256_GCM_SHA384", 256, True, "/CN=alice", 12345, "/CN=Test Root CA")


class FakeSettings:
    def __init__(self) -> None:
        self.values = {"server_version": "17.0", "TimeZone": "UTC", "ssl": "on", "port": "5432"}

    def show(self, name: str) -> str:
        for k, v in self.values.items():
            if k.lower() == name.lower():
                return v
        raise KeyError(name)

    def names(self) -> list[str]:
        return list(self.values)


def open_driver(backend: Any, registry: SimpleRegistry, pid: int = 1001, tls: TlsInfo | None = TLS, user: str = "alice",
                database: str = "postgres") -> SessionDriver:  # fmt: skip
    info = SessionInfo(
        pid=pid, user=user, database=database, client_addr="127.0.0.1", client_port=40000, tls=tls
    )
    s = backend.open_session(info, registry)
    registry.rows.append(ActivityRowStub(info, "active", "SELECT 1"))
    return SessionDriver(s)


@contextmanager
def postgres_and_session(
    data: Path, setup: Sequence[str], pg_only: Sequence[str] = ()
) -> Iterator[tuple[Any, SessionDriver]]:
    """A psycopg connection to a fresh real PostgreSQL 15 and an in-process embedded session on ``data``,
    with ``pg_only`` run on PostgreSQL and then ``setup`` run on both (each must succeed on both)."""
    import psycopg

    from pgtls.backends.base import SessionInfo
    from pgtls.backends.embedded import EmbeddedBackend, create_database
    from tests import prereq
    from tests.pgserver import RealPostgres, have_postgres

    if not have_postgres():
        prereq.missing("PostgreSQL 15 server binaries are not installed")
    pg = RealPostgres().init()
    pg.start()
    create_database(data, "postgres")
    be = EmbeddedBackend(data)
    d = SessionDriver(be.open_session(SessionInfo(1, "postgres", "postgres", None, None), SimpleRegistry()))
    conn = psycopg.connect(
        host="127.0.0.1", port=pg.port, user="postgres", dbname="postgres", autocommit=True
    )
    try:
        for sql in pg_only:
            conn.execute(sql)
        for sql in setup:
            conn.execute(sql)
            assert not errors(d.query(sql)), sql
        yield conn, d
    finally:
        conn.close()
        d.session.close()
        be.close()
        pg.cleanup()


def error_outcome(sqlstate: str, message: str) -> tuple[str, str, str]:
    """How the differential helpers record a failed statement: the SQLSTATE and the primary message."""
    return ("error", sqlstate, message)


def assert_same_outcome(ours: object, theirs: object, case: str,
                        message_differences: Mapping[str, str] | None = None) -> None:  # fmt: skip
    """``ours == theirs``, where an error is ``("error", SQLSTATE, message, ...)`` (:func:`error_outcome`).

    ``message_differences`` lists the cases where the embedded backend's message is allowed to differ from
    PostgreSQL's, each with a one-line reason: there both must fail with the same SQLSTATE (and agree in
    everything after the message), and the messages must differ -- a listed case whose messages agree again
    fails, so the list cannot go stale."""
    allowed = (message_differences or {}).get(case)
    both_failed = all(isinstance(o, tuple) and len(o) >= 3 and o[0] == "error" for o in (ours, theirs))
    if allowed is None or not both_failed:
        assert ours == theirs, f"{case!r}\n  pgtls:      {ours!r}\n  PostgreSQL: {theirs!r}"
        return
    o, t = ours, theirs
    assert isinstance(o, tuple) and isinstance(t, tuple)
    assert (o[1], o[3:]) == (t[1], t[3:]), f"{case!r}\n  pgtls:      {o!r}\n  PostgreSQL: {t!r}"
    assert o[2] != t[2], (
        f"{case!r}: the messages agree now ({o[2]!r}); remove the allowed difference ({allowed})"
    )


def check_message_differences(message_differences: Mapping[str, str], cases: Sequence[str]) -> None:
    """Every allowed difference names a case that is run, with a reason."""
    unknown = set(message_differences) - set(cases)
    assert not unknown, f"allowed message differences for cases that are not run: {sorted(unknown)}"
    assert all(reason.strip() for reason in message_differences.values())


def outcomes(conn: Any, d: SessionDriver, sql: str) -> tuple[object, object]:
    """The outcome of ``sql`` on the embedded session and on PostgreSQL (a psycopg connection whose loaders
    give the text PostgreSQL sent, where that matters): (column names, rows as text), or
    :func:`error_outcome` (SQLSTATE and message)."""
    import psycopg

    msgs = d.query(sql)
    errs = errors(msgs)
    names = [c["name"] for m in msgs if m.kind == "T" for c in m["columns"]]
    ours: object = error_outcome(errs[0]["C"], errs[0]["M"]) if errs else (names, rows(msgs))
    try:
        cur = conn.execute(sql)
        theirs: object = ([c.name for c in cur.description or []],
                          [[None if v is None else str(v) for v in r] for r in cur.fetchall()])  # fmt: skip
    except psycopg.Error as e:
        theirs = error_outcome(e.sqlstate or "", e.diag.message_primary or "")
    return ours, theirs


def assert_same_as_postgres(data: Path, setup: Sequence[str], queries: Sequence[str],
                            text_types: Sequence[str] = (),
                            message_differences: Mapping[str, str] | None = None) -> None:  # fmt: skip
    """Run ``setup`` on a fresh PostgreSQL 15 and an embedded session, then each query on both: the same
    column names and rows (``text_types`` come back from PostgreSQL as the text it sent), or the same
    SQLSTATE and message (except for the ``message_differences``, see :func:`assert_same_outcome`)."""
    from psycopg.types.string import TextLoader

    check_message_differences(message_differences or {}, queries)
    with postgres_and_session(data, setup) as (conn, d):
        for name in text_types:
            conn.adapters.register_loader(name, TextLoader)
        for sql in queries:
            ours, theirs = outcomes(conn, d, sql)
            assert_same_outcome(ours, theirs, sql, message_differences)


def fresh_database(port: int, name: str) -> str:
    """A new, empty database ``name`` on the loopback server at ``port`` (trust, user postgres): its DSN."""
    import psycopg

    with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres", autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name}")
        c.execute(f"CREATE DATABASE {name}")
    return f"host=127.0.0.1 port={port} user=postgres dbname={name}"
