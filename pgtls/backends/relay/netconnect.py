"""Opening a session on an upstream PostgreSQL named by libpq connection parameters.

What libpq does in ``PQconnectPoll``, for pgtls's upstream leg: the ``host``/``hostaddr``/``port``
lists (one port for all hosts, or one per host; a host starting with ``/`` is a Unix-socket
directory), ``load_balance_hosts=random`` (hosts, then each host's addresses, shuffled),
``connect_timeout`` per host (at least 2 s, as libpq), TCP keepalives and ``tcp_user_timeout``, the
TLS policy of :mod:`pgtls.tls.client` (SSLRequest or direct TLS with ALPN, ``allow``/``prefer``
falling back as libpq does, verify-full's host-name check), authentication
(:mod:`pgtls.backends.relay.upauth`, channel binding to the upstream's certificate), and
``target_session_attrs`` (from the ``in_hot_standby``/``default_transaction_read_only`` parameters
PostgreSQL 14+ reports, else by asking).  Every failed attempt is reported in libpq's shape,
``connection to server at "h" (addr), port p failed: …``, one line each.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import random
import re
import socket
import ssl
import struct
from dataclasses import dataclass

from pgtls import log
from pgtls.backends.relay import wire
from pgtls.backends.relay.upauth import Authenticator, Credentials
from pgtls.backends.relay.upstream import QueryError, UpstreamConn, UpstreamGone
from pgtls.errors import CONNECTION_EXCEPTION, PgError
from pgtls.protocol.startup import SSL_REQUEST_CODE
from pgtls.tls.client import ALPN_POSTGRESQL, ClientTls, ClientTlsError, client_tls, peer_name_error
from pgtls.tls.context import channel_binding_hash_name

DEFAULT_PORT = 5432
DEFAULT_SOCKET_DIR = "/var/run/postgresql"
MIN_CONNECT_TIMEOUT = 2  # libpq: "a value of 1 is treated as 2"
DEFAULT_CONNECT_TIMEOUT = 30.0
CANCEL_TIMEOUT = 5.0  # libpq waits forever; an unreachable upstream must not hold a client that long
SSL_REQUEST = struct.pack("!ii", 8, SSL_REQUEST_CODE)
TARGET_SESSION_ATTRS = ("any", "read-write", "read-only", "primary", "standby", "prefer-standby")


def _fail(message: str) -> PgError:
    return PgError(CONNECTION_EXCEPTION, message, severity="FATAL")


def ssl_reason(e: ssl.SSLError) -> str:
    """OpenSSL's reason text, as libpq prints it ("certificate verify failed", "tlsv1 alert unknown ca")."""
    if isinstance(e, ssl.SSLCertVerificationError):
        return "certificate verify failed"
    if e.reason:
        return e.reason.lower().replace("_", " ")
    return str(e)


@dataclass(frozen=True)
class Endpoint:
    host: str  # as written: the name TLS checks and SNI uses ("" when only hostaddr was given)
    hostaddr: str
    port: int

    @property
    def is_unix(self) -> bool:
        return self.host.startswith("/") and not self.hostaddr

    def describe(self, address: str = "") -> str:
        if self.is_unix:
            return f'connection to server on socket "{self.host}/.s.PGSQL.{self.port}" failed'
        shown = self.host or self.hostaddr
        if address and address != shown:
            return f'connection to server at "{shown}" ({address}), port {self.port} failed'
        return f'connection to server at "{shown}", port {self.port} failed'


def endpoints(params: dict[str, str]) -> list[Endpoint]:
    """libpq's host/hostaddr/port lists (connectOptions2)."""
    hosts = params.get("host", "").split(",") if params.get("host") else []
    addrs = params.get("hostaddr", "").split(",") if params.get("hostaddr") else []
    if hosts and addrs and len(hosts) != len(addrs):
        raise _fail(f"could not match {len(hosts)} host names to {len(addrs)} hostaddr values")
    count = max(len(hosts), len(addrs), 1)
    hosts = hosts or [""] * count
    addrs = addrs or [""] * count
    ports = params.get("port", "").split(",") if params.get("port") else [""]
    if len(ports) == 1:
        ports = ports * count
    elif len(ports) != count:
        raise _fail(f"could not match {len(ports)} port numbers to {count} hosts")
    out = []
    for host, addr, port in zip(hosts, addrs, ports, strict=True):
        text = port.strip(" \t\n\r\f\v")
        if not text:
            number = DEFAULT_PORT
        else:  # libpq's pqParseIntParam, then the range check
            if not re.fullmatch(r"[+-]?[0-9]+", text):
                raise _fail(f'invalid integer value "{port}" for connection option "port"')
            number = int(text)
            if not 1 <= number <= 65535:
                raise _fail(f'invalid port number: "{port}"')
        if not host and not addr:
            host = DEFAULT_SOCKET_DIR
        out.append(Endpoint(host, addr, number))
    return out


