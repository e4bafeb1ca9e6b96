"""pg_hba.conf / pg_ident.conf regular expressions: pgtls against a real PostgreSQL (issue 12, finding 2).

Two levels:

* the engine: many pattern/subject pairs (the unit table, control characters, generated patterns)
  through PostgreSQL's ``subject ~ pattern`` and ``(regexp_match(subject, pattern))[1]`` in a
  SQL_ASCII database with the C collation -- the same ARE engine, flags, C-locale classes and
  byte-per-character matching that authentication uses -- against :mod:`pgtls.config.authregex`;
  and PostgreSQL's error texts for patterns it refuses;
* end to end: a PostgreSQL 15 with ``ssl = on`` and a pgtls server with the same CA, server
  certificate, pg_hba.conf (``hostssl ... cert map=...``) and pg_ident.conf maps, and client
  certificates signed by that CA whose CN holds ``\\n``, ``\\r``, a tab and other control
  characters; each login (as ssltestuser, and as a role named exactly like the CN) must be accepted
  or refused alike, with the same SQLSTATE (asyncpg) and the same message (psycopg/libpq).  The
  managed PostgreSQL 18 (built without SSL: plain TCP logins) is the reference for regular
  expressions in pg_hba.conf's user and database fields, which PostgreSQL 15 does not have, with
  role and database names holding control characters.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import psycopg
import pytest

from pgtls.certs import x509build as xb
from pgtls.config.authregex import AuthRegexError, AuthRegexMatchError, compile_are, to_bytes
from tests import prereq
from tests.authregex_cases import POSTGRESQL_ERRORS, SEMANTICS
from tests.pgserver import RealPostgres, have_postgres, managed_pg_bin, shared_tmpdir
from tests.pgtlsserver import PgtlsServer

pytestmark = [pytest.mark.pg, pytest.mark.timeout(600)]

CONTROL = ["\n", "\r", "\t", "\x01", "\x7f", "\r\n", "\x0b", "\x0c", "\x1b"]


# --- the engine ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ascii_db(realpg: RealPostgres) -> Iterator[psycopg.Connection]:
    with psycopg.connect(
        f"host=127.0.0.1 port={realpg.port} user=postgres dbname=postgres", autocommit=True
    ) as c:
        c.execute(
            "CREATE DATABASE rxascii ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
        )
    with psycopg.connect(
        f"host=127.0.0.1 port={realpg.port} user=postgres dbname=rxascii", autocommit=True
    ) as c:
        yield c


def _pg_answers(
    conn: psycopg.Connection, pattern: bytes, subjects: list[bytes]
) -> list[tuple[bool, bytes | None]]:
    """(matches, first capture) for each subject; patterns and subjects travel as bytes."""
    rows = conn.execute(
        "SELECT s ~ p, convert_to((regexp_match(s, p))[1], 'SQL_ASCII')"
        " FROM (SELECT convert_from(%s::bytea, 'SQL_ASCII') AS p) AS pat,"
        " LATERAL (SELECT convert_from(b, 'SQL_ASCII') AS s, o FROM unnest(%s::bytea[]) WITH ORDINALITY AS u(b, o)) AS x"
        " ORDER BY o",
        (pattern, subjects),
    ).fetchall()
    return [(bool(m), None if g is None else bytes(g)) for m, g in rows]


def _pg_error(conn: psycopg.Connection, pattern: bytes) -> str | None:
    try:
        conn.execute("SELECT 'x' ~ convert_from(%s::bytea, 'SQL_ASCII')", (pattern,))
    except psycopg.errors.InvalidRegularExpression as e:
        text = e.diag.message_primary or ""
        return text.removeprefix("invalid regular expression: ")
    return None


def _ours(pattern: str, subjects: list[str]) -> list[tuple[bool, bytes | None]] | None:
    rx = compile_are(pattern)
    out: list[tuple[bool, bytes | None]] = []
    for s in subjects:
        found = rx.search(s)
        matched, group = rx.first_group(s)
        assert matched is found, (pattern, s)
        out.append((found, None if group is None else to_bytes(group)))
    return out if rx.groups else [(m, None) for m, _ in out]


def _compare(conn: psycopg.Connection, pattern: str, subjects: list[str]) -> list[str]:
    try:
        ours = _ours(pattern, subjects)
    except AuthRegexError as e:
        if e.unsupported:
            return []  # refused on purpose (PostgreSQL accepts it, pgtls cannot match it in linear time)
        pg_err = _pg_error(conn, to_bytes(pattern))
        return [] if pg_err == e.message else [f"{pattern!r}: pg error {pg_err!r}, pgtls {e.message!r}"]
    except AuthRegexMatchError as e:
        return [f"{pattern!r}: match gave up: {e}"]
    assert ours is not None
    theirs = _pg_answers(conn, to_bytes(pattern), [to_bytes(s) for s in subjects])
    if compile_are(pattern).groups == 0:
        theirs = [(m, None) for m, _ in theirs]
    return [
        f"{pattern!r} on {s!r}: pg {t}, pgtls {o}"
        for s, t, o in zip(subjects, theirs, ours, strict=True)
        if t != o and (t[0] or o[0])
    ]


def test_unit_table_against_postgresql(ascii_db: psycopg.Connection) -> None:
    diffs: list[str] = []
    for pattern, subject, _, _ in SEMANTICS:
        diffs += _compare(ascii_db, pattern, [subject, subject + "\n", "\n" + subject, subject.upper()])
    assert diffs == []


def test_error_texts_against_postgresql(ascii_db: psycopg.Connection) -> None:
    for pattern, reason in POSTGRESQL_ERRORS:
        assert _pg_error(ascii_db, to_bytes(pattern)) == reason, pattern


NAMES = ["ssltestuser", "alice@example.com", "a", "", "ssl testuser", "caf\u00e9", "caf\udce9", "USER_1"]
CN_PATTERNS = [
    "^(.*)$",
    "^ssltestuser$",
    "^ssl.testuser$",
    "^(ssltestuser)\\s*$",
    "^(.*?)[[:cntrl:]]*$",
    "^([[:print:]]*)",
    "^([^\\n]*)$",
    "^(.*)@example\\.com$",
    "^(.*?)(@.*)?$",
    "[[:cntrl:]]",
    "^[[:alnum:]_@.]+$",
    "(.)$",
    "^(\\w+)\\W?",
    "^(.+?)\\r?\\n?$",
    "\\A(.*)\\Z",
    "(?i)^(SSLTESTUSER)$",
    "^ssltestuser[\\x00-\\x1f]$",
    "^(.*)[^[:graph:]]$",
]


def test_control_characters_against_postgresql(ascii_db: psycopg.Connection) -> None:
    subjects = [n + c for n in NAMES for c in CONTROL] + [c + n for n in NAMES for c in CONTROL]
    subjects += [n[:3] + c + n[3:] for n in NAMES for c in CONTROL] + NAMES
    diffs: list[str] = []
    for pattern in CN_PATTERNS:
        diffs += _compare(ascii_db, pattern, subjects)
    assert diffs == []


ATOMS = [
    "a",
    "b",
    "@",
    ".",
    "\\n",
    "[ab]",
    "[^a]",
    "\\d",
    "\\w",
    "\\s",
    "[[:alpha:]]",
    "[[:cntrl:]]",
    "x",
    "\\r",
    "(a|ab)",
    "(b|ab)*",
    "(a*)*",
    "((a)|b)+?",
    "(a?){2,3}",
]
QUANTS = ["*", "+", "?", "*?", "+?", "??", "{1,2}", "{0,2}?", "{2}", "{1,}"]


def _gen_pattern(r: random.Random, depth: int = 0) -> str:
    out = ""
    for _ in range(r.randint(1, 3)):
        if r.random() < 0.3 and depth < 3:
            inner = _gen_pattern(r, depth + 1)
            if r.random() < 0.4:
                inner += "|" + _gen_pattern(r, depth + 1)
            atom = ("(" if r.random() < 0.7 else "(?:") + inner + ")"
        else:
            atom = r.choice(ATOMS)
        if r.random() < 0.45:
            atom += r.choice(QUANTS)
        out += atom
    if r.random() < 0.4:
        out = "^" + out
    if r.random() < 0.4:
        out += "$"
    return out


def test_generated_patterns_against_postgresql(ascii_db: psycopg.Connection) -> None:
    r = random.Random(20240612)
    diffs: list[str] = []
    for _ in range(400):
        pattern = _gen_pattern(r)
        subjects = sorted(
            {"".join(r.choice("aab@\nx1\r") for _ in range(r.randint(0, 12))) for _ in range(10)}
        )
        diffs += _compare(ascii_db, pattern, subjects)
    assert diffs == []


# --- end to end: certificates with control characters in the CN -----------------------------------

CNS = [
    "ssltestuser",
    "ssltestuser\n",
    "ssltestuser\r",
    "ssl\ttestuser",
    "ssltestuser\x01",
    "ssl\ntestuser",
    "\nssltestuser",
    "ssltestuser\r\n",
    "ssltestuser\x7f",
    "ssltestuser\x1b",
]

IDENT = (
    "mall /^(.*)$ \\1\n"
    "mexact /^ssltestuser$ ssltestuser\n"
    "mdot /^ssl.testuser$ ssltestuser\n"
    "mtrail /^(ssltestuser)[[:space:]]*$ \\1\n"
    "mlazy /^(.*?)[[:cntrl:]]*$ \\1\n"
    "mprint /^([[:print:]]+)$ \\1\n"
)
MAPS = ["mall", "mexact", "mdot", "mtrail", "mlazy", "mprint"]
HBA = (
    "local all all trust\n"
    + "".join(f"hostssl {m} all 127.0.0.1/32 cert map={m}\n" for m in MAPS)
    + ("hostssl plain all 127.0.0.1/32 cert\n")
)
DATABASES = [*MAPS, "plain"]


def _role_sql(name: str) -> str:
    return 'CREATE ROLE "' + name.replace('"', '""') + '" LOGIN'


@dataclass(frozen=True)
class Login:
    cn_index: int
    database: str
    user: str


@pytest.fixture(scope="module")
def cn_keys(certs) -> Iterator[Path]:
    """One client certificate per CN, signed by the suite's client CA (keys 0600 for libpq)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    d = shared_tmpdir("pgtls-rxcn-")
    ca_cert = x509.load_pem_x509_certificate(Path(certs.path("client_ca.crt")).read_bytes())
    ca_key = serialization.load_pem_private_key(Path(certs.path("client_ca.key")).read_bytes(), None)
    ca = xb.Issued(ca_cert, ca_key)  # type: ignore[arg-type]
    for i, cn in enumerate(CNS):
        leaf = xb.make_leaf(xb.cn(cn), ca, purpose="client")
        xb.write_certs(d / f"c{i}.crt", [leaf.cert])
        assert leaf.key is not None
        xb.write_key(d / f"c{i}.key", leaf.key)
        (d / f"c{i}.key").chmod(0o600)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _install(server: RealPostgres | PgtlsServer, certs, hba: str, ident: str) -> None:
    server.copy_in(certs.path("server-chain.crt"), "server.crt", 0o644)
    server.copy_in(certs.path("server.key"), "server.key", 0o600)
    server.copy_in(certs.path("root+client_ca.crt"), "root+client_ca.crt", 0o644)
    server.write("pg_hba.conf", hba)
    server.write("pg_ident.conf", ident)
    with open(server.datadir / "postgresql.conf", "a") as f:
        f.write("ssl = on\nssl_ca_file = 'root+client_ca.crt'\n")


