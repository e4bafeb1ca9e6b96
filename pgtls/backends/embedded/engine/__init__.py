"""Running statements on DuckDB: database files, execution and result description, error mapping, and the hooks features register into (layer 3)."""
