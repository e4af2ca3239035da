"""Storage: one async interface (``Database``) over SQLite or PostgreSQL, chosen by URL scheme."""

from sluice.store.database import Database, open_database

__all__ = ["Database", "open_database"]
