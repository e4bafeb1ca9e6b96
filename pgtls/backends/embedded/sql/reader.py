"""Statements of a query string as PostgreSQL's own parser (libpg_query, through pglast) reads them.

Why: our lexer (lexer.py) finds statement boundaries and first words by approximating scan.l; the parser
*is* scan.l and gram.y, so identifiers, non-reserved keywords, ``U&''`` strings, dollar quoting and
``BEGIN ATOMIC ... END`` bodies (whose inner semicolons do not end the statement) come out exactly as in
PostgreSQL.  When the parser refuses the text (a syntax error, or DuckDB-only syntax that the backend
passes through), :func:`read` falls back to the lexer, so such text behaves exactly as before: same
statements, same error messages, SQLSTATEs and positions.

Each statement's text and offset are the ones the lexer would give (from just after the previous
top-level ``;`` to just before the next one), so error positions (offset + position in the statement)
are unchanged; only where the boundaries themselves are found differs.

Results are cached per query text in a bounded LRU (:data:`READ_CACHE_SIZE`): drivers repeat the same
texts (prepared statements, ``BEGIN``/``COMMIT``, pool health checks).  Not per pglast fingerprint (the
statement's shape, literals aside): computing one is a parse, as dear as the one it would save, and the
pieces' offsets and texts depend on the literals (docs/architecture.md, "Reading SQL text").  Every statement of a parsed
string is cached under its own text too, so the session's per-statement classification
(:func:`node_of`) of a just-split string costs a dictionary look-up, not a second parse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pglast.parser import ParseError, parse_sql_json
from pglast.parser import split as pg_split

from pgtls.backends.embedded.sql import lexer
from pgtls.backends.embedded.sql.textcache import TextCache

READ_CACHE_SIZE = 512
"""Query texts whose reading is remembered (least recently used dropped first)."""

READ_CACHE_MAX_TEXT = 8192
"""Longer texts are not remembered (a bulk INSERT is rarely sent twice and would pin its memory)."""

# The top-level RawStmt nodes in libpg_query's JSON: ``{"stmt":{"NodeType":{"first_field":value``.
# Nested statements (EXPLAIN's query, a BEGIN ATOMIC body) are not under a "stmt" key; :func:`_parse`
# still checks that it found one node per statement.
_TOP_NODE = re.compile(r'\{"stmt":\{"(\w+)":\{(?:"(\w+)":"?(\w+))?')


# A gap between statements made of these only has no token but its semicolons (each is whitespace to the lexer).
_BLANKS_AND_SEMICOLONS = " \t\n\r\f\v;"


@dataclass(frozen=True)
class Node:
    """A statement's parse node as the classifier needs it: the node type (``"TransactionStmt"``) and
    its first field with its value (``kind``, ``TRANS_STMT_COMMIT``), which for the statements we tell
    apart by more than their type (TransactionStmt, VariableSetStmt, RenameStmt, DeallocateStmt) is the
    field that tells them apart."""

    type: str
    field: str = ""
    value: str = ""


@dataclass(frozen=True)
class Piece:
    """One statement of a query string: its offset in the string, its text, and its parse node (None when
    the parser refused the string and the lexer split it)."""

    offset: int
    sql: str
    node: Node | None


_cache: TextCache[tuple[Piece, ...]] = TextCache(READ_CACHE_SIZE)


def read(sql: str) -> tuple[Piece, ...]:
    """The statements of ``sql`` (empty ones dropped, as PostgreSQL does), with their offsets and nodes."""
    hit = _cache.get(sql)
    if hit is not None:
        return hit
    pieces = _parse(sql)
    if pieces is None:
        pieces = tuple(Piece(off, text, None) for off, text in lexer.split_with_offsets(sql))
    _remember(sql, pieces)
    if len(pieces) > 1 or (pieces and pieces[0].sql != sql):
        for p in pieces:
            if p.node is not None and p.sql not in _cache:
                _remember(p.sql, (Piece(0, p.sql, p.node),))
    return pieces


def _remember(sql: str, pieces: tuple[Piece, ...]) -> None:
    if len(sql) <= READ_CACHE_MAX_TEXT:
        _cache.put(sql, pieces)


def split_with_offsets(sql: str) -> list[tuple[int, str]]:
    """:func:`read` as ``(offset, text)`` pairs, the shape of lexer.split_with_offsets."""
    return [(p.offset, p.sql) for p in read(sql)]


def split_statements(sql: str) -> list[str]:
    """:func:`read`'s statement texts, the shape of lexer.split_statements."""
    return [p.sql for p in read(sql)]


def node_of(sql: str) -> Node | None:
    """The parse node of the one statement ``sql`` (None: not parsed, or not exactly one statement)."""
    pieces = read(sql)
    return pieces[0].node if len(pieces) == 1 else None


def _parse(sql: str) -> tuple[Piece, ...] | None:
    """The parser's reading, or None when it refuses the text (or we cannot map it back onto the text)."""
    try:
        tree = parse_sql_json(sql)
        nodes = [Node(t, f or "", v or "") for t, f, v in _TOP_NODE.findall(tree)]
        if ";" not in sql and len(nodes) <= 1:  # the common case: the whole text is the one statement
            return (Piece(0, sql, nodes[0]),) if nodes else ()
        slices = pg_split(sql, with_parser=True, only_slices=True)
    except ParseError:
        return None
    if len(nodes) != len(slices):
        return None
    # the text between two statements (and before the first, after the last) is only blanks, comments
    # and semicolons; a statement runs from just after the last semicolon before it to just before the
    # first one after it, as the lexer cuts it
    cuts: list[int] = []  # start of each gap's first ';' (the end of the statement before the gap)
    starts: list[int] = []  # just after each gap's last ';' (the start of the statement after the gap)
    prev = 0
    for s in [*slices, slice(len(sql), len(sql))]:
        gap = sql[prev : s.start]
        semis = _semicolons(gap)
        if semis is None:
            return None
        cuts.append(prev + semis[0] if semis else s.start if s.start == len(sql) else -1)
        starts.append(prev + semis[1] if semis else prev)
        prev = s.stop
    out: list[Piece] = []
    for k, node in enumerate(nodes):
        start = starts[k]
        end = cuts[k + 1] if cuts[k + 1] >= 0 else len(sql)
        if k + 1 < len(nodes) and cuts[k + 1] < 0:
            return None  # two statements with no semicolon between them: not a string we understand
        out.append(Piece(start, sql[start:end], node))
    return tuple(out)


def _semicolons(gap: str) -> tuple[int, int] | tuple[()] | None:
    """Where the semicolons of the text between two statements start and end (``()``: none), or None when
    the gap holds something else than blanks, comments and semicolons."""
    if not gap.strip(_BLANKS_AND_SEMICOLONS):  # the usual gap ("; "): no need to lex it
        first = gap.find(";")
        return (first, gap.rfind(";") + 1) if first >= 0 else ()
    semis = list(lexer.iter_tokens(gap))
    if any(t.kind != "op" or t.text != ";" for t in semis):
        return None
    return (semis[0].start, semis[-1].end) if semis else ()
