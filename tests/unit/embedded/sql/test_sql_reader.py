"""sql/reader.py: statements as PostgreSQL's parser reads them, the lexer as the fallback.

The corpus is every SQL string literal of the embedded backend's tests (unit, differential, client
integration) plus tricky texts: the parser's split must agree with the lexer's wherever the lexer was
right, and differ only where PostgreSQL splits differently (``BEGIN ATOMIC`` bodies).
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest

from pgtls.backends.embedded.sql import kinds, lexer, reader

_TESTS = Path(__file__).resolve().parents[3]  # tests/
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
        *sorted((_TESTS / "unit" / "embedded").rglob("test_*.py")),
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


# --- step 3: classification from the parse node ----------------------------------------------------------
EXTRA = [
    "ALTER ROLE a RENAME TO b", "ALTER GROUP g RENAME TO h", "ALTER USER u RENAME TO v", "ALTER ROLE a SET x = 1",
    "ALTER ROLE ALL SET x = 1", "DEALLOCATE ALL", "DEALLOCATE PREPARE ALL", 'DEALLOCATE "ALL"', "DEALLOCATE x",
    "PREPARE TRANSACTION 'x'", "COMMIT PREPARED 'x'", "ROLLBACK PREPARED 'x'", "RESET ALL", "RESET x",
    "RESET SESSION AUTHORIZATION", "SET SESSION AUTHORIZATION DEFAULT", "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
    "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", "SET x FROM CURRENT", "SET LOCAL x = 1",
    "SET TIME ZONE 'UTC'", "SET ROLE r", "RESET ROLE", "CLOSE ALL", "CLOSE c", "MOVE NEXT FROM c", "FETCH 2 FROM c",
    "DECLARE c CURSOR FOR SELECT 1", "CREATE USER MAPPING FOR u SERVER s", "DROP USER MAPPING FOR u SERVER s",
    "ALTER USER MAPPING FOR u SERVER s OPTIONS (a 'b')", "CREATE USER u", "CREATE GROUP g", "DROP GROUP g",
    "ALTER GROUP g ADD USER u", "GRANT r TO u", "REVOKE r FROM u", "GRANT SELECT ON t TO u", "GRANT ALL ON SCHEMA s TO u",
    "REVOKE ADMIN OPTION FOR r FROM u", "GRANT r TO u WITH ADMIN OPTION GRANTED BY CURRENT_USER",
    "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO u", "DROP OWNED BY u", "REASSIGN OWNED BY a TO b",
    "CREATE DATABASE d", "DROP DATABASE IF EXISTS d", "DROP DATABASE d WITH (FORCE)", "ALTER DATABASE d SET x = 1",
    "WITH a AS (SELECT 1) SELECT * FROM a", "VALUES (1)", "(SELECT 1)", "TABLE t", "SELECT 1 UNION SELECT 2",
    "SELECT 1 INTO t", "EXPLAIN SELECT 1", "SHOW ALL", "SHOW TABLES", "SHOW search_path", "SHOW TIME ZONE",
    "SHOW TRANSACTION ISOLATION LEVEL", "LOCK t", "LOCK TABLE t IN ACCESS EXCLUSIVE MODE", "LISTEN c", "UNLISTEN *",
    "NOTIFY c, 'x'", "DISCARD ALL", "DISCARD PLANS", "COPY t FROM STDIN", "COPY (SELECT 1) TO STDOUT",
    "SET CONSTRAINTS ALL DEFERRED", "BEGIN", "BEGIN ISOLATION LEVEL SERIALIZABLE", "START TRANSACTION READ ONLY",
    "END", "ABORT", "COMMIT AND CHAIN", "ROLLBACK TO SAVEPOINT s", "ROLLBACK TO s", "RELEASE s", "RELEASE SAVEPOINT s",
    "SAVEPOINT s", 'SELECT U&"d\\0061t" FROM t', "/* c */ SELECT 1", "-- x\nBEGIN", "SELECT 1 AS set",
    'SELECT "select"', "select pg_advisory_lock(1)", "DO $$BEGIN; END$$", "CALL p()",
    "CREATE TEMP TABLE t (set int, show int, begin int)", "INSERT INTO t VALUES (1)", "UPDATE t SET a = 1",
    "DELETE FROM t", "MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE", "TRUNCATE t",
    "COMMENT ON TABLE t IS 'x'", "CREATE ROLE r LOGIN", "ALTER ROLE r WITH PASSWORD 'x'", "DROP ROLE IF EXISTS r",
    "DROP USER u", ATOMIC,
]  # fmt: skip


def _statements() -> list[str]:
    return sorted({p.sql for text in [*corpus(), *EXTRA] for p in reader.read(text)})


def test_node_classifier_agrees_with_the_first_words() -> None:
    """Every statement that reached handler X through classify() reaches X through classify_node()."""
    parsed = 0
    disagree = []
    for sql in _statements():
        node = reader.node_of(sql)
        if node is None:
            continue
        parsed += 1
        w = lexer.words(sql, 4)
        if kinds.classify_node(node, w) is not kinds.classify(sql, w):
            disagree.append((sql, node))
    assert disagree == []
    assert parsed > 1000


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("ALTER ROLE a RENAME TO b", kinds.Kind.ROLE),
        ("DEALLOCATE PREPARE ALL", kinds.Kind.DEALLOCATE_ALL),
        ('DEALLOCATE "ALL"', kinds.Kind.DUCKDB),
        ("RESET ALL", kinds.Kind.RESET),
        ("PREPARE TRANSACTION 'x'", kinds.Kind.DUCKDB),
        ("CREATE USER MAPPING FOR u SERVER s", kinds.Kind.DUCKDB),
        ("GRANT SELECT ON t TO u", kinds.Kind.DUCKDB),
        ("GRANT r TO u", kinds.Kind.ROLE),
        ("VALUES (1)", kinds.Kind.DUCKDB),
        ("PRAGMA version", kinds.Kind.DUCKDB),  # not parsed: the first words decide
        ("ATTACH 'x.db'", kinds.Kind.ATTACH),  # not parsed: the first words decide
    ],
)
def test_kind_of(sql: str, kind: kinds.Kind) -> None:
    assert kinds.kind_of(sql, lexer.words(sql, 4)) is kind


def test_begin_atomic_body_end_is_not_a_commit() -> None:
    """The lexer cut the body at its semicolons and took its END for COMMIT; PostgreSQL runs one CREATE."""
    old = [kinds.classify(s, lexer.words(s, 4)) for _, s in lexer.split_with_offsets(ATOMIC)]
    new = [kinds.kind_of(s, lexer.words(s, 4)) for _, s in reader.split_with_offsets(ATOMIC)]
    assert kinds.Kind.TRANSACTION in old
    assert new == [kinds.Kind.DUCKDB, kinds.Kind.QUERY]


# --- tokens: PostgreSQL's scanner, the hand-written approximation as the fallback ---------------------------

_SIGNED_EXPONENT = re.compile(r"[0-9.][eE][+-][0-9]")


def _explained(new: lexer.Token, old: lexer.Token) -> bool:
    """Where the approximation was wrong and the scanner is right: a number with a signed exponent (``1e-5``
    was ``1e``, ``-``, ``5``), an identifier with a non-ASCII letter (``éa_b`` was ``é``, ``a_b``)."""
    return (new.kind == "number" and bool(_SIGNED_EXPONENT.search(new.text))) or (
        new.kind == "word" and not new.text.isascii()
    )


def test_scanner_tokens_agree_with_the_approximation() -> None:
    unexplained = []
    differ = 0
    for text in corpus():
        new, old = lexer.tokens(text), list(lexer.approximate_tokens(text))
        pairs = [
            (a, b)
            for a, b in zip(new, old, strict=False)
            if (a.kind, a.text, a.start) != (b.kind, b.text, b.start)
        ]
        if pairs or len(new) != len(old):
            differ += 1
            if not pairs or not _explained(*pairs[0]):
                unexplained.append(text)
    assert not unexplained
    assert differ >= 3  # the corpus has signed exponents and a non-ASCII savepoint name


@pytest.mark.parametrize("text", ["SELECT 'abc", "SELECT 1 /* open", "SELECT $q$ open", "SELECT 'a\0b', 1"])
def test_tokens_fall_back_where_the_scanner_refuses(text: str) -> None:
    assert lexer.tokens(text) == list(lexer.approximate_tokens(text))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SELECT 1e-5, 'open", ["SELECT", "1e-5", ",", "'open"]),  # the scanner's number, then the rest
        ("SELECT éa, x\0y 'z", ["SELECT", "éa", ",", "x", "\0", "y", "'z"]),  # the scanner stops at NUL
        ("SELECT 1abc, 2", ["SELECT", "1abc", ",", "2"]),  # junk after a number: approximated from there
    ],
)
def test_tokens_are_the_scanners_up_to_where_it_refuses(text: str, expected: list[str]) -> None:
    assert [t.text for t in lexer.tokens(text)] == expected


def test_token_offsets_are_characters() -> None:
    text = "SELECT 'é' || ñ FROM \"Ä\" -- ü"
    assert [(t.kind, text[t.start : t.end]) for t in lexer.tokens(text)] == [
        ("word", "SELECT"), ("string", "'é'"), ("op", "|"), ("op", "|"), ("word", "ñ"), ("word", "FROM"),
        ("ident", '"Ä"'),
    ]  # fmt: skip


_PATTERN = (
    "SELECT a, 'str''ing', $t$dol;lar$t$, /* c */ \"Id\", 1e-5, x->>'k', U&'\\0041', é1, 'con'\n  'tinued' -- c\n, "
    "$1, b'01', $abcdefghij$ $abcdefghij$ "
)


@pytest.mark.parametrize("pad", range(len(_PATTERN)))
def test_first_tokens_of_a_long_text_are_its_tokens(pad: int) -> None:
    """iter_tokens reads a long text's first SCAN_PREFIX characters first: whatever token the cut falls in
    (a string, a dollar quote or its tag, a comment, an operator, a string continued on the next line), it
    yields exactly what tokens() does."""
    text = " " * pad + _PATTERN * (lexer.SCAN_PREFIX // len(_PATTERN) + 2)
    assert len(text) > lexer.SCAN_PREFIX
    assert list(lexer.iter_tokens(text)) == lexer.tokens(text)
    assert lexer.words(text, 3) == ["SELECT", "A", ","]


def test_token_cache_is_bounded() -> None:
    many = "SELECT " + "(" * (lexer.TOKEN_CACHE_MAX_TOKENS + 1)
    assert len(lexer.tokens(many)) > lexer.TOKEN_CACHE_MAX_TOKENS
    assert many not in lexer._token_cache
    for k in range(lexer.TOKEN_CACHE_SIZE + 10):
        lexer.tokens(f"SELECT {k}")
    assert len(lexer._token_cache) == lexer.TOKEN_CACHE_SIZE
    first = lexer.tokens("SELECT 1 + 2")
    first.clear()  # a caller's list is its own
    assert [t.text for t in lexer.tokens("SELECT 1 + 2")] == ["SELECT", "1", "+", "2"]
