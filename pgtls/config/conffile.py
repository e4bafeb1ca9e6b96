"""postgresql.conf syntax: the lexer, the line parser and the include directives.

A faithful port of PostgreSQL's ``src/backend/utils/misc/guc-file.l`` (PG 15:
``ParseConfigFile``, ``ParseConfigFp``, ``ParseConfigDirectory``,
``DeescapeQuotedString``, ``AbsoluteConfigLocation``):

* tokens are flex's: the longest match wins, ties go to the earlier rule
  (ID, QUALIFIED_ID, STRING, UNQUOTED_STRING, INTEGER, REAL, ``=``); so
  ``ssl_cert_file = server.crt`` is a syntax error exactly as in PostgreSQL
  (``server.crt`` is a QUALIFIED_ID, which is not a value token) and
  ``'1.5GB'`` must be quoted;
* a line is ``name [=] value`` plus an optional comment; after a syntax error
  the rest of the line is skipped and parsing goes on (at most 100 errors a
  file); errors carry PostgreSQL's message texts and line numbers, including
  its quirk of reporting "line 0" for an unterminated last line;
* ``include``, ``include_if_exists`` and ``include_dir`` are processed where
  they stand, relative to the including file's directory, nested at most
  :data:`CONF_FILE_MAX_DEPTH` deep.

Deviation: the file must be UTF-8 (pgtls runs with ``server_encoding`` UTF8);
an invalid byte sequence is reported like PostgreSQL reports one in text
input. PostgreSQL itself copies such bytes blindly.

Nothing here knows which parameters exist; that is :mod:`pgtls.config.settings`.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from pgtls.errors import CONFIG_FILE_ERROR, INVALID_PARAMETER_VALUE, SYNTAX_ERROR

# guc-file.l's CONF_FILE_MAX_DEPTH: include nesting limit (a loop guard, not a resource limit).
CONF_FILE_MAX_DEPTH = 10
# ParseConfigFp gives up on a file after this many syntax errors.
MAX_SYNTAX_ERRORS_PER_FILE = 100
PROGRAM_LIMIT_EXCEEDED = "54000"
UNDEFINED_FILE = "58P01"
IO_ERROR = "58030"


class ConfigError(Exception):
    """A configuration problem, PostgreSQL-worded.

    ``message`` is PostgreSQL's primary message text, unchanged (e.g.
    ``invalid value for parameter "port": "abc"``).  ``filename``/``lineno``
    locate the offending line (for a failed include: the include directive).
    ``str(e)`` is the message, followed by `` in file "%s" line %u`` when the
    message itself does not already name the place.  At server start
    PostgreSQL logs the message (LOG, plus DETAIL/HINT) and then
    :attr:`fatal_message` (FATAL).
    """

    def __init__(
        self,
        message: str,
        filename: str | None = None,
        lineno: int | None = None,
        *,
        sqlstate: str = CONFIG_FILE_ERROR,
        detail: str | None = None,
        hint: str | None = None,
        located: bool = False,
        config_file: str | None = None,
    ) -> None:
        self.message = message
        self.filename = filename
        self.lineno = lineno
        self.sqlstate = sqlstate
        self.detail = detail
        self.hint = hint
        self.located = located  # message already names file and line
        self.config_file = config_file  # the main file, for "contains errors"
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.located or self.filename is None:
            return self.message
        return f'{self.message} in file "{self.filename}" line {self.lineno}'

    @property
    def fatal_message(self) -> str | None:
        """The FATAL line PostgreSQL writes after the message when the server cannot start."""
        if self.config_file is None:
            return None
        return f'configuration file "{self.config_file}" contains errors'


@dataclass(frozen=True)
class ConfigEntry:
    """One ``name = value`` line: name as written, value with quotes and escapes removed."""

    name: str
    value: str
    filename: str
    lineno: int


@dataclass
class ParseResult:
    """Everything one parse produced: entries in file order, errors, and LOG-only lines."""

    entries: list[ConfigEntry] = field(default_factory=list)
    errors: list[ConfigError] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


# --- the lexer (guc-file.l's definitions) ---

EOL, ID, QUALIFIED_ID, STRING, UNQUOTED_STRING, INTEGER, REAL, EQUALS, ERROR = range(9)

_LETTER = "A-Za-z_\u0080-\U0010ffff"
_LETTER_OR_DIGIT = "A-Za-z_0-9\u0080-\U0010ffff"
_ID = f"[{_LETTER}][{_LETTER_OR_DIGIT}]*"
# Rule order matters: on equal length the earlier rule wins, as in flex.
_RULES: tuple[tuple[int, re.Pattern[str]], ...] = (
    (ID, re.compile(_ID)),
    (QUALIFIED_ID, re.compile(rf"{_ID}\.{_ID}")),
    (STRING, re.compile(r"'(?:[^'\\\n]|\\[^\n]|'')*'")),
    (UNQUOTED_STRING, re.compile(f"[{_LETTER}](?:[{_LETTER_OR_DIGIT}]|[-._:/])*")),
    (INTEGER, re.compile(r"[-+]?(?:0x[0-9a-fA-F]+|[0-9]+)[a-zA-Z]*")),
    (REAL, re.compile(r"[-+]?[0-9]*\.[0-9]*(?:[Ee][-+]?[0-9]+)?")),
)
_SPACE = re.compile(r"[ \t\r]+")
_COMMENT = re.compile(r"#[^\n]*")
_VALUE_TOKENS = frozenset({ID, STRING, INTEGER, REAL, UNQUOTED_STRING})


class _Lexer:
    """yylex(): returns (token, text); token None at end of input. Counts lines like ConfigFileLineno."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.lineno = 1
        # If a STRING match failed from some quote, every quote before the end of that line is a
        # backslash-escaped one, so no STRING can start there either: skip retrying (keeps lexing linear).
        self._no_string_before = -1

    def next(self) -> tuple[int | None, str]:
        text = self.text
        while True:
            if self.pos >= len(text):
                return None, ""
            ch = text[self.pos]
            if ch == "\n":
                self.pos += 1
                self.lineno += 1
                return EOL, "\n"
            m = _SPACE.match(text, self.pos) or _COMMENT.match(text, self.pos)
            if m:
                self.pos = m.end()
                continue
            break
        best_token, best_end = ERROR, self.pos + 1
        for token, pattern in _RULES:
            if token == STRING and (ch != "'" or self.pos < self._no_string_before):
                continue
            m = pattern.match(text, self.pos)
            if m is None:
                if token == STRING:
                    eol = text.find("\n", self.pos)
                    self._no_string_before = len(text) if eol < 0 else eol
                continue
            if m.end() > best_end or (best_token == ERROR and m.end() >= best_end):
                best_token, best_end = token, m.end()
        if best_token == ERROR and ch == "=":
            best_token = EQUALS
        start, self.pos = self.pos, best_end
        return best_token, text[start:best_end]


