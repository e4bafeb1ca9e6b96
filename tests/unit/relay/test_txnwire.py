"""Transaction pooling's protocol bookkeeping (pgtls.backends.relay.txnwire), sans-IO.

Client batches and server replies are built as PostgreSQL's protocol has them; the server side is fed
whole and cut anywhere, and must give the client the same bytes either way.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pgtls.backends.relay import txnwire as tw
from pgtls.errors import PgError
from pgtls.protocol.startup import LogOnly


def msg(kind: bytes, body: bytes = b"") -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


def parse(name: str, sql: str) -> bytes:
    return msg(b"P", name.encode() + b"\0" + sql.encode() + b"\0" + struct.pack("!h", 0))


def bind(stmt: str, portal: str = "") -> bytes:
    return msg(b"B", portal.encode() + b"\0" + stmt.encode() + b"\0" + struct.pack("!hhh", 0, 0, 0))


def describe(what: bytes, name: str) -> bytes:
    return msg(b"D", what + name.encode() + b"\0")


def close(what: bytes, name: str) -> bytes:
    return msg(b"C", what + name.encode() + b"\0")


EXECUTE = msg(b"E", b"\0" + struct.pack("!i", 0))
SYNC = msg(b"S")
PC, BC, CC = msg(b"1"), msg(b"2"), msg(b"3")
ROW_DESC = msg(b"T", struct.pack("!h", 0))
DATA = msg(b"D", struct.pack("!h", 1) + struct.pack("!i", 1) + b"7")
DONE = msg(b"C", b"SELECT 1\0")
ERROR = msg(b"E", b"SERROR\0C42P01\0Mno such table\0\0")
NOTICE = msg(b"N", b"SNOTICE\0C00000\0Mhello\0\0")


def ready(status: bytes = b"I") -> bytes:
    return msg(b"Z", status)


def split_messages(data: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(data):
        (n,) = struct.unpack_from("!i", data, pos + 1)
        out.append(data[pos : pos + 1 + n])
        pos += 1 + n
    return out


def state(limit: int = 200) -> tw.TxnState:
    """A client's state with a server connection (that has prepared nothing yet) attached."""
    s = tw.TxnState(lambda: limit)
    s.attached(tw.ServerStatements())
    return s


def another_server(s: tw.TxnState) -> None:
    """The server connection goes back at an idle point; the next transaction gets another one."""
    s.detached()
    s.attached(tw.ServerStatements())


def feed_cut(s: tw.TxnState, data: bytes, cuts: list[int]) -> bytes:
    out, last = [], 0
    for c in sorted(set(x % (len(data) + 1) for x in cuts)) + [len(data)]:
        out.append(s.from_server(data[last:c]))
        last = c
    return b"".join(out)


# ---------------------------------------------------------------- the client's messages


@given(st.lists(st.integers(min_value=0, max_value=200), max_size=12))
def test_client_messages_whatever_the_chunks(cuts):
    stream = parse("s1", "SELECT 1") + bind("s1") + EXECUTE + SYNC + msg(b"Q", b"SELECT 2\0")
    cm = tw.ClientMessages()
    got, last = [], 0
    for c in sorted(set(x % (len(stream) + 1) for x in cuts)) + [len(stream)]:
        got += cm.feed(stream[last:c])
        last = c
    assert b"".join(got) == stream and len(got) == 5 and not cm.partial


def test_client_terminate_ends_the_stream():
    cm = tw.ClientMessages()
    assert cm.feed(msg(b"Q", b"SELECT 1\0") + msg(b"X") + msg(b"Q", b"SELECT 2\0")) == [
        msg(b"Q", b"SELECT 1\0")
    ]
    assert cm.terminated and cm.feed(msg(b"Q", b"x\0")) == []


@pytest.mark.parametrize("length", [0, 3, -1, tw.MAX_HELD_MESSAGE + 1])
def test_client_bad_length_is_refused(length):
    with pytest.raises(LogOnly):
        tw.ClientMessages().feed(b"Q" + struct.pack("!i", length) + b"xx")


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_client_garbage_never_crashes(data):
    try:
        tw.ClientMessages().feed(data)
    except LogOnly:
        pass


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_server_garbage_never_crashes_or_loops(data):
    s = state()
    s.to_server([SYNC])
    try:
        s.from_server(data)
    except PgError:
        pass


# ---------------------------------------------------------------- statements across servers


def test_named_parse_goes_out_under_pgtls_name():
    s = state()
    out, now = s.to_server([parse("s1", "SELECT 1"), bind("s1"), EXECUTE, SYNC])
    sname = tw.server_name(b"SELECT 1\0" + struct.pack("!h", 0))
    assert now == b""
    assert out == parse(sname, "SELECT 1") + bind(sname) + EXECUTE + SYNC
    reply = PC + BC + DATA + DONE + ready()
    assert s.from_server(reply) == reply
    assert s.idle and sname in s.cache.names


