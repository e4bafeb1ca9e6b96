"""Transaction pooling's protocol bookkeeping (pgtls.backends.relay.txnwire): client messages in, replies out.

Input: one control byte (bits 0-6 cut the server's bytes into chunks; bit 7: the server connection already
has every statement, as a warm one would), a second byte that splits the rest into the client's stream and
the server's reply (at that fraction of the rest), then both.

The client stream is cut into whole messages and rewritten for the server (statement names, added Parses);
the reply is walked once whole and once cut into chunks by two states with the same history.  Both must give
the client exactly the same bytes and end in the same state; the only exceptions allowed are ``LogOnly``
(a malformed client message) and ``PgError`` (a reply that is not PostgreSQL's protocol).
"""

from __future__ import annotations

from tests.fuzz.common import chunked, instrumented, main

with instrumented(__name__):
    from pgtls.backends.relay import txnwire
    from pgtls.errors import PgError
    from pgtls.protocol.startup import LogOnly


def _state(msgs: list[bytes], warm: bool) -> tuple[txnwire.TxnState, bytes]:
    s = txnwire.TxnState(lambda: 3)
    s.attached(txnwire.ServerStatements())
    if warm:  # every statement the client names is already on this server connection
        for m in msgs:
            if m[:1] == b"P" and b"\0" in m[5:]:
                name_end = m.index(b"\0", 5)
                if name_end > 5:
                    s.cache.names[txnwire.server_name(m[name_end + 1 :])] = None
    out, _ = s.to_server(msgs)
    return s, out


def test_one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    control, split, rest = data[0], data[1], data[2:]
    cut = len(rest) * split // 255
    client, reply = rest[:cut], rest[cut:]
    try:
        msgs = txnwire.ClientMessages().feed(client)
        a, out_a = _state(msgs, bool(control & 0x80))
        b, out_b = _state(msgs, bool(control & 0x80))
    except LogOnly:
        return
    assert out_a == out_b
    try:
        whole = a.from_server(reply)
    except PgError:
        whole = None
    parts: list[bytes] = []
    try:
        for chunk in chunked(reply, control & 0x7F):
            parts.append(b.from_server(chunk))
    except PgError:
        parts = []
        if whole is None:
            return
        # a chunked walk may meet the bad header later than the whole one, never miss it
        raise AssertionError("the chunked walk refused a reply the whole walk took") from None
    if whole is None:
        return  # the bad header may sit in bytes still held back at the end of the chunked walk
    assert b"".join(parts) == whole, "the client gets other bytes when the reply is cut into chunks"
    assert list(a.queue) == list(b.queue) and a.status == b.status and a.skipping == b.skipping
    assert a.idle == b.idle


if __name__ == "__main__":
    main(test_one_input)
