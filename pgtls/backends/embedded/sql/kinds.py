"""Statement kinds: what the session does with a statement, decided once from its parse node.

:func:`kind_of` takes the node PostgreSQL's parser gives the statement (sql/reader.py) to
:func:`classify_node`; text the parser refuses (DuckDB-only syntax, syntax errors) is classified as
before from its first words by :func:`classify`, which stays the reference: both must agree wherever
the parser reads the text (tests/unit/embedded/sql/test_sql_reader.py runs both over the tests'
statements).

The session looks the kind up in its table of handlers (``_HANDLERS`` in session/core.py), as
PostgreSQL's utility.c switches on a parse node's tag and PgBouncer's admin.c looks a command up in a table.
``DUCKDB`` is everything DuckDB runs (after the rewrites); ``QUERY`` is a SELECT that a feature may
answer itself (``pg_advisory_lock()``, ``pg_notify()``, ``pg_cancel_backend()``) before DuckDB runs it.

A new utility statement the session answers itself: a kind here, a line in :func:`classify` and its
node type in :func:`classify_node`, a handler in session/core.py's table.  The order of the tests in
:func:`classify` is the order in which they apply (``SET CONSTRAINTS`` before ``SET``; ``CREATE DATABASE``
before ``CREATE ROLE``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from pgtls.backends.embedded.sql.commands import TX_WORDS
from pgtls.backends.embedded.sql.lexer import Token, tokens
from pgtls.backends.embedded.sql.reader import Node, node_of


class Kind(Enum):
    CURSOR = "cursor"  # DECLARE / FETCH / MOVE / CLOSE name
    TRANSACTION = "transaction"  # BEGIN / START / COMMIT / END / ROLLBACK / ABORT / SAVEPOINT / RELEASE
    SET_CONSTRAINTS = "set constraints"
    SET = "set"
    RESET = "reset"
    SHOW = "show"  # SHOW TABLES / DATABASES / ALL TABLES are DuckDB's
    COPY = "copy"
    DATABASE = "database"  # CREATE / DROP DATABASE
    DISCARD = "discard"
    LOCK = "lock"
    LISTEN = "listen"  # LISTEN / UNLISTEN / NOTIFY
    QUERY = "query"  # SELECT: a feature's function call, or DuckDB's
    ROLE = "role"  # CREATE / ALTER / DROP ROLE | USER | GROUP, GRANT / REVOKE of role membership
    ATTACH = "attach"  # ATTACH / DETACH: refused
    DEALLOCATE_ALL = "deallocate all"
    DUCKDB = "duckdb"


@dataclass(frozen=True)
class Statement:
    """One statement as its handler gets it: the text, its offset in the query string (for error
    positions), its first upper-cased words, and DuckDB's statement type when Parse already knew it."""

    sql: str
    offset: int
    words: list[str]
    duck_type: str | None = None

    @property
    def first(self) -> str:
        return self.words[0] if self.words else ""


_SIMPLE = {"SET": Kind.SET, "RESET": Kind.RESET, "SHOW": Kind.SHOW, "COPY": Kind.COPY, "DISCARD": Kind.DISCARD,
           "LOCK": Kind.LOCK, "LISTEN": Kind.LISTEN, "UNLISTEN": Kind.LISTEN, "NOTIFY": Kind.LISTEN,
           "SELECT": Kind.QUERY, "ATTACH": Kind.ATTACH, "DETACH": Kind.ATTACH}  # fmt: skip
_ROLE_WORDS = ("CREATE", "ALTER", "DROP", "GRANT", "REVOKE")


def classify(sql: str, w: list[str]) -> Kind:
    """The kind of one statement ``sql`` whose first (up to four) upper-cased words are ``w``."""
    first = w[0] if w else ""
    if first in ("DECLARE", "FETCH", "MOVE") or (first == "CLOSE" and len(w) > 1):
        return Kind.CURSOR
    if first in TX_WORDS:
        return Kind.TRANSACTION
    if first == "SET" and len(w) > 1 and w[1] == "CONSTRAINTS":
        return Kind.SET_CONSTRAINTS
    if first in ("CREATE", "DROP") and len(w) > 1 and w[1] == "DATABASE":
        return Kind.DATABASE
    if (kind := _SIMPLE.get(first)) is not None:
        return kind
    if first in _ROLE_WORDS and is_role_statement(tokens(sql)):
        return Kind.ROLE
    if first == "DEALLOCATE" and len(w) > 1 and w[-1] == "ALL":
        return Kind.DEALLOCATE_ALL
    return Kind.DUCKDB


