"""jsonb on DuckDB's one JSON type: which columns are jsonb, its operators and its modification functions (layer 4)."""
