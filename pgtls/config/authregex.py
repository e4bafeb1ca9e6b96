"""PostgreSQL's regular expressions for pg_hba.conf and pg_ident.conf, matched in linear time.

PostgreSQL compiles a ``/regex`` token of pg_hba.conf (user and database fields, PG16) and of
pg_ident.conf (system user) with ``pg_regcomp(..., REG_ADVANCED, C_COLLATION_OID)``: Henry
Spencer's *advanced* regular expressions (ARE), case-sensitive, not newline-sensitive (``.`` and
``[^x]`` match a newline, ``^`` and ``$`` only match at the start and the end of the string), with
the C locale's ASCII-only character classes.  Authentication runs before a database is selected,
so the database encoding is still SQL_ASCII: pattern and subject are matched byte by byte (``.``
matches one byte of a UTF-8 character, ``[[:alpha:]]`` never matches a non-ASCII byte).

This module reads that syntax itself (a port of PostgreSQL 15's ``regc_lex.c`` and of the
``parse``/``parsebranch``/``parseqatom`` functions of ``regcomp.c``) and translates it into RE2
syntax (google-re2, Latin-1 mode, so one byte is one character): matching is then linear in the
subject, whatever the pattern, so no regular expression can stall the server.

The first capture (``\\1`` in pg_ident.conf) is not what a backtracking engine picks: PostgreSQL
first fixes the whole match (leftmost start, then the longest or - for a non-greedy RE - the
shortest end) and then *dissects* it along its subexpression tree, each concatenation giving its
left part the longest (or shortest, if that part is non-greedy) share that still lets the rest
match, alternatives tried in order, iterations as in ``citerdissect``/``creviterdissect``
(``regexec.c``).  :meth:`AuthRegex.first_group` rebuilds PostgreSQL's tree (same node kinds and
greediness flags as ``parseqatom``) and runs that dissection with RE2 answering "does this node
match exactly this slice", which keeps it polynomial.  A work budget (:data:`DISSECT_BUDGET`) bounds
pathological cases: past it the map line fails with PostgreSQL's ``regular expression match for
"..." failed: regular expression is too complex`` where PostgreSQL would have gone on.  Only
pg_ident.conf lines whose PG-USER holds ``\\1`` are dissected; every other match is one RE2 search.

What PostgreSQL accepts but RE2 cannot express is refused when the file is loaded, never matched
differently: back references (``\\1`` inside the pattern), lookahead and lookbehind constraints,
``\\m``/``\\M``/``[[:<:]]``/``[[:>:]]`` (start/end of word), the ``b``/``e`` embedded options
(basic and extended syntax), and nested repetitions RE2 finds too large (``(a{255}){255}``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import re2

# --- PostgreSQL's error texts (src/include/regex/regerrs.h) ----------------------------------------

REG_BADPAT = "invalid regexp (reg version 0.8)"
REG_ECOLLATE = "invalid collating element"
REG_ECTYPE = "invalid character class"
REG_EESCAPE = "invalid escape \\ sequence"
REG_ESUBREG = "invalid backreference number"
REG_EBRACK = "brackets [] not balanced"
REG_EPAREN = "parentheses () not balanced"
REG_EBRACE = "braces {} not balanced"
REG_BADBR = "invalid repetition count(s)"
REG_ERANGE = "invalid character range"
REG_BADRPT = "quantifier operand invalid"
REG_BADOPT = "invalid embedded option"
REG_ETOOBIG = "regular expression is too complex"


class AuthRegexError(Exception):
    """A pattern PostgreSQL refuses (``unsupported`` False: PostgreSQL's own message) or one pgtls
    cannot match exactly like PostgreSQL (``unsupported`` True)."""

    def __init__(self, message: str, unsupported: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.unsupported = unsupported


class AuthRegexMatchError(Exception):
    """A match gave up (PostgreSQL's ``regular expression match for "..." failed: ...``)."""


def _unsupported(what: str) -> AuthRegexError:
    return AuthRegexError(f"pgtls does not support {what}", unsupported=True)


# --- character sets (bytes 0..255; the C locale's ctype) -------------------------------------------

ALL = frozenset(range(256))
_DIGIT = frozenset(range(0x30, 0x3A))
_UPPER = frozenset(range(0x41, 0x5B))
_LOWER = frozenset(range(0x61, 0x7B))
_ALPHA = _UPPER | _LOWER
_ALNUM = _ALPHA | _DIGIT
_GRAPH = frozenset(range(0x21, 0x7F))
CLASSES: dict[str, frozenset[int]] = {
    "alnum": _ALNUM,
    "alpha": _ALPHA,
    "ascii": frozenset(range(0x80)),
    "blank": frozenset(b" \t"),
    "cntrl": frozenset(range(0x20)) | frozenset(range(0x7F, 0xA0)),  # hard-wired in regc_locale.c
    "digit": _DIGIT,
    "graph": _GRAPH,
    "lower": _LOWER,
    "print": _GRAPH | {0x20},
    "punct": _GRAPH - _ALNUM,
    "space": frozenset(b" \t\n\v\f\r"),
    "upper": _UPPER,
    "xdigit": _DIGIT | frozenset(b"ABCDEFabcdef"),
    "word": _ALNUM | {0x5F},
}
_SPACE = CLASSES["space"]

# The collating-element names of regc_locale.c (``[[.space.]]``), case-sensitive.
_CNAMES: dict[str, int] = {
    **{
        n: i
        for i, n in enumerate(
            "NUL SOH STX ETX EOT ENQ ACK BEL BS HT LF VT FF CR SO SI DLE DC1 DC2 DC3 DC4 NAK SYN ETB CAN EM "
            "SUB ESC IS4 IS3 IS2 IS1".split()
        )
    },
    "FS": 28,
    "GS": 29,
    "RS": 30,
    "US": 31,
    "DEL": 127,
    "alert": 7,
    "backspace": 8,
    "tab": 9,
    "newline": 10,
    "vertical-tab": 11,
    "form-feed": 12,
    "carriage-return": 13,
    **{
        n: 32 + i
        for i, n in enumerate(
            "space exclamation-mark quotation-mark number-sign dollar-sign percent-sign ampersand apostrophe "
            "left-parenthesis right-parenthesis asterisk plus-sign comma hyphen period slash zero one two three "
            "four five six seven eight nine colon semicolon less-than-sign equals-sign greater-than-sign "
            "question-mark commercial-at".split()
        )
        if n != "hyphen"
    },
    "hyphen": 45,
    "hyphen-minus": 45,
    "full-stop": 46,
    "solidus": 47,
    "left-square-bracket": 91,
    "backslash": 92,
    "reverse-solidus": 92,
    "right-square-bracket": 93,
    "circumflex": 94,
    "circumflex-accent": 94,
    "underscore": 95,
    "low-line": 95,
    "grave-accent": 96,
    "left-brace": 123,
    "left-curly-bracket": 123,
    "vertical-line": 124,
    "right-brace": 125,
    "right-curly-bracket": 125,
    "tilde": 126,
}
CHR_MAX = 0x7FFFFFFE  # pg_wchar limit of the regex engine
DUPMAX = 255  # _POSIX2_RE_DUP_MAX
INF = -1  # DUPINF


def _cases(c: int) -> set[int]:
    """allcases() in the C locale: ASCII letters only."""
    if 0x41 <= c <= 0x5A:
        return {c, c + 32}
    if 0x61 <= c <= 0x7A:
        return {c, c - 32}
    return {c}


def _set_rx(chars: frozenset[int] | set[int]) -> str:
    if not chars:
        return r"[^\x00-\x{ff}]"  # matches nothing
    if len(chars) == 256:
        return r"[\x00-\x{ff}]"
    ranges: list[tuple[int, int]] = []
    for c in sorted(chars):
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1] = (ranges[-1][0], c)
        else:
            ranges.append((c, c))
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        return f"\\x{{{ranges[0][0]:02x}}}"
    body = "".join(f"\\x{{{a:02x}}}" if a == b else f"\\x{{{a:02x}}}-\\x{{{b:02x}}}" for a, b in ranges)
    return f"[{body}]"


# --- greediness flags of PostgreSQL's subre tree (regguts.h) ---------------------------------------

LONGER, SHORTER, MIXED, CAP = 0o1, 0o2, 0o4, 0o10


def _up(f: int) -> int:
    return (f & (MIXED | CAP)) | (MIXED if (f & LONGER) and (f & SHORTER) else 0)


def _messy(f: int) -> int:
    return f & (MIXED | CAP)


def _pref(f: int) -> int:
    return f & (LONGER | SHORTER)


def _combine(f1: int, f2: int) -> int:
    return _up(f1 | f2) | (_pref(f1) if _pref(f1) else _pref(f2))


def _group(rx: str) -> str:
    return f"(?:{rx})"


def _repeat(rx: str, m: int, n: int) -> str:
    if m == 1 and n == 1:
        return rx
    if m == 0 and n == 0:
        return ""
    if n == INF:
        q = "*" if m == 0 else "+" if m == 1 else f"{{{m},}}"
    elif m == n:
        q = f"{{{m}}}"
    elif m == 0 and n == 1:
        q = "?"
    else:
        q = f"{{{m},{n}}}"
    return _group(rx) + q


@dataclass(eq=False)
class _Node:
    """A subre: ``=`` (plain DFA node), ``.`` (concatenation of two children), ``|`` (alternation),
    ``*`` (iteration, min 0), ``(`` (capture wrapper); ``rx`` is the RE2 text of the whole node."""

    op: str
    flags: int
    rx: str = ""
    capno: int = 0
    children: list[_Node] = field(default_factory=list)
    min: int = 1
    max: int = 1
    matcher: _Matcher | None = None

    def walk(self) -> list[_Node]:
        out = [self]
        for c in self.children:
            out.extend(c.walk())
        return out


# --- the lexer (regc_lex.c, ARE) ------------------------------------------------------------------

# token types
EOS, PLAIN, DIGIT, BACKREF = "EOS", "PLAIN", "DIGIT", "BACKREF"
COLLEL, ECLASS, CCLASS, END = "COLLEL", "ECLASS", "CCLASS", "END"
CCLASSS, CCLASSC, RANGE, LACON = "CCLASSS", "CCLASSC", "RANGE", "LACON"
WBDRY, NWBDRY, SBEGIN, SEND = "WBDRY", "NWBDRY", "SBEGIN", "SEND"
EMPTY = "EMPTY"

L_ERE, L_EBND, L_BRACK, L_CEL, L_ECL, L_CCL, L_Q = "ERE", "EBND", "BRACK", "CEL", "ECL", "CCL", "Q"

_ALNUM_BYTES = _ALNUM
_ALPHA_BYTES = _ALPHA
_HEX = {
    **{c: c - 0x30 for c in _DIGIT},
    **{c: c - 0x41 + 10 for c in b"ABCDEF"},
    **{c: c - 0x61 + 10 for c in b"abcdef"},
}


class _Lexer:
    def __init__(self, pattern: bytes) -> None:
        self.p = pattern
        self.now = 0
        self.lexcon = L_ERE
        self.icase = self.expanded = self.nlstop = self.nlanch = self.quote = False
        self.nexttype: str = EMPTY
        self.nextvalue: int = 0
        self.lasttype: str = EMPTY
        self.nsubexp = 0
        self._prefixes()
        if self.quote:
            self.lexcon = L_Q
        self.next()

    # helpers
    def ateos(self) -> bool:
        return self.now >= len(self.p)

    def have(self, n: int) -> bool:
        return len(self.p) - self.now >= n

    def next1(self, c: str) -> bool:
        return not self.ateos() and self.p[self.now] == ord(c)

    def ret(self, t: str, v: int = 0) -> None:
        self.nexttype, self.nextvalue = t, v

    def see(self, t: str) -> bool:
        return self.nexttype == t

    def _prefixes(self) -> None:
        p = self.p
        if self.have(4) and p[:3] == b"***":
            c = p[3]
            if c == ord("?"):
                raise AuthRegexError(REG_BADPAT)
            if c == ord("="):
                self.quote = True
                self.now = 4
                return
            if c == ord(":"):
                self.now = 4
            else:
                raise AuthRegexError(REG_BADRPT)
        if self.have(3) and p[self.now : self.now + 2] == b"(?" and p[self.now + 2] in _ALPHA_BYTES:
            self.now += 2
            while not self.ateos() and p[self.now] in _ALPHA_BYTES:
                ch = chr(p[self.now])
                if ch == "b":
                    raise _unsupported('embedded option "b" (basic regular expression syntax)')
                if ch == "e":
                    raise _unsupported('embedded option "e" (extended regular expression syntax)')
                if ch == "c":
                    self.icase = False
                elif ch == "i":
                    self.icase = True
                elif ch in "mn":
                    self.nlstop = self.nlanch = True
                elif ch == "p":
                    self.nlstop, self.nlanch = True, False
                elif ch == "q":
                    self.quote = True
                elif ch == "s":
                    self.nlstop = self.nlanch = False
                elif ch == "t":
                    self.expanded = False
                elif ch == "w":
                    self.nlstop, self.nlanch = False, True
                elif ch == "x":
                    self.expanded = True
                else:
                    raise AuthRegexError(REG_BADOPT)
                self.now += 1
            if not self.next1(")"):
                raise AuthRegexError(REG_BADOPT)
            self.now += 1
            if self.quote:
                self.expanded = self.nlstop = self.nlanch = False

    def _skip(self) -> None:
        p = self.p
        while True:
            while not self.ateos() and p[self.now] in _SPACE:
                self.now += 1
            if self.ateos() or p[self.now] != ord("#"):
                break
            while not self.ateos() and p[self.now] != ord("\n"):
                self.now += 1

    def next(self) -> None:  # noqa: C901 - a port of a long C switch
        self.lasttype = self.nexttype
        if self.expanded and self.lexcon in (L_ERE, L_EBND):
            self._skip()
        if self.ateos():
            if self.lexcon in (L_ERE, L_Q):
                return self.ret(EOS)
            if self.lexcon == L_EBND:
                raise AuthRegexError(REG_EBRACE)
            raise AuthRegexError(REG_EBRACK)
        p = self.p
        c = p[self.now]
        self.now += 1
        con = self.lexcon
        if con == L_Q:
            return self.ret(PLAIN, c)
        if con == L_EBND:
            if c in _DIGIT:
                return self.ret(DIGIT, c - 0x30)
            if c == ord(","):
                return self.ret(",")
            if c == ord("}"):
                self.lexcon = L_ERE
                if self.next1("?"):
                    self.now += 1
                    return self.ret("}", 0)
                return self.ret("}", 1)
            raise AuthRegexError(REG_BADBR)
        if con == L_BRACK:
            if c == ord("]"):
                if self.lasttype == "[":
                    return self.ret(PLAIN, c)
                self.lexcon = L_ERE
                return self.ret("]")
            if c == ord("\\"):
                if self.ateos():
                    raise AuthRegexError(REG_EESCAPE)
                self._lexescape()
                if self.nexttype in (PLAIN, CCLASSS, CCLASSC):
                    return None
                raise AuthRegexError(REG_EESCAPE)
            if c == ord("-"):
                if self.lasttype == "[" or self.next1("]"):
                    return self.ret(PLAIN, c)
                return self.ret(RANGE, c)
            if c == ord("["):
                if self.ateos():
                    raise AuthRegexError(REG_EBRACK)
                d = p[self.now]
                self.now += 1
                if d == ord("."):
                    self.lexcon = L_CEL
                    return self.ret(COLLEL)
                if d == ord("="):
                    self.lexcon = L_ECL
                    return self.ret(ECLASS)
                if d == ord(":"):
                    self.lexcon = L_CCL
                    return self.ret(CCLASS)
                self.now -= 1
                return self.ret(PLAIN, c)
            return self.ret(PLAIN, c)
        if con in (L_CEL, L_ECL, L_CCL):
            close = {L_CEL: ".", L_ECL: "=", L_CCL: ":"}[con]
            if c == ord(close) and self.next1("]"):
                self.now += 1
                self.lexcon = L_BRACK
                return self.ret(END, c)
            return self.ret(PLAIN, c)
        # L_ERE
        ch = chr(c)
        if ch == "|":
            return self.ret("|")
        if ch in "*+?":
            if self.next1("?"):
                self.now += 1
                return self.ret(ch, 0)
            return self.ret(ch, 1)
        if ch == "{":
            if self.expanded:
                self._skip()
            if self.ateos() or p[self.now] not in _DIGIT:
                return self.ret(PLAIN, c)
            self.lexcon = L_EBND
            return self.ret("{")
        if ch == "(":
            if self.next1("?"):
                self.now += 1
                if self.ateos():
                    raise AuthRegexError(REG_BADRPT)
                kind = chr(p[self.now])
                self.now += 1
                if kind == ":":
                    return self.ret("(", 0)
                if kind == "#":
                    while not self.ateos() and p[self.now] != ord(")"):
                        self.now += 1
                    if not self.ateos():
                        self.now += 1
                    self.nexttype = self.lasttype
                    return self.next()
                if kind in "=!":
                    return self.ret(LACON, 0)
                if kind == "<":
                    if self.ateos():
                        raise AuthRegexError(REG_BADRPT)
                    e = chr(p[self.now])
                    self.now += 1
                    if e in "=!":
                        return self.ret(LACON, 1)
                    raise AuthRegexError(REG_BADRPT)
                raise AuthRegexError(REG_BADRPT)
            return self.ret("(", 1)
        if ch == ")":
            return self.ret(")")
        if ch == "[":
            if self.have(6) and p[self.now : self.now + 6] in (b"[:<:]]", b"[:>:]]"):
                t = "<" if p[self.now + 2] == ord("<") else ">"
                self.now += 6
                return self.ret(t)
            self.lexcon = L_BRACK
            if self.next1("^"):
                self.now += 1
                return self.ret("[", 0)
            return self.ret("[", 1)
        if ch in ".^$":
            return self.ret(ch)
        if ch == "\\":
            if self.ateos():
                raise AuthRegexError(REG_EESCAPE)
            return self._lexescape()
        return self.ret(PLAIN, c)

    def _lexdigits(self, base: int, minlen: int, maxlen: int) -> int:
        n = 0
        length = 0
        while length < maxlen and not self.ateos():
            d = _HEX.get(self.p[self.now], -1)
            if d < 0 or d >= base:
                break
            self.now += 1
            n = (n * base + d) & 0xFFFFFFFF  # uchr arithmetic
            length += 1
        if length < minlen:
            raise AuthRegexError(REG_EESCAPE)
        return n

    def _lexescape(self) -> None:  # noqa: C901
        c = self.p[self.now]
        self.now += 1
        if c not in _ALNUM_BYTES:
            return self.ret(PLAIN, c)
        ch = chr(c)
        simple = {
            "a": 0x07,
            "b": 0x08,
            "B": 0x5C,
            "e": 0x1B,
            "f": 0x0C,
            "n": 0x0A,
            "r": 0x0D,
            "t": 0x09,
            "v": 0x0B,
        }
        if ch in simple:
            return self.ret(PLAIN, simple[ch])
        classes = {"d": "digit", "s": "space", "w": "word"}
        if ch in classes:
            return self.ret(CCLASSS, classes[ch])  # type: ignore[arg-type]
        if ch.lower() in classes:
            return self.ret(CCLASSC, classes[ch.lower()])  # type: ignore[arg-type]
        if ch == "A":
            return self.ret(SBEGIN)
        if ch == "Z":
            return self.ret(SEND)
        if ch == "y":
            return self.ret(WBDRY)
        if ch == "Y":
            return self.ret(NWBDRY)
        if ch == "m":
            return self.ret("<")
        if ch == "M":
            return self.ret(">")
        if ch == "c":
            if self.ateos():
                raise AuthRegexError(REG_EESCAPE)
            v = self.p[self.now] & 0o37
            self.now += 1
            return self.ret(PLAIN, v)
        if ch in "uUx":
            if ch == "x":
                v = self._lexdigits(16, 1, 255)
            else:
                n = 4 if ch == "u" else 8
                v = self._lexdigits(16, n, n)
            if v > CHR_MAX:
                raise AuthRegexError(REG_EESCAPE)
            return self.ret(PLAIN, v)
        if "1" <= ch <= "9":
            save = self.now
            self.now -= 1
            v = self._lexdigits(10, 1, 255)
            if self.now == save or 0 < v <= self.nsubexp:
                return self.ret(BACKREF, v)
            self.now = save  # not a back reference after all: an octal number
            return self._octal()
        if ch == "0":
            return self._octal()
        raise AuthRegexError(REG_EESCAPE)

    def _octal(self) -> None:
        self.now -= 1  # put the first digit back
        v = self._lexdigits(8, 1, 3)
        if v > 0xFF:
            self.now -= 1
            v >>= 3
        return self.ret(PLAIN, v)


# --- the parser (regcomp.c: parse, parsebranch, parseqatom, bracket) -------------------------------


class _Parser:
    def __init__(self, pattern: bytes) -> None:
        self.lx = _Lexer(pattern)

    # character sets
    def onechr(self, c: int) -> set[int]:
        if c > 0xFF:
            return set()
        return _cases(c) if self.lx.icase else {c}

    def cclass(self, name: str) -> frozenset[int]:
        if self.lx.icase and name in ("lower", "upper"):
            name = "alpha"
        return CLASSES[name]

    def dot(self) -> frozenset[int]:
        return ALL - {0x0A} if self.lx.nlstop else ALL

    def _scanplain(self) -> bytes:
        lx = self.lx
        lx.next()
        out = bytearray()
        while lx.see(PLAIN):
            out.append(lx.nextvalue & 0xFF)  # only bytes can appear inside [. .] etc.
            lx.next()
        lx.next()  # the END token
        return bytes(out)

    def _element(self, name: bytes) -> int:
        """element(): a single character, or one of the POSIX names of regc_locale.c's cnames table."""
        if len(name) == 1:
            return name[0]
        c = _CNAMES.get(name.decode("latin-1"))
        if c is None:
            raise AuthRegexError(REG_ECOLLATE)
        return c

    def _range(self, a: int, b: int) -> set[int]:
        if a > b:
            raise AuthRegexError(REG_ERANGE)
        out = set(range(a, min(b, 0xFF) + 1))
        if self.lx.icase:
            for c in list(out):
                out |= _cases(c)
        return out

    def bracket(self) -> frozenset[int]:
        """The bracket expression whose ``[`` is the current token; leaves ``]`` consumed."""
        lx = self.lx
        complemented = lx.nextvalue == 0
        lx.next()
        chars: set[int] = set()
        complements: list[frozenset[int]] = []
        while not lx.see("]") and not lx.see(EOS):
            self._brackpart(chars, complements)
        if lx.see(EOS):
            raise AuthRegexError(REG_EBRACK)
        for comp in complements:
            chars |= ALL - comp
        if complemented:
            if lx.nlstop:
                chars.add(0x0A)
            result = ALL - chars
        else:
            result = frozenset(chars)
        lx.next()
        return result

    def _brackpart(self, chars: set[int], complements: list[frozenset[int]]) -> None:
        lx = self.lx
        t = lx.nexttype
        if t == RANGE:
            raise AuthRegexError(REG_ERANGE)
        if t == PLAIN:
            startc = lx.nextvalue
            lx.next()
            if not lx.see(RANGE):
                chars |= self.onechr(startc)
                return
        elif t == COLLEL:
            name = self._scanplain()
            if not name:
                raise AuthRegexError(REG_ECOLLATE)
            startc = self._element(name)
        elif t == ECLASS:
            name = self._scanplain()
            if not name:
                raise AuthRegexError(REG_ECOLLATE)
            chars |= self.onechr(self._element(name))
            return
        elif t == CCLASS:
            name = self._scanplain()
            if not name:
                raise AuthRegexError(REG_ECTYPE)
            key = name.decode("latin-1")
            if key not in CLASSES:
                raise AuthRegexError(REG_ECTYPE)
            chars |= self.cclass(key)
            return
        elif t == CCLASSS:
            chars |= self.cclass(lx.nextvalue)  # type: ignore[arg-type]
            lx.next()
            return
        elif t == CCLASSC:
            complements.append(self.cclass(lx.nextvalue))  # type: ignore[arg-type]
            lx.next()
            return
        else:  # pragma: no cover - PostgreSQL's REG_ASSERT
            raise AuthRegexError(REG_ERANGE)
        if not lx.see(RANGE):  # a lone collating element
            chars |= self.onechr(startc)
            return
        lx.next()  # the RANGE token
        t = lx.nexttype
        if t in (PLAIN, RANGE):
            endc = lx.nextvalue
            lx.next()
        elif t == COLLEL:
            name = self._scanplain()
            if not name:
                raise AuthRegexError(REG_ECOLLATE)
            endc = self._element(name)
        else:
            raise AuthRegexError(REG_ERANGE)
        chars |= self._range(startc, endc)

    # structure
    def parse(self, stopper: str) -> _Node:
        lx = self.lx
        branches: list[_Node] = []
        flags = LONGER
        while True:
            b = self.parsebranch(stopper)
            branches.append(b)
            flags |= _up(flags | b.flags)
            if lx.see("|"):
                lx.next()
                continue
            break
        if not lx.see(stopper):
            raise AuthRegexError(REG_EPAREN)
        if len(branches) == 1:
            return branches[0]
        rx = _group("|".join(b.rx for b in branches))
        if not _messy(flags):
            return _Node("=", flags, rx)
        return _Node("|", flags, rx, children=branches)

    def _at_branch_end(self, stopper: str) -> bool:
        lx = self.lx
        return lx.see("|") or lx.see(stopper) or lx.see(EOS)

    def parsebranch(self, stopper: str) -> _Node:
        top = _Node("=", 0)
        parts: list[str] = []
        seen = False
        while not self._at_branch_end(stopper):
            seen = True
            done = self.parseqatom(stopper, top, parts)
            if done is not None:
                return done
        if not seen:
            parts.append("")
        top.rx = "".join(parts)
        return top

    def _constraint(self, t: str) -> str | None:
        lx = self.lx
        if t == "^":
            return r"(?m:^)" if lx.nlanch else r"\A"
        if t == "$":
            return r"(?m:$)" if lx.nlanch else r"\z"
        return {SBEGIN: r"\A", SEND: r"\z", WBDRY: r"\b", NWBDRY: r"\B"}.get(t)

    def parseqatom(self, stopper: str, top: _Node, parts: list[str]) -> _Node | None:  # noqa: C901
        lx = self.lx
        t = lx.nexttype
        con = self._constraint(t)
        if con is not None:
            parts.append(con)
            lx.next()
            return None
        if t in ("<", ">"):
            raise _unsupported("the word-start and word-end constraints \\m, \\M, [[:<:]] and [[:>:]]")
        if t == LACON:
            raise _unsupported("lookahead and lookbehind constraints")
        if t in ("*", "+", "?", "{"):
            raise AuthRegexError(REG_BADRPT)
        if t == ")":
            raise AuthRegexError(REG_EPAREN)
        atom: _Node | None = None
        capturing = False
        if t == PLAIN:
            atom_rx = _set_rx(self.onechr(lx.nextvalue))
            lx.next()
        elif t == "[":
            atom_rx = _set_rx(self.bracket())
        elif t == CCLASSS:
            atom_rx = _set_rx(self.cclass(lx.nextvalue))  # type: ignore[arg-type]
            lx.next()
        elif t == CCLASSC:
            atom_rx = _set_rx(ALL - self.cclass(lx.nextvalue))  # type: ignore[arg-type]
            lx.next()
        elif t == ".":
            atom_rx = _set_rx(self.dot())
            lx.next()
        elif t == "(":
            capturing = lx.nextvalue == 1
            subno = 0
            if capturing:
                lx.nsubexp += 1
                subno = lx.nsubexp
            lx.next()
            atom = self.parse(")")
            lx.next()
            if capturing:
                if atom.capno == 0:
                    atom.flags |= CAP
                    atom.capno = subno
                else:
                    atom = _Node("(", atom.flags | CAP, atom.rx, capno=subno, children=[atom])
            atom_rx = _group(atom.rx)
        elif t == BACKREF:
            raise _unsupported("back references (\\N) inside a regular expression")
        else:  # pragma: no cover - REG_ASSERT
            raise AuthRegexError(REG_BADRPT)

        # ...and an atom may be followed by a quantifier
        t = lx.nexttype
        if t in ("*", "+", "?"):
            m, n = {"*": (0, INF), "+": (1, INF), "?": (0, 1)}[t]
            qprefer = LONGER if lx.nextvalue else SHORTER
            lx.next()
        elif t == "{":
            lx.next()
            m = self._scannum()
            if lx.see(","):
                lx.next()
                n = self._scannum() if lx.see(DIGIT) else INF
                if n != INF and m > n:
                    raise AuthRegexError(REG_BADBR)
                qprefer = LONGER if lx.nextvalue else SHORTER
            else:
                n = m
                qprefer = 0
            if not lx.see("}"):
                raise AuthRegexError(REG_BADBR)
            lx.next()
        else:
            m = n = 1
            qprefer = 0

        if m == 0 and n == 0:  # {0} cancels everything (its captures stay unset)
            parts.append("")
            return None

        f = top.flags | qprefer | (atom.flags if atom is not None else 0)
        if not capturing and not _messy(_up(f)):
            parts.append(_repeat(atom_rx, m, n))
            top.flags = f
            return None

        # the hard part: capturing parentheses or a greediness clash
        if atom is None:
            atom = _Node("=", 0, atom_rx)
        pref3 = atom.flags & (LONGER | SHORTER | MIXED)
        if m == 1 and n == 1 and (qprefer == 0 or pref3 == 0 or qprefer == pref3):
            tchild = atom
        elif not atom.flags & CAP:
            tchild = _Node("=", _combine(qprefer, atom.flags), _repeat(_group(atom.rx), m, n))
        elif m > 0:
            f2 = _combine(qprefer, atom.flags)
            pre = _Node("=", _pref(f2), _repeat(_group(atom.rx), m - 1, INF if n == INF else n - 1))
            tchild = _Node(".", f2, pre.rx + _group(atom.rx), children=[pre, atom])
        else:
            tchild = _Node(
                "*",
                _combine(qprefer, atom.flags),
                _repeat(_group(atom.rx), m, n),
                children=[atom],
                min=m,
                max=n,
            )
        prefix = _Node("=", top.flags, "".join(parts))
        vacuous = not parts
        tflags = _combine(qprefer, atom.flags)
        if not self._at_branch_end(stopper):
            rest = self.parsebranch(stopper)
            tnode = _Node(".", tflags, _group(tchild.rx) + _group(rest.rx), children=[tchild, rest])
            tnode.flags |= _combine(tnode.flags, rest.flags)
            top.flags |= _combine(top.flags, tnode.flags)
            top.op = "."
            if vacuous:
                top.children = [tchild, rest]
            else:
                if tchild.op == "=" and rest.op == "=" and not _messy(_up(tchild.flags | rest.flags)):
                    tnode.op = "="
                    tnode.flags = _combine(tchild.flags, rest.flags)
                    tnode.children = []
                top.children = [prefix, tnode]
            top.rx = "".join(_group(c.rx) for c in top.children)
            return top
        top.flags |= _combine(top.flags, tchild.flags)
        if vacuous:
            return tchild
        top.op = "."
        top.children = [prefix, tchild]
        top.rx = _group(prefix.rx) + _group(tchild.rx)
        return top

    def _scannum(self) -> int:
        lx = self.lx
        n = 0
        while lx.see(DIGIT) and n < DUPMAX:
            n = n * 10 + lx.nextvalue
            lx.next()
        if lx.see(DIGIT) or n > DUPMAX:
            raise AuthRegexError(REG_BADBR)
        return n


# --- matching ---------------------------------------------------------------------------------------


def to_bytes(text: str) -> bytes:
    """The bytes PostgreSQL matches: names and files are ``str`` decoded with ``surrogateescape``,
    so this gives back the raw bytes (``surrogatepass`` only for a lone surrogate no bytes decode to)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def _options() -> re2.Options:
    o = re2.Options()
    o.encoding = re2.Options.Encoding.LATIN1
    o.longest_match = True
    o.never_capture = True
    o.log_errors = False
    o.case_sensitive = True
    o.dot_nl = True
    return o


_OPTIONS = _options()


class _Budget:
    """Bounds the dissection of one match (PostgreSQL has no bound; it only matters for patterns and
    subjects crafted to explode the search of iteration boundaries)."""

    def __init__(self, limit: int) -> None:
        self.left = limit

    def spend(self, n: int = 1) -> None:
        self.left -= n
        if self.left < 0:
            raise AuthRegexMatchError(REG_ETOOBIG)


class _Matcher:
    def __init__(self, rx: str) -> None:
        try:
            self.re = re2.compile(rx.encode("latin-1"), _OPTIONS)
        except re2.error as e:
            detail = e.args[0] if e.args else ""
            if isinstance(detail, bytes):
                detail = detail.decode("utf-8", "replace")
            raise _unsupported(f"a regular expression this large ({detail})") from None

    def full(self, s: bytes, b: int, e: int, budget: _Budget) -> bool:
        budget.spend(1 + (e - b) // 128)
        return self.re.fullmatch(s, b, e) is not None

    def longest(self, s: bytes, b: int, limit: int, budget: _Budget) -> int | None:
        """PostgreSQL's longest(): the end of the longest match starting at ``b`` and ending by ``limit``."""
        budget.spend(1 + (limit - b) // 128)
        m = self.re.match(s, b, limit)
        return None if m is None else m.end()

    def shortest(self, s: bytes, b: int, lo: int, hi: int, budget: _Budget) -> int | None:
        """PostgreSQL's shortest(): the end of the shortest match starting at ``b``, ending in [lo, hi]."""
        last = self.longest(s, b, hi, budget)  # no match ends after the longest one
        if last is None or last < lo:
            return None
        for e in range(lo, last + 1):
            if self.full(s, b, e, budget):
                return e
        return None


# One unit is about 2.5 microseconds (an RE2 call, plus one per 128 bytes it scans): a dissection
# holds the event loop for some tens of milliseconds at most.  Real maps (``^(.*)@example\\.com$``,
# ``^(.*?)(@.*)?$``) need a few dozen units.
DISSECT_BUDGET = 20_000


@dataclass(frozen=True, eq=False)
class AuthRegex:
    """A compiled ``/regex`` of pg_hba.conf or pg_ident.conf (``source`` is the text after the slash)."""

    source: str
    _tree: _Node = field(repr=False)
    _whole: _Matcher = field(repr=False)
    groups: int = 0

    def search(self, subject: str) -> bool:
        """``pg_regexec(..., nmatch=0)``: does the pattern match anywhere in ``subject``?"""
        return self._whole.re.search(to_bytes(subject)) is not None

    def first_group(self, subject: str, budget: int = DISSECT_BUDGET) -> tuple[bool, str | None]:
        """``pg_regexec(..., nmatch=2)``: (matched, text of the first capture or None when it is unset).

        Raises :class:`AuthRegexMatchError` when the dissection exceeds its work budget."""
        s = to_bytes(subject)
        m = self._whole.re.search(s)
        if m is None:
            return False, None
        if self.groups == 0:
            return True, None
        bud = _Budget(budget)
        begin = m.start()
        if self._tree.flags & SHORTER:
            end = self._whole.shortest(s, begin, begin, len(s), bud)
            assert end is not None
        else:
            end = m.end()
        caps: dict[int, tuple[int, int]] = {}
        _dissect(self._tree, s, begin, end, caps, bud)
        span = caps.get(1)
        if span is None:
            return True, None
        return True, s[span[0] : span[1]].decode("utf-8", "surrogateescape")


def _zap(node: _Node, caps: dict[int, tuple[int, int]]) -> None:
    for n in node.walk():
        if n.capno:
            caps.pop(n.capno, None)


def _m(node: _Node) -> _Matcher:
    assert node.matcher is not None
    return node.matcher


def _dissect(node: _Node, s: bytes, b: int, e: int, caps: dict[int, tuple[int, int]], bud: _Budget) -> None:
    """cdissect(): the caller has checked that ``node`` matches ``s[b:e]`` exactly."""
    op = node.op
    if op == ".":
        left, right = node.children
        lm, rm = _m(left), _m(right)
        if left.flags & SHORTER:  # crevcondissect: shortest left part first
            mid = lm.shortest(s, b, b, e, bud)
            while mid is not None and not rm.full(s, mid, e, bud):
                mid = None if mid == e else lm.shortest(s, b, mid + 1, e, bud)
        else:  # ccondissect: longest left part first
            mid = lm.longest(s, b, e, bud)
            while mid is not None and not rm.full(s, mid, e, bud):
                mid = None if mid == b else lm.longest(s, b, mid - 1, bud)
        if mid is None:
            raise AuthRegexMatchError(
                "internal error: no concatenation split"
            )  # cannot happen without backrefs
        _dissect(left, s, b, mid, caps, bud)
        _dissect(right, s, mid, e, caps, bud)
    elif op == "|":
        for child in node.children:
            if _m(child).full(s, b, e, bud):
                _dissect(child, s, b, e, caps, bud)
                break
        else:
            raise AuthRegexMatchError("internal error: no alternative matches")
    elif op == "*":
        child = node.children[0]
        ends = (_iter_shorter if child.flags & SHORTER else _iter_longer)(node, s, b, e, bud)
        prev = b
        for end in ends:
            _zap(child, caps)
            _dissect(child, s, prev, end, caps, bud)
            prev = end
    elif op == "(":
        _dissect(node.children[0], s, b, e, caps, bud)
    if node.capno:
        caps[node.capno] = (b, e)


def _iteration_counts(node: _Node, begin: int, end: int) -> tuple[int, int]:
    """The fewest and the most iterations :func:`_iter_longer` and :func:`_iter_shorter` split
    ``begin:end`` into for ``node``: the quantifier's minimum but at least one; one per byte but no more
    than the quantifier's maximum, and never below the fewest."""
    min_m = max(node.min, 1)
    max_m = end - begin
    if node.max != INF and max_m > node.max:
        max_m = node.max
    return min_m, max(max_m, min_m)


def _iter_longer(node: _Node, s: bytes, begin: int, end: int, bud: _Budget) -> list[int]:
    """citerdissect(): the iteration boundaries, each iteration as long as possible.

    The same depth-first search as PostgreSQL's, remembering which (iteration number, start) pairs
    were fully explored without success so that no subtree is searched twice (same result, polynomial)."""
    d = _m(node.children[0])
    min_m, max_m = _iteration_counts(node, begin, end)
    endpts: list[int] = [begin] + [0] * max_m
    failed: set[tuple[int, int]] = set()
    k, limit = 1, end
    while k > 0:
        start = endpts[k - 1]
        got = None if (limit == end and (k, start) in failed) else d.longest(s, start, limit, bud)
        if got is None:
            failed.add((k, start))
            k -= 1
        else:
            endpts[k] = got
            if got != end:
                if k >= max_m:
                    failed.add((k, start))
                    k -= 1
                elif not (got == start and (k >= min_m or min_m - k < end - got)):
                    k += 1
                    limit = end
                    continue
            elif k >= min_m:
                return endpts[1 : k + 1]
        # backtrack: a shorter k'th iteration, else the previous one
        while k > 0:
            prev_end = endpts[k - 1]
            if endpts[k] > prev_end:
                limit = endpts[k] - 1
                if limit > prev_end or (k < min_m and min_m - k >= end - prev_end):
                    break
            failed.add((k, prev_end))
            k -= 1
    if node.min == 0 and begin == end:
        return []  # zero iterations, only when one empty iteration is impossible
    raise AuthRegexMatchError("internal error: no iteration split")


def _iter_shorter(node: _Node, s: bytes, begin: int, end: int, bud: _Budget) -> list[int]:
    """creviterdissect(): the iteration boundaries, each iteration as short as possible (same search
    as PostgreSQL's, with the same memory of fruitless subtrees as :func:`_iter_longer`)."""
    if node.min == 0 and begin == end:
        # unlike citerdissect, which prefers one empty iteration (setting the captures inside),
        # creviterdissect takes zero iterations here, so the captures inside stay unset
        return []
    d = _m(node.children[0])
    min_m, max_m = _iteration_counts(node, begin, end)
    endpts: list[int] = [begin] + [0] * max_m
    failed: set[tuple[int, int]] = set()
    k, limit = 1, begin
    while k > 0:
        start = endpts[k - 1]
        fresh = limit == start
        if fresh and limit != end and (k >= min_m or min_m - k < end - limit):
            limit += 1
        if k >= max_m:
            limit = end
        got = None if (fresh and (k, start) in failed) else d.shortest(s, start, limit, end, bud)
        if got is None:
            failed.add((k, start))
            k -= 1
        else:
            endpts[k] = got
            if got != end:
                if k >= max_m:
                    failed.add((k, start))
                    k -= 1
                else:
                    k += 1
                    limit = endpts[k - 1]
                    continue
            elif k >= min_m:
                return endpts[1 : k + 1]
        # backtrack: a longer k'th iteration, else the previous one
        while k > 0:
            if endpts[k] < end:
                limit = endpts[k] + 1
                break
            failed.add((k, endpts[k - 1]))
            k -= 1
    raise AuthRegexMatchError("internal error: no iteration split")


def compile_are(source: str) -> AuthRegex:
    """Compile PostgreSQL ARE ``source`` (the token after its ``/``); :class:`AuthRegexError` if
    PostgreSQL would refuse it or pgtls cannot match it exactly like PostgreSQL."""
    pattern = to_bytes(source)
    parser = _Parser(pattern)
    try:
        tree = parser.parse(EOS)
    except RecursionError:  # only for patterns far longer than a token (255 bytes) can be
        raise _unsupported("parentheses nested this deeply") from None
    for node in tree.walk():
        node.matcher = _Matcher(node.rx)
    return AuthRegex(source, tree, _m(tree), parser.lx.nsubexp)
