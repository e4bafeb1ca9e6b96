"""PostgreSQL query text as tokens: statement splitting, keywords, parameters, and the tokens the rewrites edit.

The tokens come from PostgreSQL's own scanner (scan.l, through pglast's binding of libpg_query), so word,
quoted identifier, string (``E''``, ``U&''``, dollar quoting), number and parameter boundaries, comments
(nested ``/* */`` included) and non-ASCII identifiers are exactly PostgreSQL's.  Two things are presented in
the shape the rewrites were written for: an operator token (``->>``, ``::``, ``<=``) comes as one ``op`` token
per character, and the prefix of ``X''``/``B''``/``U&''``/``U&""`` as its own tokens (``X`` then the string).

Where the scanner refuses the text (an unterminated string, comment or dollar quote, junk after a number) or
cannot see past a character (NUL), the tokens from there on are :func:`approximate_tokens`, a hand-written
approximation of scan.l with standard_conforming_strings on, in which unterminated literals run to the end
of the text: the statement then reaches PostgreSQL's parser (or DuckDB's) and gets its error there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pglast.parser import ParseError
from pglast.parser import scan as pg_scan

from pgtls.backends.embedded.sql.textcache import TextCache

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$")
_PARAM = re.compile(r"\$([0-9]+)")
_WORD = re.compile(r"[A-Za-z_][A-Za-z_0-9$]*")
_SPACE = re.compile(r"\s+")


@dataclass(slots=True)
class Token:
    kind: str  # "word", "ident" (double-quoted), "string", "param", "op", "number"
    text: str
    start: int
    end: int


def _skip_quoted(sql: str, i: int, quote: str) -> int:
    """Return the index after the closing quote of a literal starting at i (doubling escapes)."""
    n = len(sql)
    j = i + 1
    while j < n:
        if sql[j] == quote:
            if j + 1 < n and sql[j + 1] == quote:
                j += 2
                continue
            return j + 1
        j += 1
    return n


def _skip_escape_string(sql: str, i: int) -> int:
    """E'...' strings: backslash escapes as well as doubled quotes."""
    n = len(sql)
    j = i + 1
    while j < n:
        c = sql[j]
        if c == "\\":
            j += 2
            continue
        if c == "'":
            if j + 1 < n and sql[j + 1] == "'":
                j += 2
                continue
            return j + 1
        j += 1
    return n


SCAN_PREFIX = 128
"""Characters of a longer text the scanner reads first when the caller may need only its first tokens
(:func:`words` of a bulk INSERT): the rest is scanned only if asked for."""

TOKEN_CACHE_SIZE = 256
"""Query texts whose tokens are remembered (least recently used dropped first): the rewrites, the classifier
and the extended protocol look at the same text several times."""

TOKEN_CACHE_MAX_TOKENS = 512
"""Texts with more tokens are not remembered: a token costs about 130 bytes, so the cache holds at most
TOKEN_CACHE_SIZE x TOKEN_CACHE_MAX_TOKENS of them (about 17 MB), whatever the texts are."""

_token_cache: TextCache[tuple[Token, ...]] = TextCache(TOKEN_CACHE_SIZE)

# PostgreSQL scanner token names whose text is punctuation (given one op token per character).
_PUNCT_NAMES = frozenset(
    (
        "Op",
        "TYPECAST",
        "DOT_DOT",
        "COLON_EQUALS",
        "EQUALS_GREATER",
        "LESS_EQUALS",
        "GREATER_EQUALS",
        "NOT_EQUALS",
    )
)
_COMMENT_NAMES = frozenset(("SQL_COMMENT", "C_COMMENT"))
_PREFIXED = {"XCONST": 1, "BCONST": 1, "USCONST": 2, "UIDENT": 2}  # the prefix's length: X'..', U&'..'


def tokens(sql: str) -> list[Token]:
    """Tokens of ``sql`` (whitespace and comments dropped); see the module's docstring."""
    hit = _token_cache.get(sql)
    if hit is not None:
        return list(hit)
    found = _read_tokens(sql)
    if len(found) <= TOKEN_CACHE_MAX_TOKENS:
        _token_cache.put(sql, tuple(found))
    return found


