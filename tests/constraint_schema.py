"""The schema of the constraint tests: tables with every kind of constraint and index DuckDB keeps, and the
foreign keys it cannot hold (real ones on PostgreSQL, a ``pgtls:fk`` mark in the child table's comment on
pgtls).  Used by tests/differential/test_constraint_catalog.py (the catalog against PostgreSQL 15),
tests/integration/test_orm_sqlalchemy.py and tests/relay/test_orm_relay.py."""

from __future__ import annotations

import json

TABLES = ("r_parent", "r_item", "r_child", "r_marked")
SCHEMA = [
    "CREATE TABLE r_parent (a int, b int, code text UNIQUE, PRIMARY KEY (a, b))",
    "CREATE TABLE r_item (id int PRIMARY KEY, name text NOT NULL, qty int CHECK (qty > 0), price int, note text, "
    "UNIQUE (name, qty), CHECK (price >= 0), CHECK (price < 1000))",
    "CREATE INDEX r_item_qty_idx ON r_item (qty)",
    "CREATE UNIQUE INDEX r_item_price_note_idx ON r_item (price, note)",
    "CREATE INDEX r_item_lower_idx ON r_item (lower(name))",
    "CREATE INDEX r_item_multi_idx ON r_item (note, qty, price)",
    "CREATE TABLE r_child (id int PRIMARY KEY, pa int, pb int, item_id int REFERENCES r_item (id), "
    "FOREIGN KEY (pa, pb) REFERENCES r_parent (a, b))",
    'CREATE TABLE r_marked (id int PRIMARY KEY, item_id int, pa int, pb int, "Odd Col" int UNIQUE)',
]
MARKED_FKS = [
    {"name": "r_marked_item_id_fkey", "columns": ["item_id"], "ref_schema": "public", "ref_table": "r_item",
     "ref_columns": ["id"], "on_update": "a", "on_delete": "c", "deferrable": True, "deferred": True,
     "validated": True},
    {"name": "r_marked_pa_pb_fkey", "columns": ["pa", "pb"], "ref_schema": "public", "ref_table": "r_parent",
     "ref_columns": ["a", "b"], "on_update": "a", "on_delete": "n", "deferrable": False, "deferred": False,
     "validated": True},
]  # fmt: skip
# The same foreign keys for PostgreSQL, and the user's own comment on the table.
PG_FKS = [
    "ALTER TABLE r_marked ADD CONSTRAINT r_marked_item_id_fkey FOREIGN KEY (item_id) REFERENCES r_item (id) "
    "ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED",
    "ALTER TABLE r_marked ADD CONSTRAINT r_marked_pa_pb_fkey FOREIGN KEY (pa, pb) REFERENCES r_parent (a, b) "
    "ON DELETE SET NULL",
]
USER_COMMENT = "marked table"


def fk_mark(fks: list[dict[str, object]], user: str | None = None) -> str:
    """A child table's comment holding ``fks`` (the format pgtls keeps its own foreign keys in)."""
    return "pgtls:fk " + json.dumps(fks) + ("\n" + user if user else "")
