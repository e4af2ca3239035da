"""Response cache: key derivation and rules (pure: ``keys``, ``rules``) and an in-memory store
behind a small async interface (``base.ResponseCache``, ``memory.MemoryCache``)."""