def _int_param(params: dict[str, str], name: str) -> int | None:
    value = params.get(name, "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise _fail(f'invalid integer value "{value}" for connection option "{name}"') from None


def _keepalives(sock: socket.socket, params: dict[str, str]) -> None:
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if (_int_param(params, "keepalives") if "keepalives" in params else 1) == 0:
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, opt in (
        ("keepalives_idle", socket.TCP_KEEPIDLE),
        ("keepalives_interval", socket.TCP_KEEPINTVL),
        ("keepalives_count", socket.TCP_KEEPCNT),
    ):
        value = _int_param(params, name)
        if value is not None:
            sock.setsockopt(socket.IPPROTO_TCP, opt, value)
    timeout = _int_param(params, "tcp_user_timeout")
    if timeout is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, timeout)


async def _open_socket(ep: Endpoint, address: tuple, family: int, params: dict[str, str]) -> socket.socket:
    loop = asyncio.get_running_loop()
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        _keepalives(sock, params)
        await loop.sock_connect(sock, address)
    except BaseException:
        sock.close()
        raise
    return sock


async def _addresses(ep: Endpoint, shuffle: bool) -> list[tuple[int, tuple]]:
    if ep.is_unix:
        return [(socket.AF_UNIX, (f"{ep.host}/.s.PGSQL.{ep.port}",))]
    loop = asyncio.get_running_loop()
    name = ep.hostaddr or ep.host
    flags = socket.AI_NUMERICHOST if ep.hostaddr else 0
    try:
        infos = await loop.getaddrinfo(name, ep.port, type=socket.SOCK_STREAM, flags=flags)
    except socket.gaierror as e:
        raise _fail(f'could not translate host name "{name}" to address: {e.strerror}') from None
    out: list[tuple[int, tuple]] = [(family, addr) for family, _, _, _, addr in infos]
    if shuffle:
        random.shuffle(out)
    return out


class _Attempt:
    """One address: socket, TLS as the policy says, startup and authentication."""

    def __init__(
        self,
        ep: Endpoint,
        family: int,
        address: tuple,
        policy: ClientTls,
        params: dict[str, str],
        startup: dict[str, str],
        creds: Credentials,
    ) -> None:
        self.ep, self.family, self.address = ep, family, address
        self.policy, self.params, self.startup, self.creds = policy, params, startup, creds

    async def run(self, use_tls: bool) -> UpstreamConn:
        loop = asyncio.get_running_loop()
        sock = await _open_socket(
            self.ep,
            self.address[0] if self.family == socket.AF_UNIX else self.address,
            self.family,
            self.params,
        )
        try:
            ctx = self.policy.context if use_tls and self.family != socket.AF_UNIX else None
            if ctx is not None and not self.policy.direct:
                await loop.sock_sendall(sock, SSL_REQUEST)
                answer = await loop.sock_recv(sock, 1)
                if answer == b"N":
                    if self.policy.sslmode in ("require", "verify-ca", "verify-full"):
                        raise _fail("server does not support SSL, but SSL was required")
                    ctx = None
                elif answer != b"S":
                    raise _fail(
                        "received invalid response to SSL negotiation: "
                        + (repr(answer.decode("latin-1")) if answer else "server closed the connection")
                    )
            conn = UpstreamConn()
            sni = self.policy.server_hostname(self.ep.host) if ctx is not None else None
            try:
                await loop.create_connection(
                    lambda: conn, sock=sock, ssl=ctx, server_hostname=(sni or "") if ctx is not None else None
                )
            except ssl.SSLError as e:
                raise _fail(f"SSL error: {ssl_reason(e)}") from None
        except BaseException:
            sock.close()
            raise
        try:
            cbind = None
            if ctx is not None:
                cbind = self._check_peer(conn)
            creds = dataclasses.replace(
                self.creds, channel_binding=self.params.get("channel_binding", self.creds.channel_binding)
            )
            auth = Authenticator(creds, tls=ctx is not None, cbind_data=cbind)
            try:
                await conn.startup(self.startup, auth)
            except QueryError as e:
                raise e.fields.to_error("FATAL") from None
            except UpstreamGone:
                raise _fail("server closed the connection unexpectedly") from None
            conn.endpoint = (self.ep, self.family, self.address, ctx is not None)
            return conn
        except BaseException:
            conn.abort()
            raise

    def _check_peer(self, conn: UpstreamConn) -> bytes | None:
        assert conn.transport is not None
        obj = conn.transport.get_extra_info("ssl_object")
        der = obj.getpeercert(binary_form=True) if obj is not None else None
        if self.policy.direct and (obj is None or obj.selected_alpn_protocol() != ALPN_POSTGRESQL):
            raise _fail("direct SSL connection was established without ALPN protocol negotiation extension")
        if der is None:
            return None
        if self.policy.verify_name:
            problem = peer_name_error(der, self.ep.host or self.ep.hostaddr)
            if problem is not None:
                raise _fail(problem)
        name = channel_binding_hash_name(der)
        if name is None:
            return None
        return hashlib.new(name, der).digest()


