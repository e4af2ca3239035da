"""Request logs, pure: the row built from an Exchange (``records``), body compression and key
redaction, the Logs API filter language, retention plans, prices and custom cost/metadata."""
