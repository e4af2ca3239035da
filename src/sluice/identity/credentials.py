"""Token and key values: generated with 256+ bits of entropy, shown once, stored only as hashes."""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "sluice_"


def new_token() -> str:
    """``sluice_`` + 43 url-safe characters (256 bits); the prefix lets scanners find leaks."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_global_key() -> str:
    """A user's global API key (legacy X-Auth-Key): 40 hex characters, like Cloudflare's."""
    return secrets.token_hex(20)


def hash_value(value: str) -> str:
    """SHA-256 is enough: the values are random with 256 bits of entropy, never user passwords."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def is_sluice_token(value: str) -> bool:
    return value.startswith(TOKEN_PREFIX)
