"""The shared catalog database: pg_catalog shims, constraints and indexes, and what a session sets in it (layer 5)."""
