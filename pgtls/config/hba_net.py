"""Address facts for pg_hba.conf matching: numeric parsing, masks, host names, interfaces.

The only module of the hba code that may touch the network, and only through a
:class:`Resolver` that callers can replace (tests pass a table; the server may pass one
that runs lookups in a worker thread beforehand).  Rules follow PostgreSQL 16's
``check_ip``, ``check_hostname``/``hostname_match`` and ``check_same_host_or_net`` in
``src/backend/libpq/hba.c``: the client's IP is reverse-resolved, the name must match the
pattern (``.suffix`` or exact, case-insensitive) and forward-resolve back to the same IP.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Protocol

IPAddr = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_ip(text: str) -> IPAddr | None:
    """Numeric address as getaddrinfo(AI_NUMERICHOST) takes it (``127.1`` is accepted)."""
    if not text or "\0" in text:
        return None
    try:
        return ipaddress.ip_address(text.split("%", 1)[0] if ":" in text else text)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(text, None, flags=socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError, ValueError, OSError):
        return None
    for family, *_rest, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            try:
                return ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            except ValueError:
                return None
    return None


def check_ip(client: IPAddr, addr: IPAddr, mask: IPAddr) -> bool:
    """pg_range_sockaddr(): same family and (client XOR addr) AND mask == 0."""
    if client.version != addr.version or addr.version != mask.version:
        return False
    return ((int(client) ^ int(addr)) & int(mask)) == 0


class ResolveError(Exception):
    """A failed lookup; the message is gai_strerror()'s text."""


class Resolver(Protocol):
    def reverse(self, ip: str) -> str:
        """getnameinfo(NI_NAMEREQD); raise ResolveError on failure."""
        ...

    def forward(self, name: str) -> list[str]:
        """getaddrinfo(): numeric addresses of ``name``; raise ResolveError on failure."""
        ...

    def interfaces(self) -> list[tuple[str, str]]:
        """(address, netmask) of every local interface, for samehost/samenet."""
        ...


class SystemResolver:
    """The operating system's resolver and interface list (blocking calls)."""

    def reverse(self, ip: str) -> str:
        try:
            host, _ = socket.getnameinfo((ip, 0), socket.NI_NAMEREQD)
        except socket.gaierror as e:
            raise ResolveError(str(e.strerror)) from None
        return host

    def forward(self, name: str) -> list[str]:
        try:
            infos = socket.getaddrinfo(name, None)
        except (socket.gaierror, UnicodeError) as e:
            raise ResolveError(str(getattr(e, "strerror", e))) from None
        return [str(i[4][0]).split("%", 1)[0] for i in infos if i[0] in (socket.AF_INET, socket.AF_INET6)]

    def interfaces(self) -> list[tuple[str, str]]:
        return _linux_interfaces()


def _linux_interfaces() -> list[tuple[str, str]]:
    """Interface addresses from the kernel (IPv4 ioctls, IPv6 /proc); best effort."""
    out: list[tuple[str, str]] = []
    try:
        import fcntl
        import struct

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _idx, name in socket.if_nameindex():
                req = struct.pack("256s", name.encode()[:15])
                try:
                    a = fcntl.ioctl(s.fileno(), 0x8915, req)  # SIOCGIFADDR
                    m = fcntl.ioctl(s.fileno(), 0x891B, req)  # SIOCGIFNETMASK
                except OSError:
                    continue
                out.append((socket.inet_ntoa(a[20:24]), socket.inet_ntoa(m[20:24])))
    except (ImportError, OSError):
        pass
    try:
        with open("/proc/net/if_inet6") as f:
            for row in f:
                parts = row.split()
                if len(parts) < 3:
                    continue
                addr = ipaddress.IPv6Address(int(parts[0], 16))
                plen = int(parts[2], 16)
                mask = ipaddress.IPv6Address(((1 << 128) - 1) ^ ((1 << (128 - plen)) - 1))
                out.append((str(addr), str(mask)))
    except (OSError, ValueError):
        pass
    return out


SYSTEM_RESOLVER: Resolver = SystemResolver()


class HostCheck:
    """Per-connection cache of host-name facts (port->remote_hostname and _resolv)."""

    def __init__(self, client: IPAddr | None, resolver: Resolver) -> None:
        self.client = client
        self.resolver = resolver
        self.remote_hostname: str | None = None
        self.resolv = 0  # 0 unknown, +1 forward ok, -1 forward mismatch, -2 lookup error
        self.errmsg = ""
        self._ifaces: list[tuple[IPAddr, IPAddr]] | None = None

    def matches(self, pattern: str) -> bool:
        if self.client is None or self.resolv < 0:
            return False
        if self.remote_hostname is None:
            try:
                self.remote_hostname = self.resolver.reverse(str(self.client))
            except ResolveError as e:
                self.resolv, self.errmsg = -2, str(e)
                return False
        if not _hostname_match(pattern, self.remote_hostname):
            return False
        if self.resolv == 1:
            return True
        try:
            addrs = self.resolver.forward(self.remote_hostname)
        except ResolveError as e:
            self.resolv, self.errmsg = -2, str(e)
            return False
        found = any(parse_ip(a) == self.client for a in addrs)
        self.resolv = 1 if found else -1
        return found

    def same_host_or_net(self, how: str) -> bool:
        if self.client is None:
            return False
        if self._ifaces is None:
            self._ifaces = []
            for a, m in self.resolver.interfaces():
                pa, pm = parse_ip(a), parse_ip(m)
                if pa is not None and pm is not None:
                    self._ifaces.append((pa, pm))
        for addr, mask in self._ifaces:
            if how == "samehost":
                full = (1 << (32 if addr.version == 4 else 128)) - 1
                mask = ipaddress.ip_address(full) if addr.version == 4 else ipaddress.IPv6Address(full)
            if check_ip(self.client, addr, mask):
                return True
        return False

    def detail(self) -> str | None:
        """HOSTNAME_LOOKUP_DETAIL() of auth.c."""
        h = self.remote_hostname
        if h is not None:
            if self.resolv == 1:
                return f'Client IP address resolved to "{h}", forward lookup matches.'
            if self.resolv == 0:
                return f'Client IP address resolved to "{h}", forward lookup not checked.'
            if self.resolv == -1:
                return f'Client IP address resolved to "{h}", forward lookup does not match.'
            return f'Could not translate client host name "{h}" to IP address: {self.errmsg}.'
        if self.resolv == -2:
            return f"Could not resolve client IP address to a host name: {self.errmsg}."
        return None


def _hostname_match(pattern: str, actual: str) -> bool:
    if pattern.startswith("."):
        return len(actual) >= len(pattern) and actual[len(actual) - len(pattern) :].lower() == pattern.lower()
    return pattern.lower() == actual.lower()
