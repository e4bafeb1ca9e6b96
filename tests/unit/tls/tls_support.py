"""Shared helpers for the tls unit tests: a certificate environment and an in-memory TLS pump.

Real certificates (tests/certset.py), real handshakes between a pgtls server
context and a client :class:`ssl.SSLContext` over :class:`ssl.MemoryBIO` pairs.
"""

from __future__ import annotations

import shutil
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from pgtls.tls import ffi
from pgtls.tls.context import TlsConfig, build_tls_config
from tests import certset


@dataclass
class Env:
    certs: certset.CertSet
    data: Path

    def config(self, **settings: object) -> TlsConfig:
        return build_tls_config(settings, self.data, is_start=True)

    def install(self, name: str, as_name: str | None = None, mode: int | None = None) -> str:
        target = self.data / (as_name or name)
        if (self.certs.dir / name).is_dir():
            shutil.copytree(self.certs.dir / name, target, dirs_exist_ok=True)
        else:
            shutil.copy(self.certs.dir / name, target)
        if mode is not None:
            target.chmod(mode)
        return target.name


def make_env(base: Path) -> Env:
    certs = certset.build(base / "certs")
    data = base / "data"
    data.mkdir()
    certs.install_server(data)
    return Env(certs, data)


def client_context(
    env: Env,
    *,
    cert: str | None = None,
    alpn: list[str] | None = None,
    trust: str = "root_ca.crt",
    max_version: ssl.TLSVersion | None = None,
    ciphers: str | None = None,
    tls13_ciphers: str | None = None,
    groups: str | None = None,
) -> ssl.SSLContext:
    """A libpq-like client: verify-full against ``trust``, optional client cert, ALPN and restrictions."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(env.certs.path(trust))
    if cert:
        ctx.load_cert_chain(env.certs.path(f"{cert}.crt"), env.certs.path(f"{cert}.key"))
    if alpn is not None:
        ctx.set_alpn_protocols(alpn)
    if max_version is not None:
        ctx.maximum_version = max_version
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    if tls13_ciphers is not None:
        ffi.set_tls13_ciphersuites(ctx, tls13_ciphers)
    if groups is not None:
        ffi.set_groups(ctx, groups)
    return ctx


@dataclass
class Result:
    server: ssl.SSLObject
    client: ssl.SSLObject
    server_error: BaseException | None = None
    client_error: BaseException | None = None
    echoed: bytes = field(default=b"")

    @property
    def ok(self) -> bool:
        return self.server_error is None and self.client_error is None


def _step(obj: ssl.SSLObject) -> BaseException | bool:
    try:
        obj.do_handshake()
        return True
    except ssl.SSLWantReadError:
        return False
    except (ssl.SSLError, OSError) as e:
        return e


def handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, hostname: str = "localhost") -> Result:
    """Run both handshakes to completion over memory BIOs, then exchange one application record.

    The exchange matters for TLS 1.3, where the server judges the client
    certificate after the client already considers the handshake done.
    """
    s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=hostname)
    res = Result(server, client)
    s_done = c_done = False
    for _ in range(100):
        if not c_done and res.client_error is None:
            r = _step(client)
            c_done, res.client_error = (r is True), (r if isinstance(r, BaseException) else None)
        s_in.write(c_out.read())
        if not s_done and res.server_error is None:
            r = _step(server)
            s_done, res.server_error = (r is True), (r if isinstance(r, BaseException) else None)
        c_in.write(s_out.read())
        if (s_done or res.server_error) and (c_done or res.client_error):
            break
    if res.ok:
        try:
            client.write(b"ping")
            s_in.write(c_out.read())
            res.echoed = server.read(4)
            server.write(res.echoed)
            c_in.write(s_out.read())
            client.read(4)
        except (ssl.SSLError, OSError) as e:
            res.client_error = e
    elif res.server_error is not None and c_done:
        # The client may only learn of the server's alert on its next read.
        c_in.write(s_out.read())
        try:
            client.read(1)
        except ssl.SSLWantReadError:
            pass
        except (ssl.SSLError, OSError) as e:
            res.client_error = e
    return res