def iter_tokens(sql: str) -> Iterator[Token]:
    """:func:`tokens` one at a time, for callers that need only the first few: a long text is scanned in
    two goes, its first :data:`SCAN_PREFIX` characters (of which only the tokens the cut cannot have changed
    are used) and then, if the caller reads on, all of it."""
    if len(sql) <= SCAN_PREFIX:
        yield from tokens(sql)
        return
    # only the scanner's tokens: what the approximation makes of a literal the cut leaves open is not final
    head = _read_tokens(sql[:SCAN_PREFIX], rest=False)
    settled = _settled(sql, head)
    if not settled:
        yield from tokens(sql)
        return
    resume = head[settled].start
    yield from head[:settled]
    yield from (t for t in tokens(sql) if t.start >= resume)


def _settled(sql: str, head: list[Token]) -> int:
    """How many of the first tokens of a cut text the rest of the text cannot change: those up to the last
    gap of blanks (or comments) without a newline before another token.  Nothing before such a gap can grow
    into what follows it (``$t`` cut from ``$t$...$t$`` scans as ``$`` and ``t``, but no gap lies between
    them; a literal the cut leaves open runs to the cut), and only a gap with a newline joins two string
    literals (``'a'`` newline ``'b'`` is ``'ab'``)."""
    for k in range(len(head) - 2, -1, -1):
        gap = sql[head[k].end : head[k + 1].start]
        if gap and "\n" not in gap and "\r" not in gap:
            return k + 1
    return 0


def _read_tokens(sql: str, rest: bool = True) -> list[Token]:
    """PostgreSQL's scanner's tokens of ``sql`` up to where it refuses the text (an unterminated literal, junk
    after a number: its error gives the place, and the text is scanned again up to there until it scans) or
    cannot see (a NUL character), and then, if ``rest``, the approximation's tokens from there on."""
    nul = sql.find("\0")
    at = len(sql) if nul < 0 else nul
    raw: list[Any] = []
    while True:
        try:
            raw = pg_scan(sql[:at])
            break
        except ParseError as e:  # an error inside a token (a bad escape) is found again at its start
            where = _error_place(e)
            if where is None:  # no place given (an E'' escape making bad UTF-8, such as \0)
                where = _last_clean_string_start(sql, at)
            at = where if 0 <= where < at else 0
        except UnicodeError:  # a lone surrogate (text decoded with surrogateescape)
            at, raw = 0, []
            break
    out = _shaped(sql, raw)
    if rest and at < len(sql):
        out.extend(Token(t.kind, t.text, t.start + at, t.end + at) for t in approximate_tokens(sql[at:]))
    return out


def _error_place(e: ParseError) -> int | None:
    """Where in the text the scanner's error is (a character offset), or None when it names no place."""
    return e.args[1] if len(e.args) > 1 and isinstance(e.args[1], int) else None


def _last_clean_string_start(sql: str, at: int) -> int:
    """Where the scanner stops when it gives no place for its error: the start of the string literal that
    makes it (the last string start before which ``sql[:at]`` scans without such an error), found by
    bisection over the string literals' starts (the error comes as soon as the bad literal ends, so a cut
    before its start never raises it, a cut after its end always does)."""
    starts = [0] + [t.start for t in approximate_tokens(sql[:at]) if t.kind == "string"]
    lo, hi = 0, len(starts) - 1  # starts[lo] is known clean
    while lo < hi:
        mid = (lo + hi + 1) // 2
        try:
            pg_scan(sql[: starts[mid]])
            clean = True
        except ParseError as e:
            # another error, one with a place (a literal the cut leaves open), is not the one sought
            clean = _error_place(e) is not None
        except UnicodeError:
            clean = False
        if clean:
            lo = mid
        else:
            hi = mid - 1
    return starts[lo]


