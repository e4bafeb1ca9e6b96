"""Authentication matrix: a real PostgreSQL 15 and pgtls with the same certificates, pg_hba.conf and
pg_ident.conf, driven by psql (libpq 15), psycopg (bundled libpq) and asyncpg (for the SQLSTATE).

Every pg_hba method (trust, reject, password, md5, scram-sha-256, cert, cert with a CN regex map,
cert with clientname=DN and a DN regex map, trust and scram-sha-256 with clientcert=verify-ca and
verify-full) is reached through its own database, as PostgreSQL's own SSL suite does (trustdb,
certdb, verifydb ...), so one pg_hba.conf serves every row.  Client side, each row picks a
certificate situation: none, valid (the client CA only in ssl_ca_file: root+client_ca.crt), from a
wrong CA, expired, not yet valid, revoked through ssl_crl_file, revoked through ssl_crl_dir, the
intermediate sent by the client with only the root in ssl_ca_file, CN mismatch (user anotheruser with
ssltestuser's certificate), a CN mapped through a pg_ident regex, and a wrong password.  Over TLS every
situation runs; without TLS libpq sends no certificate, so only the situations that differ in user or
password are kept there (the others are the same connection again).  asyncpg loses the TLS alert
(it reports only "connection was closed"), so it skips the situations refused in the handshake.

Three server configurations per server (so six server starts in all) carry the CA/CRL arrangements:
``crlfile`` (ssl_ca_file=root+client_ca.crt, ssl_crl_file=root+client.crl), ``crldir`` (same CA,
ssl_crl_dir=root+client-crldir; the CN/user-name situations run here to spread the load) and
``rootonly`` (ssl_ca_file=root_ca.crt, no CRL).

Roles: ssltestuser has a SCRAM verifier, anotheruser an md5 hash, both with the same password; so the
md5 method runs SCRAM for ssltestuser and a real MD5 challenge for anotheruser, and scram-sha-256 refuses
anotheruser as PostgreSQL does (an md5 hash cannot answer SCRAM).

Rows compare the outcome, the normalised error text (psycopg and psql give no SQLSTATE for a failed
connection) and, for asyncpg, the SQLSTATE.  All connections run up front, in parallel, in a
module fixture; each row is then one test, and ``test_matrix_summary`` prints the table of mismatches.

Known PostgreSQL 15 / 17 differences: pgtls follows PostgreSQL 17 where they differ (see
``PG17_EXCEPTIONS``; none of them shows at the client in this matrix so far).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import ssl
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import psycopg
import pytest

from tests import prereq
from tests.conftest import run_psql
from tests.pgserver import RealPostgres, have_postgres, shared_tmpdir
from tests.pgtlsserver import PgtlsServer
from tests.secretleaks import find_leaks, secrets_of

pytestmark = [pytest.mark.pg, pytest.mark.timeout(400)]

PASSWORD = "Matrix-pass-4c1e"
WRONG_PASSWORD = "Matrix-wrong-77d0"

# method label -> (database, pg_hba.conf line after "DB all 127.0.0.1/32")
METHODS: dict[str, tuple[str, str, str]] = {
    "trust": ("host", "trustdb", "trust"),
    "reject": ("host", "rejectdb", "reject"),
    "password": ("host", "passworddb", "password"),
    "md5": ("host", "md5db", "md5"),
    "scram": ("host", "scramdb", "scram-sha-256"),
    "cert": ("hostssl", "certdb", "cert"),
    "cert-map": ("hostssl", "certmapdb", "cert map=cnmap"),
    "cert-dn-map": ("hostssl", "certdndb", "cert clientname=DN map=dnmap"),
    "trust-verify-ca": ("hostssl", "tvcadb", "trust clientcert=verify-ca"),
    "trust-verify-full": ("hostssl", "tvfulldb", "trust clientcert=verify-full"),
    "scram-verify-ca": ("hostssl", "svcadb", "scram-sha-256 clientcert=verify-ca"),
    "scram-verify-full": ("hostssl", "svfulldb", "scram-sha-256 clientcert=verify-full"),
}

HBA = "local all all trust\n" + "".join(
    f"{kind} {db} all 127.0.0.1/32 {rest}\n" for kind, db, rest in METHODS.values()
)
# cnmap: CN "ssltestuser-dn" -> ssltestuser; dnmap: the RFC 2253 DN of client-dn.crt -> ssltestuser.
IDENT = 'cnmap /^(.*)-dn$ \\1\ndnmap "/^CN=(.*)-dn,OU=Testing,OU=Engineering,O=PGDG$" \\1\n'

CONFIGS: dict[str, dict[str, str]] = {
    "crlfile": {"ssl_ca_file": "root+client_ca.crt", "ssl_crl_file": "root+client.crl"},
    "crldir": {"ssl_ca_file": "root+client_ca.crt", "ssl_crl_dir": "root+client-crldir"},
    "rootonly": {"ssl_ca_file": "root_ca.crt"},
}


@dataclass(frozen=True)
class Situation:
    config: str
    user: str
    cert: str | None  # certificate file in the cert set (None: no client certificate)
    key: str | None
    password: str = PASSWORD
    without_tls: bool = False  # also run it with sslmode=disable
    handshake_fails: bool = False  # PostgreSQL refuses the certificate in the TLS handshake


SITUATIONS: dict[str, Situation] = {
    "no-cert": Situation("crlfile", "ssltestuser", None, None, without_tls=True),
    "valid(ca-file-has-intermediate)": Situation("crlfile", "ssltestuser", "client.crt", "client.key"),
    "wrong-ca": Situation(
        "crlfile", "ssltestuser", "client-wrongca.crt", "client-wrongca.key", handshake_fails=True
    ),
    "expired": Situation(
        "crlfile", "ssltestuser", "client-expired.crt", "client-expired.key", handshake_fails=True
    ),
    "not-yet-valid": Situation(
        "crlfile", "ssltestuser", "client-future.crt", "client-future.key", handshake_fails=True
    ),
    "revoked(crl-file)": Situation(
        "crlfile", "ssltestuser", "client-revoked.crt", "client-revoked.key", handshake_fails=True
    ),
    "revoked(crl-dir)": Situation(
        "crldir", "ssltestuser", "client-revoked.crt", "client-revoked.key", handshake_fails=True
    ),
    "intermediate-sent(root-only-ca)": Situation(
        "rootonly", "ssltestuser", "client+client_ca.crt", "client.key"
    ),
    "leaf-only(root-only-ca)": Situation(
        "rootonly", "ssltestuser", "client.crt", "client.key", handshake_fails=True
    ),
    "cn-mismatch": Situation("crldir", "anotheruser", "client.crt", "client.key", without_tls=True),
    "cn-mapped(regex)": Situation(
        "crldir", "ssltestuser", "client-dn.crt", "client-dn.key", without_tls=True
    ),
    "wrong-password": Situation(
        "crldir", "ssltestuser", "client.crt", "client.key", password=WRONG_PASSWORD, without_tls=True
    ),
}

CLIENTS = ("psql", "psycopg", "asyncpg")

# Where PostgreSQL 15 and 17 differ at the client and pgtls follows 17: {(method, tls, situation, client): why}.
# Empty: no row of this matrix shows such a difference (the pg_hba/SCRAM/cert messages are the same in 15 and 17).
PG17_EXCEPTIONS: dict[tuple[str, str, str, str], str] = {}


@dataclass(frozen=True)
class Row:
    method: str
    tls: str  # "tls" or "notls"
    situation: str
    client: str

    @property
    def id(self) -> str:
        return f"{self.method}-{self.tls}-{self.situation}-{self.client}"


def all_rows() -> list[Row]:
    rows = []
    for method in METHODS:
        for name, sit in SITUATIONS.items():
            for tls in ("tls", "notls"):
                if tls == "notls" and not sit.without_tls:
                    continue
                for client in CLIENTS:
                    if client == "asyncpg" and sit.handshake_fails:
                        continue  # asyncpg only reports "connection was closed": psql and psycopg show the alert
                    rows.append(Row(method, tls, name, client))
    return rows


ROWS = all_rows()


@dataclass(frozen=True)
class Outcome:
    ok: bool
    sqlstate: str | None  # asyncpg only
    message: str

    def show(self) -> str:
        if self.ok:
            return "ok"
        return f"FAIL [{self.sqlstate}] {self.message}" if self.sqlstate else f"FAIL {self.message}"


# --- servers ------------------------------------------------------------------------------------------


def _install(server: RealPostgres | PgtlsServer, certs, config: str) -> None:
    server.copy_in(certs.path("server-chain.crt"), "server.crt", 0o644)
    server.copy_in(certs.path("server.key"), "server.key", 0o600)
    for name in CONFIGS[config].values():
        server.copy_in(certs.path(name), name, 0o644)
    server.write("pg_hba.conf", HBA)
    server.write("pg_ident.conf", IDENT)
    with open(server.datadir / "postgresql.conf", "a") as f:
        f.write("ssl = on\n")
        for k, v in CONFIGS[config].items():
            f.write(f"{k} = '{v}'\n")


SETUP_SQL = (
    "SET password_encryption = 'scram-sha-256';\n"
    f"CREATE ROLE ssltestuser LOGIN PASSWORD '{PASSWORD}';\n"
    "SET password_encryption = 'md5';\n"
    f"CREATE ROLE anotheruser LOGIN PASSWORD '{PASSWORD}';\n"
    + "".join(f"CREATE DATABASE {db};\n" for _, db, _ in METHODS.values())
)


def _start_pg(certs, config: str) -> RealPostgres:
    pg = RealPostgres().init()
    _install(pg, certs, config)
    pg.start()
    pg.psql("-q", "-f", "-", input=SETUP_SQL)
    return pg


def _start_pgtls(certs, config: str) -> PgtlsServer:
    s = PgtlsServer().init()
    _install(s, certs, config)
    s.create_role("ssltestuser", password=PASSWORD)
    s.create_role("anotheruser", password=PASSWORD, password_encryption="md5")
    for _, db, _ in METHODS.values():
        s.sql(f'CREATE DATABASE "{db}"')
    s.start()
    return s


# --- clients ------------------------------------------------------------------------------------------


def normalize(text: str, port: int, keydir: Path) -> str:
    text = text.replace(str(keydir), "KEYDIR").replace(str(port), "PORT")
    text = re.sub(r"\[\d+\]", "[PID]", text)
    text = re.sub(r"\(_ssl\.c:\d+\)", "(_ssl.c)", text)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return " | ".join(lines)


def _conninfo(port: int, row: Row, keydir: Path) -> str:
    sit = SITUATIONS[row.situation]
    _, db, _ = METHODS[row.method]
    parts = [
        f"host=127.0.0.1 port={port} user={sit.user} dbname={db} password={sit.password}",
        "sslmode=" + ("require" if row.tls == "tls" else "disable"),
        "sslrootcert=invalid",
        "connect_timeout=20",
    ]
    if sit.cert is not None:
        parts.append(f"sslcert={keydir / sit.cert} sslkey={keydir / sit.key}")
    else:
        parts.append("sslcert=invalid")
    return " ".join(parts)


def _run_psql(port: int, row: Row, keydir: Path, home: Path) -> Outcome:
    r = run_psql(_conninfo(port, row, keydir), "select current_user", home=home)
    if r.ok:
        assert r.stdout == SITUATIONS[row.situation].user, r.stdout
        return Outcome(True, None, "")
    return Outcome(False, None, normalize(r.stderr, port, keydir))


def _run_psycopg(port: int, row: Row, keydir: Path) -> Outcome:
    try:
        with psycopg.connect(_conninfo(port, row, keydir)) as conn:
            user = conn.execute("select current_user").fetchone()
            assert user == (SITUATIONS[row.situation].user,), user
            return Outcome(True, None, "")
    except psycopg.OperationalError as e:
        return Outcome(False, None, normalize(str(e), port, keydir))


async def _asyncpg_connect(port: int, row: Row, keydir: Path) -> Outcome:
    sit = SITUATIONS[row.situation]
    _, db, _ = METHODS[row.method]
    ctx: ssl.SSLContext | bool = False
    if row.tls == "tls":
        c = ssl.create_default_context()
        c.check_hostname = False
        c.verify_mode = ssl.CERT_NONE
        if sit.cert is not None:
            assert sit.key is not None
            c.load_cert_chain(str(keydir / sit.cert), str(keydir / sit.key))
        ctx = c
    try:
        conn = await asyncpg.connect(
            host="127.0.0.1",
            port=port,
            user=sit.user,
            database=db,
            password=sit.password,
            ssl=ctx,
            timeout=20,
        )
    except asyncpg.PostgresError as e:
        return Outcome(False, e.sqlstate, normalize(str(e), port, keydir))
    except (OSError, ssl.SSLError, asyncpg.InterfaceError, ConnectionError) as e:
        return Outcome(False, type(e).__name__, normalize(str(e), port, keydir))
    try:
        user = await conn.fetchval("select current_user")
        assert user == sit.user, user
    finally:
        await conn.close()
    return Outcome(True, None, "")


def run_row(port: int, row: Row, keydir: Path, home: Path) -> Outcome:
    if row.client == "psql":
        return _run_psql(port, row, keydir, home)
    if row.client == "psycopg":
        return _run_psycopg(port, row, keydir)
    return asyncio.run(_asyncpg_connect(port, row, keydir))


@pytest.fixture(scope="module")
def keydir(certs) -> Iterator[Path]:
    """Client certificates and keys as libpq wants them: keys 0600, owned by the user running the client."""
    d = shared_tmpdir("pgtls-matrix-keys-")
    for sit in SITUATIONS.values():
        for name in (sit.cert, sit.key):
            if name is not None:
                shutil.copy(certs.path(name), d / name)
                (d / name).chmod(0o600)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@dataclass
class MatrixRun:
    results: dict[tuple[str, Row], Outcome]
    logs: dict[str, str]  # pgtls servers only
    secrets: set[str]  # pgtls's stored verifiers


@pytest.fixture(scope="module")
def matrix(certs, keydir, client_home) -> Iterator[MatrixRun]:
    if not have_postgres():
        prereq.missing("PostgreSQL 15 server binaries are not installed")
    servers: dict[tuple[str, str], RealPostgres | PgtlsServer] = {}
    try:
        with ThreadPoolExecutor(6) as pool:
            futs = {}
            for config in CONFIGS:
                futs[("postgres", config)] = pool.submit(_start_pg, certs, config)
                futs[("pgtls", config)] = pool.submit(_start_pgtls, certs, config)
            for k, f in futs.items():
                servers[k] = f.result()
        jobs = []
        for row in ROWS:
            config = SITUATIONS[row.situation].config
            for kind in ("postgres", "pgtls"):
                jobs.append((kind, row, servers[(kind, config)].port))
        with ThreadPoolExecutor(10) as pool:
            outs = list(pool.map(lambda j: run_row(j[2], j[1], keydir, client_home), jobs))
        results = {(kind, row): out for (kind, row, _), out in zip(jobs, outs, strict=True)}
        pgtls = {config: s for (kind, config), s in servers.items() if kind == "pgtls"}
        logs = {f"pgtls/{config}": s.full_log() for config, s in pgtls.items()}
        secrets = set().union(*(secrets_of(s.datadir) for s in pgtls.values()))
        yield MatrixRun(results, logs, secrets)
    finally:
        for s in servers.values():
            s.cleanup()


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_auth_row_matches_postgres(matrix, row):
    expected = matrix.results[("postgres", row)]
    got = matrix.results[("pgtls", row)]
    if (row.method, row.tls, row.situation, row.client) in PG17_EXCEPTIONS:
        pytest.skip(PG17_EXCEPTIONS[(row.method, row.tls, row.situation, row.client)])
    assert got == expected, f"\npostgres: {expected.show()}\npgtls:    {got.show()}"


def _mismatch_table(run: MatrixRun) -> str:
    out = []
    for row in ROWS:
        e, g = run.results[("postgres", row)], run.results[("pgtls", row)]
        if e != g:
            out.append(
                f"{row.method:18} {row.tls:5} {row.situation:32} {row.client:8}\n"
                f"    postgres: {e.show()}\n    pgtls:    {g.show()}"
            )
    return "\n".join(out)


def test_matrix_summary(matrix):
    """Size and sanity of the matrix, and the whole table of mismatches in one place."""
    assert len(ROWS) >= 150
    oks = sum(1 for row in ROWS if matrix.results[("postgres", row)].ok)
    fails = len(ROWS) - oks
    # the matrix must exercise both outcomes broadly
    assert oks >= 40 and fails >= 40, (oks, fails)
    table = _mismatch_table(matrix)
    if os.environ.get("PGTLS_MATRIX_DUMP"):  # print every row's PostgreSQL outcome too
        for row in ROWS:
            print(row.id, "=>", matrix.results[("postgres", row)].show())
    print(f"\n{len(ROWS)} rows, PostgreSQL: {oks} ok / {fails} refused")
    if table:
        print(table)
    assert not table, "rows where pgtls differs from PostgreSQL 15:\n" + table


def test_matrix_logs_hold_no_secrets(matrix, certs):
    assert len(matrix.secrets) == len(CONFIGS) + 1  # a SCRAM verifier each (own salt), one shared md5 hash
    leaks = find_leaks(matrix.logs, {PASSWORD, WRONG_PASSWORD}, matrix.secrets, certs)
    assert not leaks, "\n".join(leaks)