def _setup_sql(databases: list[str]) -> list[str]:
    return [_role_sql(n) for n in dict.fromkeys(CNS)] + [f"CREATE DATABASE {db}" for db in databases]


def _start_real(
    certs, hba: str, ident: str, databases: list[str], bindir: Path | None = None
) -> RealPostgres:
    pg = RealPostgres(bindir=bindir).init()
    _install(pg, certs, hba, ident)
    pg.start()
    with psycopg.connect(
        f"host={pg.sockdir} port={pg.port} user=postgres dbname=postgres", autocommit=True
    ) as c:
        for stmt in _setup_sql(databases):
            c.execute(stmt)
    return pg


def _start_pgtls(certs, hba: str, ident: str, databases: list[str]) -> PgtlsServer:
    s = PgtlsServer().init()
    _install(s, certs, hba, ident)
    for stmt in _setup_sql(databases):
        s.sql(stmt)
    s.start()
    return s


def _normalize(text: str, port: int) -> str:
    text = text.replace(str(port), "PORT")
    return " | ".join(ln.strip() for ln in text.splitlines() if ln.strip())


def _login_psycopg(port: int, login: Login, keys: Path, user: str) -> str:
    try:
        with psycopg.connect(
            host="127.0.0.1",
            port=port,
            user=user,
            dbname=login.database,
            sslmode="require",
            sslrootcert="invalid",
            sslcert=str(keys / f"c{login.cn_index}.crt"),
            sslkey=str(keys / f"c{login.cn_index}.key"),
            connect_timeout=20,
        ) as conn:
            row = conn.execute("select current_user").fetchone()
            assert row is not None
            return f"ok as {row[0]!r}"
    except psycopg.OperationalError as e:
        return "refused: " + _normalize(str(e), port)


