"""Replies the session gives on the event loop, without DuckDB: point lookups from the index.

The server hands every batch of frontend messages to :func:`answer` first.  Two shapes of batch are
answered here when the point-lookup index (lookup.py) has the table:

* a simple query ``Q`` of the indexable form, with a literal;
* an extended-protocol round trip ``[Parse] Bind [Describe portal] Execute Sync`` of a statement of
  that form with ``$1`` (or a literal) — what libpq's PQsendQueryParams / PQsendQueryPrepared,
  psycopg, asyncpg, pgJDBC and node-postgres send for one query.

Everything about such a batch must come out exactly as the normal path would give it: the same
messages, and the same state afterwards (a Parse stores its statement; Sync ends the portals).  So
whatever is unusual — an unknown statement name, an odd parameter type or format, a row limit, a
malformed message, a value the normal path would reject — is not answered here, and the normal path
gives its answer or its error.  Only an idle session (no transaction block) is answered: a block
reads its own snapshot.
"""

from __future__ import annotations

import functools
import struct
from typing import Any

from pgtls.backends.embedded.catalog import shared as catalog
from pgtls.backends.embedded.fastpath import lookup
from pgtls.backends.embedded.pgtypes import typemap as T
from pgtls.backends.embedded.pgtypes.encode import row_encoder
from pgtls.backends.embedded.session.context import SessionContext
from pgtls.backends.embedded.session.extended import resolve_formats
from pgtls.backends.embedded.session.output import Output
from pgtls.backends.embedded.session.prepared import Prepared
from pgtls.backends.embedded.sql.lexer import words
from pgtls.errors import PgError
from pgtls.protocol import messages as m

Batch = list[tuple[bytes, bytes]]

_INT_OIDS = {T.INT2.oid: lookup.INT_RANGES["SMALLINT"], T.INT4.oid: lookup.INT_RANGES["INTEGER"],
             T.INT8.oid: lookup.INT_RANGES["BIGINT"]}  # fmt: skip
_BINARY_LEN = {T.INT2.oid: 2, T.INT4.oid: 4, T.INT8.oid: 8}
_TEXT_OIDS = {T.TEXT.oid, T.VARCHAR.oid}
_EXTENDED = {b"PBDES", b"PBES", b"BDES", b"BES"}


def answer(s: SessionContext, batch: Batch) -> bytes | None:
    if (s.tx != "I" or s.implicit or s.writing or s.temp_objects or s.extended.skipping
            or s.copy.active):  # fmt: skip
        return None
    try:
        if len(batch) == 1:
            kind, body = batch[0]
            return _simple(s, body) if kind == b"Q" else None
        if b"".join([k for k, _ in batch]) in _EXTENDED:
            return _extended(s, batch)
    except (m.ProtocolError, struct.error, UnicodeDecodeError, PgError, ValueError, IndexError):
        return None  # the normal path reports it
    return None


def _search_path(s: SessionContext) -> str:
    return catalog.duck_path(s.gucs.get("search_path"))


def _simple(s: SessionContext, body: bytes) -> bytes | None:
    if not body.endswith(b"\0"):
        return None
    sql = body[:-1].decode("utf-8")
    if "\\" in sql:
        return None  # a backslash in a string means something else with standard_conforming_strings off
    q = lookup.match(sql, _search_path(s))
    if q is None or q.value.startswith("$"):
        return None  # $1 in a simple query is an error
    index = s.backend.lookups.answer(s.info.database, q)
    if index is None:
        return None
    ok, key = index.key(q.value)
    if not ok:
        return None
    rows = index.find(key)
    return _reply(
        s, index, rows if q.limit is None else rows[: q.limit], [], [0] * len(index.columns), describe=True
    )


def _extended(s: SessionContext, batch: Batch) -> bytes | None:
    ext = s.extended
    out: list[bytes] = []
    i = 0
    stmt: Prepared | None = None
    parsed: tuple[str, Prepared] | None = None
    if batch[0][0] == b"P":
        name, sql, declared = _parse_message(batch[0][1])
        if name and name in ext.statements:
            return None
        parsed = (name, Prepared(sql, declared, list(_words4(sql)), "SELECT"))
        stmt = parsed[1]
        out.append(_PARSE_COMPLETE)
        i = 1
    portal, stmt_name, fmts, raw, res_fmts = _bind_message(batch[i][1])
    if parsed is not None:
        if stmt_name != parsed[0]:
            return None
    else:
        stmt = ext.statements.get(stmt_name)
    if stmt is None or (portal and portal in ext.portals) or any(f not in (0, 1) for f in fmts + res_fmts):
        return None
    q = _match(stmt.sql, _search_path(s))
    if q is None:
        return None
    nparams = 1 if q.value == "$1" else 0
    if len(raw) != nparams or len(stmt.param_oids) > nparams or len(fmts) > max(nparams, 1):
        return None
    index = s.backend.lookups.answer(s.info.database, q)
    if index is None:
        return None
    key_oid = index.key_column.type.oid
    oids = stmt.param_oids if parsed is None or stmt.param_oids else [key_oid] * nparams
    if nparams:
        value = raw[0]
        if value is None:
            return None  # key = NULL: let the normal path say how it treats that
        ok, key = _param_key(index, oids[0] or key_oid, fmts[0] if fmts else 0, value)
    else:
        ok, key = index.key(q.value)
    if not ok:
        return None
    out.append(_BIND_COMPLETE)
    i += 1
    encoded_portal = portal.encode() + b"\0"
    describe = batch[i][0] == b"D"
    if describe:
        if batch[i][1] != b"P" + encoded_portal:
            return None
        i += 1
    body = batch[i][1]
    if len(body) != len(encoded_portal) + 4 or not body.startswith(encoded_portal):
        return None
    (limit,) = _I32.unpack_from(body, len(encoded_portal))
    rows = index.find(key)
    if q.limit is not None:
        rows = rows[: q.limit]
    if limit > 0 and limit <= len(rows):
        return None  # PortalSuspended and a portal that lives on: the normal path's business
    formats = resolve_formats(res_fmts, len(index.columns))
    if parsed is not None:
        if oids != stmt.param_oids:
            parsed = (parsed[0], Prepared(stmt.sql, oids, stmt.words, stmt.duck_type))
        ext.statements[parsed[0]] = parsed[1]
    if ext.portals:
        ext.portals.clear()  # Sync in an idle session ends every portal
    s.streaming = None
    return _reply(s, index, rows, out, formats, describe)


