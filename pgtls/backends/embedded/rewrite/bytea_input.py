"""``'\\x…'`` string constants bound for a bytea column, read as PostgreSQL reads them.

PostgreSQL reads ``'\\xdeadbeef'`` put into (or compared with) a bytea column as bytea's hex input:
four bytes.  DuckDB casts the same string to BLOB with its own escapes, ``\\xHH`` per byte, and keeps
the rest as characters: ``\\xde`` then ``adbeef``, seven bytes, silently.  Explicit casts
(``'\\x…'::bytea``) are rewritten without any catalog (rewrite/pipeline.py); this module handles the implicit
ones, which need the column types: a string constant that is a whole ``VALUES`` entry of an INSERT
into a bytea column, or the other side of a comparison or ``SET col =`` with a bytea column, becomes
``from_hex('…')``.  The hex text is checked as PostgreSQL's hex_decode does (whitespace between digit
pairs is skipped), with its error messages.
"""

from __future__ import annotations

import duckdb

from pgtls.backends.embedded.pgtypes.params import _columns, _tables, insert_positions
from pgtls.backends.embedded.sql.lexer import Token, apply_edits, quote_literal, tokens, unquote_ident
from pgtls.errors import PgError

_COMPARE = {"=", "<>", "!=", "<", ">", "<=", ">="}
_HEX = set("0123456789abcdefABCDEF")


def needs_rewrite(sql: str) -> bool:
    return "'\\x" in sql or "'\\X" in sql


def rewrite(cur: duckdb.DuckDBPyConnection, sql: str) -> str:
    """``sql`` with its hex strings for bytea columns as ``from_hex(...)`` (``sql`` itself if none)."""
    toks = tokens(sql)
    strings = [i for i, t in enumerate(toks) if t.kind == "string" and t.text[:3] in ("'\\x", "'\\X")]
    if not strings:
        return sql
    try:
        cols = _columns(cur, _tables(toks))
    except duckdb.Error:
        return sql
    blob = {c for table in cols.values() for c, d in table.items() if d == "BLOB"}
    if not blob:
        return sql
    targets = {k: typ for k, typ in insert_positions(toks, cols).items()  # whole VALUES entries only
               if toks[k - 1].text in ("(", ",") and k + 1 < len(toks) and toks[k + 1].text in (")", ",")}  # fmt: skip

    def is_blob(tok: Token) -> bool:
        return tok.kind in ("word", "ident") and unquote_ident(tok.text).lower() in blob

    def compared_with_blob(i: int, step: int) -> bool:
        """Whether the string at ``i`` is compared with a bytea column on its left (step -1) or right (+1);
        the lexer gives an operator such as <> as one token per character."""
        j, op = i + step, ""
        while 0 <= j < len(toks) and toks[j].kind == "op" and toks[j].text in "<>=!" and len(op) < 2:
            op = toks[j].text + op if step < 0 else op + toks[j].text
            j += step
        return op in _COMPARE and 0 <= j < len(toks) and is_blob(toks[j])

    edits: list[tuple[int, int, str]] = []
    for i in strings:
        bound = targets.get(i) == "BLOB" or compared_with_blob(i, -1) or compared_with_blob(i, 1)
        if bound:
            t = toks[i]
            digits = hex_digits(t.text[3:-1].replace("''", "'"))
            edits.append((t.start, t.end, f"from_hex({quote_literal(digits)})"))
    return apply_edits(sql, edits) if edits else sql


def hex_digits(text: str) -> str:
    """The hex digits of bytea hex input (after ``\\x``), whitespace between pairs dropped; PostgreSQL's
    errors (22023) for anything else."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\n\r":
            i += 1
            continue
        if c not in _HEX:
            raise PgError("22023", f'invalid hexadecimal digit: "{c}"')
        if i + 1 >= n:
            raise PgError("22023", "invalid hexadecimal data: odd number of digits")
        d = text[i + 1]
        if d not in _HEX:
            raise PgError("22023", f'invalid hexadecimal digit: "{d}"')
        out.append(c + d)
        i += 2
    return "".join(out)
