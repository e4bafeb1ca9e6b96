"""Utility statements the session answers itself instead of passing them to DuckDB.

SET / SHOW / RESET act on the session's GUCs (PostgreSQL's syntax, including
``SET TIME ZONE`` and ``SET NAMES``); transaction control is tracked by the
session so ReadyForQuery reports I/T/E; CREATE / DROP DATABASE manage DuckDB
files.  Each parser takes the statement's tokens (see sqltext).
"""

from __future__ import annotations

from dataclasses import dataclass

from pgtls.backends.embedded.sql.lexer import Token, string_value, tokens, unquote_ident
from pgtls.errors import PgError

TX_WORDS = {"BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE"}
NO_TX_BLOCK = {"VACUUM", "CHECKPOINT"}


@dataclass
class SetCommand:
    name: str | None  # None: nothing to store (SET TRANSACTION ..., SET SESSION CHARACTERISTICS ...)
    value: str | None  # None: DEFAULT (reset)
    local: bool = False
    raw_value: str = ""  # the value as SQL text, for passing unknown settings through to DuckDB


def _value(toks: list[Token]) -> tuple[str | None, str]:
    if len(toks) == 1 and toks[0].kind == "word" and toks[0].text.upper() == "DEFAULT":
        return None, ""
    parts: list[str] = []
    pending_sign = ""
    raw: list[str] = []
    for t in toks:
        raw.append(t.text)
        if t.kind == "op" and t.text == ",":
            continue
        if t.kind == "op" and t.text in "+-":
            pending_sign = t.text if t.text == "-" else ""
            continue
        if t.kind == "string":
            parts.append(string_value(t.text))
        elif t.kind == "ident":
            parts.append(unquote_ident(t.text))
        elif t.kind == "word":
            parts.append(t.text.lower())
        else:
            parts.append(pending_sign + t.text)
        pending_sign = ""
    if not parts:
        raise PgError("42601", "syntax error at end of input")
    return ", ".join(parts), " ".join(raw)


def parse_set(sql: str) -> SetCommand:
    toks = tokens(sql)[1:]
    local = False
    if toks and toks[0].kind == "word" and toks[0].text.upper() in ("SESSION", "LOCAL"):
        local = toks[0].text.upper() == "LOCAL"
        toks = toks[1:]
    if not toks:
        raise PgError("42601", "syntax error at end of input")
    w = [t.text.upper() if t.kind == "word" else t.text for t in toks]
    if w[0] in ("TRANSACTION", "CHARACTERISTICS"):
        return SetCommand(None, None, local)
    if w[:2] == ["TIME", "ZONE"]:
        rest = toks[2:]
        if len(rest) == 1 and rest[0].kind == "word" and rest[0].text.upper() == "LOCAL":
            return SetCommand("TimeZone", None, local)
        value, raw = _value(rest)
        if value is not None and rest and rest[0].kind == "word":
            value = rest[0].text  # SET TIME ZONE UTC keeps its spelling
        return SetCommand("TimeZone", value, local, raw)
    if w[0] == "NAMES":
        value, raw = _value(toks[1:])
        return SetCommand("client_encoding", value, local, raw)
    if w[0] == "SCHEMA":
        value, raw = _value(toks[1:])
        return SetCommand("search_path", value, local, raw)
    if w[0] == "ROLE" or w[:2] == ["SESSION", "AUTHORIZATION"]:
        return SetCommand(None, None, local)
    name_toks = [toks[0]]
    i = 1
    while i + 1 < len(toks) and toks[i].text == "." and toks[i + 1].kind in ("word", "ident"):
        name_toks += toks[i : i + 2]
        i += 2
    name = "".join(unquote_ident(t.text) if t.kind == "ident" else t.text for t in name_toks)
    if i >= len(toks) or not (toks[i].text == "=" or toks[i].text.upper() == "TO"):
        raise PgError("42601", f'syntax error at or near "{toks[i].text if i < len(toks) else name}"')
    value, raw = _value(toks[i + 1 :])
    return SetCommand(name, value, local, raw)


def parse_show(sql: str) -> str:
    """The parameter name of SHOW (``all`` for SHOW ALL); ``TIME ZONE`` -> TimeZone."""
    toks = tokens(sql)[1:]
    if not toks:
        raise PgError("42601", "syntax error at end of input")
    w = [t.text.upper() for t in toks]
    if w[:2] == ["TIME", "ZONE"]:
        return "TimeZone"
    if w[:2] == ["TRANSACTION", "ISOLATION"]:
        return "transaction_isolation"
    if w[:2] == ["SESSION", "AUTHORIZATION"]:
        return "session_authorization"
    return "".join(unquote_ident(t.text) if t.kind == "ident" else t.text for t in toks)


def parse_reset(sql: str) -> str:
    return parse_show(sql)


def parse_database_name(sql: str, skip: int) -> tuple[str, bool]:
    """(name, if_exists) after ``skip`` leading words: CREATE DATABASE x / DROP DATABASE IF EXISTS x."""
    toks = tokens(sql)[skip:]
    if_exists = False
    if len(toks) >= 2 and [t.text.upper() for t in toks[:2]] == ["IF", "EXISTS"]:
        if_exists = True
        toks = toks[2:]
    if not toks or toks[0].kind not in ("word", "ident"):
        raise PgError(
            "42601",
            "syntax error at end of input" if not toks else f'syntax error at or near "{toks[0].text}"',
        )
    return unquote_ident(toks[0].text), if_exists


def duck_search_path(value: str) -> str:
    """PostgreSQL search_path -> DuckDB's (``$user`` dropped, ``main`` appended for DuckDB's own objects)."""
    names = [s.strip().strip('"') for s in value.split(",")]
    names = [n for n in names if n and n != "$user"]
    if "main" not in names:
        names.append("main")
    return ",".join(names)


def parse_savepoint_name(sql: str) -> str | None:
    """The savepoint of SAVEPOINT x / RELEASE [SAVEPOINT] x / ROLLBACK [WORK|TRANSACTION] TO [SAVEPOINT] x;
    None for a plain ROLLBACK."""
    toks = tokens(sql)
    w = [t.text.upper() if t.kind == "word" else t.text for t in toks]
    i = 1
    if w[0] == "ROLLBACK":
        if i < len(w) and w[i] in ("WORK", "TRANSACTION"):
            i += 1
        if i >= len(w) or w[i] != "TO":
            return None
        i += 1
    if i < len(w) and w[i] == "SAVEPOINT" and w[0] != "SAVEPOINT" and i + 1 < len(w):
        i += 1
    if i >= len(toks):
        raise PgError("42601", "syntax error at end of input")
    if toks[i].kind not in ("word", "ident") or i + 1 < len(toks) and toks[i + 1].text != ";":
        bad = toks[i] if toks[i].kind not in ("word", "ident") else toks[i + 1]
        raise PgError("42601", f'syntax error at or near "{bad.text}"')
    return unquote_ident(toks[i].text)
