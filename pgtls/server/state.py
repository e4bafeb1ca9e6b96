"""What one server process serves right now, as plain data (JSON-able): for the admin console and metrics.

:func:`snapshot` reads the process's own objects on its event loop: the session registry (clients and their
TLS facts), the relay backend's pools and upstream sessions, the counters of :mod:`pgtls.server.stats`, the
certificates of the loaded TLS configuration.  With worker processes each worker answers for itself and
:mod:`pgtls.server.peers` gathers them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from pgtls.server.stats import Stats

# The admin console's virtual database (PgBouncer's convention with its "pgbouncer" database).
ADMIN_DATABASE = "pgtls"


def snapshot(server: Any) -> dict[str, Any]:
    worker = getattr(server, "worker", None)
    stats: Stats = server.stats
    return {
        "worker": worker.index if worker is not None else 0,
        "pid": os.getpid(),
        "restarts": int(getattr(worker, "restarts", 0)) if worker is not None else 0,
        "clients": _clients(server),
        "pre_auth": max(0, len(server.connections) - server.registry.local_count()),
        "pools": _pools(server),
        "servers": _servers(server),
        "stats": stats.to_dict(),
        "certificates": certificates(server),
        "paused": bool(getattr(server.backend, "paused", False)),
        "upstreams": _upstreams(server),
        "pinned": int(getattr(server.backend, "pinned_clients", 0)),
    }


def _clients(server: Any) -> list[dict[str, Any]]:
    rows = []
    for e in server.registry.sessions():
        info, tls = e.info, e.info.tls
        session = e.session
        pinned = getattr(session, "pinned", None)
        rows.append(
            {
                "pid": info.pid,
                "user": info.user,
                "database": info.database,
                "addr": info.client_addr or "unix",
                "port": info.client_port,
                "application_name": info.application_name,
                "state": "active" if getattr(session, "conn", None) is not None else "idle",
                "connect_time": e.backend_start or e.extra.get("connected", 0.0),
                "ssl": tls is not None,
                "tls_version": tls.version if tls else None,
                "cipher": tls.cipher if tls else None,
                "client_dn": tls.client_dn if tls else None,
                "issuer_dn": tls.issuer_dn if tls else None,
                "pinned": pinned if isinstance(pinned, str) else None,
                "upstream_pid": getattr(getattr(session, "conn", None), "pid", None),
            }
        )
    return rows


def _upstreams(server: Any) -> list[dict[str, Any]]:
    """The managed cluster (up or restarting), or the network hosts known to be down (in backoff)."""
    backend = server.backend
    cluster = getattr(backend, "cluster", None)
    if cluster is not None:
        return [{"upstream": "managed cluster", "up": bool(getattr(cluster, "ready", False))}]
    health = getattr(backend, "health", None)
    down = getattr(health, "_down", {}) if health is not None else {}
    now = time.monotonic()
    return [
        {"upstream": f"{host or addr}:{port}", "up": retry <= now}
        for (host, addr, port), (retry, _) in list(down.items())
    ]


def _pools(server: Any) -> list[dict[str, Any]]:
    backend = server.backend
    pools = getattr(backend, "pools", None)
    if not pools:
        return []
    pinned_by_key: dict[tuple[str, str], int] = {}
    for e in server.registry.sessions():
        if getattr(e.session, "pinned", None):
            k = (e.info.user, e.info.database)
            pinned_by_key[k] = pinned_by_key.get(k, 0) + 1
    rows = []
    for key, pool in list(pools.items()):
        settings = pool._settings()
        rows.append(
            {
                "user": key[0],
                "database": key[1],
                "mode": settings.mode,
                "pool_size": settings.pool_size,
                "size": pool.size,
                "idle": len(pool.idle),
                "in_use": pool.in_use,
                "waiting": len(pool.waiters),
                "pinned": pinned_by_key.get(key, 0),
            }
        )
    return rows


def _servers(server: Any) -> list[dict[str, Any]]:
    backend = server.backend
    pools = getattr(backend, "pools", None)
    if not pools:
        return []
    rows = []
    for e in server.registry.sessions():
        conn = getattr(e.session, "conn", None)
        if conn is not None:
            rows.append(_server_row(conn, e.info.user, e.info.database, "active", e.info.pid))
    for key, pool in list(pools.items()):
        for conn in pool.idle:
            rows.append(_server_row(conn, key[0], key[1], "idle", None))
    return rows


def _server_row(conn: Any, user: str, database: str, state: str, client: int | None) -> dict[str, Any]:
    endpoint = getattr(conn, "endpoint", None)
    return {
        "pid": conn.pid,
        "user": user,
        "database": database,
        "state": state,
        "client": client,
        "upstream": str(getattr(endpoint, "host", "") or "managed cluster"),
        "prepared": len(conn.statements.names) if hasattr(conn, "statements") else 0,
    }


_cert_cache: dict[int, tuple[Any, list[dict[str, Any]]]] = {}


def certificates(server: Any) -> list[dict[str, Any]]:
    """The loaded server certificate chain, the client CA file's certificates and the CRL's next update
    (computed once per loaded TLS configuration)."""
    tls = server.snapshot.tls
    if tls is None:
        return []
    cached = _cert_cache.get(id(server))
    if cached is not None and cached[0] is tls:
        return cached[1]
    from cryptography import x509

    rows: list[dict[str, Any]] = []
    s = server.snapshot.settings
    if tls.sni is not None:  # every host of the hosts file (pgtls.tls.sni)
        for entry, cfg in tls.sni.entries:
            rows += _config_rows(server, cfg, entry.cert, entry.ca, ",".join(entry.names))
    else:
        rows += _config_rows(server, tls, str(s["ssl_cert_file"]), str(s["ssl_ca_file"]), "")
    crl_file = str(s["ssl_crl_file"])
    if crl_file:
        try:
            crl = x509.load_pem_x509_crl(_path(server.data_dir, crl_file).read_bytes())
            nxt = crl.next_update_utc
            rows.append(
                {
                    "kind": "crl",
                    "file": crl_file,
                    "subject": crl.issuer.rfc4514_string(),
                    "issuer": crl.issuer.rfc4514_string(),
                    "not_after": nxt.timestamp() if nxt is not None else None,
                }
            )
        except (OSError, ValueError):
            pass
    _cert_cache[id(server)] = (tls, rows)
    return rows


def _config_rows(server: Any, cfg: Any, cert_file: str, ca_file: str, hosts: str) -> list[dict[str, Any]]:
    from cryptography import x509

    rows = [
        _cert_row("certificate" if i == 0 else "chain", cert_file, x509.load_der_x509_certificate(der), hosts)
        for i, der in enumerate(cfg.cert_chain or (cfg.leaf_der,))
    ]
    if ca_file:
        try:
            for cert in x509.load_pem_x509_certificates(_path(server.data_dir, ca_file).read_bytes()):
                rows.append(_cert_row("ca", ca_file, cert, hosts))
        except (OSError, ValueError):
            pass
    return rows


def _cert_row(kind: str, file: str, cert: Any, hosts: str = "") -> dict[str, Any]:
    return {
        "kind": kind,
        "file": file,
        "subject": cert.subject.rfc4514_string(),
        "hosts": hosts,
        "issuer": cert.issuer.rfc4514_string(),
        "not_after": cert.not_valid_after_utc.timestamp(),
    }


def _path(data_dir: Path, name: str) -> Path:
    p = Path(name)
    return p if p.is_absolute() else data_dir / p


_KIND_NAMES = {
    "certificate": "server certificate",
    "chain": "intermediate certificate",
    "ca": "CA certificate",
    "crl": "certificate revocation list",
}


def expiry_warnings(server: Any, days: int) -> list[str]:
    """One line per loaded certificate (every SNI host's, CAs) or CRL that expires within ``days``."""
    if days <= 0:
        return []
    out = []
    now = time.time()
    for c in certificates(server):
        na = c.get("not_after")
        if na is None or na - now > days * 86400:
            continue
        when = time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(na))
        what = _KIND_NAMES.get(c["kind"], c["kind"])
        if na <= now:
            out.append(f'{what} "{c["subject"]}" in file "{c["file"]}" expired on {when}')
        else:
            out.append(
                f'{what} "{c["subject"]}" in file "{c["file"]}" expires in {int((na - now) // 86400)} '
                f"days, on {when}" + (" (next update)" if c["kind"] == "crl" else "")
            )
    return out


def seconds_left(not_after: float | None) -> float | None:
    return None if not_after is None else not_after - time.time()
