"""The connection-start negotiation machine (pgtls.protocol.startup.StartupMachine), fed a byte stream.

Input: one control byte, then the bytes a client sends.  Bits 0-5 of the control byte cut the stream into
chunks; bit 6 says whether an SSLRequest is answered 'S' (TLS then starts) or 'N'; bit 7 closes the stream
(EOF) after the last chunk.

Expected: the events the machine documents, ``LogOnly`` (log-and-close), ``PgError`` (FATAL to the client,
``LegacyProtocolError`` included) and ``Closed``.  A bug: any other exception, a machine that keeps returning
events without consuming bytes, a Startup event without a user, or an identifier longer than NAMEDATALEN-1.
"""

from __future__ import annotations

from tests.fuzz.common import chunked, instrumented, main

with instrumented(__name__):
    from pgtls.errors import PgError
    from pgtls.protocol.limits import NAMEDATALEN
    from pgtls.protocol.startup import (
        NEED_DATA,
        CancelRequest,
        Closed,
        DirectTLS,
        GSSENCRequest,
        LogOnly,
        Phase,
        SSLRequest,
        Startup,
        StartupMachine,
    )


def _drive(m: StartupMachine, accept_ssl: bool) -> bool:
    """Pull events until the machine needs data; True once the negotiation is over."""
    for _ in range(64):  # each answered request consumes 8 bytes; a stuck machine would loop here
        before = m.buffered
        ev = m.next_event()
        if ev is NEED_DATA:
            return False
        if isinstance(ev, DirectTLS):
            m.take_buffer()
            m.tls_started(direct=True)
        elif isinstance(ev, SSLRequest):
            if accept_ssl and not m.tls_active:
                m.answered_ssl()
                m.tls_started(direct=False)
            else:
                m.answered_ssl()
        elif isinstance(ev, GSSENCRequest):
            m.answered_gss()
        elif isinstance(ev, CancelRequest):
            assert m.phase is Phase.DONE
            return True
        elif isinstance(ev, Startup):
            assert m.phase is Phase.DONE
            assert ev.params.get("user"), "Startup without a user"
            assert ev.params.get("database"), "Startup without a database"
            for key in ("user", "database"):
                raw = ev.params[key].encode("utf-8", "surrogateescape")
                assert len(raw) < NAMEDATALEN, f"{key} not truncated: {len(raw)} bytes"
            return True
        else:
            raise AssertionError(f"unknown event {ev!r}")
        assert m.buffered < before or isinstance(ev, DirectTLS), "an event consumed nothing"
    raise AssertionError("the machine did not settle in 64 events")


def test_one_input(data: bytes) -> None:
    if not data:
        return
    control, stream = data[0], data[1:]
    m = StartupMachine()
    try:
        for chunk in chunked(stream, control & 0x3F):
            m.receive_data(chunk)
            if _drive(m, bool(control & 0x40)):
                return
        if control & 0x80:
            m.receive_data(b"")
            _drive(m, bool(control & 0x40))
    except (LogOnly, PgError, Closed):
        return


if __name__ == "__main__":
    main(test_one_input)
