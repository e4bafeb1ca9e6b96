"""The relay backend: PostgreSQL itself behind the door, reached over a private socket and pooled.

It owns the managed cluster (start, supervision, reload, stop), the pools of
upstream sessions, and pgtls's privileged connections (one per database, as
the cluster's bootstrap superuser): role lookups for authentication, and the
client-identity rows of :mod:`pgtls.backends.relay.identity`.

The server layer drives it through :class:`pgtls.backends.base.AsyncBackend`:
``role_lookup`` before authentication, ``open`` after it, then the session's
``run`` relays until the client or the server ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from pathlib import Path
from typing import Any

from pgtls import log
from pgtls.auth.exchange import ProvenSecret
from pgtls.auth.scram_client import ScramKeys
from pgtls.backends.base import SessionInfo
from pgtls.backends.relay import identity, passfile, routing
from pgtls.backends.relay.cluster import ClusterLink, ManagedCluster, admin_user
from pgtls.backends.relay.netconnect import (
    HostHealth,
    connect_upstream,
    endpoints,
    send_cancel_upstream,
    session_attrs_problem,
)
from pgtls.backends.relay.pgbin import find as find_pgbin
from pgtls.backends.relay.pool import Key, Pool, PoolSettings, Startup
from pgtls.backends.relay.roles import ROLE_QUERY, RoleView, role_view
from pgtls.backends.relay.session import RelaySession
from pgtls.backends.relay.txnsession import TxnRelaySession
from pgtls.backends.relay.upauth import Credentials
from pgtls.backends.relay.upstream import QueryError, UpstreamConn, UpstreamGone, connect_unix, send_cancel
from pgtls.config.routes import ROUTES_FILE
from pgtls.errors import FEATURE_NOT_SUPPORTED, INVALID_AUTHORIZATION_SPECIFICATION, PgError

CANNOT_CONNECT_NOW = "57P03"
ADMIN_DATABASE = "postgres"  # where role lookups run (never template1: CREATE DATABASE needs it unused)
MAINTENANCE_INTERVAL = 1.0
PAUSE_POLL = 0.05  # seconds between looks at the sessions in use while PAUSE waits for them
RECHECKS = 3  # pooled sessions tried before a fresh one is used anyway (see RelayBackend._checked)
# Startup parameters the door handled itself.
_NOT_PASSED = frozenset({"user", "database", "replication"})


def starting_up() -> PgError:
    return PgError(CANNOT_CONNECT_NOW, "the database system is starting up", severity="FATAL")


class RelayBackend:
    is_async = True

    def __init__(self, data_dir: Path, server: Any) -> None:
        self.data_dir = data_dir
        self.server = server
        settings = server.snapshot.settings
        # Network upstreams (the upstream setting or a routes file) instead of the managed cluster.
        self.routes: routing.Routes | None = None
        self.cluster: ManagedCluster | ClusterLink | None = None
        self._upstream_setting = str(settings["upstream"])
        if self._upstream_setting or (data_dir / ROUTES_FILE).exists():
            self.routes = routing.load(data_dir, self._upstream_setting)
            self.admin_name = ""
        elif getattr(server, "worker", None) is not None:
            self.cluster = ClusterLink(data_dir)  # the supervisor runs the cluster and says when it restarts
            self.admin_name = admin_user(data_dir)
        else:
            self.pgbin = find_pgbin(str(settings["postgresql_bin_dir"]))
            self.cluster = ManagedCluster(data_dir, self.pgbin)
            self.cluster.on_restart = self._cluster_restarted
            self.admin_name = admin_user(data_dir)
        self._proven: dict[Key, ProvenSecret | None] = {}  # the last login's proof per pool (same role)
        self._identity_off: set[str] = (
            set()
        )  # network upstreams where pgtls may not install the identity view
        self.health = HostHealth()
        self.pools: dict[Key, Pool] = {}
        self._admins: dict[str, UpstreamConn] = {}
        self._admin_opening: dict[str, asyncio.Future[UpstreamConn]] = {}
        self._identity_ready: set[str] = set()
        self._identity_lock = asyncio.Lock()
        self._maintenance: asyncio.Task[None] | None = None
        # Bumped by statements after which no session opened before may serve a new client (CREATE/DROP/ALTER
        # DATABASE, ALTER ROLE): idle ones are closed at once, those in use or being reset when released.
        self.generation = 0
        self._background: set[asyncio.Task[Any]] = set()
        self._pool_settings: tuple[object, PoolSettings] | None = None  # per settings snapshot
        self.pinned_clients = 0  # transaction mode: clients kept on their server connection (sessionstate)
        self.paused = False  # the admin console's PAUSE: no upstream session is handed out until RESUME
        self._unpaused = asyncio.Event()
        self._unpaused.set()

    @property
    def socket_path(self) -> Path:
        assert self.cluster is not None
        return self.cluster.socket_path

    # --- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        if self.cluster is not None:
            await self.cluster.start()
        self._maintenance = asyncio.get_running_loop().create_task(self._maintain())

    def reload(self) -> None:
        upstream = str(self.server.snapshot.settings["upstream"])
        if self.cluster is not None:
            self.cluster.reload()
            if upstream or (self.data_dir / ROUTES_FILE).exists():
                log.log(
                    "the managed cluster stays until the server restarts: network upstreams (the upstream "
                    f"setting, {ROUTES_FILE}) take effect at the next start"
                )
            return
        try:
            routes = routing.load(self.data_dir, upstream)
        except routing.RouterError as e:
            for err in e.errors:
                log.log(err.format())
            log.log(f"{ROUTES_FILE} was not reloaded")
            return
        assert self.routes is not None
        if routes != self.routes:
            self.routes = routes
            self.close_idle_sessions()  # no session opened for an old route serves a new client

    async def stop(self, mode: str) -> None:
        if self._maintenance is not None:
            self._maintenance.cancel()
        for pool in self.pools.values():
            pool.close()
        for conn in self._admins.values():
            conn.close()
        self._admins.clear()
        if self.cluster is not None:
            await self.cluster.stop(mode)

    def close(self) -> None:  # the synchronous Backend interface; stop() does the work
        pass

    def cluster_state(self, ready: bool) -> None:
        """In a worker process: the supervisor's word that the managed cluster went down or is back."""
        assert isinstance(self.cluster, ClusterLink)
        was = self.cluster.ready
        self.cluster.ready = ready
        if was and not ready:
            self._cluster_restarted()

    def _cluster_restarted(self) -> None:
        for pool in self.pools.values():
            pool.close_idle()
        for conn in self._admins.values():
            conn.abort()
        self._admins.clear()
        self._identity_ready.clear()

    def close_idle_sessions(self) -> None:
        """Before CREATE/DROP/ALTER DATABASE or ALTER ROLE: pooled sessions must not hold any database, and
        none opened before may start a new client's session with stale role or database settings."""
        shared = getattr(self.server, "shared", None)
        if shared is not None:
            shared.bump_generation()  # the other workers close theirs too (see _sync_generation)
        self._close_idle_local()

    def _sync_generation(self) -> None:
        """Another worker relayed a database or role command: do as it did."""
        shared = getattr(self.server, "shared", None)
        if shared is not None and shared.generation_changed():
            self._close_idle_local()

    def _close_idle_local(self) -> None:
        self.generation += 1
        self._identity_ready.clear()  # a database may be dropped and made again under its name
        n = sum(pool.close_idle() for pool in self.pools.values())
        for db, conn in list(self._admins.items()):
            if db != ADMIN_DATABASE and conn.usable:
                conn.close()
                del self._admins[db]
        if n:
            log.debug(f"closed {n} idle pooled sessions before a database command")

    async def _maintain(self) -> None:
        while True:
            await asyncio.sleep(MAINTENANCE_INTERVAL)
            self._sync_generation()
            for key, pool in list(self.pools.items()):
                try:
                    await pool.maintain()
                except Exception as e:  # noqa: BLE001 - maintenance must go on
                    log.log(f"pool maintenance failed: {e}")
                if pool.size == 0 and not pool.waiters and self.pools.get(key) is pool:
                    del self.pools[key]

    # --- settings -----------------------------------------------------------------------------
    def pool_settings(self) -> PoolSettings:
        s = self.server.snapshot.settings
        cached = self._pool_settings
        if cached is not None and cached[0] is s:
            return cached[1]
        ps = PoolSettings(
            pool_size=int(s["default_pool_size"]),
            min_pool_size=int(s["min_pool_size"]),
            idle_timeout=float(s["server_idle_timeout"]),
            lifetime=float(s["server_lifetime"]),
            wait_timeout=float(s["query_wait_timeout"]),
            reset_query=str(s["server_reset_query"]),
            mode=str(s["pool_mode"]),
            max_prepared=int(s["max_prepared_statements"]),
            round_robin=bool(s["server_round_robin"]),
        )
        self._pool_settings = (s, ps)
        return ps

    def _route_pool_settings(self, database: str) -> PoolSettings:
        """The global pool settings, with a route's own pool_size/min_pool_size (PgBouncer's per-database
        keys) for the pools of its database."""
        base = self.pool_settings()
        if self.routes is None:
            return base
        try:
            pool = self.routes.target(database)
        except PgError:  # the route is gone (reload): its pools drain with the global settings
            return base
        if pool.pool_mode:
            base = dataclasses.replace(base, mode=pool.pool_mode)
        pool_keys = pool.pool
        if not pool_keys:
            return base
        return dataclasses.replace(
            base,
            pool_size=pool_keys.get("pool_size", base.pool_size) or base.pool_size,
            min_pool_size=pool_keys.get("min_pool_size", base.min_pool_size),
        )

    # --- upstream connections -----------------------------------------------------------------
    async def _connect(
        self,
        user: str,
        database: str,
        extra: dict[str, str] | None = None,
        proven: ProvenSecret | None = None,
        admin: bool = False,
    ) -> UpstreamConn:
        if self.routes is not None:
            return await self._connect_network(user, database, extra or {}, proven, admin)
        assert self.cluster is not None
        if not self.cluster.ready:
            raise starting_up()
        params = {"user": user, "database": database, **(extra or {})}
        generation = self.generation
        try:
            conn = await connect_unix(self.socket_path, params)
        except (FileNotFoundError, ConnectionRefusedError, UpstreamGone, ConnectionResetError):
            raise starting_up() from None
        conn.generation = generation
        return conn

    async def _connect_network(
        self, user: str, database: str, extra: dict[str, str], proven: ProvenSecret | None, admin: bool
    ) -> UpstreamConn:
        assert self.routes is not None
        target = self.routes.target(database)
        params = target.libpq(database)
        if admin:
            if not target.auth_user:
                raise PgError(
                    INVALID_AUTHORIZATION_SPECIFICATION,
                    f'no auth_user for the route of database "{database}"',
                    severity="FATAL",
                    detail=f"pgtls reads roles upstream as the route's auth_user ({ROUTES_FILE}).",
                )
            login, proven = target.auth_user, None
        else:
            login = target.forced_user or user
            if target.forced_user:
                proven = None  # a forced role logs in with the route's own secret
        creds = self._credentials(params, login, proven)
        startup = {**extra, "user": login, "database": params["dbname"]}
        generation = self.generation
        conn = await connect_upstream(params, startup, creds, target.policy, self.health)
        conn.generation = generation
        conn.target = target  # type: ignore[attr-defined]
        return conn

    @staticmethod
    def _credentials(params: dict[str, str], login: str, proven: ProvenSecret | None) -> Credentials:
        """What pgtls logs in upstream with: what the client's own login proved (SCRAM's keys, or the
        password of the password method), else the route's password (with user=), else the password file."""
        creds = Credentials(login, channel_binding=params.get("channel_binding", "prefer"))
        if proven is not None and proven.client_key is not None and proven.server_key is not None:
            creds.scram_keys = ScramKeys(proven.client_key, proven.server_key)
        elif proven is not None and proven.password is not None:
            creds.password = proven.password.decode("utf-8", "surrogateescape")
        elif "password" in params:
            creds.password = params["password"]
        else:
            first = endpoints(params)[0]
            creds.password = passfile.lookup(
                params.get("passfile", ""), first.host or first.hostaddr, first.port, params["dbname"], login
            )
        return creds

    async def admin(self, database: str) -> UpstreamConn:
        conn = self._admins.get(database)
        if conn is not None and not conn.closed:
            return conn
        opening = self._admin_opening.get(database)
        if opening is not None:
            return await asyncio.shield(opening)
        fut: asyncio.Future[UpstreamConn] = asyncio.get_running_loop().create_future()
        self._admin_opening[database] = fut
        try:
            conn = await self._connect(self.admin_name, database, {"application_name": "pgtls"}, admin=True)
            self._admins[database] = conn
            fut.set_result(conn)
            return conn
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()
            raise
        finally:
            del self._admin_opening[database]

    async def role_lookup(self, user: str, database: str = ADMIN_DATABASE) -> RoleView:
        """The role and its memberships, fresh from pg_authid (for one login); on a network upstream, from the
        route's upstream as its auth_user."""
        try:
            user.encode("utf-8")
        except UnicodeEncodeError:  # not UTF-8: no role of this UTF8 cluster can have that name
            return RoleView(user, None)
        conn = await self.admin(database if self.routes is not None else ADMIN_DATABASE)
        try:
            res = await conn.execute_prepared("pgtls_role", ROLE_QUERY, [user])
        except QueryError as e:
            raise e.fields.to_error("FATAL") from None
        except UpstreamGone:
            raise starting_up() from None
        return role_view(user, res.rows)

    # --- sessions -----------------------------------------------------------------------------
    def _pool(self, key: Key) -> Pool:
        pool = self.pools.get(key)
        if pool is None:
            pool = self.pools[key] = Pool(
                key,
                lambda startup: self._connect(key[0], key[1], dict(startup), self._proven.get(key)),
                lambda: self._route_pool_settings(key[1]),
            )
            pool.make_room = self._make_room
            pool.suitable = self._still_suitable
        return pool

    @staticmethod
    def _still_suitable(conn: UpstreamConn) -> bool:
        """A pooled session on a network upstream still matches its route's target_session_attrs (a standby
        promoted, a primary demoted: PostgreSQL 14+ reports in_hot_standby changes)."""
        target = getattr(conn, "target", None)
        if target is None:
            return True
        want = target.params.get("target_session_attrs", "any")
        return want == "prefer-standby" or session_attrs_problem(conn, want) is None

    async def _checked(
        self, pool: Pool, conn: UpstreamConn, startup: tuple[tuple[str, str], ...]
    ) -> UpstreamConn:
        """A pooled session of a route that picks primaries or standbys (target_session_attrs) makes one round
        trip before it is handed out: PostgreSQL reports a promotion (in_hot_standby) only when it next sends
        ReadyForQuery, and an idle pooled session sends nothing."""
        for _ in range(RECHECKS):
            target = getattr(conn, "target", None)
            want = target.params.get("target_session_attrs", "any") if target is not None else "any"
            if (
                want in ("any", "prefer-standby") or conn.last_used == conn.created
            ):  # fresh: checked at connect
                return conn
            try:
                await conn.execute("")
                ok = self._still_suitable(conn)
            except (QueryError, UpstreamGone, ConnectionError):
                ok = False
            if ok:
                return conn
            pool.release(conn, False)
            conn = await pool.acquire(startup)
        return conn

    def _make_room(self, asking: Pool) -> int:
        """The cluster is out of connections: close every idle session of the other pools."""
        return sum(pool.close_idle() for pool in self.pools.values() if pool is not asking)

    async def checkout(self, pool: Pool, startup: Startup) -> UpstreamConn:
        if self.paused:
            await self._unpaused.wait()
        return await self._checked(pool, await pool.acquire(startup), startup)

    async def pause(self) -> None:
        """PgBouncer's PAUSE: hand out no upstream session, wait until none is in use, close the idle ones."""
        self.paused = True
        self._unpaused.clear()
        while any(pool.in_use for pool in self.pools.values()):
            await asyncio.sleep(PAUSE_POLL)
        for pool in self.pools.values():
            pool.close_idle()

    def resume(self) -> None:
        self.paused = False
        self._unpaused.set()

    async def open(self, info: SessionInfo) -> RelaySession | TxnRelaySession:
        """An upstream session for an authenticated client, opened with its startup parameters; in
        transaction mode only the ParameterStatus values such a session starts with."""
        startup = self._startup_parameters(info)
        self._sync_generation()
        key = (info.user, info.database)
        self._proven[key] = info.proven if isinstance(info.proven, ProvenSecret) else None
        pool = self._pool(key)
        if self._route_pool_settings(info.database).mode == "transaction":
            welcome = pool.welcome.get(startup)
            if welcome is None:  # the first client with these parameters: a session says what they give
                conn = await self.checkout(pool, startup)
                welcome = list(conn.params.items())
                pool.release(conn, conn.usable and not conn.closed)
            return TxnRelaySession(self, pool, info, startup, welcome)
        conn = await self.checkout(pool, startup)
        try:
            await self._identity(conn, info)
        except BaseException:
            pool.release(conn, conn.usable and not conn.closed)
            raise
        conn.holder = None
        return RelaySession(self, pool, conn, info.database)

    async def record_identity(self, conn: UpstreamConn, info: SessionInfo) -> None:
        """Transaction mode: the identity row of ``conn``'s backend says ``info``'s client from now on."""
        await self._identity(conn, info)

    @staticmethod
    def _startup_parameters(info: SessionInfo) -> tuple[tuple[str, str], ...]:
        """What the client's startup packet said besides user and database, to open its upstream session
        with (PostgreSQL then applies options, settings and their reset values as for a direct client)."""
        opts = info.options
        if opts.get("replication", "").lower() not in ("", "false", "off", "no", "0"):
            raise PgError(
                FEATURE_NOT_SUPPORTED,
                "replication connections are not supported through pgtls",
                severity="FATAL",
            )
        return tuple(
            sorted((k, v) for k, v in opts.items() if k not in _NOT_PASSED and not k.startswith("_pq_."))
        )

    async def _identity(self, conn: UpstreamConn, info: SessionInfo) -> None:
        db = info.database
        if db in self._identity_off:
            return
        admin = await self.admin(db)
        if db not in self._identity_ready:
            async with self._identity_lock:
                if db not in self._identity_ready:
                    await self._install_identity(admin, db)
        if db not in self._identity_ready and self.routes is not None:
            if db not in self._identity_off:
                self._identity_off.add(db)
                log.log(
                    f'the client identity view is not available in database "{db}" upstream; sessions there '
                    "have no pgtls.client_identity"
                )
            return
        if db not in self._identity_ready:
            # Never hand over a session whose identity row could be an earlier client's.
            raise PgError(
                CANNOT_CONNECT_NOW,
                "could not record the client's TLS identity for this session",
                severity="FATAL",
                detail=f'See the server log for database "{db}".',
            )
        params = identity.upsert_params(conn.pid, info)
        try:
            await admin.execute_prepared("pgtls_identity", identity.UPSERT, params)
        except QueryError as e:
            if e.fields.sqlstate not in ("42P01", "42883", "3F000"):  # gone: dropped by a superuser
                raise e.fields.to_error("FATAL") from None
            self._identity_ready.discard(db)
            async with self._identity_lock:
                await self._install_identity(admin, db)
            with contextlib.suppress(QueryError):
                await admin.execute(identity.UPSERT, params)  # unnamed: the table was made again

    async def _install_identity(self, admin: UpstreamConn, db: str) -> None:
        try:
            res = await admin.execute(identity.SCHEMA_CHECK)
            if not res.rows or res.rows[0][0] != "t":
                await admin.execute(identity.INSTALL)
            await admin.execute(identity.PRUNE)
            self._identity_ready.add(db)
        except QueryError as e:
            log.log(f'could not install the client identity functions in database "{db}": {e.fields.message}')

    def forget_identity(self, conn: UpstreamConn, database: str) -> None:
        admin = self._admins.get(database)
        if admin is None or admin.closed or database not in self._identity_ready:
            return
        fut = admin.execute(identity.DELETE, [str(conn.pid)])
        task = asyncio.ensure_future(fut)
        self._background.add(task)
        task.add_done_callback(self._done_background)

    def _done_background(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled():
            task.exception()

    async def cancel_upstream(self, conn: UpstreamConn) -> None:
        target = getattr(conn, "target", None)
        if target is not None:
            await send_cancel_upstream(conn, target.policy)
            return
        await send_cancel(self.socket_path, conn.pid, conn.key)
