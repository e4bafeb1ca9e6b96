"""GROUP BY a primary key, selecting the table's other columns: PostgreSQL's functional dependency.

PostgreSQL lets a query group by a table's primary key and still select (or order by) that table's
other columns, because they depend on the key; Django's ``annotate()`` relies on it
(``SELECT "t"."name", COUNT(...) ... GROUP BY "t"."id"``).  DuckDB knows no functional dependencies
and refuses ("must appear in the GROUP BY clause").  For a query whose top-level SELECT list or
ORDER BY names plain columns that its GROUP BY does not, this module looks up the primary keys of the
tables those columns belong to and, where every key column is grouped by, adds the columns to the
GROUP BY: the groups stay the same, so the result is PostgreSQL's.  Anything else is left to DuckDB
(and its error, as in PostgreSQL when there is no such dependency).
"""

from __future__ import annotations

import duckdb

from pgtls.backends.embedded.sql.lexer import Token, apply_edits, tokens, top_level_items, unquote_ident

_CLAUSE_END = {"HAVING", "ORDER", "LIMIT", "OFFSET", "WINDOW", "QUALIFY", "UNION", "INTERSECT", "EXCEPT", "FOR",
               "FETCH"}  # fmt: skip
_JOIN_WORDS = {
    "JOIN",
    "INNER",
    "LEFT",
    "RIGHT",
    "FULL",
    "OUTER",
    "CROSS",
    "NATURAL",
    "ON",
    "USING",
    "LATERAL",
}

Ref = tuple[str, str]  # (qualifier or "", column), lower-cased


def needs_rewrite(sql: str) -> bool:
    return "group by" in sql.lower()


def _top(toks: list[Token]) -> list[tuple[int, str]]:
    """(index, upper-cased word) of the words at parenthesis depth 0."""
    out, depth = [], 0
    for k, t in enumerate(toks):
        if t.text == "(":
            depth += 1
        elif t.text == ")":
            depth -= 1
        elif depth == 0 and t.kind == "word":
            out.append((k, t.text.upper()))
    return out


def _ref(toks: list[Token], a: int, b: int) -> Ref | None:
    """The column an item names, if it is just a [qualifier.]column (an alias after it is allowed)."""
    if b - a >= 2 and toks[b - 2].kind == "word" and toks[b - 2].text.upper() == "AS":
        b -= 2
    parts = toks[a:b]
    names = [t for t in parts[::2]]
    if any(t.kind not in ("word", "ident") for t in names) or any(t.text != "." for t in parts[1::2]):
        return None
    if len(names) == 1:
        return "", unquote_ident(names[0].text).lower()
    if len(names) in (2, 3):  # [schema.]table.column
        return unquote_ident(names[-2].text).lower(), unquote_ident(names[-1].text).lower()
    return None


def _tables(toks: list[Token], start: int, end: int) -> dict[str, str]:
    """Qualifier -> table name, for the tables and aliases of a FROM clause (toks[start:end])."""
    out: dict[str, str] = {}
    k = start
    expect_table = True
    while k < end:
        t = toks[k]
        word = t.text.upper() if t.kind == "word" else ""
        if t.text == "(":
            depth = 0
            while k < end:
                depth += {"(": 1, ")": -1}.get(toks[k].text, 0)
                if depth == 0:
                    break
                k += 1
            expect_table = False
        elif t.text == "," or word == "JOIN":
            expect_table = True
        elif expect_table and t.kind in ("word", "ident") and word not in _JOIN_WORDS:
            j = k
            while j + 2 < end and toks[j + 1].text == "." and toks[j + 2].kind in ("word", "ident"):
                j += 2
            table = unquote_ident(toks[j].text).lower()
            out[table] = table
            nxt = j + 1
            if nxt < end and toks[nxt].kind == "word" and toks[nxt].text.upper() == "AS":
                nxt += 1
            if nxt < end and toks[nxt].kind in ("word", "ident") and toks[nxt].text.upper() not in _JOIN_WORDS | {
                    "WHERE", "GROUP"}:  # fmt: skip
                out[unquote_ident(toks[nxt].text).lower()] = table
                j = nxt
            k = j
            expect_table = False
        k += 1
    return out


