"""Storage: one async interface (``database.Database``) over SQLite or PostgreSQL, chosen by URL
scheme; the schema (one ``MetaData``) and every SQL statement Sluice runs."""