HEALTH_BACKOFF_MIN = 1.0  # a host that failed is tried last for this long, doubling up to the maximum
HEALTH_BACKOFF_MAX = 30.0


class HostHealth:
    """Hosts that failed to connect: tried after the others until their backoff has passed (libpq tries
    in order every time; a dead first host would cost every login a connect timeout)."""

    def __init__(self) -> None:
        self._down: dict[tuple[str, str, int], tuple[float, float]] = {}  # endpoint -> (retry at, backoff)

    @staticmethod
    def _key(ep: Endpoint) -> tuple[str, str, int]:
        return (ep.host, ep.hostaddr, ep.port)

    def is_down(self, ep: Endpoint, now: float) -> bool:
        entry = self._down.get(self._key(ep))
        return entry is not None and entry[0] > now

    def order(self, eps: list[Endpoint], now: float) -> list[Endpoint]:
        return sorted(eps, key=lambda e: self.is_down(e, now))  # stable: the written order otherwise

    def failed(self, ep: Endpoint, now: float) -> None:
        prev = self._down.get(self._key(ep))
        backoff = HEALTH_BACKOFF_MIN if prev is None else min(prev[1] * 2, HEALTH_BACKOFF_MAX)
        self._down[self._key(ep)] = (now + backoff, backoff)

    def ok(self, ep: Endpoint) -> None:
        self._down.pop(self._key(ep), None)


def session_attrs_problem(conn: UpstreamConn, want: str) -> str | None:
    return _session_attrs_ok(conn, want)


def _session_attrs_ok(conn: UpstreamConn, want: str) -> str | None:
    """None when the session suits target_session_attrs, else libpq's reason."""
    standby = conn.params.get("in_hot_standby") == "on"
    read_only = standby or conn.params.get("default_transaction_read_only") == "on"
    if want == "read-write" and read_only:
        return "session is read-only"
    if want == "read-only" and not read_only:
        return "session is not read-only"
    if want == "primary" and standby:
        return "server is in hot standby mode"
    if want in ("standby", "prefer-standby") and not standby:
        return "server is not in hot standby mode"
    return None


