"""Did a live pgtls server come through what a test sent it? For tests that throw malformed input at a
server: a crash inside pgtls does not show as a traceback (Connection.run catches every exception, logs
``unexpected error on connection …`` and answers FATAL XX000), so a test must look for exactly that.

:class:`Watch` remembers where the server's log stood; :meth:`Watch.check` fails the calling test on any
sign of a pgtls bug since then: an unexpected-error line (or a traceback, or asyncio's unhandled-exception
reports) in the log, an XX000 ErrorResponse in a reply, or a server process that is gone.
"""

from __future__ import annotations

from tests.pgserver import ServerDir

# Log lines that only a bug in pgtls writes.
BUG_LINES = (
    "unexpected error on connection",  # Connection.run's catch-all (pgtls/server/connection.py)
    "Traceback (most recent call last)",
    "Task exception was never retrieved",  # asyncio: a task died with nobody awaiting it
    "Exception in callback",  # asyncio: a protocol callback raised
    "error closing session",
)
# An ErrorResponse/NoticeResponse field C=XX000 (internal_error): ``C`` + SQLSTATE + NUL.
INTERNAL_ERROR_FIELD = b"CXX000\x00"


def bug_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if any(b in line for b in BUG_LINES)]


class Watch:
    """The log of ``server`` from now on, and the checks that a test ends with."""

    def __init__(self, server: ServerDir) -> None:
        self.server = server
        self.offset = self._size()

    def _size(self) -> int:
        try:
            return self.server.logfile.stat().st_size
        except FileNotFoundError:
            return 0

    def new_log(self) -> str:
        """The log since the watch began (or since the last check), which it then skips."""
        try:
            with open(self.server.logfile, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return ""
        self.offset += len(data)
        return data.decode(errors="replace")

    def check(self, reply: bytes = b"", what: object = None) -> None:
        """Fail unless the server is alive, logged no bug line since the watch began (or the last check),
        and ``reply`` (what the server sent for ``what``) carries no XX000."""
        ctx = f" (input {what!r})" if what is not None else ""
        bad = bug_lines(self.new_log())
        assert INTERNAL_ERROR_FIELD not in reply, f"the server answered XX000 internal_error{ctx}: {reply!r}"
        assert not bad, f"pgtls logged a bug{ctx}:\n" + "\n".join(bad)
        proc = self.server.proc
        assert proc is not None and proc.poll() is None, (
            f"the pgtls server is gone{ctx}:\n{self.server.log()[-3000:]}"
        )
