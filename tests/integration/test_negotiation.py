"""Negotiation rules pgtls follows from PostgreSQL 17+ that a PostgreSQL 15 (built with GSSAPI)
cannot show side by side: GSSENCRequest is always answered 'N', once."""

from __future__ import annotations

import pytest

from pgtls.protocol.startup import gssenc_request_packet, ssl_request_packet, startup_packet
from tests.pgtlsserver import tls_server
from tests.rawclient import Raw, first_error
from tests.serverwatch import Watch

HBA = "local all all trust\nhost all all 127.0.0.1/32 trust\n"


@pytest.fixture(scope="module")
def server(certs):
    s = tls_server(certs, hba=HBA, trace_connection_negotiation="on")
    yield s
    s.cleanup()


def test_gss_then_ssl_then_startup(server):
    watch = Watch(server)
    r = Raw(server.port)
    r.send(gssenc_request_packet())
    assert r.recv_exact(1) == b"N"
    r.send(ssl_request_packet())
    assert r.recv_exact(1) == b"S"
    r.start_tls()
    r.send(startup_packet({"user": "postgres", "database": "postgres"}))
    data = r.recv_all(1.0)
    assert data[:1] == b"R"
    r.close()
    assert "GSSENCRequest rejected" in server.log() and "SSLRequest accepted" in server.log()
    watch.check()  # no unexpected error logged, the server alive


def test_ssl_gss_ssl_is_refused(server):
    """postmaster/004_negotiate with ssl=on: the third request is not answered with 'N'."""
    watch = Watch(server)
    r = Raw(server.port)
    r.send(ssl_request_packet())
    assert r.recv_exact(1) == b"S"
    r.start_tls()
    r.send(gssenc_request_packet())
    assert r.recv_exact(1) == b"N"  # CVE-2026-14681: 'N' inside TLS
    r.send(ssl_request_packet())
    err = first_error(r.recv_all(2.0))
    assert err is not None and err["C"] == "0A000"
    assert err["M"] == "unsupported frontend protocol 1234.5679: server supports 3.0 to 3.2"
    r.close()
    watch.check()  # no unexpected error logged, the server alive


def test_gss_twice_is_refused(server):
    watch = Watch(server)
    r = Raw(server.port)
    r.send(gssenc_request_packet())
    assert r.recv_exact(1) == b"N"
    r.send(gssenc_request_packet())
    err = first_error(r.recv_all(2.0))
    assert (
        err is not None and err["M"] == "unsupported frontend protocol 1234.5680: server supports 3.0 to 3.2"
    )
    r.close()
    watch.check()  # no unexpected error logged, the server alive


def test_requests_after_direct_tls(server):
    watch = Watch(server)
    r = Raw(server.port)
    r.start_tls(alpn=["postgresql"])
    r.send(gssenc_request_packet())
    assert r.recv_exact(1) == b"N"
    r.send(ssl_request_packet())
    err = first_error(r.recv_all(2.0))
    assert err is not None and err["M"].startswith("unsupported frontend protocol 1234.5679")
    r.close()
    watch.check()  # no unexpected error logged, the server alive


def test_unencrypted_data_after_gss_request(server):
    watch = Watch(server)
    r = Raw(server.port)
    r.send(gssenc_request_packet() + startup_packet({"user": "postgres"}))
    data = r.recv_all(2.0)
    r.close()
    assert data[:1] == b"N"
    err = first_error(data[1:])
    assert err is not None and err["C"] == "08P01"
    assert err["M"] == "received unencrypted data after GSSAPI encryption request"
    watch.check()  # no unexpected error logged, the server alive


def test_server_still_serves(server):
    import psycopg

    with psycopg.connect(server.dsn(sslmode="require")) as c:
        assert c.execute("select 1").fetchone() == (1,)
    watch = Watch(server)
    watch.offset = 0  # the module's whole log: no pgtls bug in any test above
    watch.check()
