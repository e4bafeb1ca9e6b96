"""Prometheus metrics on an optional listener (``metrics_address = 'host:port'``; empty: off).

A small HTTP/1.1 endpoint on the event loop answers ``GET /metrics`` with prometheus_client's text
format, built from every worker's :func:`pgtls.server.state.snapshot` (gathered by
:mod:`pgtls.server.peers`, with a ``worker`` label).  With worker processes each worker listens on the
address (``SO_REUSEPORT``), and whichever one a scrape reaches answers for all.  Anything but a GET of
``/metrics`` gets 404; a request is read within ``METRICS_READ_TIMEOUT`` and up to ``MAX_REQUEST_HEAD``
bytes, so a client that sends nothing holds nothing for long.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

METRICS_READ_TIMEOUT = 5.0
MAX_REQUEST_HEAD = 8192
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def parse_address(value: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port``); the host defaults to 127.0.0.1 (loopback)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f'invalid value for parameter "metrics_address": "{value}" (host:port)')
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


class _Snapshots(Collector):
    """prometheus_client collector over the snapshots of one scrape."""

    def __init__(self, answers: Sequence[dict[str, Any]]) -> None:
        self.answers = answers

    def collect(self) -> Iterable[Any]:
        a = self.answers
        clients = GaugeMetricFamily(
            "pgtls_client_connections", "Client connections by state.", labels=["worker", "state"]
        )
        handshakes = CounterMetricFamily(
            "pgtls_tls_handshakes", "Completed TLS handshakes.", labels=["worker", "protocol", "cipher"]
        )
        hs_fail = CounterMetricFamily(
            "pgtls_tls_handshake_failures", "Failed TLS handshakes by reason.", labels=["worker", "reason"]
        )
        auth = CounterMetricFamily(
            "pgtls_authentications",
            "Authentications by method and outcome.",
            labels=["worker", "method", "outcome"],
        )
        pool_size = GaugeMetricFamily(
            "pgtls_pool_server_connections",
            "Upstream sessions of a pool by state.",
            labels=["worker", "user", "database", "state"],
        )
        waiting = GaugeMetricFamily(
            "pgtls_pool_waiting_clients",
            "Clients waiting for an upstream session.",
            labels=["worker", "user", "database"],
        )
        pinned = GaugeMetricFamily(
            "pgtls_pool_pinned_clients",
            "Clients pinned to their upstream session (transaction mode).",
            labels=["worker", "user", "database"],
        )
        expiry = GaugeMetricFamily(
            "pgtls_certificate_expiry_seconds",
            "Seconds until a loaded certificate expires (a CRL: until its next update).",
            labels=["worker", "kind", "file", "subject"],
        )
        reload_time = GaugeMetricFamily(
            "pgtls_reload_timestamp_seconds", "Time of the last reload of a file.", labels=["worker", "file"]
        )
        reload_ok = GaugeMetricFamily(
            "pgtls_reload_success",
            "Whether the last reload of a file took (1) or kept the old configuration (0).",
            labels=["worker", "file"],
        )
        restarts = CounterMetricFamily(
            "pgtls_worker_restarts", "Times the supervisor restarted a worker.", labels=["worker"]
        )
        upstream = GaugeMetricFamily(
            "pgtls_upstream_up",
            "The managed cluster accepting connections (1) or "
            "restarting (0); a network host in connect backoff (0).",
            labels=["worker", "upstream"],
        )
        paused = GaugeMetricFamily(
            "pgtls_paused", "Whether the worker is paused (admin console PAUSE).", labels=["worker"]
        )
        now = time.time()
        for ans in a:
            w = str(ans["worker"])
            states: dict[str, int] = {"active": 0, "idle": 0}
            for c in ans["clients"]:
                states[c["state"]] = states.get(c["state"], 0) + 1
            states["authenticating"] = ans["pre_auth"]
            for state, n in states.items():
                clients.add_metric([w, state], n)
            st = ans["stats"]
            for proto, cipher, n in st["handshakes"]:
                handshakes.add_metric([w, proto, cipher], n)
            for reason, n in st["handshake_failures"]:
                hs_fail.add_metric([w, reason], n)
            for method, outcome, n in st["auth"]:
                auth.add_metric([w, method, outcome], n)
            for p in ans["pools"]:
                for state in ("in_use", "idle"):
                    pool_size.add_metric([w, p["user"], p["database"], state], p[state])
                waiting.add_metric([w, p["user"], p["database"]], p["waiting"])
                pinned.add_metric([w, p["user"], p["database"]], p["pinned"])
            for c in ans["certificates"]:
                if c.get("not_after") is not None:
                    expiry.add_metric([w, c["kind"], c["file"], c["subject"]], c["not_after"] - now)
            for f, r in st["reloads"].items():
                reload_time.add_metric([w, f], r["time"])
                reload_ok.add_metric([w, f], 1 if r["ok"] else 0)
            restarts.add_metric([w], ans["restarts"])
            for u in ans.get("upstreams", []):
                upstream.add_metric([w, u["upstream"]], 1 if u["up"] else 0)
            paused.add_metric([w], 1 if ans["paused"] else 0)
        yield from (
            clients,
            handshakes,
            hs_fail,
            auth,
            pool_size,
            waiting,
            pinned,
            expiry,
            reload_time,
            reload_ok,
            restarts,
            upstream,
            paused,
        )


def render(answers: Sequence[dict[str, Any]]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshots(answers))
    return generate_latest(registry)


async def serve(
    host: str, port: int, gather: Callable[[], Awaitable[Sequence[dict[str, Any]]]], reuse_port: bool
) -> asyncio.AbstractServer:
    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(METRICS_READ_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
            request_line = head.split(b"\r\n", 1)[0].split()
            if (
                len(request_line) >= 2
                and request_line[0] == b"GET"
                and request_line[1].split(b"?")[0] == b"/metrics"
            ):
                body = render(await gather())
                status = b"200 OK"
                ctype = CONTENT_TYPE.encode()
            else:
                body, status, ctype = b"not found\n", b"404 Not Found", b"text/plain"
            writer.write(
                b"HTTP/1.1 "
                + status
                + b"\r\nContent-Type: "
                + ctype
                + b"\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\nConnection: close\r\n\r\n"
                + body
            )
            await writer.drain()
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(64)
    sock.setblocking(False)
    return await asyncio.start_server(on_conn, sock=sock, limit=MAX_REQUEST_HEAD)
