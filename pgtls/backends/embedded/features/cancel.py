"""``SELECT pg_cancel_backend(pid)``: cancelling another session's query from SQL.

PostgreSQL's ``pg_signal_backend`` rules (src/backend/storage/ipc/signalfuncs.c):
an unknown pid gives WARNING ``PID %d is not a PostgreSQL backend process`` and
false; a non-superuser may not cancel a superuser's query, and may cancel only
queries of its own role.  The statement is recognised in its plain forms
(``SELECT pg_cancel_backend(123)``, with a literal cast or an alias, as the
extended protocol renders a bound parameter); the cancel itself is the same as
a CancelRequest's.
"""

from __future__ import annotations

import re

from pgtls.backends.embedded.engine.context import StatementContext
from pgtls.backends.embedded.engine.execute import Result, one_row
from pgtls.backends.embedded.pgtypes import typemap as T
from pgtls.errors import INSUFFICIENT_PRIVILEGE, PgError

_CANCEL = re.compile(
    r"""^\s*select\s+(?:pg_catalog\.)?pg_cancel_backend\s*\(\s*
        (?:cast\s*\(\s*)?'?(?P<pid>-?\d+)'?\s*(?:(?:::|\s+as\s+)\s*\w+\s*)?\)?\s*\)
        (?:\s+(?:as\s+)?(?P<alias>"[^"]+"|\w+))?\s*;?\s*$""",
    re.IGNORECASE | re.VERBOSE,
)


def match_cancel(sql: str) -> tuple[int, str] | None:
    """(pid, column name) if ``sql`` is a plain ``SELECT pg_cancel_backend(<integer>)``."""
    mt = _CANCEL.match(sql)
    if mt is None:
        return None
    alias = mt.group("alias")
    return int(mt.group("pid")), alias.strip('"') if alias else "pg_cancel_backend"


def cancel_backend(session: StatementContext, pid: int, column: str) -> Result:
    target = next((row for row in session.registry.sessions() if row.info.pid == pid), None)
    ok = False
    if target is None:
        session.notice(PgError("01000", f"PID {pid} is not a PostgreSQL backend process", severity="WARNING"))
    else:
        caller_super = session.is_superuser()
        if target.info.is_superuser and not caller_super:
            raise PgError(INSUFFICIENT_PRIVILEGE, "must be a superuser to cancel superuser query")
        if not caller_super and target.info.user != session.info.user:
            raise PgError(
                INSUFFICIENT_PRIVILEGE,
                "must be a member of the role whose query is being canceled or member of pg_signal_backend",
            )
        victim = getattr(target, "session", None)
        if victim is not None:
            victim.cancel()
            ok = True
    return one_row(T.Column(column, T.BOOL, -1, "BOOLEAN"), ok)
