"""pgtls: a PostgreSQL-protocol front door that negotiates TLS exactly like PostgreSQL (§19.9)."""

__version__ = "0.1.0"