async def connect_upstream(
    params: dict[str, str],
    startup: dict[str, str],
    creds: Credentials,
    policy: ClientTls | None = None,
    health: HostHealth | None = None,
) -> UpstreamConn:
    """A started session on the first suitable upstream of ``params`` (libpq's order and rules)."""
    try:
        policy = policy or client_tls(params)
    except ClientTlsError as e:
        raise _fail(e.message) from None
    want = params.get("target_session_attrs", "any")
    if want not in TARGET_SESSION_ATTRS:
        raise _fail(f'invalid target_session_attrs value: "{want}"')
    balance = params.get("load_balance_hosts", "disable")
    if balance not in ("disable", "random"):
        raise _fail(f'invalid load_balance_hosts value: "{balance}"')
    timeout = _int_param(params, "connect_timeout")
    per_host = (
        float(max(timeout, MIN_CONNECT_TIMEOUT)) if timeout and timeout > 0 else DEFAULT_CONNECT_TIMEOUT
    )
    eps = endpoints(params)
    if balance == "random":
        random.shuffle(eps)
    loop = asyncio.get_running_loop()
    if health is not None:
        eps = health.order(eps, loop.time())
    errors: list[str] = []
    server_error: PgError | None = None  # the last refusal a server sent (its SQLSTATE is kept)
    passes = [want] if want != "prefer-standby" else ["prefer-standby", "any"]
    for attempt_want in passes:
        for ep in eps:
            try:
                addresses = await _addresses(ep, balance == "random")
            except PgError as e:
                errors.append(f"{ep.describe()}: {e.message}")
                continue
            for family, address in addresses:
                shown = address[0] if family != socket.AF_UNIX else ""
                attempt = _Attempt(ep, family, address, policy, params, startup, creds)
                try:
                    conn = await _try(attempt, policy, per_host)
                except (PgError, OSError, TimeoutError) as e:
                    errors.append(f"{ep.describe(shown)}: {_text(e)}")
                    if isinstance(e, PgError) and e.sqlstate != CONNECTION_EXCEPTION:
                        server_error = e  # the server answered: it is up
                    elif health is not None:
                        health.failed(ep, loop.time())
                    continue
                if health is not None:
                    health.ok(ep)
                problem = _session_attrs_ok(conn, attempt_want)
                if problem is None:
                    conn.created = conn.last_used = (
                        loop.time()
                    )  # server_lifetime and idle timeouts count from here
                    return conn
                conn.close()
                errors.append(f"{ep.describe(shown)}: {problem}")
                break  # libpq moves to the next host, not the next address of this one
    failure = _fail("\n".join(errors) if errors else "no upstream host to connect to")
    if server_error is not None:
        failure.sqlstate = server_error.sqlstate
    raise failure


async def _try(attempt: _Attempt, policy: ClientTls, per_host: float) -> UpstreamConn:
    async with asyncio.timeout(per_host):
        if policy.context is None:
            return await attempt.run(False)
        if policy.tries_plain_first:  # allow: plaintext first, TLS if the server refuses it
            try:
                return await attempt.run(False)
            except PgError:
                return await attempt.run(True)
        if policy.sslmode == "prefer":
            try:
                return await attempt.run(True)
            except PgError as e:
                if not e.message.startswith("SSL error"):
                    raise
                return await attempt.run(False)
        return await attempt.run(True)


def _text(e: BaseException) -> str:
    if isinstance(e, PgError):
        return e.message
    if isinstance(e, TimeoutError):
        return "timeout expired"
    if isinstance(e, OSError):
        return os.strerror(e.errno) if e.errno else (e.strerror or str(e))
    return str(e)


async def send_cancel_upstream(conn: UpstreamConn, policy: ClientTls) -> None:
    """A CancelRequest for ``conn``'s backend, sent to the address the session uses and over TLS when the
    session is (with the same verification), never in plaintext beside a TLS session."""
    assert conn.endpoint is not None
    ep, family, address, tls = conn.endpoint
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(_cancel(conn, policy, ep, family, address, tls, loop), CANCEL_TIMEOUT)
    except (OSError, TimeoutError, PgError, ssl.SSLError) as e:
        log.log(f"could not send a cancel request to the upstream server: {_text(e)}")


async def _cancel(
    conn: UpstreamConn,
    policy: ClientTls,
    ep: Endpoint,
    family: int,
    address: tuple,
    tls: bool,
    loop: asyncio.AbstractEventLoop,
) -> None:
    sock = await _open_socket(ep, address[0] if family == socket.AF_UNIX else address, family, {})
    ctx = policy.context if tls else None
    try:
        if ctx is not None and not policy.direct:
            await loop.sock_sendall(sock, SSL_REQUEST)
            if await loop.sock_recv(sock, 1) != b"S":
                raise _fail("the server refused SSL for the cancel request")
    except BaseException:
        sock.close()
        raise
    sni = policy.server_hostname(ep.host) if ctx is not None else None
    reader, writer = await asyncio.open_connection(
        sock=sock, ssl=ctx, server_hostname=(sni or "") if ctx is not None else None
    )
    try:
        if ctx is not None and policy.verify_name:
            obj = writer.get_extra_info("ssl_object")
            der = obj.getpeercert(binary_form=True) if obj is not None else None
            problem = "no server certificate" if der is None else peer_name_error(der, ep.host or ep.hostaddr)
            if problem is not None:
                raise _fail(problem)
        writer.write(wire.cancel_request(conn.pid, conn.key))
        await writer.drain()
        await reader.read(1)
    finally:
        writer.close()