async def _login_asyncpg(port: int, login: Login, keys: Path, user: str) -> str:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(str(keys / f"c{login.cn_index}.crt"), str(keys / f"c{login.cn_index}.key"))
    try:
        conn = await asyncpg.connect(
            host="127.0.0.1", port=port, user=user, database=login.database, ssl=ctx, timeout=20
        )
    except asyncpg.PostgresError as e:
        return f"refused [{e.sqlstate}] {e}"
    try:
        return f"ok as {await conn.fetchval('select current_user')!r}"
    finally:
        await conn.close()


def _outcomes(port: int, logins: list[Login], keys: Path) -> dict[Login, tuple[str, str]]:
    out: dict[Login, tuple[str, str]] = {}
    for login in logins:
        out[login] = (
            _login_psycopg(port, login, keys, login.user),
            asyncio.run(_login_asyncpg(port, login, keys, login.user)),
        )
    return out


def _diff(theirs: dict[Login, tuple[str, str]], ours: dict[Login, tuple[str, str]]) -> list[str]:
    return [
        f"CN {CNS[k.cn_index]!r} db {k.database} user {k.user!r}:\n  pg    {theirs[k]}\n  pgtls {ours[k]}"
        for k in theirs
        if theirs[k] != ours[k]
    ]


def test_cert_logins_with_control_characters_in_cn(certs, cn_keys: Path) -> None:
    if not have_postgres():
        prereq.missing("PostgreSQL 15 server binaries are not installed")
    logins = [
        Login(i, db, user)
        for i, cn in enumerate(CNS)
        for db in DATABASES
        for user in dict.fromkeys(["ssltestuser", cn])
    ]
    pg = _start_real(certs, HBA, IDENT, DATABASES)
    try:
        theirs = _outcomes(pg.port, logins, cn_keys)
    finally:
        pg.cleanup()
    ours_server = _start_pgtls(certs, HBA, IDENT, DATABASES)
    try:
        ours = _outcomes(ours_server.port, logins, cn_keys)
    finally:
        ours_server.cleanup()
    assert _diff(theirs, ours) == []
    # the finding itself: "ssltestuser\n" never becomes ssltestuser, yet maps that should match do
    nl = CNS.index("ssltestuser\n")
    for db in ("mall", "mexact"):
        assert ours[Login(nl, db, "ssltestuser")][1].startswith("refused [28000]")
    assert ours[Login(nl, "mall", "ssltestuser\n")][1] == "ok as 'ssltestuser\\n'"
    assert ours[Login(nl, "mtrail", "ssltestuser")][1] == "ok as 'ssltestuser'"
    assert ours[Login(CNS.index("ssl\ntestuser"), "mdot", "ssltestuser")][1] == "ok as 'ssltestuser'"


