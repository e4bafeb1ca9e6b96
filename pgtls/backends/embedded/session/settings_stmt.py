"""SET, RESET and DISCARD: the session's configuration parameters (session/core.py ``_HANDLERS``).

The values live in the session's :class:`~pgtls.backends.embedded.features.settings.Gucs`; the session
mirrors a changed one into DuckDB and reports it (``setting_changed``).  SHOW is utility.py's.  The handlers
take the session as a :class:`~pgtls.backends.embedded.session.context.SessionContext`.
"""

from __future__ import annotations

import duckdb

from pgtls.backends.embedded.engine.execute import Result
from pgtls.backends.embedded.session.context import SessionContext
from pgtls.backends.embedded.session.utility import tag
from pgtls.backends.embedded.sql import commands
from pgtls.backends.embedded.sql.kinds import Statement
from pgtls.errors import PgError


def set_command(s: SessionContext, st: Statement) -> Result:
    cmd = commands.parse_set(st.sql)
    if cmd.name is None:
        return tag("SET")
    if not s.gucs.known(cmd.name):
        if not s.info.is_superuser:
            raise PgError("42704", f'unrecognized configuration parameter "{cmd.name}"')
        try:  # DuckDB's own settings (threads, memory_limit, ...), for superusers: they are process-wide
            s.cur.execute(f"SET {cmd.name} = {cmd.raw_value}")
            return tag("SET")
        except duckdb.Error:
            raise PgError("42704", f'unrecognized configuration parameter "{cmd.name}"') from None
    if cmd.local and s.tx == "I":
        s.notice(PgError("25P01", "SET LOCAL can only be used in transaction blocks", severity="WARNING"))
        return tag("SET")
    if cmd.value is None:
        canon = s.gucs.reset(cmd.name)
    else:
        canon = s.gucs.set(cmd.name, cmd.value, local=cmd.local)
    s.setting_changed(canon)
    return tag("SET")


def reset_command(s: SessionContext, st: Statement) -> Result:
    name = commands.parse_reset(st.sql)
    if name.lower() == "all":
        for canon in s.gucs.reset_all():
            s.setting_changed(canon)
    else:
        s.setting_changed(s.gucs.reset(name))
    return tag("RESET")


def discard(s: SessionContext, st: Statement) -> Result:
    w = st.words
    if len(w) > 1 and w[1] == "ALL":
        if s.tx != "I":
            raise PgError("25001", "DISCARD ALL cannot run inside a transaction block")
        for canon in s.gucs.reset_all():
            s.setting_changed(canon)
        s.extended.discard_all()
        return tag("DISCARD ALL")
    return tag("DISCARD " + (w[1] if len(w) > 1 else ""))
