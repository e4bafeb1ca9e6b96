"""PostgreSQL's tokenizer for the authentication files (pg_hba.conf, pg_ident.conf).

Follows ``tokenize_auth_file``/``next_token``/``next_field_expand`` in PostgreSQL 16's
``src/backend/libpq/hba.c``:

* a line is split into *fields* separated by blanks (space, tab, CR); a field is a
  comma-separated list of *tokens* (``a,b, c`` is one field of three tokens, ``a ,b``
  is two fields);
* double quotes protect blanks, commas and ``#``; ``""`` inside quotes is a literal
  quote; a token whose first character is a quote is "quoted" and therefore never a
  keyword (``"all"`` is a database called all);
* ``#`` starts a comment, a trailing backslash continues the line;
* ``@file`` (unquoted) is replaced by the tokens of that file, relative paths being
  relative to the including file's directory;
* a line of exactly two fields whose first token is ``include``,
  ``include_if_exists`` or ``include_dir`` splices in other files (PG16).

Errors never raise: they are attached to the line (``TokenizedLine.err_msg``), exactly
as PostgreSQL does, so one bad line rejects the whole file but every problem is
reported and ``pg_hba_file_rules`` can show them.  Only the top-level file failing to
open raises :class:`OSError` (PostgreSQL cannot load anything either).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from pgtls.config.authregex import AuthRegex, AuthRegexError, compile_are

# MAX_TOKEN in hba.c is 256 bytes including the terminating NUL.
MAX_TOKEN_LENGTH = 255
# CONF_FILE_MAX_DEPTH in conffiles.h: guards against include loops.
MAX_INCLUDE_DEPTH = 10
# Not in PostgreSQL (it reads lines of any length); bounds memory on hostile files.
MAX_LINE_LENGTH = 1 << 20

_BLANKS = " \t\r"


@dataclass(frozen=True)
class AuthToken:
    """One token of a field; ``quoted`` is PostgreSQL's initial-quote flag."""

    string: str
    quoted: bool = False
    regex: AuthRegex | None = field(default=None, compare=False, repr=False)

    def is_keyword(self, keyword: str) -> bool:
        return not self.quoted and self.string == keyword

    @property
    def is_member_check(self) -> bool:
        return not self.quoted and self.string.startswith("+")

    @property
    def is_regex(self) -> bool:
        return self.regex is not None


@dataclass
class TokenizedLine:
    fields: list[list[AuthToken]]
    file_name: str
    line_num: int
    raw_line: str
    err_msg: str | None = None


def absolute_config_location(location: str, calling_file: str) -> str:
    """AbsoluteConfigLocation(): relative names are relative to the including file."""
    if os.path.isabs(location):
        return os.path.normpath(location)
    return os.path.normpath(os.path.join(os.path.dirname(calling_file), location))


def next_token(line: str, pos: int) -> tuple[str | None, int, bool, bool, str | None]:
    """Read one token from ``line`` at ``pos``.

    Returns ``(token or None, new_pos, initial_quote, terminating_comma, error)``.
    """
    n = len(line)
    while pos < n and (line[pos] in _BLANKS or line[pos] == ","):
        pos += 1
    buf: list[str] = []
    in_quote = was_quote = saw_quote = False
    initial_quote = terminating_comma = False
    while pos < n and (line[pos] not in _BLANKS or in_quote):
        c = line[pos]
        if c == "#" and not in_quote:
            pos = n
            break
        if len(buf) >= MAX_TOKEN_LENGTH:
            return None, n, initial_quote, False, "authentication file token too long"
        if c == "," and not in_quote:
            terminating_comma = True
            break
        if c != '"' or was_quote:
            buf.append(c)
        if in_quote and c == '"':
            was_quote = not was_quote
        else:
            was_quote = False
        if c == '"':
            in_quote = not in_quote
            saw_quote = True
            if not buf:
                initial_quote = True
        pos += 1
    if saw_quote or buf:
        return "".join(buf), pos, initial_quote, terminating_comma, None
    return None, pos, initial_quote, terminating_comma, None