def _shaped(sql: str, raw: list[Any]) -> list[Token]:
    """The scanner's tokens in our shape (see the module's docstring)."""
    out: list[Token] = []
    append = out.append
    for start, last, name, _ in raw:
        end = last + 1
        if name in _COMMENT_NAMES:
            continue
        text = sql[start:end]
        if name in _PUNCT_NAMES or name[:6] == "ASCII_":
            if end - start == 1:
                append(Token("op", text, start, end))
            else:
                out.extend(Token("op", c, start + k, start + k + 1) for k, c in enumerate(text))
        elif name == "IDENT":
            append(Token("ident" if text[0] == '"' else "word", text, start, end))
        elif name == "SCONST":
            append(Token("string", text, start, end))
        elif name == "ICONST" or name == "FCONST":
            append(Token("number", text, start, end))
        elif name == "PARAM":
            append(Token("param", text, start, end))
        elif name in _PREFIXED:
            cut = start + _PREFIXED[name]
            append(Token("word", sql[start], start, start + 1))
            if cut - start == 2:
                append(Token("op", "&", start + 1, cut))
            append(Token("ident" if name == "UIDENT" else "string", sql[cut:end], cut, end))
        else:  # a keyword (reserved or not: a word either way)
            append(Token("word", text, start, end))
    return out


def approximate_tokens(sql: str) -> Iterator[Token]:
    """The fallback tokenizer (see the module's docstring): unterminated literals run to the end."""
    prev: Token | None = None
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c.isspace():
            m = _SPACE.match(sql, i)
            i = m.end() if m else i + 1
        elif c == "-" and sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j + 1
        elif c == "/" and sql.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if sql.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif sql.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            i = j
        elif c == "'":
            j = _skip_quoted(sql, i, "'")
            yield (prev := Token("string", sql[i:j], i, j))
            i = j
        elif c in "eE" and i + 1 < n and sql[i + 1] == "'":
            j = _skip_escape_string(sql, i + 1)
            yield (prev := Token("string", sql[i:j], i, j))
            i = j
        elif c == '"':
            j = _skip_quoted(sql, i, '"')
            yield (prev := Token("ident", sql[i:j], i, j))
            i = j
        elif c == "$":
            m = _PARAM.match(sql, i)
            if m:
                yield (prev := Token("param", m.group(0), i, m.end()))
                i = m.end()
                continue
            m = _DOLLAR_TAG.match(sql, i)
            if m and not (prev is not None and prev.end == i and prev.kind == "word"):
                close = sql.find(m.group(0), m.end())
                j = n if close < 0 else close + len(m.group(0))
                yield (prev := Token("string", sql[i:j], i, j))
                i = j
                continue
            yield (prev := Token("op", c, i, i + 1))
            i += 1
        elif c.isalpha() or c == "_" or ord(c) > 127:
            m = _WORD.match(sql, i)
            j = m.end() if m else i + 1
            while j < n and ord(sql[j]) > 127:
                j += 1
            yield (prev := Token("word", sql[i:j], i, j))
            i = j
        elif c.isdigit():
            j = i
            while j < n and (sql[j].isalnum() or sql[j] == "."):
                j += 1
            yield (prev := Token("number", sql[i:j], i, j))
            i = j
        else:
            yield (prev := Token("op", c, i, i + 1))
            i += 1


def split_statements(sql: str) -> list[str]:
    """Split on top-level semicolons; empty statements are dropped (as PostgreSQL does)."""
    parts: list[str] = []
    start = 0
    for t in tokens(sql):
        if t.kind == "op" and t.text == ";":
            parts.append(sql[start : t.start])
            start = t.end
    parts.append(sql[start:])
    return [p for p in parts if tokens(p)]


def words(sql: str, limit: int = 8) -> list[str]:
    """The first ``limit`` tokens, keywords upper-cased (quoted identifiers keep their text)."""
    out: list[str] = []
    for t in iter_tokens(sql):
        if len(out) >= limit:
            break
        out.append(t.text.upper() if t.kind == "word" else t.text)
    return out


def has_word(sql: str, word: str) -> bool:
    word = word.upper()
    return any(t.kind == "word" and t.text.upper() == word for t in tokens(sql))


def max_param(sql: str) -> int:
    return max((int(t.text[1:]) for t in tokens(sql) if t.kind == "param"), default=0)


def substitute_params(sql: str, render: Callable[[int], str]) -> str:
    """Replace every ``$n`` marker outside literals with ``render(n)``."""
    out: list[str] = []
    pos = 0
    for t in tokens(sql):
        if t.kind == "param":
            out.append(sql[pos : t.start])
            out.append(render(int(t.text[1:])))
            pos = t.end
    out.append(sql[pos:])
    return "".join(out)