def is_role_statement(toks: list[Token]) -> bool:
    """CREATE/ALTER/DROP ROLE|USER|GROUP, or GRANT/REVOKE of role membership (no ON clause)."""
    if len(toks) < 2 or toks[0].kind != "word":
        return False
    first = toks[0].text.upper()
    second = toks[1].text.upper() if toks[1].kind == "word" else ""
    if first in ("CREATE", "ALTER", "DROP") and second in ("ROLE", "USER", "GROUP"):
        third = toks[2].text.upper() if len(toks) > 2 and toks[2].kind == "word" else ""
        return third != "MAPPING"  # CREATE USER MAPPING is about foreign servers
    if first in ("GRANT", "REVOKE"):
        return not any(t.kind == "word" and t.text.upper() == "ON" for t in toks)
    return False


# --- from the parse tree ----------------------------------------------------------------------------------
# The same decisions as classify(), taken from the statement's node when PostgreSQL's parser read it
# (tests/unit/embedded/sql/test_sql_reader.py checks that both agree over the tests' statements).
_NODE_KINDS: dict[str, Kind] = {
    "DeclareCursorStmt": Kind.CURSOR,
    "FetchStmt": Kind.CURSOR,  # FETCH and MOVE
    "ClosePortalStmt": Kind.CURSOR,
    "ConstraintsSetStmt": Kind.SET_CONSTRAINTS,
    "VariableShowStmt": Kind.SHOW,
    "CopyStmt": Kind.COPY,
    "CreatedbStmt": Kind.DATABASE,
    "DropdbStmt": Kind.DATABASE,
    "DiscardStmt": Kind.DISCARD,
    "LockStmt": Kind.LOCK,
    "ListenStmt": Kind.LISTEN,
    "UnlistenStmt": Kind.LISTEN,
    "NotifyStmt": Kind.LISTEN,
    "CreateRoleStmt": Kind.ROLE,  # CREATE ROLE | USER | GROUP (not USER MAPPING: CreateUserMappingStmt)
    "AlterRoleStmt": Kind.ROLE,
    "AlterRoleSetStmt": Kind.ROLE,
    "DropRoleStmt": Kind.ROLE,
    "GrantRoleStmt": Kind.ROLE,  # GRANT / REVOKE of role membership (GRANT ... ON is GrantStmt)
}


def classify_node(node: Node, w: list[str]) -> Kind:
    """The kind of one statement from its parse node (``w``: its first upper-cased words)."""
    t = node.type
    if t == "TransactionStmt":  # PREPARE TRANSACTION is DuckDB's to refuse, as before
        return Kind.DUCKDB if node.value == "TRANS_STMT_PREPARE" else Kind.TRANSACTION
    if t == "VariableSetStmt":  # RESET is a VariableSetStmt too
        return Kind.RESET if node.value in ("VAR_RESET", "VAR_RESET_ALL") else Kind.SET
    if t == "SelectStmt":  # VALUES, TABLE, WITH and (SELECT ...) go to DuckDB directly, as before
        return Kind.QUERY if w[:1] == ["SELECT"] else Kind.DUCKDB
    if t == "RenameStmt":  # ALTER ROLE | USER | GROUP ... RENAME TO
        return Kind.ROLE if node.value == "OBJECT_ROLE" else Kind.DUCKDB
    if t == "DeallocateStmt":  # its first field is isall (true) only for DEALLOCATE [PREPARE] ALL
        return Kind.DEALLOCATE_ALL if node.field == "isall" else Kind.DUCKDB
    return _NODE_KINDS.get(t, Kind.DUCKDB)


def kind_of(sql: str, w: list[str]) -> Kind:
    """The kind of the one statement ``sql``: from its parse node when PostgreSQL's parser reads it (cached
    by sql/reader.py), else from its first words (DuckDB-only syntax, syntax errors)."""
    node = node_of(sql)
    return classify(sql, w) if node is None else classify_node(node, w)
