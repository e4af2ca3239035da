"""Time and identifiers in the wire formats Cloudflare uses."""

from __future__ import annotations

import secrets
from datetime import datetime, timezone


def now() -> datetime:
    return datetime.now(timezone.utc)


def rfc3339(moment: datetime) -> str:
    """RFC 3339 UTC with milliseconds and Z, e.g. 2026-11-27T07:50:01.123Z."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def new_id() -> str:
    """32 lower-case hex characters, the shape of Cloudflare account / secret ids."""
    return secrets.token_hex(16)
