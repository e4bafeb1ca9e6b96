"""The relay's sans-IO parts: the frontend tracker, backend message splitting, arrays, role rows.

Property tests with hypothesis: any message stream cut into any chunks must come out the same as
when it is fed whole; malformed input raises PgError (08P01) and nothing else.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pgtls.backends.relay import wire
from pgtls.backends.relay.roles import parse_array, role_view
from pgtls.errors import PgError
from pgtls.protocol.startup import LogOnly

KINDS = b"QPBEDCHSFdcf"


def msg(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


messages = st.lists(st.tuples(st.sampled_from(list(KINDS)), st.binary(max_size=300)), max_size=20).map(
    lambda ms: [msg(bytes([k]), b) for k, b in ms]
)


def cut(data: bytes, points: list[int]) -> list[bytes]:
    points = sorted({p % (len(data) + 1) for p in points})
    out, prev = [], 0
    for p in points:
        out.append(data[prev:p])
        prev = p
    out.append(data[prev:])
    return out


def feed_all(tracker: wire.FrontendTracker, chunks: list[bytes]) -> bytes:
    out = b""
    for c in chunks:
        out += tracker.feed(c)
        if tracker.terminated:
            break
    return out


@settings(max_examples=300, deadline=None)
@given(messages, st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_tracker_forwards_every_byte_in_order_whatever_the_chunks(ms, points):
    stream = b"".join(ms)
    t = wire.FrontendTracker()
    assert feed_all(t, cut(stream, points)) == stream
    assert t.at_boundary and not t.terminated
    assert t.last_kind == (ms[-1][0] if ms else 0)
    assert t.synced == (not ms or ms[-1][0] in b"QSF")


@settings(max_examples=300, deadline=None)
@given(messages, messages, st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_terminate_is_held_back_and_nothing_after_it_passes(before, after, points):
    stream = b"".join(before) + msg(b"X", b"") + b"".join(after)
    t = wire.FrontendTracker()
    assert feed_all(t, cut(stream, points)) == b"".join(before)
    assert t.terminated


@settings(max_examples=200, deadline=None)
@given(messages, st.integers(min_value=1, max_value=4))
def test_a_half_sent_message_is_not_synced(ms, missing):
    stream = b"".join(ms) + msg(b"Q", b"select 1\0")
    t = wire.FrontendTracker()
    t.feed(stream[:-missing])
    assert not t.at_boundary and not t.synced


@pytest.mark.parametrize("length", [0, 1, 3, -1, -2147483648])
def test_tracker_refuses_a_bad_length(length):
    """PostgreSQL logs it (COMMERROR, 08P01) and closes without a word to the client."""
    t = wire.FrontendTracker()
    with pytest.raises(LogOnly) as ei:
        t.feed(b"Q" + struct.pack("!i", length) + b"x")
    assert ei.value.sqlstate == "08P01" and ei.value.message == "invalid message length"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.lists(st.integers(min_value=0, max_value=500), max_size=8))
def test_tracker_on_garbage_forwards_or_refuses(data, points):
    t = wire.FrontendTracker()
    out = b""
    try:
        for c in cut(data, points):
            out += t.feed(c)
            if t.terminated:
                break
    except LogOnly as e:
        assert e.sqlstate == "08P01"
        return
    assert data.startswith(out)


def test_watched_messages_hand_over_their_start():
    t = wire.FrontendTracker(frozenset(b"QP"))
    q = msg(b"Q", b"DROP DATABASE x\0")
    p = msg(b"P", b"s1\0CREATE DATABASE y\0\0\0")
    t.feed(msg(b"S", b"") + q + p)
    assert t.watched == [q, p]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(list(b"TDCZSENAK")), st.binary(max_size=200)), max_size=15),
    st.lists(st.integers(min_value=0, max_value=5000), max_size=8),
)
def test_split_messages_whatever_the_chunks(ms, points):
    stream = b"".join(msg(bytes([k]), b) for k, b in ms)
    buf = bytearray()
    got = []
    for c in cut(stream, points):
        buf += c
        got += list(wire.split_messages(buf))
    assert got == [(bytes([k]), b) for k, b in ms] and not buf


def test_split_messages_refuses_a_bad_length():
    with pytest.raises(PgError):
        list(wire.split_messages(bytearray(b"Z\x00\x00\x00\x02I")))


@pytest.mark.parametrize(
    "chunk, status",
    [
        (msg(b"C", b"SELECT 1\0") + msg(b"Z", b"I"), "I"),
        (msg(b"Z", b"T"), "T"),
        (msg(b"Z", b"E"), "E"),
        (msg(b"Z", b"X"), None),
        (msg(b"D", b"\0\0"), None),
        (b"Z\0\0\0", None),
    ],
)
def test_ends_with_ready(chunk, status):
    assert wire.ends_with_ready(chunk) == status


@pytest.mark.parametrize(
    "text, items",
    [
        ("{}", []),
        (None, []),
        ("{a}", ["a"]),
        ("{a,b}", ["a", "b"]),
        ('{"a b","c,d"}', ["a b", "c,d"]),
        ('{"x\\"y","\\\\"}', ['x"y', "\\"]),
        ("{pg_read_all_data,staff}", ["pg_read_all_data", "staff"]),
    ],
)
def test_parse_array(text, items):
    assert parse_array(text) == items


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_parse_array_never_crashes(text):
    assert isinstance(parse_array(text), list)


def test_role_view_membership_only_for_the_looked_up_user():
    v = role_view(
        "alice",
        [["16384", "alice", "f", "t", "SCRAM-SHA-256$4096:x", None, "-1", "f", "f", "t", "{alice,staff}"]],
    )
    assert v.get("alice") is not None and v.get("bob") is None
    assert v.is_member("alice", "staff") and v.is_member("alice", "alice")
    assert not v.is_member("bob", "staff") and not v.is_member("alice", "admins")
    unknown = role_view("nobody", [])
    assert unknown.get("nobody") is None and not unknown.is_member("nobody", "nobody")


def test_error_fields_round_trip():
    body = b"SFATAL\0VFATAL\0C57P01\0Mterminating\0Dd\0Hh\0P7\0Rfunc\0\0"
    e = wire.error_fields(body).to_error()
    assert (e.sqlstate, e.message, e.severity, e.detail, e.hint, e.position) == (
        "57P01",
        "terminating",
        "FATAL",
        "d",
        "h",
        7,
    )
    assert e.extra == {"R": "func"}
