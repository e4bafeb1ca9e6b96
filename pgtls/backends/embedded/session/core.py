"""One client session of the embedded backend: the simple query protocol and session state.

The server calls :meth:`EmbeddedSession.handle` for each frontend message from a
worker thread.  Output is collected in an :class:`Output` buffer and passed to
``send`` in large chunks.  Transaction state (I/T/E) is tracked here, as
PostgreSQL's xact.c does, because DuckDB has no "aborted, awaiting ROLLBACK"
state of its own that a client could see: after an error in a transaction block
every statement but COMMIT/ROLLBACK fails with 25P02.  The extended query
protocol lives in extended.py and COPY in copy_protocol.py; both use :meth:`execute`.

:meth:`EmbeddedSession.execute` classifies a statement once (sql/kinds.py) and calls the handler
``_HANDLERS`` (at the end of this module) lists for its kind: a function of transaction.py (transaction
control), settings_stmt.py (SET, RESET, DISCARD) or utility.py (the other utility statements), or
:meth:`EmbeddedSession.run_in_duckdb`, which takes the statement through the steps steps.py registers.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence

import duckdb

from pgtls.backends.base import Registry, Send, SessionInfo
from pgtls.backends.embedded.catalog import shared as catalog
from pgtls.backends.embedded.engine import errormap as sqlerrors
from pgtls.backends.embedded.engine.execute import Result, _none, materialized, run
from pgtls.backends.embedded.engine.statement_hooks import DdlHook, RewriteStep, StatementHook
from pgtls.backends.embedded.features import advisory, foreignkeys, notify, roles
from pgtls.backends.embedded.features.savepoints import Journal, is_pure_read
from pgtls.backends.embedded.features.settings import REPORTED, Gucs, tzinfo
from pgtls.backends.embedded.pgtypes.encode import row_encoder
from pgtls.backends.embedded.session import inline, settings_stmt, steps, transaction, utility
from pgtls.backends.embedded.session.context import HostBackend
from pgtls.backends.embedded.session.copy_protocol import CopyState
from pgtls.backends.embedded.session.cursors import SqlCursors
from pgtls.backends.embedded.session.extended import Extended
from pgtls.backends.embedded.session.output import Output
from pgtls.backends.embedded.session.utility import tag
from pgtls.backends.embedded.sql import commands
from pgtls.backends.embedded.sql.kinds import Kind, Statement, kind_of
from pgtls.backends.embedded.sql.lexer import quote_literal, words
from pgtls.backends.embedded.sql.reader import split_with_offsets
from pgtls.errors import PgError
from pgtls.protocol import messages as m

FETCH_ROWS = 1000
# Statements that change no table data (or that change it only through a statement run by execute() again).
_NO_DATA_WORDS = commands.TX_WORDS | {"SET", "RESET", "SHOW", "LISTEN", "UNLISTEN", "NOTIFY", "DISCARD",
                                      "DEALLOCATE", "DECLARE", "FETCH", "MOVE", "CLOSE"}  # fmt: skip


_UNITS_MS = {"us": 0.001, "ms": 1, "s": 1000, "min": 60000, "h": 3600000, "d": 86400000}


@functools.lru_cache(maxsize=64)
def parse_duration_ms(value: str) -> float:
    """A time GUC in milliseconds (bare numbers are milliseconds, as for statement_timeout)."""
    v = value.strip().lower()
    for unit in sorted(_UNITS_MS, key=len, reverse=True):
        if v.endswith(unit) and v[: -len(unit)].strip().replace(".", "", 1).isdigit():
            return float(v[: -len(unit)]) * _UNITS_MS[unit]
    try:
        return float(v)
    except ValueError:
        return 0.0


class EmbeddedSession:
    def __init__(
        self, backend: HostBackend, info: SessionInfo, registry: Registry, cur: duckdb.DuckDBPyConnection
    ) -> None:
        self.backend = backend
        self.info = info
        self.registry = registry
        self.cur = cur
        defaults = backend.defaults()
        self.gucs = Gucs(backend.settings, info, defaults)
        self.tx = "I"  # PostgreSQL's transaction status: I idle, T in block, E failed block
        self.implicit = False  # inside an implicit transaction (multi-statement Q / extended batch)
        self.journal = Journal()  # the DuckDB transaction's statements, for ROLLBACK TO SAVEPOINT
        self.listener = notify.Listener(backend.hub, info.database, info.pid)
        self.advisory = advisory.AdvisoryLocks(backend.locks, info.database)
        self.lookups = backend.lookups.database(info.database)
        self.fkeys = foreignkeys.Guard()  # the foreign keys pgtls keeps itself (foreignkeys.py)
        # what each statement DuckDB runs goes through (engine/statement_hooks.py, registered in steps.py)
        self.rewrite_steps: Sequence[RewriteStep] = steps.REWRITE_STEPS
        self.statement_hooks: list[StatementHook] = steps.statement_hooks(self.fkeys)
        self.ddl_hooks: Sequence[DdlHook] = steps.DDL_HOOKS
        self.writing = False  # may have changed data since it was last idle (lookup.py)
        self.temp_objects = False  # created a TEMP object, which may hide a table from the point-lookup index
        self.cancelled = (
            threading.Event()
        )  # a cancel arrived while a statement ran (for waits outside DuckDB)
        self.tz = tzinfo(self.gucs.get("TimeZone"))
        self.running = threading.Event()
        self._closed = False
        self._timed_out = False
        self.out: Output | None = None
        self.streaming: Result | None = None  # a suspended portal's result still pending on the connection
        self.cursors: SqlCursors = SqlCursors(self)
        self.pending_status: list[tuple[str, str]] = []
        self.extended: Extended = Extended(self)
        self.copy: CopyState = CopyState(self)
        # Everything PostgreSQL-like is in the shared catalog database; a session only sets its search path,
        # its facts and the parameters that differ from the catalog's defaults (catalog/shared.py).
        try:
            cur.execute(f"SET search_path = {quote_literal(catalog.duck_path(self.gucs.get('search_path')))}")
        except duckdb.Error:
            cur.execute(f"SET search_path = {quote_literal('public,main,' + catalog.SEARCH_PATH_TAIL)}")
        cur.execute(catalog.SET_SESSION, [catalog.session_facts(info)])
        overrides = backend.default_overrides(defaults)
        self._guc_keys: set[str] = set(overrides)  # parameters the pgtls_gucs variable carries
        for key in self.gucs.option_keys:
            if self.gucs.get(key) != self._fallback(key):
                self._guc_keys.add(key)
        if self._guc_keys:
            self._push_gucs()
        tz = self.gucs.get("TimeZone")
        if tz != backend.catalog_timezone:
            self._apply_duck("TimeZone", tz)

    # --- Session interface --------------------------------------------------------------------
    def setting(self, name: str) -> str:
        """The session's value of a configuration parameter (StatementContext)."""
        return self.gucs.get(name)

    def startup_parameters(self) -> list[tuple[str, str]]:
        return self.gucs.reported()

    @property
    def in_transaction(self) -> bool:
        """Whether a DuckDB transaction is open: a transaction block or an implicit one."""
        return self.tx != "I" or self.implicit

    def set_async_sender(self, post: Send) -> None:
        self.listener.post = post

    def answer_inline(self, batch: list[tuple[bytes, bytes]]) -> bytes | None:
        """The whole reply to a batch that the point-lookup index answers (inline.py), or None.

        Runs on the event loop: no DuckDB, no waiting; everything else goes through :meth:`handle`."""
        return inline.answer(self, batch)

    def handle(self, kind: bytes, body: bytes, send: Send) -> str | None:
        out = Output(send)
        self.out = out
        timer = self._arm_statement_timeout() if kind in (b"Q", b"E") else None
        self.listener.begin_work()
        try:
            if kind == b"Q":
                if self.extended.skipping:
                    return None  # after an extended-protocol error everything up to Sync is ignored
                return self.simple_query(m.Reader(body).cstring(), out)
            if kind in (b"d", b"c", b"f"):
                return self.copy.message(kind, body, out)
            if kind in b"PBDESHC":
                return self.extended.message(kind, body, out)
            if kind in (b"F",):
                out.add(m.error_response(PgError("0A000", "function call protocol is not supported")))
                return self.ready(out)
            raise m.ProtocolError(f"invalid frontend message type {kind[0]}")
        finally:
            if timer is not None:
                timer.cancel()
            self._timed_out = False
            self.out = None
            late = self.listener.end_work(idle=self.tx == "I" and not self.implicit)
            if late:
                out.add(late)
            out.flush()

    def _arm_statement_timeout(self) -> threading.Timer | None:
        ms = parse_duration_ms(self.gucs.get("statement_timeout"))
        if ms <= 0:
            return None

        def fire() -> None:
            if self.running.is_set():
                self._timed_out = True
                self.cancel()

        timer = threading.Timer(ms / 1000, fire)
        timer.daemon = True
        timer.start()
        return timer

    def cancel(self) -> None:
        if self.running.is_set():
            self.cancelled.set()
            try:
                self.cur.interrupt()
            except duckdb.Error:
                pass

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.writing:
            self.writing = False
            self.lookups.leave()
        self.listener.close()
        self.advisory.close()
        try:
            if self.in_transaction:
                self.cur.execute("ROLLBACK")
        except duckdb.Error:
            pass
        try:
            self.cur.close()
        except duckdb.Error:
            pass
        self.backend.files.release(self.info.database)

    # --- simple query -------------------------------------------------------------------------
    def simple_query(self, sql: str, out: Output) -> str | None:
        stmts = split_with_offsets(sql)
        if not stmts:
            out.add(m.empty_query_response())
            return self.ready(out)
        multi = len(stmts) > 1 and self.tx == "I"
        if multi and not any(
            (words(s, 1) or [""])[0] in commands.TX_WORDS | commands.NO_TX_BLOCK for _, s in stmts
        ):
            self.begin_implicit()
        self.copy.extended = False
        return self.continue_query(stmts, out)

    def continue_query(self, stmts: list[tuple[int, str]], out: Output) -> str | None:
        """Run statements of a simple query; None while a COPY FROM STDIN waits for its data."""
        try:
            for k, (offset, stmt) in enumerate(stmts):
                res = self.execute(stmt, offset)
                if k == len(stmts) - 1 and self.implicit and self.fkeys.pending:
                    # PostgreSQL commits before it completes the last statement: a deferred foreign key that
                    # fails there fails that statement
                    res = materialized(res)
                    self.fkeys.before_commit(self.cur)
                self.send_result(res, out, describe=True)
                if self.copy.active:
                    self.copy.pending_sql = stmts[k + 1 :]
                    return None
            self.end_implicit(commit=True)
        except PgError as e:
            if e.severity == "FATAL":
                raise
            self.fail(e, out)
        except Exception as e:  # a DuckDB error we did not expect, or a bug: never drop the connection
            self.fail(sqlerrors.internal_error(e), out)
        return self.ready(out)

    def ready(self, out: Output) -> str:
        """ParameterStatus for changed reported parameters, then ReadyForQuery."""
        if self.writing and self.tx == "I" and not self.implicit and not self.copy.active:
            self.writing = False  # its writes are committed or rolled back
            self.lookups.leave()
        for name, value in self.pending_status:
            out.add(m.parameter_status(name, value))
        self.pending_status.clear()
        if self.tx == "I" and not self.implicit:
            waiting = self.listener.take()
            if waiting:
                out.add(waiting)
        out.add(m.ready_for_query(self.tx))
        return self.tx

    def notice(self, err: PgError) -> None:
        if self.out is not None:
            self.out.add(m.notice_response(err))

    def begin_implicit(self) -> None:
        self.cur.execute("BEGIN")
        self.journal.reset()
        self.implicit = True

    def end_implicit(self, commit: bool) -> None:
        if not self.implicit:
            return
        if commit:
            try:
                self.fkeys.before_commit(self.cur)
            except (PgError, duckdb.Error) as e:
                self.implicit = False
                self.journal.reset()
                self.transaction_ended(commit=False)
                self.rollback_quietly()
                raise e if isinstance(e, PgError) else sqlerrors.translate(e) from None
        self.implicit = False
        self.journal.reset()
        try:
            self.cur.execute("COMMIT" if commit else "ROLLBACK")
        except duckdb.Error as e:
            self.transaction_ended(commit=False)
            if commit:
                self.rollback_quietly()
                raise sqlerrors.translate(e) from None
            return
        self.transaction_ended(commit)

    def rollback_quietly(self) -> None:
        """ROLLBACK the DuckDB transaction, if DuckDB still has one."""
        try:
            self.cur.execute("ROLLBACK")
        except duckdb.Error:
            pass

    def fail(self, err: PgError, out: Output) -> None:
        """Report an error and move the transaction state as PostgreSQL does."""
        if err.sqlstate == "57014" and self._timed_out:
            err = PgError("57014", "canceling statement due to statement timeout")
        out.add(m.error_response(err))
        if self.implicit:
            self.implicit = False
            self.transaction_ended(commit=False)
            self.rollback_quietly()
        if self.tx == "T":
            self.tx = "E"

    def send_result(
        self, res: Result, out: Output, describe: bool, formats: list[int] | None = None, limit: int = 0
    ) -> bool:
        """Write rows (and RowDescription if ``describe``) and CommandComplete; False if suspended."""
        if self.copy.active:
            return True  # COPY FROM STDIN: CommandComplete follows CopyDone
        if res.columns is None:
            out.add(m.command_complete(res.tag(0)))
            return True
        fmts = formats if formats is not None else [0] * len(res.columns)
        if describe:
            out.add(m.row_description([c.field(f) for c, f in zip(res.columns, fmts, strict=True)]))
        self.stream(res, out, fmts, limit)
        if res.done:
            self.streaming = None
            out.add(m.command_complete(res.tag(res.sent)))
            return True
        self.streaming = res
        out.add(m.portal_suspended())
        return False

    def stream(self, res: Result, out: Output, fmts: list[int], limit: int = 0) -> int:
        """Send up to ``limit`` (0: all) DataRows of ``res``; returns how many were sent."""
        assert res.columns is not None
        encode = row_encoder(res.columns, fmts, self.tz)
        n = 0
        try:
            self.running.set()
            while not limit or n < limit:
                if res.buffered:
                    rows, res.buffered = res.buffered, []
                    short = False
                else:
                    rows = res.fetch(FETCH_ROWS)
                    short = len(rows) < FETCH_ROWS  # fetch() fills its batch unless the result has ended
                if not rows:
                    res.done = True
                    break
                if limit and n + len(rows) > limit:
                    res.buffered = rows[limit - n :]
                    rows = rows[: limit - n]
                    short = False
                out.add(b"".join([encode(row) for row in rows]))
                n += len(rows)
                if short:
                    res.done = True
                    break
        except duckdb.Error as e:
            raise sqlerrors.translate(e) from None
        finally:
            self.running.clear()
        res.sent += n
        return n

    def detach_stream(self) -> None:
        """Before the connection runs anything else, keep the rest of a half-read result in memory
        (DuckDB has one pending result per connection; a suspended portal must survive other statements)."""
        res, self.streaming = self.streaming, None
        if res is None or res.done:
            return
        try:
            res.buffered = res.buffered + [tuple(r) for r in res.fetch(1 << 62)]
        except duckdb.Error as e:
            raise sqlerrors.translate(e) from None
        res.fetch = _none

    # --- one statement ------------------------------------------------------------------------
    def execute(self, sql: str, offset: int = 0, duck_type: str | None = None) -> Result:
        """Run one statement; raises PgError.  Handles the statements DuckDB must not see."""
        w = words(sql, 4)
        first = w[0] if w else ""
        if self.tx == "E" and first not in ("COMMIT", "END", "ROLLBACK", "ABORT"):
            raise sqlerrors.aborted_transaction()
        if not self.writing and first not in _NO_DATA_WORDS and not is_pure_read(first, sql):
            self.writing = True  # before DuckDB runs it: no point-lookup index may be used from now on
            self.lookups.enter()
        if first == "CREATE" and "temp" in sql.lower():
            self.temp_objects = True
        kind = kind_of(sql, w)
        if kind is not Kind.CURSOR:  # a cursor command reads the pending result it owns
            self.detach_stream()
            self.cursors.detach()
        return _HANDLERS[kind](self, Statement(sql, offset, w, duck_type))

    def run_in_duckdb(self, st: Statement) -> Result:
        """A statement DuckDB runs, through the rewrite steps, statement hooks and DDL hooks (steps.py)."""
        sql, offset, w, duck_type = st.sql, st.offset, st.words, st.duck_type
        first = st.first
        try:
            sql2 = sql
            for step in self.rewrite_steps:
                if step.applies(first, sql2):
                    sql2 = step.apply(self.cur, sql2)
            catalog.refresh(self, sql2)
            works = [
                work
                for hook in self.statement_hooks
                if (work := hook.before(self.cur, w, sql, sql2)) is not None
            ]
            for work in works:
                if work.transaction and not self.in_transaction:
                    self.begin_implicit()  # the statement and the feature's work commit together, or not at all
                for stmt in work.pre:
                    self.cur.execute(stmt)
                    self._journal(first, stmt)
                for n in work.notices:
                    self.notice(n)
            notices: list[PgError] = []
            for ddl_hook in self.ddl_hooks:
                if first not in ddl_hook.statements:
                    continue
                if (stmts := ddl_hook.plan(self.cur, sql2, notices)) is None:
                    continue
                if len(stmts) > 1 and not self.in_transaction:
                    self.begin_implicit()  # the plan is one transaction: an error rolls all of it back
                for pre in stmts[:-1]:
                    self.cur.execute(pre)
                    self._journal(first, pre)
                sql2, duck_type = stmts[-1], None
                break  # the first hook that plans the statement
            for n in notices:
                self.notice(n)
            self.running.set()
            try:
                res = run(self.cur, sql2, w, duck_type)
            finally:
                self.running.clear()
            after: list[str] = []
            for work in works:
                if work.after is not None:
                    res, more = work.after(self.cur, res)
                    after += more
            if first in ("CREATE", "ALTER", "DROP", "COMMENT", "TRUNCATE"):
                for hook in self.statement_hooks:
                    hook.after_ddl(self.in_transaction)
            self._journal(first, sql2)
            for stmt in after:
                self._journal(first, stmt)
            return res
        except duckdb.Error as e:
            raise sqlerrors.translate(e, sql, offset, self.cur) from None

    def _journal(self, first: str, sql: str) -> None:
        if self.in_transaction and not is_pure_read(first, sql):
            self.journal.record(sql)

    def is_superuser(self) -> bool:
        """Whether the session's role is a superuser now (the role store may have changed since login)."""
        try:
            role = self.backend.roles.get(self.info.user)
        except Exception:
            role = None
        return role.superuser if role is not None else self.info.is_superuser

    def transaction_ended(self, commit: bool) -> None:
        """After the DuckDB transaction ended: deliver or drop its notifications, release its xact locks."""
        if commit:
            self.listener.commit()
        else:
            self.listener.rollback()
        self.advisory.end_transaction()
        self.fkeys.end_transaction()

    # --- configuration ------------------------------------------------------------------------
    def _fallback(self, key: str) -> str | None:
        """What current_setting() shows for ``key`` without the pgtls_gucs variable."""
        if key == "session_authorization":
            return self.info.user
        if key == "is_superuser":
            return "on" if self.info.is_superuser else "off"
        if key == "application_name":
            return self.info.application_name
        return self.backend.catalog_values.get(key)

    def _push_gucs(self) -> None:
        """Set pgtls_gucs to the session's values of the parameters in ``_guc_keys``."""
        names: list[str] = []
        values: list[str] = []
        for key in sorted(self._guc_keys):
            try:
                value = self.gucs.get(key)
            except PgError:  # a custom parameter that RESET removed
                continue
            names.append(key)
            values.append(value)
        self.cur.execute(catalog.SET_GUCS, [names, values])

    def _apply_duck(self, canon: str, value: str) -> None:
        """Mirror parameters DuckDB also interprets into the session's DuckDB connection."""
        low = canon.lower()
        try:
            if low == "timezone":
                self.cur.execute(f"SET SESSION TimeZone = {quote_literal(value)}")
                self.tz = tzinfo(value)
            elif low == "search_path":
                self.cur.execute(f"SET SESSION search_path = {quote_literal(catalog.duck_path(value))}")
        except duckdb.Error:
            pass  # PostgreSQL accepts search_path entries that do not exist
        self._guc_keys.add(low)
        self._push_gucs()

    def setting_changed(self, canon: str) -> None:
        """After parameter ``canon`` changed: mirror it into DuckDB, and report it if PostgreSQL does."""
        value = self.gucs.get(canon)
        self._apply_duck(canon, value)
        if canon in REPORTED:
            self.pending_status.append((canon, value))


Handler = Callable[[EmbeddedSession, Statement], Result]
# Statement kind (sql/kinds.py) -> what the session does with it, as PostgreSQL's utility.c does.
_HANDLERS: dict[Kind, Handler] = {
    Kind.CURSOR: lambda s, st: s.cursors.command(st.first, st.sql),
    Kind.TRANSACTION: transaction.transaction_command,
    Kind.SET_CONSTRAINTS: utility.set_constraints,
    Kind.SET: settings_stmt.set_command,
    Kind.RESET: settings_stmt.reset_command,
    Kind.SHOW: utility.show,
    Kind.COPY: lambda s, st: s.copy.start(st.sql),
    Kind.DATABASE: utility.database_command,
    Kind.DISCARD: settings_stmt.discard,
    Kind.LOCK: utility.lock_table,
    Kind.LISTEN: utility.notify_command,
    Kind.QUERY: utility.query,
    Kind.ROLE: lambda s, st: tag(roles.execute(s, st.sql, st.offset)),
    Kind.ATTACH: utility.refuse_attach,
    Kind.DEALLOCATE_ALL: lambda s, st: tag("DEALLOCATE ALL"),
    Kind.DUCKDB: EmbeddedSession.run_in_duckdb,
}
