"""The negotiation state machine on its own: every packet kind, every bound, random input."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pgtls.errors import PgError
from pgtls.protocol.startup import (
    CancelRequest,
    Closed,
    DirectTLS,
    GSSENCRequest,
    LogOnly,
    NeedData,
    SSLRequest,
    Startup,
    StartupMachine,
    cancel_request_packet,
    gssenc_request_packet,
    ssl_request_packet,
    startup_packet,
)


def feed(data: bytes, eof: bool = False) -> StartupMachine:
    sm = StartupMachine()
    sm.receive_data(data)
    if eof:
        sm.receive_data(b"")
    return sm


def test_plain_startup() -> None:
    sm = feed(startup_packet({"user": "alice", "database": "db1", "application_name": "x"}))
    ev = sm.next_event()
    assert isinstance(ev, Startup)
    assert ev.user == "alice" and ev.database == "db1" and ev.params["application_name"] == "x"
    assert not ev.needs_negotiation


def test_database_defaults_to_user() -> None:
    ev = feed(startup_packet({"user": "bob"})).next_event()
    assert isinstance(ev, Startup) and ev.database == "bob"


def test_byte_at_a_time() -> None:
    sm = StartupMachine()
    pkt = startup_packet({"user": "alice"})
    for i, b in enumerate(pkt):
        ev = sm.next_event()
        assert isinstance(ev, NeedData), i
        sm.receive_data(bytes([b]))
    assert isinstance(sm.next_event(), Startup)


def test_ssl_then_gss_then_startup() -> None:
    sm = feed(ssl_request_packet())
    assert isinstance(sm.next_event(), SSLRequest)
    sm.answered_ssl()
    sm.receive_data(gssenc_request_packet())
    assert isinstance(sm.next_event(), GSSENCRequest)
    sm.answered_gss()
    sm.receive_data(startup_packet({"user": "u"}))
    assert isinstance(sm.next_event(), Startup)


@pytest.mark.parametrize(
    "first,second", [(ssl_request_packet, ssl_request_packet), (gssenc_request_packet, gssenc_request_packet)]
)
def test_repeat_request_is_unsupported_protocol(first, second) -> None:  # CVE-2026-6479
    sm = feed(first())
    ev = sm.next_event()
    (sm.answered_ssl if isinstance(ev, SSLRequest) else sm.answered_gss)()
    sm.receive_data(second())
    with pytest.raises(PgError) as ei:
        sm.next_event()
    assert ei.value.sqlstate == "0A000"
    assert ei.value.message.startswith("unsupported frontend protocol 1234.")
    assert ei.value.message.endswith("server supports 3.0 to 3.2")


def test_ssl_gss_ssl_is_refused() -> None:  # postmaster/004_negotiate
    sm = feed(ssl_request_packet())
    sm.next_event()
    sm.answered_ssl()
    sm.receive_data(gssenc_request_packet())
    sm.next_event()
    sm.answered_gss()
    sm.receive_data(ssl_request_packet())
    with pytest.raises(PgError, match=r"unsupported frontend protocol 1234\.5679"):
        sm.next_event()


def test_ssl_request_after_tls_is_unsupported() -> None:
    sm = feed(ssl_request_packet())
    sm.next_event()
    sm.answered_ssl()
    sm.tls_started(direct=False)
    sm.receive_data(ssl_request_packet())
    with pytest.raises(PgError, match="unsupported frontend protocol 1234.5679"):
        sm.next_event()


def test_direct_tls_detected_only_first() -> None:
    assert isinstance(feed(b"\x16\x03\x01\x02\x00").next_event(), DirectTLS)
    sm = feed(ssl_request_packet())
    sm.next_event()
    sm.answered_ssl()
    sm.receive_data(b"\x16\x03\x01\x00\x10" + b"\0" * 16)
    with pytest.raises((LogOnly, PgError)):
        sm.next_event()


def test_buffered_after_request_is_visible() -> None:  # CVE-2021-23214
    sm = feed(ssl_request_packet() + startup_packet({"user": "u"}))
    assert isinstance(sm.next_event(), SSLRequest)
    assert sm.buffered > 0


def test_cancel_request() -> None:
    ev = feed(cancel_request_packet(1234, -5)).next_event()
    assert ev == CancelRequest(1234, b"\xff\xff\xff\xfb")
    long_key = bytes(range(32))  # protocol 3.2 (PostgreSQL 18)
    assert feed(cancel_request_packet(7, long_key)).next_event() == CancelRequest(7, long_key)


def test_cancel_request_bad_length() -> None:
    with pytest.raises(LogOnly, match="invalid length of query cancel packet"):
        feed(struct.pack("!ii", 8, 80877102)).next_event()
    with pytest.raises(LogOnly, match="invalid length of query cancel key"):
        feed(struct.pack("!iii", 12, 80877102, 1)).next_event()  # pid, no key
    with pytest.raises(LogOnly, match="invalid length of query cancel key"):
        feed(cancel_request_packet(1, bytes(33))).next_event()


@pytest.mark.parametrize("length", [0, 3, 7, 10005, 1 << 30, -1])
def test_invalid_length(length: int) -> None:
    with pytest.raises(LogOnly, match="invalid length of startup packet"):
        feed(struct.pack("!i", length) + b"\0" * 8).next_event()


def test_eof_cases() -> None:
    with pytest.raises(Closed):
        feed(b"", eof=True).next_event()
    with pytest.raises(LogOnly, match="incomplete startup packet"):
        feed(b"\0\0", eof=True).next_event()
    with pytest.raises(LogOnly, match="incomplete startup packet"):
        feed(startup_packet({"user": "u"})[:-3], eof=True).next_event()


def test_protocol_versions() -> None:
    ev = feed(startup_packet({"user": "u", "_pq_.foo": "1"}, minor=2)).next_event()
    assert isinstance(ev, Startup) and ev.needs_negotiation and ev.unrecognized == ("_pq_.foo",)
    bad = struct.pack("!ii", 8 + 8, 2 << 16) + b"user\0u\0\0"
    with pytest.raises(PgError, match=r"unsupported frontend protocol 2\.0: server supports 3\.0 to 3\.2"):
        feed(bad).next_event()


def test_missing_user_and_bad_layout() -> None:
    with pytest.raises(PgError, match="no PostgreSQL user name specified in startup packet") as ei:
        feed(startup_packet({"database": "x"})).next_event()
    assert ei.value.sqlstate == "28000"
    unterminated = struct.pack("!ii", 8 + 6, 3 << 16) + b"user\0u"
    with pytest.raises(PgError, match="invalid startup packet layout"):
        feed(unterminated).next_event()
    missing_value = struct.pack("!ii", 8 + 6, 3 << 16) + b"user\0\0"
    ev = feed(missing_value)
    with pytest.raises(PgError):
        ev.next_event()


def test_long_names_truncated() -> None:
    ev = feed(startup_packet({"user": "u" * 100, "database": "d" * 70})).next_event()
    assert isinstance(ev, Startup) and len(ev.user) == 63 and len(ev.database) == 63


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300), st.booleans())
def test_random_input_only_documented_outcomes(data: bytes, eof: bool) -> None:
    sm = feed(data, eof)
    try:
        for _ in range(10):
            ev = sm.next_event()
            if isinstance(ev, NeedData) or isinstance(ev, (DirectTLS, Startup, CancelRequest)):
                return
            if isinstance(ev, SSLRequest):
                sm.answered_ssl()
            elif isinstance(ev, GSSENCRequest):
                sm.answered_gss()
    except (PgError, LogOnly, Closed):
        pass
