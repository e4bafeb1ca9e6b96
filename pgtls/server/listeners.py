"""Listening sockets made by the supervisor and handed to the worker processes.

Each worker gets its own TCP socket per address, all bound with ``SO_REUSEPORT`` to the same port, so the
kernel spreads new connections over the workers.  The supervisor keeps every socket open: while a dead worker
is restarted, connections hashed to its socket wait in that socket's backlog instead of being refused.  Before
binding, a plain bind (no ``SO_REUSEPORT``) checks that nothing else holds the port, since a second server
that also set ``SO_REUSEPORT`` would otherwise silently share it.

The Unix-domain socket (one per ``unix_socket_directories`` entry) is a single socket all workers accept on.
"""

from __future__ import annotations

import errno
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from pgtls import log

BACKLOG = 1024


class ListenError(Exception):
    pass


@dataclass
class Listeners:
    tcp: list[list[socket.socket]] = field(default_factory=list)  # per worker, one socket per address
    unix: list[socket.socket] = field(default_factory=list)
    unix_paths: list[Path] = field(default_factory=list)

    def fds_for(self, index: int) -> tuple[list[int], list[int]]:
        return [s.fileno() for s in self.tcp[index]], [s.fileno() for s in self.unix]

    def close(self) -> None:
        for group in self.tcp:
            for s in group:
                s.close()
        for s in self.unix:
            s.close()
        for p in self.unix_paths:
            p.unlink(missing_ok=True)


def _addrinfos(host: str | None, port: int) -> list[tuple[int, tuple[object, ...]]]:
    seen: list[tuple[int, tuple[object, ...]]] = []
    for fam, _, _, _, addr in socket.getaddrinfo(
        host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
    ):
        if (fam, addr) not in seen:
            seen.append((fam, addr))
    return seen


def _bind(fam: int, addr: tuple[object, ...], reuse_port: bool) -> socket.socket:
    s = socket.socket(fam, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as PostgreSQL: rebind over TIME_WAIT
        if reuse_port:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind(addr)
    except BaseException:
        s.close()
        raise
    return s


def bind_tcp(listen_addresses: str, port: int, workers: int) -> list[list[socket.socket]]:
    """``workers`` listening sockets per address of ``listen_addresses`` (one without ``SO_REUSEPORT`` for a
    one-process server); PostgreSQL's log lines (pqcomm.c's ListenServerPort, postmaster.c)."""
    per_worker: list[list[socket.socket]] = [[] for _ in range(workers)]
    addresses = [a.strip() for a in listen_addresses.split(",") if a.strip()]
    for name in addresses:
        try:
            infos = _addrinfos(None if name == "*" else name, port)
        except socket.gaierror as e:
            log.log(f'could not translate host name "{name}", service "{port}" to address: {e.strerror}')
            log.emit("WARNING", f'could not create listen socket for "{name}"')
            continue
        made = False
        for fam, addr in infos:
            fam_name = "IPv6" if fam == socket.AF_INET6 else "IPv4"
            try:
                if workers == 1:
                    group = [_bind(fam, addr, reuse_port=False)]
                else:
                    _bind(
                        fam, addr, reuse_port=False
                    ).close()  # is the port free (no other server, shared or not)?
                    group = [_bind(fam, addr, reuse_port=True) for _ in range(workers)]
            except OSError as e:
                hint = None
                if e.errno == errno.EADDRINUSE:
                    hint = f"Is another postmaster already running on port {port}? If not, wait a few seconds and retry."
                log.log(f'could not bind {fam_name} address "{addr[0]}": {e.strerror or e}', hint=hint)
                continue
            for s in group:
                s.listen(BACKLOG)
                s.setblocking(False)
            log.log(f'listening on {fam_name} address "{addr[0]}", port {port}')
            made = True
            for i, s in enumerate(group):
                per_worker[i].append(s)
        if not made:
            log.emit("WARNING", f'could not create listen socket for "{name}"')
    if addresses and not per_worker[0]:
        for group in per_worker:
            for s in group:
                s.close()
        raise ListenError("could not create any TCP/IP sockets")
    return per_worker


def bind_unix(socket_directories: str, port: int, permissions: int) -> tuple[list[socket.socket], list[Path]]:
    socks: list[socket.socket] = []
    paths: list[Path] = []
    for d in (x.strip() for x in socket_directories.split(",")):
        if not d:
            continue
        path = Path(d) / f".s.PGSQL.{port}"
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            path.unlink(missing_ok=True)
            s.bind(str(path))
            os.chmod(path, permissions)
            s.listen(BACKLOG)
            s.setblocking(False)
        except OSError as e:
            s.close()
            log.log(f'could not create Unix socket for address "{path}": {e.strerror or e}')
            continue
        socks.append(s)
        paths.append(path)
        log.log(f'listening on Unix socket "{path}"')
    return socks, paths
