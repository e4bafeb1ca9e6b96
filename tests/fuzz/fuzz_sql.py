"""SQL text as the DuckDB backend reads it before DuckDB sees it: statements and their parse nodes
(``sql/reader.py``), tokens from PostgreSQL's scanner with the hand-written fallback (``sql/lexer.py``), the
rules on the parse tree (``rewrite/tree.py``) and the whole text rewrite (``rewrite/pipeline.py``).

Input: the query string's bytes (UTF-8, invalid sequences replaced; NUL kept, which the scanner cannot see
past and so must leave to the fallback).

Expected: every function returns, but for the rewrite's refusals (``PgError``, with a SQLSTATE and a
message: what the client would get).  A bug: any other exception; statements that are not in order inside the text;
tokens out of order, overlapping, outside the text or not equal to the text they span; a long text's first
tokens (read from a prefix) other than its tokens; a tree edit outside the text or overlapping another.
"""

from __future__ import annotations

from tests.fuzz.common import instrumented, main

with instrumented(__name__):
    from pgtls.backends.embedded.rewrite.pipeline import rewrite
    from pgtls.backends.embedded.rewrite.tree import tree_edits
    from pgtls.backends.embedded.sql import lexer, reader
    from pgtls.errors import PgError


def test_one_input(data: bytes) -> None:
    sql = data.decode("utf-8", "replace")
    pos = 0
    for piece in reader.read(sql):
        assert piece.offset >= pos, "statements out of order"
        assert sql[piece.offset : piece.offset + len(piece.sql)] == piece.sql, "a statement is not its text"
        pos = piece.offset + len(piece.sql)
    toks = lexer.tokens(sql)
    end = 0
    for t in toks:
        assert end <= t.start < t.end <= len(sql), f"token {t} out of order or outside the text"
        assert sql[t.start : t.end] == t.text, f"token {t} is not its text"
        end = t.end
    padded = " " * (lexer.SCAN_PREFIX - len(sql) // 2) + sql if len(sql) < lexer.SCAN_PREFIX else sql
    assert list(lexer.iter_tokens(padded)) == lexer.tokens(padded), "the prefix's tokens differ"
    end = 0
    for start, stop, _ in sorted(tree_edits(sql)):
        assert end <= start <= stop <= len(sql), "a tree edit outside the text or overlapping another"
        end = stop
    for piece in reader.read(sql)[:4]:
        try:
            rewrite(piece.sql)
        except PgError as e:  # the client's error, e.g. 22P02 for a malformed array literal
            assert len(e.sqlstate) == 5 and e.message, f"an error without SQLSTATE or message: {e!r}"


if __name__ == "__main__":
    main(test_one_input)
