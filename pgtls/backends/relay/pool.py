"""Session pooling: upstream sessions kept per (role, database) and reused by the next client.

The knobs have PgBouncer's names and meanings (``default_pool_size``,
``min_pool_size``, ``server_idle_timeout``, ``server_lifetime``,
``query_wait_timeout``, ``server_reset_query``), read from the current
settings snapshot at each use, so a reload changes them for the next checkout.

A pool never holds more than ``pool_size`` sessions (in use, idle or being
opened).  A client that finds it full waits, first come first served, up to
``query_wait_timeout``, then gets PostgreSQL's 53300.  Idle sessions are used
last-in first-out (the warmest first); a maintenance pass closes those idle
longer than ``server_idle_timeout`` or older than ``server_lifetime`` and opens
sessions up to ``min_pool_size``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pgtls.backends.relay.upstream import UpstreamConn
from pgtls.errors import TOO_MANY_CONNECTIONS, PgError

Key = tuple[str, str]  # (role, database)


@dataclass(frozen=True)
class PoolSettings:
    pool_size: int = 20
    min_pool_size: int = 0
    idle_timeout: float = 600.0  # 0: never
    lifetime: float = 3600.0  # 0: never
    wait_timeout: float = 120.0  # 0: forever
    reset_query: str = "DISCARD ALL"
    mode: str = "session"  # pool_mode: session | transaction
    max_prepared: int = 200  # max_prepared_statements: per server connection, in transaction mode
    round_robin: bool = False  # server_round_robin: the coldest idle session first (default: the warmest)


# Sessions a pool opens at once for clients that found no idle one (each also takes one given back sooner).
MAX_OPENING = 4
# Startup-parameter sets whose ParameterStatus a pool remembers (clients with others take a server at login).
MAX_WELCOMES = 64


def too_many_clients() -> PgError:
    return PgError(TOO_MANY_CONNECTIONS, "sorry, too many clients already", severity="FATAL")


Startup = tuple[tuple[str, str], ...]  # the startup parameters an upstream session was opened with


class Pool:
    """The sessions of one (role, database).

    Each session is opened with its first client's startup parameters (``application_name``,
    ``options``, ``DateStyle``, ...) in its startup packet, exactly as that client would open it, so
    RESET and DISCARD ALL return to them, settings allowed only at connection start work, and
    ``pg_settings.source`` says ``client``.  A session is reused only by a client with the same
    parameters; the pool's size counts all of them, and an idle session with other parameters is
    closed to make room when the pool is full.
    """

    def __init__(
        self,
        key: Key,
        connect: Callable[[Startup], Awaitable[UpstreamConn]],
        settings: Callable[[], PoolSettings],
    ) -> None:
        self.key = key
        self._connect = connect
        self._settings = settings
        self.suitable: Callable[[UpstreamConn], bool] | None = (
            None  # still right for its route (e.g. primary)
        )
        self.idle: list[UpstreamConn] = []
        self.size = 0  # sessions this pool owns: idle, in use, or being opened
        self.waiters: collections.deque[tuple[asyncio.Future[UpstreamConn | None], Startup]] = (
            collections.deque()
        )
        self.last_startup: Startup = ()
        self.make_room: Callable[[Pool], int] = lambda pool: 0  # close idle sessions of other pools
        # ParameterStatus of the latest session opened per startup parameters: what a client logging in in
        # transaction mode is told without holding a server connection.
        self.welcome: dict[Startup, list[tuple[str, str]]] = {}
        self._racing: set[int] = set()  # waiters that are also opening a session (ids of their futures)

    @property
    def in_use(self) -> int:
        return self.size - len(self.idle)

    def _fresh(self, conn: UpstreamConn, now: float) -> bool:
        s = self._settings()
        if not conn.usable:
            return False
        if self.suitable is not None and not self.suitable(conn):
            return False
        if s.lifetime and now - conn.created > s.lifetime:
            return False
        return True

    def _take_idle(self, startup: Startup, now: float) -> UpstreamConn | None:
        """An idle session opened with ``startup``: the warmest (last released) first, or the coldest with
        server_round_robin.  Stale ones met on the way are closed."""
        coldest_first = self._settings().round_robin
        while True:
            matching = [i for i, c in enumerate(self.idle) if c.startup_params == startup]
            if not matching:
                return None
            conn = self.idle.pop(matching[0] if coldest_first else matching[-1])
            if self._fresh(conn, now):
                return conn
            self._discard(conn)

    async def acquire(self, startup: Startup = ()) -> UpstreamConn:
        loop = asyncio.get_running_loop()
        self.last_startup = startup
        granted = False  # woken because a slot was freed: open a session ahead of later waiters
        while True:
            now = loop.time()
            conn = self._take_idle(startup, now)
            if conn is not None:
                return conn
            s = self._settings()
            first = granted or len(self.waiters) == len(self._racing)  # no client waits before this one
            if self.size >= s.pool_size and self.idle and first:
                self._discard(self.idle.pop(0))  # the coldest session with other parameters makes room
            if self.size < s.pool_size and first and (granted or len(self._racing) < MAX_OPENING):
                return await self._open_racing(startup)
            fut: asyncio.Future[UpstreamConn | None] = loop.create_future()
            entry = (fut, startup)
            self.waiters.append(entry)
            try:
                async with asyncio.timeout(s.wait_timeout or None):
                    conn = await fut
            except TimeoutError:
                if fut.done() and not fut.cancelled() and fut.exception() is None:
                    got = fut.result()
                    if got is not None:
                        return got
                    self._wake_one(None)  # pass the freed slot on
                raise too_many_clients() from None
            except asyncio.CancelledError:
                self._give_back(fut)
                raise
            finally:
                with contextlib.suppress(ValueError):
                    self.waiters.remove(entry)
            if conn is not None:
                return conn
            granted = True

    async def _open_racing(self, startup: Startup) -> UpstreamConn:
        """Open a session, but take one that another client gives back first if that comes sooner (a
        waiting client gets whichever server is ready first, as in PgBouncer); the session being opened then
        joins the pool."""
        loop = asyncio.get_running_loop()
        self.size += 1  # counted at once: concurrent acquirers see it
        task = loop.create_task(self._open(startup))
        fut: asyncio.Future[UpstreamConn | None] = loop.create_future()
        entry = (fut, startup)
        self.waiters.append(entry)
        self._racing.add(id(fut))
        try:
            await asyncio.wait((task, fut), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.add_done_callback(self._adopt)
            self._give_back(fut)
            raise
        finally:
            self._racing.discard(id(fut))
            with contextlib.suppress(ValueError):
                self.waiters.remove(entry)
        if fut.done() and not fut.cancelled():
            got = fut.result()
            if got is not None:
                task.add_done_callback(self._adopt)
                return got
            self._wake_one(None)  # a freed slot this client does not need: the next waiter's
        return await task

    def _adopt(self, task: asyncio.Task[UpstreamConn]) -> None:
        """A session opened for a client that got another one first: into the pool."""
        if task.cancelled() or task.exception() is not None:
            return
        conn = task.result()
        self.release(conn, True)

    def _give_back(self, fut: asyncio.Future[UpstreamConn | None]) -> None:
        """A waiter that was cancelled after being handed a session: the session goes back."""
        if fut.done() and not fut.cancelled() and fut.exception() is None:
            got = fut.result()
            if got is not None:
                self.release(got, got.usable)
            else:
                self._wake_one(None)
        elif not fut.done():
            fut.cancel()

    async def _open(self, startup: Startup) -> UpstreamConn:
        """Open a session in a slot already counted in ``size``."""
        try:
            try:
                conn = await self._connect(startup)
            except PgError as e:
                # PostgreSQL counts idle pooled sessions against max_connections and a role's CONNECTION LIMIT:
                # close idle ones (this pool's, else others') and try once more.
                if e.sqlstate != TOO_MANY_CONNECTIONS or not (self.close_idle() or self.make_room(self)):
                    raise
                conn = await self._connect(startup)
        except BaseException:
            self.size -= 1
            self._wake_one(None)
            raise
        conn.startup_params = startup
        if len(self.welcome) < MAX_WELCOMES or startup in self.welcome:
            self.welcome[startup] = list(conn.params.items())
        return conn

    def release(self, conn: UpstreamConn, reusable: bool) -> None:
        """Give a session back; ``reusable`` only when it was reset and is idle."""
        loop = asyncio.get_running_loop()
        if not reusable or not self._fresh(conn, loop.time()):
            self._discard(conn)
            self._wake_one(None)
            return
        conn.last_used = loop.time()
        if self._wake_one(conn):
            return
        if any(
            id(f) not in self._racing for f, _ in self.waiters
        ):  # others wait (other parameters): the slot is theirs
            self._discard(conn)
            self._wake_one(None)
            return
        self.idle.append(conn)

    def _wake_one(self, conn: UpstreamConn | None) -> bool:
        """Hand ``conn`` to the first waiter with its parameters (None: a freed slot, to the first one)."""
        for entry in list(self.waiters):
            fut, startup = entry
            if fut.done():
                self.waiters.remove(entry)
                continue
            if conn is None or conn.startup_params == startup:
                self.waiters.remove(entry)
                fut.set_result(conn)
                return True
        return False

    def _discard(self, conn: UpstreamConn) -> None:
        self.size -= 1
        conn.close()

    def close_idle(self) -> int:
        n = len(self.idle)
        for conn in self.idle:
            self.size -= 1
            conn.close()
        self.idle.clear()
        for _ in range(n):
            if not self._wake_one(None):
                break
        return n

    async def maintain(self) -> None:
        """Close idle sessions past their time; open up to min_pool_size (with the latest parameters)."""
        s = self._settings()
        now = asyncio.get_running_loop().time()
        keep: list[UpstreamConn] = []
        for conn in self.idle:
            idle_too_long = s.idle_timeout and now - conn.last_used > s.idle_timeout
            if idle_too_long or not self._fresh(conn, now):
                self._discard(conn)
            else:
                keep.append(conn)
        self.idle = keep
        while self.size < min(s.min_pool_size, s.pool_size) and not self.waiters:
            self.size += 1
            try:
                conn = await self._open(self.last_startup)
            except (PgError, OSError, TimeoutError, ConnectionError):
                return
            conn.last_used = now
            self.idle.append(conn)

    def close(self) -> None:
        self.close_idle()
        for fut, _ in self.waiters:
            if not fut.done():
                fut.set_exception(too_many_clients())
                fut.exception()
        self.waiters.clear()
