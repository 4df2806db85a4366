"""Refresh-family and revocation stores: memory, SQLite, Redis, PostgreSQL."""