HBA_REGEX = (
    "local all all trust\n"
    "host all /^ssltestuser$ 127.0.0.1/32 trust\n"
    "host /^db.x$ all 127.0.0.1/32 trust\n"
    "host all /^ssl.testuser[[:cntrl:]]?$ 127.0.0.1/32 trust\n"
    "host all all 127.0.0.1/32 reject\n"
)


def _plain_login(port: int, database: str, user: str) -> tuple[str, str]:
    try:
        with psycopg.connect(
            host="127.0.0.1", port=port, user=user, dbname=database, sslmode="disable", connect_timeout=20
        ) as conn:
            row = conn.execute("select current_user").fetchone()
            assert row is not None
            first = f"ok as {row[0]!r}"
    except psycopg.OperationalError as e:
        first = "refused: " + _normalize(str(e), port)

    async def second() -> str:
        try:
            conn = await asyncpg.connect(
                host="127.0.0.1", port=port, user=user, database=database, ssl=False, timeout=20
            )
        except asyncpg.PostgresError as e:
            return f"refused [{e.sqlstate}] {e}"
        try:
            return f"ok as {await conn.fetchval('select current_user')!r}"
        finally:
            await conn.close()

    return first, asyncio.run(second())


def test_hba_regex_user_and_database_against_postgresql18() -> None:
    """PostgreSQL 16+ reads /regex in pg_hba.conf's user and database fields (PostgreSQL 15 does not);
    the managed PostgreSQL 18 (built without SSL, so these logins are plain TCP) is the reference."""
    try:
        bindir = managed_pg_bin()
    except Exception as e:  # noqa: BLE001 - no managed PostgreSQL here
        prereq.missing(f"no managed PostgreSQL: {e}")
    dbs = ["dbax", "db\nx", "dbx", "dbax\n"]
    users = list(dict.fromkeys(["ssltestuser", *CNS]))
    logins = [(db, user) for db in ["postgres", *dbs] for user in users]
    setup = [_role_sql(n) for n in users] + ['CREATE DATABASE "' + db + '"' for db in dbs]
    pg = RealPostgres(bindir=bindir).init()
    try:
        pg.write("pg_hba.conf", HBA_REGEX)
        pg.start()
        with psycopg.connect(
            f"host={pg.sockdir} port={pg.port} user=postgres dbname=postgres", autocommit=True
        ) as c:
            for stmt in setup:
                c.execute(stmt)
        theirs = {k: _plain_login(pg.port, *k) for k in logins}
    finally:
        pg.cleanup()
    ours_server = PgtlsServer().init()
    try:
        ours_server.write("pg_hba.conf", HBA_REGEX)
        for stmt in setup:
            ours_server.sql(stmt)
        ours_server.start()
        ours = {k: _plain_login(ours_server.port, *k) for k in logins}
    finally:
        ours_server.cleanup()
    diffs = [
        f"db {k[0]!r} user {k[1]!r}:\n  pg    {theirs[k]}\n  pgtls {ours[k]}"
        for k in logins
        if theirs[k] != ours[k]
    ]
    assert diffs == []
    assert ours[("postgres", "ssltestuser")][1] == "ok as 'ssltestuser'"
    assert ours[("postgres", "ssltestuser\n")][1].startswith("refused [28000]")  # not via /^ssltestuser$
    assert ours[("db\nx", "ssltestuser\x01")][1] == "ok as 'ssltestuser\\x01'"  # . matches the newline
    assert ours[("dbax\n", "ssltestuser\x01")][1].startswith("refused [28000]")  # $ is not before a newline
