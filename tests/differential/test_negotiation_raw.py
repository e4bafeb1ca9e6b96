"""Raw-socket negotiation, the same bytes against PostgreSQL 18 (the version pgtls manages, in a release
build with OpenSSL) and pgtls.

PostgreSQL 18 speaks protocol 3.0 to 3.2, as pgtls does, so even the "unsupported frontend protocol"
message agrees word for word.  Direct TLS and pipelined bytes fed into TLS are tested in
tests/integration/test_negotiation.py and tests/relay/test_direct_tls.py.
"""

from __future__ import annotations

import struct

import pytest

from pgtls.protocol.startup import ssl_request_packet, startup_packet
from tests import prereq
from tests.rawclient import Raw, first_error

pytestmark = pytest.mark.pg

HBA = "local all all trust\nhost all all 127.0.0.1/32 trust\n"


@pytest.fixture(scope="module")
def pair(certs):
    from tests.pgserver import RealPostgres, binary_version, managed_pg_bin, tls_build_bindir
    from tests.pgtlsserver import PgtlsServer

    try:
        bindir = tls_build_bindir(binary_version(managed_pg_bin()))
    except (RuntimeError, OSError) as e:
        prereq.missing(f"no PostgreSQL 18 built with OpenSSL: {e}")
    out = {}
    made = []
    for ssl in (True, False):
        pg = RealPostgres(bindir=bindir).init()
        ours = PgtlsServer().init()
        for s in (pg, ours):
            s.copy_in(certs.path("server-chain.crt"), "server.crt", 0o644)
            s.copy_in(certs.path("server.key"), "server.key", 0o600)
            s.write("pg_hba.conf", HBA)
            with open(s.datadir / "postgresql.conf", "a") as f:
                f.write(f"ssl = {'on' if ssl else 'off'}\n")
            s.start()
            made.append(s)
        out[ssl] = (pg, ours)
    yield out
    for s in made:
        s.cleanup()


def _exchange(
    port: int, steps: list[bytes], tls_after_s: bool = False
) -> tuple[list[bytes], dict | None, bool]:
    """Send each step, read the 1-byte answers of SSL/GSS requests; return answers, error fields, closed."""
    r = Raw(port)
    answers: list[bytes] = []
    try:
        for step in steps:
            r.send(step)
            code = struct.unpack_from("!i", step, 4)[0] if len(step) >= 8 else None
            if code in (80877103, 80877104) and len(step) == 8:
                a = r.recv_exact(1)
                answers.append(a)
                if a == b"E":
                    # An ErrorResponse instead of a one-byte answer.
                    rest = r.recv_all()
                    return answers, _core(first_error(b"E" + rest)), True
                if a == b"S" and tls_after_s:
                    r.start_tls()
        data = r.recv_all(2.0)
        return answers, _core(first_error(data)), r.closed_by_server(0.5)
    finally:
        r.close()


def _core(fields: dict | None) -> dict | None:
    if fields is None:
        return None
    return {k: fields[k] for k in ("S", "C", "M", "D") if k in fields}


# Debian's PostgreSQL is built with GSSAPI and answers 'G' to GSSENCRequest, pgtls answers 'N':
# sequences with GSSENCRequest are tested against pgtls alone (tests/integration/test_negotiation.py).
CASES = {
    "ssl-ssl": [ssl_request_packet(), ssl_request_packet()],
    "ssl-startup-no-user": [ssl_request_packet(), startup_packet({"database": "x"})],
    "protocol-2": [struct.pack("!ii", 16, 2 << 16) + b"user\0u\0\0"],
    "protocol-4": [struct.pack("!ii", 16, 4 << 16) + b"user\0u\0\0"],
    "no-user": [startup_packet({"database": "postgres"})],
    "unterminated": [struct.pack("!ii", 14, 3 << 16) + b"user\0u"],
    "unknown-code": [struct.pack("!ii", 8, 80877199)],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_negotiation_ssl_off_matches_postgres(pair, name):
    pg, ours = pair[False]
    steps = CASES[name]
    assert _exchange(ours.port, steps) == _exchange(pg.port, steps)


@pytest.mark.parametrize("name", ["ssl-ssl", "ssl-startup-no-user", "protocol-2", "no-user"])
def test_negotiation_ssl_on_matches_postgres(pair, name):
    pg, ours = pair[True]
    steps = CASES[name]
    assert _exchange(ours.port, steps, tls_after_s=True) == _exchange(pg.port, steps, tls_after_s=True)


def test_unencrypted_data_after_ssl_request_refused_like_postgres(pair):
    """CVE-2021-23214 with ssl=off: 'N' then FATAL 08P01, nothing processed."""
    pg, ours = pair[False]
    steps = [ssl_request_packet() + startup_packet({"user": "postgres", "database": "postgres"})]

    def run(port: int):
        r = Raw(port)
        r.send(steps[0])
        data = r.recv_all(2.0)
        r.close()
        return data[:1], _core(first_error(data[1:]))

    expected = run(pg.port)
    got = run(ours.port)
    assert expected[0] == b"N" and expected[1]["C"] == "08P01"
    assert got == expected
    assert "connection authorized" not in ours.log()