_I16 = struct.Struct("!h")
_I32 = struct.Struct("!i")
_PARSE_COMPLETE = m.parse_complete()
_BIND_COMPLETE = m.bind_complete()


def _parse_message(body: bytes) -> tuple[str, str, list[int]]:
    """(statement name, SQL, declared parameter types) of a Parse body; ValueError if malformed."""
    a = body.index(b"\0")
    b = body.index(b"\0", a + 1)
    (n,) = _I16.unpack_from(body, b + 1)
    if n < 0 or len(body) != b + 3 + 4 * n:
        raise ValueError("malformed Parse")
    oids = [o & 0xFFFFFFFF for o in struct.unpack_from(f"!{n}i", body, b + 3)]
    return body[:a].decode(), body[a + 1 : b].decode(), oids


def _bind_message(body: bytes) -> tuple[str, str, list[int], list[bytes | None], list[int]]:
    """(portal, statement, parameter formats, parameters, result formats) of a Bind body."""
    a = body.index(b"\0")
    b = body.index(b"\0", a + 1)
    pos = b + 1
    (nf,) = _I16.unpack_from(body, pos)
    fmts = list(struct.unpack_from(f"!{nf}h", body, pos + 2))
    pos += 2 + 2 * nf
    (np,) = _I16.unpack_from(body, pos)
    pos += 2
    raw: list[bytes | None] = []
    for _ in range(np):
        (ln,) = _I32.unpack_from(body, pos)
        pos += 4
        if ln == -1:
            raw.append(None)
        else:
            if ln < 0 or pos + ln > len(body):
                raise ValueError("malformed Bind")
            raw.append(body[pos : pos + ln])
            pos += ln
    (nr,) = _I16.unpack_from(body, pos)
    res = list(struct.unpack_from(f"!{nr}h", body, pos + 2))
    if nf < 0 or np < 0 or nr < 0 or pos + 2 + 2 * nr != len(body):
        raise ValueError("malformed Bind")
    return body[:a].decode(), body[a + 1 : b].decode(), fmts, raw, res


@functools.lru_cache(maxsize=256)
def _words4(sql: str) -> tuple[str, ...]:
    return tuple(words(sql, 4))


@functools.lru_cache(maxsize=256)
def _match(sql: str, search_path: str) -> lookup.Query | None:
    """The prepared statement's shape (statements repeat: their values come as parameters)."""
    if "\\" in sql:
        return None
    return lookup.match(sql, search_path)


def _param_key(index: lookup.Index, oid: int, fmt: int, value: bytes) -> tuple[bool, Any]:
    """(usable, key) for the bound parameter, as the normal path would read it for ``keycol = $1``."""
    if index.key_range is None:
        if oid not in _TEXT_OIDS:
            return False, None
        return True, value.decode("utf-8")
    if oid not in _INT_OIDS:
        return False, None
    if fmt == 1:
        if len(value) != _BINARY_LEN[oid]:
            return False, None
        return True, int.from_bytes(value, "big", signed=True)
    key = lookup.int_in_range(
        value.decode("ascii"), _INT_OIDS[oid]
    )  # out of the parameter type's range: an error
    return key is not None, key


_SELECT_TAGS = [m.command_complete(f"SELECT {n}") for n in range(8)]
_READY_IDLE = m.ready_for_query("I")


def _reply(s: SessionContext, index: lookup.Index, rows: list[tuple[Any, ...]], out: list[bytes],
           formats: list[int], describe: bool) -> bytes:  # fmt: skip
    fkey = tuple(formats)  # (the index holds no type whose text depends on the session: lookup._VALUE_TYPES)
    encode = index.encoders.get(fkey)
    if encode is None:
        encode = index.encoders[fkey] = row_encoder(index.columns, formats, s.tz)
    if describe:
        out.append(index.description if not any(formats) else
                   m.row_description([c.field(f) for c, f in zip(index.columns, formats, strict=True)]))  # fmt: skip
    for row in rows:
        out.append(encode(row))
    n = len(rows)
    out.append(_SELECT_TAGS[n] if n < len(_SELECT_TAGS) else m.command_complete(f"SELECT {n}"))
    if s.pending_status:
        o = Output(out.append)
        s.ready(o)
        o.flush()
    else:  # what ready() gives an idle session: notifications that waited, then ReadyForQuery
        waiting = s.listener.take()
        if waiting:
            out.append(waiting)
        out.append(_READY_IDLE)
    return b"".join(out)
