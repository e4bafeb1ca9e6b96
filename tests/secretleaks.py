"""No secret in any log: the stored secrets of a pgtls data directory, and the log lines that hold a password,
a stored secret (or a piece of one) or a line of a key file.  Used by tests/integration/test_auth.py,
tests/integration/test_scram_wire.py and tests/differential/test_auth_matrix.py on their servers' logs."""

from __future__ import annotations

import json
from pathlib import Path


def _key_lines(certs) -> set[str]:
    """The base64 body lines of every private key file in the certificate set."""
    out = set()
    for path in Path(certs.dir).glob("*.key"):
        for line in path.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("-----") and ":" not in line and len(line) >= 16:
                out.add(line)
    assert out
    return out


def _secret_parts(secret: str) -> set[str]:
    """A stored secret and the pieces of it that must not leak on their own (salt, StoredKey, ServerKey)."""
    parts = {secret}
    if secret.startswith("SCRAM-SHA-256$"):
        # SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
        head, keys_part = secret.split("$")[1:]
        parts.add(head.split(":", 1)[1])
        parts.update(keys_part.split(":"))
    elif secret.startswith("md5"):
        parts.add(secret[3:])
    return parts


def secrets_of(datadir: Path) -> set[str]:
    """The stored secrets of a pgtls data directory: the managed cluster's pg_authid, or pg_authid.json."""
    from pgtls.backends.relay.cluster import has_cluster

    if has_cluster(datadir):
        from pgtls.backends.relay.clustersql import run_sql

        rows = run_sql(datadir, [("SELECT rolpassword FROM pg_authid WHERE rolpassword IS NOT NULL", None)])[
            0
        ].rows
        return {r[0] for r in rows if r[0]}
    data = json.loads((datadir / "global" / "pg_authid.json").read_text())
    return {role["password"] for role in data["roles"] if role.get("password")}


def find_leaks(logs: dict[str, str], passwords: set[str], secrets: set[str], certs) -> list[str]:
    """Log lines holding a password, a stored secret (or its salt/keys) or a line of a key file."""
    needles = {p: "password" for p in passwords}
    for secret in secrets:
        needles.update({part: "stored secret" for part in _secret_parts(secret)})
    needles.update({line: "key material" for line in _key_lines(certs)})
    leaks = []
    for name, text in logs.items():
        for lineno, line in enumerate(text.splitlines(), 1):
            for needle, what in needles.items():
                if needle in line:
                    leaks.append(f"{name}:{lineno}: {what}: {line[:200]}")
    return leaks