def deescape_quoted_string(s: str) -> bytes:
    """DeescapeQuotedString: strip the quotes, undo '' and backslash escapes (octal gives a raw byte)."""
    out = bytearray()
    body = s[1:-1]
    i = 0
    n = len(body)
    simple = {"b": b"\b", "f": b"\f", "n": b"\n", "r": b"\r", "t": b"\t"}
    while i < n:
        c = body[i]
        if c == "\\" and i + 1 < n:
            i += 1
            c = body[i]
            if c in simple:
                out += simple[c]
            elif "0" <= c <= "7":
                k = 0
                val = 0
                while k < 3 and i + k < n and "0" <= body[i + k] <= "7":
                    val = (val << 3) + ord(body[i + k]) - ord("0")
                    k += 1
                i += k - 1
                out.append(val & 0xFF)
            else:
                out += c.encode()
        elif c == "'" and i + 1 < n and body[i + 1] == "'":
            i += 1
            out += b"'"
        else:
            out += c.encode("utf-8", "surrogatepass")
        i += 1
    # PostgreSQL's value is a C string: an octal \0 ends it.
    nul = out.find(0)
    return bytes(out if nul < 0 else out[:nul])


def _utf8_mblen(b: int) -> int:
    if b & 0x80 == 0:
        return 1
    if b & 0xE0 == 0xC0:
        return 2
    if b & 0xF0 == 0xE0:
        return 3
    if b & 0xF8 == 0xF0:
        return 4
    return 1


def invalid_encoding_message(data: bytes, start: int) -> str:
    """report_invalid_encoding's text for the bad sequence at ``data[start:]``."""
    length = min(_utf8_mblen(data[start]), len(data) - start)
    shown = " ".join(f"0x{b:02x}" for b in data[start : start + length])
    return f'invalid byte sequence for encoding "UTF8": {shown}'


