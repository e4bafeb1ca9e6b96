"""SQL text without a database: the lexer, statement kinds and the parsers of utility statements (layer 1: imports nothing else of the embedded backend, and not DuckDB)."""
