"""Point lookups answered from an in-memory index, without DuckDB (layer 8)."""
