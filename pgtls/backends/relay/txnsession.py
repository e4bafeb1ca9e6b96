"""One client in transaction mode: a server connection only while a transaction runs.

The client logs in without holding anything upstream (its ParameterStatus
values are those of the first server session opened with its startup
parameters).  Its first message takes a server connection from the pool
(the client's TLS identity row is written for it if another client held it
last); the connection goes back when ReadyForQuery says idle with nothing
more owed (:class:`pgtls.backends.relay.txnwire.TxnState`).  A statement that
leaves session state pins the client to its connection until it leaves
(:mod:`pgtls.backends.relay.sessionstate`); it then gets the reset query, as
in session mode.

Both directions run in protocol callbacks, as in session mode; only taking a
connection from the pool is a task, during which the client's messages are
held and its reading paused.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Protocol

from pgtls import log
from pgtls.backends.base import ClientStream, SessionInfo
from pgtls.backends.relay import txnwire
from pgtls.backends.relay.pool import Pool, PoolSettings, Startup
from pgtls.backends.relay.session import (
    _POOL_FLUSHING,
    CONNECTION_FAILURE,
    RESET_TIMEOUT,
    SessionBackend,
    reset_for_pool,
    unhook_client,
    upstream_closed,
)
from pgtls.backends.relay.sessionstate import inspect, plain
from pgtls.backends.relay.upstream import QueryError, UpstreamConn, UpstreamGone
from pgtls.errors import PgError
from pgtls.protocol import messages as m
from pgtls.protocol.startup import LogOnly

# Client bytes held while no server connection is attached, before the client's reading is paused.
MAX_HELD_BYTES = 1 << 20


class TxnBackend(SessionBackend, Protocol):
    """What a transaction-pooled session needs of its backend (:class:`pgtls.backends.relay.backend.RelayBackend`
    is one)."""

    pinned_clients: int

    def pool_settings(self) -> PoolSettings: ...

    async def checkout(self, pool: Pool, startup: Startup) -> UpstreamConn: ...

    async def record_identity(self, conn: UpstreamConn, info: SessionInfo) -> None: ...


class TxnRelaySession:
    def __init__(
        self,
        backend: TxnBackend,
        pool: Pool,
        info: SessionInfo,
        startup: Startup,
        parameters: list[tuple[str, str]],
    ) -> None:
        self.backend = backend
        self.pool = pool
        self.info = info
        self.database = info.database
        self.startup = startup
        self._parameters = parameters
        self.conn: UpstreamConn | None = None
        self.state = txnwire.TxnState(lambda: backend.pool_settings().max_prepared)
        self.client = txnwire.ClientMessages()
        self.held: list[bytes] = []
        self.held_bytes = 0
        self.pins: frozenset[str] = frozenset()  # kinds of session state that keep the client on its server
        # Kinds a statement ended, applied once it is known to have worked: (kinds, errors seen when sent).
        self._releasing: tuple[frozenset[str], int] | None = None
        self.released = False
        self.ever_pinned = False  # a connection that was pinned gets the reset query when the client leaves
        self.transactions = 0  # server connections taken (for the logs and tests)
        self._attaching: asyncio.Task[None] | None = None
        self._paused_upstream = False
        self._paused_client = False
        self._done: asyncio.Future[None] | None = None
        self._channel: ClientStream | None = None
        self.client_error: LogOnly | None = None
        self.upstream_lost = False
        self._answered: asyncio.Future[None] | None = None  # a Terminate came after a request: its reply

    def parameters(self) -> list[tuple[str, str]]:
        return self._parameters

    # --- the relay ------------------------------------------------------------------------------
    def start(self, channel: ClientStream, pending: bytearray, on_end: Callable[[], None]) -> None:
        """Relay in the protocol callbacks from now on, with no task held while the client idles;
        ``on_end()`` is called once the session ended, and :meth:`finish_run` is then due."""
        self._channel = channel
        done = self._done = asyncio.get_running_loop().create_future()
        raw = channel.raw

        def client_writable() -> None:
            if self._paused_upstream and self.conn is not None:
                self._paused_upstream = False
                self.conn.resume_reading()

        raw.resume_hook = client_writable
        if pending:
            data = bytes(pending)
            pending.clear()
            self._from_client(data)
        channel.relay(self._from_client, self._end)
        done.add_done_callback(lambda _f: on_end())  # last: if anything above raised, nobody is told twice

    async def finish_run(self) -> None:
        assert self._channel is not None
        unhook_client(self._channel.raw)
        if self._attaching is not None and not self._attaching.done():
            self._attaching.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._attaching
        if self.client_error is not None:
            raise self.client_error
        conn = self.conn
        if self.client.terminated and conn is not None and self.state.queue and not conn.closed:
            # Terminate after a request: the client still reads the reply first.
            answered = asyncio.get_running_loop().create_future()
            self._answered = answered
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RESET_TIMEOUT):
                    await answered

    def _end(self) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    def _from_client(self, data: bytes) -> None:
        done = self._done
        if done is None or done.done():
            return
        try:
            msgs = self.client.feed(data)
        except LogOnly as e:
            self.client_error = e
            self._end()
            return
        if msgs:
            self.held.extend(msgs)
            self.held_bytes += sum(len(x) for x in msgs) if len(msgs) > 1 else len(msgs[0])
            if self.conn is not None:
                self._flush()
            elif self._attaching is None and (answer := self.state.parse_alone(self.held, plain)) is not None:
                # libpq's PQprepare outside a transaction: answered here, so that a client that prepares
                # while others of its thread hold every server connection (pgbench -M prepared) cannot wait
                # for itself.
                self.held = []
                self.held_bytes = 0
                self._channel.send(answer)  # type: ignore[union-attr]
            elif self._attaching is None:
                self._attaching = asyncio.get_running_loop().create_task(self._attach())
            if self.conn is None and self.held_bytes > MAX_HELD_BYTES and not self._paused_client:
                self._paused_client = True
                self._channel.raw.pause_reading()  # type: ignore[union-attr]
        if self.client.terminated and (self.conn is not None or not self.held):
            self._end()  # with messages held for a server still being taken, after they are sent (_attach)

    def _flush(self) -> None:
        """Send what the client sent on to the attached server connection."""
        conn = self.conn
        assert conn is not None
        msgs = self.held
        self.held = []
        self.held_bytes = 0
        outs: list[bytes] = []
        answers: list[bytes] = []
        start = 0
        for i, msg in enumerate(msgs):
            if msg[0] in (81, 80):  # Query, Parse: a look at what it does to the session, with what was
                if i > start:  # sent before it already queued (is it inside a transaction block?)
                    out, to_client = self.state.to_server(msgs[start:i])
                    outs.append(out)
                    answers.append(to_client)
                    start = i
                self._inspect(msg)
        out, to_client = self.state.to_server(msgs[start:] if start else msgs)
        outs.append(out)
        answers.append(to_client)
        to_client = b"".join(answers)
        out = b"".join(outs)
        if to_client:
            self._channel.send(to_client)  # type: ignore[union-attr]
        if out:
            conn.write(out)
            if conn.write_paused and not self._paused_client:
                self._paused_client = True
                self._channel.raw.pause_reading()  # type: ignore[union-attr]
        self._maybe_release()

    def _inspect(self, msg: bytes) -> None:
        body = msg[5:-1] if msg[0] == 81 else msg[5:]
        if msg[0] == 80:
            name_end = body.find(b"\0")
            sql_end = body.find(b"\0", name_end + 1)
            if name_end > 0 and self.backend.pool_settings().max_prepared == 0:
                self._pin({"a named prepared statement (max_prepared_statements = 0)"})
            body = body[name_end + 1 : sql_end if sql_end >= 0 else None]
        if _POOL_FLUSHING.match(body):
            self.backend.close_idle_sessions()
        verdict = inspect(body)
        if verdict.forget_statements:
            self.state.forget_all()
        if verdict.pins:
            self._pin(verdict.pins)
        if verdict.releases and self.pins:
            state = self.state
            if not state.queue and state.status == "I":
                # Outside a transaction block: it takes effect if it works (an error rolls it back).
                self._releasing = (verdict.releases, state.errors)
            else:
                self._releasing = None  # inside one, a later ROLLBACK could undo it: stay pinned

    @property
    def pinned(self) -> str | None:
        return ", ".join(sorted(self.pins)) if self.pins else None

    def _pin(self, kinds: set[str] | frozenset[str]) -> None:
        if not self.pins:
            self.backend.pinned_clients += 1
            self.ever_pinned = True
        if self._releasing is not None:
            self._releasing = (self._releasing[0] - kinds, self._releasing[1])
        self.pins |= kinds
        log.debug(f"client pinned to its server connection in transaction mode: {self.pinned}")

    def _released_state(self) -> None:
        """At an idle point: session state a statement ended is gone if no error came since it was sent."""
        releasing, self._releasing = self._releasing, None
        if releasing is None or releasing[1] != self.state.errors or not self.pins:
            return
        self.pins -= releasing[0]
        if not self.pins:
            self.backend.pinned_clients -= 1
            log.debug("client unpinned in transaction mode: its session state was released")

    async def _attach(self) -> None:
        try:
            conn = await self.backend.checkout(self.pool, self.startup)
            try:
                if conn.holder is not self:
                    await self.backend.record_identity(conn, self.info)
            except BaseException:
                self.pool.release(conn, conn.usable and not conn.closed)
                raise
        except (PgError, OSError, UpstreamGone, QueryError, TimeoutError) as e:
            err = (
                e
                if isinstance(e, PgError)
                else e.fields.to_error()
                if isinstance(e, QueryError)
                else PgError(
                    CONNECTION_FAILURE,
                    "could not reach the PostgreSQL server behind pgtls",
                    detail=str(e) or None,
                )
            )
            if self._channel is not None:
                self._channel.send(
                    m.error_response(
                        PgError(err.sqlstate, err.message, severity="FATAL", detail=err.detail, hint=err.hint)
                    )
                )
                self._channel.close()
            self._end()
            return
        finally:
            self._attaching = None
        done = self._done
        if done is None or done.done():
            self.pool.release(conn, conn.usable and not conn.closed)
            return
        conn.holder = self
        self.conn = conn
        self.transactions += 1
        self.state.attached(conn.statements)
        conn.on_resume = self._upstream_writable
        conn.attach(self._from_server, self._lost)
        if self._paused_client:
            self._paused_client = False
            self._channel.raw.resume_reading()  # type: ignore[union-attr]
        if self.held:
            self._flush()
        if self.client.terminated:
            self._end()

    def _upstream_writable(self) -> None:
        if self._paused_client:
            self._paused_client = False
            self._channel.raw.resume_reading()  # type: ignore[union-attr]

    def _from_server(self, data: bytes) -> None:
        channel = self._channel
        assert channel is not None
        try:
            out = self.state.from_server(data)
        except PgError as e:  # not PostgreSQL's protocol: end the client's session, drop the connection
            channel.send(m.error_response(e))
            channel.close()
            self.upstream_lost = True
            if self.conn is not None:
                self.conn.abort()
            self._end()
            return
        if out:
            channel.send(out)
        if self._answered is not None and not self.state.queue and not self._answered.done():
            self._answered.set_result(None)
        if channel.raw.write_paused and not self._paused_upstream and self.conn is not None:
            self._paused_upstream = True
            self.conn.pause_reading()
        self._maybe_release()

    def _maybe_release(self) -> None:
        """Between transactions: the server connection goes back to the pool."""
        conn = self.conn
        if conn is None or not self.state.idle or self.held or self.client.terminated:
            return
        if self._releasing is not None:
            self._released_state()
        if self.pins:
            return
        self._let_go(conn, conn.generation == self.backend.generation and not conn.closed)

    def _let_go(self, conn: UpstreamConn, reusable: bool) -> None:
        conn.detach()
        conn.on_resume = None
        if self._paused_upstream:
            self._paused_upstream = False
            conn.resume_reading()
        self.conn = None
        self.state.detached()
        with contextlib.suppress(RuntimeError):
            self.pool.release(conn, reusable)

    def _lost(self) -> None:
        self.upstream_lost = True
        channel = self._channel
        if channel is not None:
            if not self.state.queue:
                channel.send(upstream_closed())
            channel.close()
        self._end()

    async def cancel(self) -> None:
        conn = self.conn
        if conn is not None and not self.released and not conn.closed:
            await self.backend.cancel_upstream(conn)

    async def release(self, fast: bool = False) -> None:
        """The client left: a server connection it still holds is reset and pooled, or closed."""
        if self.released:
            return
        self.released = True
        if self.pins:
            self.backend.pinned_clients -= 1
        log.debug(
            f"transaction mode: the client took a server connection {self.transactions} times; pgtls "
            f"prepared its statements on them {self.state.added_parses} times"
            + (f"; pinned by {self.pinned}" if self.pinned else "")
            + ("; was pinned" if self.ever_pinned and not self.pinned else "")
        )
        conn = self.conn
        if conn is None:
            return
        self.conn = None
        conn.detach()
        conn.on_resume = None
        if self._paused_upstream:
            self._paused_upstream = False
            conn.resume_reading()
        reusable = False
        idle = self.state.idle and not self.upstream_lost and not conn.closed and not fast
        if idle and not self.pins:
            reusable = True  # nothing of the session's was changed that pgtls saw: as after any transaction
        elif idle:
            reusable = await reset_for_pool(conn, self.pool._settings().reset_query)
        if conn.generation != self.backend.generation:
            reusable = False
        if not reusable:
            self.backend.forget_identity(conn, self.database)
        with contextlib.suppress(RuntimeError):
            self.pool.release(conn, reusable)