def rewrite(cur: duckdb.DuckDBPyConnection, sql: str) -> str:
    """``sql`` with the columns that depend on a grouped primary key added to its GROUP BY."""
    toks = tokens(sql)
    top = _top(toks)
    words = [w for _, w in top]
    if not words or words[0] != "SELECT" or "FROM" not in words or any(w in ("UNION", "INTERSECT", "EXCEPT")
                                                                        for w in words):  # fmt: skip
        return sql
    at = dict((w, k) for k, w in reversed(top))  # first index of each top-level word
    sel_start = at["SELECT"] + 1
    if sel_start < len(toks) and toks[sel_start].text.upper() == "DISTINCT":
        return sql  # DISTINCT ON ... : leave it
    from_at = at["FROM"]
    group_at = next((k for k, w in top if w == "GROUP" and k + 1 < len(toks) and toks[k + 1].text.upper() == "BY"),
                    None)  # fmt: skip
    if group_at is None or group_at < from_at:
        return sql
    group_end = next((k for k, w in top if k > group_at and w in _CLAUSE_END), len(toks))
    while group_end > group_at and toks[group_end - 1].text == ";":
        group_end -= 1
    where_at = next((k for k, w in top if k > from_at and w in ("WHERE", "GROUP")), group_at)
    tables = _tables(toks, from_at + 1, where_at)
    only = next(iter(set(tables.values()))) if len(set(tables.values())) == 1 else ""

    def canon(r: Ref) -> Ref:
        """(table, column): qualifiers resolved, a bare column given the only table of the FROM clause."""
        return (tables.get(r[0], "") if r[0] else only), r[1]

    grouped = {
        canon(r)
        for a, b in top_level_items(toks, group_at + 2, group_end)
        if (r := _ref(toks, a, b)) is not None
    }
    wanted: list[tuple[Ref, str]] = []
    select_items = top_level_items(toks, sel_start, from_at)
    order_at = next((k for k, w in top if k > group_at and w == "ORDER"), None)
    items = list(select_items)
    if order_at is not None and order_at + 1 < len(toks) and toks[order_at + 1].text.upper() == "BY":
        order_end = next((k for k, w in top if k > order_at + 1 and w in ("LIMIT", "OFFSET", "FETCH", "FOR")),
                         len(toks))  # fmt: skip
        for a, b in top_level_items(toks, order_at + 2, order_end):
            while b > a and toks[b - 1].kind == "word" and toks[b - 1].text.upper() in ("ASC", "DESC", "NULLS",
                                                                                         "FIRST", "LAST"):  # fmt: skip
                b -= 1
            items.append((a, b))
    aliases = {unquote_ident(toks[b - 1].text).lower() for a, b in select_items
               if b - a >= 3 and toks[b - 2].kind == "word" and toks[b - 2].text.upper() == "AS"}  # fmt: skip
    for a, b in items:
        r = _ref(toks, a, b)
        if r is not None and not r[0] and r[1] in aliases:
            continue  # an output column's name (ORDER BY n), not a table's column
        if r is not None:
            r = canon(r)
        if r is not None and r[0] and r not in grouped and r not in [w for w, _ in wanted]:
            last = a
            while last + 2 < b and toks[last + 1].text == ".":
                last += 2
            wanted.append((r, sql[toks[a].start : toks[last].end]))
    if not wanted:
        return sql
    keys: dict[str, tuple[list[str], set[str]] | None] = {}
    add: list[str] = []
    for (table, col), text in wanted:
        if table not in keys:
            keys[table] = _primary_key(cur, table)
        found = keys[table]
        if found and col in found[1] and all((table, c) in grouped for c in found[0]):
            add.append(text)
    if not add:
        return sql
    end = toks[group_end - 1].end
    return apply_edits(sql, [(end, end, ", " + ", ".join(add))])


def _primary_key(cur: duckdb.DuckDBPyConnection, table: str) -> tuple[list[str], set[str]] | None:
    """(primary key columns, all columns) of ``table``, lower-cased; None if it has no key or the name is
    ambiguous (tables of that name in several schemas: no guessing)."""
    try:
        rows = cur.execute(
            "SELECT constraint_column_names, (SELECT list(lower(column_name)) FROM duckdb_columns() c "
            "WHERE c.table_oid = k.table_oid) FROM duckdb_constraints() k WHERE lower(table_name) = ? "
            "AND constraint_type = 'PRIMARY KEY'", [table]).fetchall()  # fmt: skip
    except duckdb.Error:
        return None
    if len(rows) != 1:
        return None
    return [c.lower() for c in rows[0][0]], set(rows[0][1] or [])