@given(st.lists(st.integers(min_value=0, max_value=100), max_size=8))
def test_statement_follows_the_client_to_another_server(cuts):
    s = state()
    s.to_server([parse("s1", "SELECT 1"), SYNC])
    s.from_server(PC + ready())
    another_server(s)
    out, _ = s.to_server([bind("s1"), EXECUTE, SYNC])
    sname = tw.server_name(b"SELECT 1\0" + struct.pack("!h", 0))
    assert out == parse(sname, "SELECT 1") + bind(sname) + EXECUTE + SYNC
    # the added Parse's ParseComplete is pgtls's, the rest the client's: wherever the reply is cut
    assert feed_cut(s, PC + BC + NOTICE + DATA + DONE + ready(), cuts) == BC + NOTICE + DATA + DONE + ready()
    assert s.idle and s.added_parses == 1


def test_parse_of_a_statement_the_server_has_is_answered_in_place():
    s = state()
    s.to_server([parse("a", "SELECT 1"), SYNC])
    s.from_server(PC + ready())
    # another client name, same text: the server has it; the answer goes after the unnamed Parse's
    out, now = s.to_server([parse("", "SELECT 2"), parse("b", "SELECT 1"), bind("b"), EXECUTE, SYNC])
    sname = tw.server_name(b"SELECT 1\0" + struct.pack("!h", 0))
    assert now == b"" and out == parse("", "SELECT 2") + bind(sname) + EXECUTE + SYNC
    assert s.from_server(PC) == PC + PC  # the server's, then pgtls's
    assert s.from_server(BC + DONE + ready()) == BC + DONE + ready()


def test_made_up_answer_goes_out_at_once_when_nothing_is_owed():
    s = state()
    s.to_server([parse("a", "SELECT 1"), SYNC])
    s.from_server(PC + ready())
    out, now = s.to_server([parse("b", "SELECT 1"), describe(b"S", "b"), SYNC])
    assert now == PC
    assert s.from_server(msg(b"t", b"\0\0") + ROW_DESC + ready()) == msg(b"t", b"\0\0") + ROW_DESC + ready()


def test_close_of_a_client_statement_is_answered_by_pgtls():
    s = state()
    s.to_server([parse("a", "SELECT 1"), SYNC])
    s.from_server(PC + ready())
    out, now = s.to_server([close(b"S", "a"), SYNC])
    assert out == SYNC and now == CC
    assert "a" not in s.statements
    # an unknown name goes to the server, which answers CloseComplete as PostgreSQL does
    out, _ = s.to_server([close(b"S", "zz"), SYNC])
    assert out == close(b"S", "zz") + SYNC


def test_error_skips_made_up_answers_until_sync_and_forgets_the_failed_statement():
    s = state()
    s.to_server([parse("a", "SELECT 1"), SYNC])
    s.from_server(PC + ready())
    another_server(s)
    # Bind of "a" on a new server needs a Parse; it fails (the table is gone); the fake for "b" must not show
    out, _ = s.to_server([bind("a"), EXECUTE, parse("b", "SELECT 1"), SYNC])
    assert s.from_server(ERROR + ready()) == ERROR + ready()
    assert s.idle and not s.cache.names


def test_eviction_closes_the_least_recently_used():
    s = state(limit=1)
    out, _ = s.to_server([parse("a", "SELECT 1"), parse("b", "SELECT 2"), SYNC])
    names = [tw.server_name(x.encode() + b"\0" + struct.pack("!h", 0)) for x in ("SELECT 1", "SELECT 2")]
    assert split_messages(out) == [
        parse(names[0], "SELECT 1"),
        close(b"S", names[0]),
        parse(names[1], "SELECT 2"),
        SYNC,
    ]
    assert s.from_server(PC + CC + PC + ready()) == PC + PC + ready()
    assert list(s.cache.names) == [names[1]]


def test_transaction_boundaries():
    s = state()
    s.to_server([msg(b"Q", b"BEGIN\0")])
    s.from_server(msg(b"C", b"BEGIN\0") + ready(b"T"))
    assert not s.idle
    s.to_server([parse("", "SELECT 1"), bind(""), EXECUTE])  # no Sync yet
    s.from_server(PC + BC + DONE)
    assert not s.idle
    s.to_server([SYNC])
    s.from_server(ready(b"T"))
    assert not s.idle
    s.to_server([msg(b"Q", b"COMMIT\0")])
    s.from_server(msg(b"C", b"COMMIT\0") + ready())
    assert s.idle


def test_parse_alone_is_answered_by_pgtls():
    s = state()
    assert s.parse_alone([parse("a", "SELECT 1"), SYNC], lambda sql: True) == PC + tw.READY_IDLE
    assert "a" in s.statements
    assert s.parse_alone([parse("b", "SELEC"), SYNC], lambda sql: False) is None
    assert s.parse_alone([parse("", "SELECT 1"), SYNC], lambda sql: True) is None
    assert s.parse_alone([parse("c", "SELECT 1"), bind("c"), SYNC], lambda sql: True) is None