class _Tokenizer:
    def __init__(self, log: list[str] | None) -> None:
        self.log = log if log is not None else []

    # --- files -------------------------------------------------------------------------

    def open(self, path: str, depth: int) -> tuple[str | None, str | None, int]:
        """Returns (text, err_msg, errno)."""
        if depth > MAX_INCLUDE_DEPTH:
            return None, f'could not open file "{path}": maximum nesting depth exceeded', 0
        try:
            with open(path, "rb") as f:
                data = f.read(64 * MAX_LINE_LENGTH)
        except IsADirectoryError as e:
            return None, f'could not read file "{path}": {os.strerror(e.errno or 21)}', e.errno or 21
        except OSError as e:
            return None, f'could not open file "{path}": {os.strerror(e.errno or 0)}', e.errno or 0
        return data.decode("utf-8", errors="replace"), None, 0

    def file(self, path: str, text: str, out: list[TokenizedLine], depth: int) -> None:
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        i = 0
        line_number = 1
        while i < len(lines):
            buf = ""
            continuations = 0
            last_backslash = 0
            while i < len(lines):
                buf += lines[i].rstrip("\r\n")
                i += 1
                if len(buf) > last_backslash and buf.endswith("\\"):
                    buf = buf[:-1]
                    last_backslash = len(buf)
                    continuations += 1
                    continue
                break
            if len(buf) > MAX_LINE_LENGTH:
                buf = buf[:MAX_LINE_LENGTH]
            self.line(path, buf, line_number, out, depth)
            line_number += continuations + 1

    def line(self, path: str, buf: str, line_number: int, out: list[TokenizedLine], depth: int) -> None:
        text = buf.split("\0", 1)[0]  # C strings stop at NUL
        fields: list[list[AuthToken]] = []
        err: str | None = None
        pos = 0
        while pos < len(text) and err is None:
            toks, pos, err = self.field(path, text, pos, depth)
            if toks:
                fields.append(toks)
        if not fields and err is None:
            return
        if err is None and len(fields) == 2:
            first, second = fields[0][0].string, fields[1][0].string
            if first in ("include", "include_if_exists"):
                err = self.include(path, second, out, depth + 1, first == "include_if_exists")
                if err is None:
                    return
            elif first == "include_dir":
                err = self.include_dir(path, second, out, depth)
                if err is None:
                    return
        out.append(TokenizedLine(fields, path, line_number, text, err))

    def field(self, path: str, text: str, pos: int, depth: int) -> tuple[list[AuthToken], int, str | None]:
        tokens: list[AuthToken] = []
        err: str | None = None
        while True:
            tok, pos, initial_quote, comma, err = next_token(text, pos)
            if err is not None:
                self.log.append(f'authentication file token too long, skipping: "{text[:MAX_TOKEN_LENGTH]}"')
            if tok is None:
                break
            if not initial_quote and tok.startswith("@") and len(tok) > 1:
                err = self.expand(tokens, path, tok[1:], depth + 1)
            else:
                tokens.append(AuthToken(tok, initial_quote))
            if not comma or err is not None:
                break
        return tokens, pos, err

    # --- inclusion ---------------------------------------------------------------------

    def expand(self, tokens: list[AuthToken], outer: str, inc: str, depth: int) -> str | None:
        """``@file``: append every token of every line of the file to ``tokens``."""
        full = absolute_config_location(inc, outer)
        text, err, _ = self.open(full, depth)
        if text is None:
            self.log.append(err or "")
            return err
        inc_lines: list[TokenizedLine] = []
        self.file(full, text, inc_lines, depth)
        for tl in inc_lines:
            if tl.err_msg:
                return tl.err_msg
            for f in tl.fields:
                tokens.extend(f)
        return None

    def include(
        self, outer: str, inc: str, out: list[TokenizedLine], depth: int, missing_ok: bool
    ) -> str | None:
        full = absolute_config_location(inc, outer)
        text, err, errno_ = self.open(full, depth)
        if text is None:
            if missing_ok and errno_ == 2:  # ENOENT
                self.log.append(f'skipping missing authentication file "{full}"')
                return None
            self.log.append(err or "")
            return err
        self.file(full, text, out, depth)
        return None

    def include_dir(self, outer: str, dirname: str, out: list[TokenizedLine], depth: int) -> str | None:
        directory = absolute_config_location(dirname, outer)
        try:
            names = os.listdir(directory)
        except OSError as e:
            self.log.append(f'could not open directory "{directory}": {os.strerror(e.errno or 0)}')
            return f'could not open directory "{directory}"'
        files: list[str] = []
        for name in names:
            if name.startswith(".") or len(name) < 6 or not name.endswith(".conf"):
                continue
            full = os.path.join(directory, name)
            try:
                if os.path.isdir(full):
                    continue
            except OSError:
                return f'could not stat file "{full}"'
            files.append(full)
        errors: list[str] = []
        for full in sorted(files):
            err = self.include(outer, full, out, depth + 1, False)
            if err:
                errors.append(err)
        return "\n".join(errors) if errors else None


def tokenize_file(path: str | Path, log: list[str] | None = None) -> list[TokenizedLine]:
    """Tokenize an authentication file and everything it includes.

    Raises :class:`OSError` only when ``path`` itself cannot be read; messages that
    PostgreSQL would LOG without failing (e.g. a skipped ``include_if_exists``) are
    appended to ``log``.
    """
    name = os.path.abspath(str(path))
    with open(name, "rb") as f:
        text = f.read(64 * MAX_LINE_LENGTH).decode("utf-8", errors="replace")
    out: list[TokenizedLine] = []
    _Tokenizer(log).file(name, text, out, 0)
    return out


def tokenize_text(
    text: str, file_name: str = "pg_hba.conf", log: list[str] | None = None
) -> list[TokenizedLine]:
    """Tokenize a file's contents given as a string (includes resolve next to ``file_name``)."""
    out: list[TokenizedLine] = []
    _Tokenizer(log).file(file_name, text, out, 0)
    return out


def compile_auth_regex(token: AuthToken) -> tuple[AuthToken, str | None]:
    """regcomp_auth_token(): a token starting with ``/`` is a regular expression.

    PostgreSQL's own ARE syntax and semantics (``^``/``$`` only at the ends of the string, ``.``
    and ``[^x]`` match a newline, C-locale classes, bytes), matched in linear time: see
    :mod:`pgtls.config.authregex`.  A pattern PostgreSQL refuses gets PostgreSQL's message; one
    pgtls cannot match exactly like PostgreSQL (back references, lookaround ...) is refused too.
    """
    if not token.string.startswith("/"):
        return token, None
    try:
        rx = compile_are(token.string[1:])
    except AuthRegexError as e:
        return token, f'invalid regular expression "{token.string[1:]}": {e.message}'
    return AuthToken(token.string, token.quoted, rx), None
