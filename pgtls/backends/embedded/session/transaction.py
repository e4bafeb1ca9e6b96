"""Transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE, ROLLBACK TO): session/core.py ``_HANDLERS``.

The session tracks PostgreSQL's transaction status (``tx``: I idle, T in a block, E failed block) because
DuckDB has no "aborted, awaiting ROLLBACK" state of its own; these handlers move it as PostgreSQL's xact.c
does, end the transaction's cursors, settings, notifications and locks with it, and run ROLLBACK TO
SAVEPOINT by replay (features/savepoints.py).  They take the session as a
:class:`~pgtls.backends.embedded.session.context.SessionContext`.
"""

from __future__ import annotations

import duckdb

from pgtls.backends.embedded.engine import errormap as sqlerrors
from pgtls.backends.embedded.engine.execute import Result
from pgtls.backends.embedded.features.savepoints import Entry
from pgtls.backends.embedded.session.context import SessionContext
from pgtls.backends.embedded.session.utility import tag
from pgtls.backends.embedded.sql import commands
from pgtls.backends.embedded.sql.kinds import Statement
from pgtls.errors import PgError


def transaction_command(s: SessionContext, st: Statement) -> Result:
    first, w, sql = st.first, st.words, st.sql
    notice = s.notice
    if first in ("BEGIN", "START"):
        if s.tx != "I":
            notice(PgError("25001", "there is already a transaction in progress", severity="WARNING"))
            return tag("BEGIN")
        if s.implicit:
            s.implicit = False  # an explicit BEGIN takes over the implicit transaction
        else:
            _duck(s, "BEGIN")
            s.journal.reset()
        s.tx = "T"
        s.gucs.begin()
        return tag("BEGIN")
    if first in ("COMMIT", "END") and (len(w) < 2 or w[1] != "PREPARED"):
        if s.tx == "I":
            notice(PgError("25P01", "there is no transaction in progress", severity="WARNING"))
            return tag("COMMIT")
        failed = s.tx == "E"
        s.tx = "I"
        s.journal.reset()
        s.cursors.end_transaction(commit=not failed)
        _end_gucs(s, commit=not failed)
        if failed:
            _abandon(s)
            return tag("ROLLBACK")
        try:
            s.fkeys.before_commit(s.cur)
            s.cur.execute("COMMIT")
        except PgError:
            _abandon(s)
            raise
        except duckdb.Error as e:
            _abandon(s)
            raise sqlerrors.translate(e) from None
        s.transaction_ended(commit=True)
        return tag("COMMIT")
    if first in ("ROLLBACK", "ABORT"):
        name = commands.parse_savepoint_name(sql) if first == "ROLLBACK" else None
        if name is not None:
            return rollback_to_savepoint(s, name)
        if s.tx == "I":
            notice(PgError("25P01", "there is no transaction in progress", severity="WARNING"))
            return tag("ROLLBACK")
        s.tx = "I"
        s.journal.reset()
        s.transaction_ended(commit=False)
        s.cursors.end_transaction(commit=False)
        _end_gucs(s, commit=False)
        s.rollback_quietly()
        return tag("ROLLBACK")
    if first == "SAVEPOINT":
        if s.tx == "I":
            raise PgError("25P01", "SAVEPOINT can only be used in transaction blocks")
        name = commands.parse_savepoint_name(sql) or ""
        s.journal.push(name, s.gucs.mark(), s.cursors.names(), s.listener.mark())
        return tag("SAVEPOINT")
    if first == "RELEASE":
        if s.tx == "I":
            raise PgError("25P01", "RELEASE SAVEPOINT can only be used in transaction blocks")
        s.journal.release(commands.parse_savepoint_name(sql) or "")
        return tag("RELEASE")
    raise PgError("0A000", f"{first} is not supported")


def rollback_to_savepoint(s: SessionContext, name: str) -> Result:
    """ROLLBACK TO SAVEPOINT by replay (savepoints.py); leaves the aborted state as PostgreSQL does."""
    if s.tx == "I":
        raise PgError("25P01", "ROLLBACK TO SAVEPOINT can only be used in transaction blocks")

    def replay(entries: list[Entry]) -> None:
        try:
            s.cur.execute("ROLLBACK")
        except duckdb.Error:
            pass  # DuckDB may have ended the failed transaction already
        s.running.set()
        try:
            s.cur.execute("BEGIN")
            for stmt, params in entries:
                s.cur.execute(stmt, params)
        except duckdb.Error as e:
            s.rollback_quietly()
            err = sqlerrors.translate(e)
            err.detail = err.detail or f'while running again the statements before savepoint "{name}"'
            raise err from None
        finally:
            s.running.clear()

    sp = s.journal.rollback_to(name, replay)
    s.tx = "T"
    s.cursors.keep(sp.cursors)
    s.listener.rollback_to(sp.notify)
    for canon in s.gucs.restore(sp.gucs):
        s.setting_changed(canon)
    return tag("ROLLBACK")


def _abandon(s: SessionContext) -> None:
    """A COMMIT that ends in a rollback (of a failed block, or when the commit itself fails): the
    transaction's notifications and locks go, and DuckDB's transaction is rolled back."""
    s.transaction_ended(commit=False)
    s.rollback_quietly()


def _end_gucs(s: SessionContext, commit: bool) -> None:
    for canon in s.gucs.end(commit):
        s.setting_changed(canon)


def _duck(s: SessionContext, sql: str) -> None:
    try:
        s.cur.execute(sql)
    except duckdb.Error as e:
        raise sqlerrors.translate(e, sql) from None
