"""TRUNCATE as PostgreSQL has it: several tables, RESTART IDENTITY, the kept foreign keys' CASCADE."""

from __future__ import annotations

import duckdb

from pgtls.backends.embedded.features import foreignkeys as fkeys
from pgtls.backends.embedded.features.ddl.model import NOOP
from pgtls.backends.embedded.sql.lexer import Token, table_list, unquote_ident
from pgtls.errors import PgError


def plan_truncate(
    cur: duckdb.DuckDBPyConnection, toks: list[Token], notices: list[PgError]
) -> list[str] | None:
    """TRUNCATE [TABLE] [ONLY] name [*], ... [RESTART IDENTITY | CONTINUE IDENTITY] [CASCADE | RESTRICT]:
    one DuckDB TRUNCATE per table, and with RESTART IDENTITY the sequences of their serial and identity
    columns set back to their start.  A table that a kept foreign key (foreignkeys.py) references is refused
    as in PostgreSQL, or with CASCADE its child tables are emptied too.  CASCADE is not followed for DuckDB's
    own foreign keys: such a parent cannot be emptied while rows refer to it (DuckDB's error)."""
    up = [t.text.upper() if t.kind == "word" else t.text for t in toks]
    found, k = table_list(toks, 2 if len(up) > 1 and up[1] == "TABLE" else 1)
    names = ["".join(t.text for t in toks[a : b + 1]) for a, b in found]
    rest = [u for u in up[k:] if u != ";"]
    if not names or rest not in ([], ["CASCADE"], ["RESTRICT"]) and rest[:2] not in (["RESTART", "IDENTITY"],
                                                                                       ["CONTINUE", "IDENTITY"]):  # fmt: skip
        return None  # DuckDB says what is wrong with it
    _truncate_children(cur, names, "CASCADE" in rest, notices)
    stmts = [f"TRUNCATE {name}" for name in names]
    if rest[:2] == ["RESTART", "IDENTITY"]:
        for name in names:
            table = unquote_ident(name.rpartition(".")[2]).lower()
            rows = cur.execute("SELECT column_default FROM duckdb_columns() WHERE lower(table_name) = ? "
                               "AND column_default LIKE 'nextval(%'", [table]).fetchall()  # fmt: skip
            for (default,) in rows:
                seq = default[len("nextval(") : default.rindex(")")]
                stmts.append(f"SELECT setval({seq}, 1, false)")
    if len(names) == 1 and not rest:
        return None  # DuckDB's own TRUNCATE
    return stmts + [NOOP]


def _truncate_children(
    cur: duckdb.DuckDBPyConnection, names: list[str], cascade: bool, notices: list[PgError]
) -> None:
    """TRUNCATE of a table that a kept foreign key references: 0A000, or with CASCADE the child table is
    added to ``names`` (and its children, and so on)."""
    kept = fkeys.read_all(cur)
    low = {unquote_ident(n.rpartition(".")[2]).lower() for n in names}
    grew = bool(kept)
    while grew:
        grew = False
        for fk in kept:
            if fk.ref_table.lower() in low and fk.table.lower() not in low:
                if not cascade:
                    raise PgError(
                        "0A000",
                        "cannot truncate a table referenced in a foreign key constraint",
                        detail=f'Table "{fk.table}" references "{fk.ref_table}".',
                        hint=f'Truncate table "{fk.table}" at the same time, or use TRUNCATE ... CASCADE.',
                    )
                names.append(fk.child())
                low.add(fk.table.lower())
                notices.append(
                    PgError("00000", f'truncate cascades to table "{fk.table}"', severity="NOTICE")
                )
                grew = True