def _decode(data: bytes, filename: str, lineno: int, *, allow_nul: bool = False) -> str:
    """UTF-8 without NUL, or ConfigError located at ``lineno`` (plus newlines before the bad byte)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        bad = e.start
    else:
        if allow_nul or "\x00" not in text:
            return text
        bad = data.index(0)
    raise ConfigError(
        invalid_encoding_message(data, bad),
        filename,
        lineno + data.count(b"\n", 0, bad),
        sqlstate="22021",
    )


# --- file locations ---


def absolute_config_location(location: str, calling_file: str | None, data_dir: str | None = None) -> str:
    """AbsoluteConfigLocation: relative to the including file's directory (or the data dir), canonical."""
    if os.path.isabs(location):
        return location
    base = os.path.dirname(calling_file) if calling_file is not None else (data_dir or os.getcwd())
    return _canonicalize(os.path.join(base, location))


def _canonicalize(path: str) -> str:
    # canonicalize_path: drop "." and trailing "/", resolve ".." lexically (never follows symlinks).
    return os.path.normpath(path) if path else path


# --- the parser ---


class _Parser:
    def __init__(self, result: ParseResult) -> None:
        self.result = result

    def error(self, err: ConfigError) -> None:
        self.result.errors.append(err)

    def parse_file(
        self,
        config_file: str,
        strict: bool,
        calling_file: str | None,
        calling_lineno: int,
        depth: int,
    ) -> bool:
        """ParseConfigFile."""
        if config_file.strip(" \t\r\n") == "":
            self.error(
                ConfigError(
                    f'empty configuration file name: "{config_file}"',
                    calling_file,
                    calling_lineno,
                    sqlstate=INVALID_PARAMETER_VALUE,
                )
            )
            return False
        if depth > CONF_FILE_MAX_DEPTH:
            self.error(
                ConfigError(
                    f'could not open configuration file "{config_file}": maximum nesting depth exceeded',
                    calling_file,
                    calling_lineno,
                    sqlstate=PROGRAM_LIMIT_EXCEEDED,
                )
            )
            return False
        abs_path = absolute_config_location(config_file, calling_file)
        if calling_file is not None and abs_path == calling_file:
            self.error(
                ConfigError(
                    f'configuration file recursion in "{calling_file}"',
                    calling_file,
                    calling_lineno,
                    sqlstate=INVALID_PARAMETER_VALUE,
                )
            )
            return False
        try:
            with open(abs_path, "rb") as f:
                data = f.read()
        except IsADirectoryError:
            # fopen() succeeds on a directory; flex's read() then fails.
            self.error(
                ConfigError(
                    f'input in flex scanner failed at file "{abs_path}" line 1',
                    abs_path,
                    1,
                    located=True,
                    sqlstate=IO_ERROR,
                )
            )
            return False
        except OSError as e:
            if not strict:
                self.result.log.append(f'skipping missing configuration file "{abs_path}"')
                return True
            sqlstate = UNDEFINED_FILE if isinstance(e, FileNotFoundError) else IO_ERROR
            self.error(
                ConfigError(
                    f'could not open configuration file "{abs_path}": {e.strerror}',
                    calling_file,
                    calling_lineno,
                    sqlstate=sqlstate,
                )
            )
            return False
        return self.parse_text(data, abs_path, depth)

    def parse_text(self, data: bytes, config_file: str, depth: int) -> bool:
        """ParseConfigFp."""
        try:
            text = _decode(data, config_file, 1, allow_nul=False)
        except ConfigError as e:
            self.error(e)
            return False
        ok = True
        errorcount = 0
        lex = _Lexer(text)
        while True:
            token, tok_text = lex.next()
            if token is None:
                break
            if token == EOL:
                continue
            if token in (ID, QUALIFIED_ID):
                opt_name = tok_text
                token, tok_text = lex.next()
                if token == EQUALS:
                    token, tok_text = lex.next()
                if token in _VALUE_TOKENS:
                    raw, quoted = tok_text, token == STRING
                    token, tok_text = lex.next()
                    if token is None or token == EOL:
                        if token is None:
                            lex.lineno += 1  # treat EOF like \n for line numbering (PG bug 4752)
                        lineno = lex.lineno - 1
                        if not self._line(opt_name, raw, quoted, config_file, lineno, depth):
                            ok = False
                        if token is None:
                            break
                        continue
            # parse_error: the offending token is (token, tok_text)
            if token == EOL or token is None:
                line = lex.lineno - 1
                msg = f'syntax error in file "{config_file}" line {line}, near end of line'
            else:
                line = lex.lineno
                msg = f'syntax error in file "{config_file}" line {line}, near token "{tok_text}"'
            self.error(ConfigError(msg, config_file, line, sqlstate=SYNTAX_ERROR, located=True))
            ok = False
            errorcount += 1
            if errorcount >= MAX_SYNTAX_ERRORS_PER_FILE:
                self.error(
                    ConfigError(
                        f'too many syntax errors found, abandoning file "{config_file}"',
                        config_file,
                        line,
                        sqlstate=PROGRAM_LIMIT_EXCEEDED,
                    )
                )
                break
            while token != EOL and token is not None:
                token, _ = lex.next()
            if token is None:
                break
        return ok

    def _line(self, name: str, raw: str, quoted: bool, config_file: str, lineno: int, depth: int) -> bool:
        """One complete ``name = value`` line: a directive, processed now, or an entry."""
        if quoted:
            try:
                value = _decode(deescape_quoted_string(raw), config_file, lineno, allow_nul=True)
            except ConfigError as e:
                self.error(e)
                return False
        else:
            value = raw
        return self._directive(name, value, config_file, lineno, depth)

    def _directive(self, name: str, value: str, config_file: str, lineno: int, depth: int) -> bool:
        lname = name.lower()
        if lname == "include_dir":
            return self.parse_directory(value, config_file, lineno, depth + 1)
        if lname == "include_if_exists":
            return self.parse_file(value, False, config_file, lineno, depth + 1)
        if lname == "include":
            return self.parse_file(value, True, config_file, lineno, depth + 1)
        self.result.entries.append(ConfigEntry(name, value, config_file, lineno))
        return True

    def parse_directory(self, includedir: str, calling_file: str, calling_lineno: int, depth: int) -> bool:
        """ParseConfigDirectory: every ``*.conf`` (not starting with ".") in byte order of the full path."""
        if includedir.strip(" \t\r\n") == "":
            self.error(
                ConfigError(
                    f'empty configuration directory name: "{includedir}"',
                    calling_file,
                    calling_lineno,
                    sqlstate=INVALID_PARAMETER_VALUE,
                )
            )
            return False
        directory = absolute_config_location(includedir, calling_file)
        try:
            names = os.listdir(directory)
        except OSError as e:
            sqlstate = UNDEFINED_FILE if isinstance(e, FileNotFoundError) else IO_ERROR
            self.error(
                ConfigError(
                    f'could not open configuration directory "{directory}": {e.strerror}',
                    calling_file,
                    calling_lineno,
                    sqlstate=sqlstate,
                )
            )
            return False
        files: list[str] = []
        for name in names:
            if len(name) < 6 or name.startswith(".") or not name.endswith(".conf"):
                continue
            filename = _canonicalize(os.path.join(directory, name))
            try:
                st = os.stat(filename)
            except OSError as e:
                # Most likely removed between the listing and now.
                self.error(
                    ConfigError(
                        f'could not stat file "{filename}": {e.strerror}',
                        calling_file,
                        calling_lineno,
                        sqlstate=UNDEFINED_FILE,
                    )
                )
                return False
            if not stat.S_ISDIR(st.st_mode):
                files.append(filename)
        files.sort(key=os.fsencode)
        for filename in files:
            if not self.parse_file(filename, True, calling_file, calling_lineno, depth):
                return False
        return True