def quote_literal(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def quote_ident(s: str) -> str:
    return '"' + s.replace('"', '""') + '"'


def unquote_ident(text: str) -> str:
    """An identifier as PostgreSQL folds it: quoted keeps case, bare is lower-cased."""
    if text.startswith('"'):
        return text[1:-1].replace('""', '"')
    return text.lower()


def string_value(text: str) -> str:
    """The value of a string token ('...', E'...', $$...$$)."""
    if text.startswith("'"):
        return text[1:-1].replace("''", "'")
    if text[:1] in "eE":
        body = text[2:-1].replace("''", "'")
        return body.encode("latin-1", "backslashreplace").decode("unicode_escape")
    m = _DOLLAR_TAG.match(text)
    if m:
        return text[m.end() : len(text) - len(m.group(0))]
    return text


def split_with_offsets(sql: str) -> list[tuple[int, str]]:
    """Like :func:`split_statements` but with each statement's offset in ``sql``."""
    out: list[tuple[int, str]] = []
    start = 0
    empty = True  # no token since the last semicolon
    for t in iter_tokens(sql):
        if t.kind == "op" and t.text == ";":
            if not empty:
                out.append((start, sql[start : t.start]))
            start = t.end
            empty = True
        else:
            empty = False
    if not empty:
        out.append((start, sql[start:]))
    return out


def apply_edits(sql: str, edits: list[tuple[int, int, str]]) -> str:
    """``sql`` with each (start, end, replacement) span replaced, in order; a span overlapping an earlier one is dropped."""
    out: list[str] = []
    pos = 0
    for start, end, rep in sorted(edits):
        if start < pos:
            continue
        out.append(sql[pos:start])
        out.append(rep)
        pos = end
    out.append(sql[pos:])
    return "".join(out)


def top_level_items(
    toks: list[Token], start: int, end: int, keep_empty: bool = False
) -> list[tuple[int, int]]:
    """Token ranges [a, b) of the comma-separated items of ``toks[start:end]`` outside parentheses and
    brackets (``ARRAY[1, 2]``); empty items are left out unless ``keep_empty`` (a call's arguments: ``f(a,,b)``
    then shows an empty range)."""
    items: list[tuple[int, int]] = []
    depth = 0
    a = start
    for j in range(start, end):
        t = toks[j].text
        if t in ("(", "["):
            depth += 1
        elif t in (")", "]"):
            depth -= 1
        elif t == "," and depth == 0:
            if keep_empty or a < j:
                items.append((a, j))
            a = j + 1
    if a < end or (keep_empty and items):
        items.append((a, end))
    return items


def table_list(toks: list[Token], k: int) -> tuple[list[tuple[int, int]], int]:
    """``[ONLY] name [*], ...`` from ``toks[k]`` (LOCK, TRUNCATE): the token range [a, b] of each
    (qualified) name, and the index of the first token after the list."""
    names: list[tuple[int, int]] = []
    n = len(toks)
    while k < n:
        if toks[k].kind == "word" and toks[k].text.upper() == "ONLY":
            k += 1
        if k >= n or toks[k].kind not in ("word", "ident"):
            break
        start = k
        while k + 2 < n and toks[k + 1].text == "." and toks[k + 2].kind in ("word", "ident"):
            k += 2
        names.append((start, k))
        k += 1
        if k < n and toks[k].text == "*":
            k += 1
        if k < n and toks[k].text == ",":
            k += 1
            continue
        break
    return names, k


def words_at(toks: list[Token], i: int, *expect: str) -> bool:
    """Whether the tokens from ``toks[i]`` are the key words ``expect`` (upper case), in order."""
    return all(i + k < len(toks) and toks[i + k].kind == "word" and toks[i + k].text.upper() == w
               for k, w in enumerate(expect))  # fmt: skip


def closing_paren(toks: list[Token], i: int) -> int | None:
    """Index of the parenthesis closing the one at ``toks[i]`` (None if it is not closed)."""
    depth = 0
    for j in range(i, len(toks)):
        if toks[j].text == "(":
            depth += 1
        elif toks[j].text == ")":
            depth -= 1
            if depth == 0:
                return j
    return None
