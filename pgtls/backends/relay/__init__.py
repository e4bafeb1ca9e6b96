"""The relay backend: PostgreSQL behind the door (the managed cluster, pooled upstream sessions)."""