def read_config_file(
    path: Path | str,
    *,
    strict: bool = True,
    result: ParseResult | None = None,
    data_dir: Path | str | None = None,
) -> ParseResult:
    """Parse ``path`` and its includes the way PostgreSQL does; never raises.

    Errors are collected in ``result.errors`` (all of them, as PostgreSQL logs them
    all); a missing file with ``strict=False`` is a LOG line in ``result.log``.
    A relative ``path`` is taken relative to ``data_dir`` (else the working directory).
    """
    result = result if result is not None else ParseResult()
    location = absolute_config_location(
        os.fspath(path), None, None if data_dir is None else os.fspath(data_dir)
    )
    _Parser(result).parse_file(_canonicalize(location), strict, None, 0, 0)
    return result


def parse_config_text(text: str | bytes, filename: str = "postgresql.conf") -> ParseResult:
    """Parse configuration text as if it were the file ``filename`` (includes resolve next to it)."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    result = ParseResult()
    _Parser(result).parse_text(data, filename, 0)
    return result


def parse_config_file(path: Path, *, log: list[str] | None = None) -> list[ConfigEntry]:
    """Entries of ``path`` with includes resolved, in order; raises the first ConfigError.

    LOG-only lines (``skipping missing configuration file ...``) go to ``log`` if given.
    """
    result = read_config_file(path)
    if log is not None:
        log.extend(result.log)
    if result.errors:
        raise result.errors[0]
    return result.entries
