"""PostgreSQL query text rewritten into DuckDB's dialect before it runs (layer 7)."""
