"""Frontend message framing on the relay's hot path (pgtls.backends.relay.wire.FrontendTracker).

Input: one control byte (bits 0-6 cut the stream into chunks, bit 7 watches Query and Parse as the relay
does), then the client's stream of frontend messages.

The tracker is checked against a plain reference walk of the whole stream: it must forward exactly the
bytes before a Terminate (or everything, less a header still incomplete at the end), refuse a length below 4
with ``LogOnly`` (the only expected exception) exactly when the reference meets one, agree on the last
message type and on whether the stream ends at a message boundary, and hand over the start of every watched
message (type, length, up to 200 body bytes) whole, however the stream was cut into chunks.
"""

from __future__ import annotations

import struct

from tests.fuzz.common import chunked, instrumented, main

with instrumented(__name__):
    from pgtls.backends.relay.wire import WATCH_PREFIX, FrontendTracker
    from pgtls.protocol.startup import LogOnly


WATCH = frozenset(b"QP")


def _reference(stream: bytes, watch: frozenset[int]) -> tuple[int, str, int, list[bytes], bool]:
    """(bytes to forward, outcome "ok"|"terminated"|"error", last type, watched heads, at boundary)."""
    pos, n, last = 0, len(stream), 0
    heads: list[bytes] = []
    while pos < n:
        if n - pos < 5:
            return pos, "ok", last, heads, False
        kind = stream[pos]
        if kind == 0x58:  # 'X'
            return pos, "terminated", last, heads, True
        (length,) = struct.unpack_from("!i", stream, pos + 1)
        if length < 4:
            return pos, "error", last, heads, True
        if (
            kind in watch and pos + min(WATCH_PREFIX, 1 + length) <= n
        ):  # a start cut by the stream's end: none
            heads.append(stream[pos : pos + min(WATCH_PREFIX, 1 + length)])
        last = kind
        pos += 1 + length
    return n, "ok", last, heads, pos == n


def test_one_input(data: bytes) -> None:
    if not data:
        return
    control, stream = data[0], data[1:]
    watch = WATCH if control & 0x80 else frozenset()
    tracker = FrontendTracker(watch)
    forwarded = bytearray()
    outcome = "ok"
    try:
        for chunk in chunked(stream, control & 0x7F):
            forwarded += tracker.feed(chunk)
            if tracker.terminated:
                outcome = "terminated"
                break
    except LogOnly:
        outcome = "error"
    want_fwd, want_outcome, want_last, want_heads, want_boundary = _reference(stream, watch)
    assert outcome == want_outcome, f"outcome {outcome}, reference {want_outcome}"
    if outcome == "error":
        assert len(forwarded) <= want_fwd and stream.startswith(bytes(forwarded))
        return
    assert bytes(forwarded) == stream[:want_fwd], "forwarded bytes differ from the reference"
    assert tracker.last_kind == want_last, f"last_kind {tracker.last_kind}, reference {want_last}"
    if outcome == "ok":
        assert tracker.at_boundary == want_boundary, "at_boundary differs from the reference"
    # Every watched message's start, whole, wherever the chunks were cut.
    assert tracker.watched == want_heads, f"watched heads differ: {tracker.watched!r} != {want_heads!r}"


if __name__ == "__main__":
    main(test_one_input)
