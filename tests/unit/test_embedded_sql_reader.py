"""sql/reader.py: statements as PostgreSQL's parser reads them, the lexer as the fallback.

The corpus is every SQL string literal of the embedded backend's tests (unit, differential, client
integration) plus tricky texts: the parser's split must agree with the lexer's wherever the lexer was
right, and differ only where PostgreSQL splits differently (``BEGIN ATOMIC`` bodies).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

from pgtls.backends.embedded.sql import lexer, reader

_TESTS = Path(__file__).resolve().parent.parent
_FIRST_WORDS = frozenset(
    "SELECT INSERT UPDATE DELETE WITH VALUES TABLE BEGIN START COMMIT END ROLLBACK ABORT SAVEPOINT RELEASE "
    "SET RESET SHOW COPY CREATE DROP ALTER GRANT REVOKE DECLARE FETCH MOVE CLOSE DISCARD LOCK LISTEN UNLISTEN "
    "NOTIFY ATTACH DETACH DEALLOCATE PREPARE EXECUTE EXPLAIN TRUNCATE COMMENT VACUUM ANALYZE CHECKPOINT CALL "
    "DO REINDEX REFRESH MERGE PRAGMA INSTALL LOAD DESCRIBE SUMMARIZE FROM USE".split()
)

TRICKY = [
    'SELECT U&"d\\0061t\\+000061" FROM t; SELECT 2',
    "SELECT U&'\\0041;'; SELECT 2",
    "SELECT $$a;b$$; SELECT $tag$ ; $$ ; $tag$",
    "SELECT a$b$c FROM t; SELECT 1",  # a$b$c is one identifier, not a dollar quote
    "/* c; /* nested; */ */ BEGIN; -- x;\n COMMIT ; ;",
    "SELECT 1 AS set; SELECT 2 AS show; SELECT 3 AS begin",
    "select e'\\';' ; select 2",
    "SET search_path = public; SHOW search_path",
    "PRAGMA version; SELECT 1",  # DuckDB-only: the lexer splits it
    "SELECT 1; SELECT FROM WHERE; SELECT 3",  # a syntax error: the lexer splits it
    "",
    " ;; ",
    "-- only a comment",
]

# PostgreSQL reads a SQL-standard function body as part of its CREATE statement (gram.y
# opt_routine_body: BEGIN_P ATOMIC routine_body_stmt_list END_P); the lexer cut it at its semicolons.
ATOMIC = "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END; SELECT 3"


@functools.cache
def corpus() -> tuple[str, ...]:
    """SQL string literals of the embedded backend's tests, and :data:`TRICKY`."""
    files = [
        *sorted((_TESTS / "unit").glob("test_embedded_*.py")),
        *sorted((_TESTS / "differential").glob("*.py")),
        _TESTS / "integration" / "test_clients_embedded.py",
    ]
    found: set[str] = set(TRICKY)
    for f in files:
        if f.name == Path(__file__).name:
            continue  # this file's own texts: TRICKY, and ATOMIC which splits differently on purpose
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                first = lexer.words(node.value, 1)
                if first and first[0] in _FIRST_WORDS:
                    found.add(node.value)
    return tuple(sorted(found))


def test_corpus_is_large_and_mostly_parsed() -> None:
    texts = corpus()
    parsed = [t for t in texts if any(p.node is not None for p in reader.read(t))]
    assert len(texts) > 500
    assert len(parsed) > len(texts) * 3 // 4


def test_split_agrees_with_the_lexer() -> None:
    differ = [t for t in corpus() if reader.split_with_offsets(t) != lexer.split_with_offsets(t)]
    assert differ == []


def test_begin_atomic_body_is_one_statement() -> None:
    assert reader.split_with_offsets(ATOMIC) == [
        (0, "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END"),
        (82, " SELECT 3"),
    ]
    assert len(lexer.split_with_offsets(ATOMIC)) == 4


@pytest.mark.parametrize("sql", ["PRAGMA version; SELECT 1", "SELECT 1; SELECT FROM WHERE; SELECT 3"])
def test_falls_back_to_the_lexer(sql: str) -> None:
    pieces = reader.read(sql)
    assert all(p.node is None for p in pieces)
    assert [(p.offset, p.sql) for p in pieces] == lexer.split_with_offsets(sql)


def test_offsets_are_characters_not_bytes() -> None:
    sql = "SELECT 'é€'; SELECT nope"
    assert reader.split_with_offsets(sql) == [(0, "SELECT 'é€'"), (12, " SELECT nope")]


def test_statements_of_a_split_string_are_cached_under_their_own_text() -> None:
    pieces = reader.read("BEGIN; SELECT 42 AS cached_piece ; COMMIT")
    assert reader.node_of(" SELECT 42 AS cached_piece ") == pieces[1].node
    assert pieces[1].node is not None and pieces[1].node.type == "SelectStmt"


def test_cache_is_bounded() -> None:
    for k in range(reader.READ_CACHE_SIZE + 10):
        reader.read(f"SELECT {k} AS bounded")
    assert len(reader._cache) <= reader.READ_CACHE_SIZE
