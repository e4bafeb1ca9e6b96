"""PostgreSQL behaviours DuckDB lacks, one module each: settings, savepoints, advisory locks, LISTEN/NOTIFY, cancel, roles, kept foreign keys, DDL emulation (layer 6)."""
