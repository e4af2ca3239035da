"""Time and identifiers in the wire formats Cloudflare uses."""

from __future__ import annotations

import random
import secrets
import threading
import time
from datetime import UTC, datetime

_random = random.Random()
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32, which ULIDs use
_PAIRS = [a + b for a in CROCKFORD for b in CROCKFORD]  # every 10-bit value as two characters


def now() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    """RFC 3339 UTC with milliseconds and Z, e.g. 2026-11-27T07:50:01.123Z."""
    m = moment.astimezone(UTC)  # not strftime: its %Y does not pad years before 1000 on glibc
    return (f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}."
            f"{m.microsecond // 1000:03d}Z")


_second: list[int | str] = [-1, ""]  # the last whole second formatted by ``rfc3339_ts``, and its text


def rfc3339_ts(timestamp: float) -> str:
    """``rfc3339`` of a Unix time. One formatting per second: a log batch is mostly one second."""
    millis = int(timestamp * 1000)
    second, ms = divmod(millis, 1000)
    if second != _second[0]:
        _second[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second[0] = second
    return f"{_second[1]}.{ms:03d}Z"


_last_id = [0]
_id_lock = threading.Lock()


def new_id() -> str:
    """32 lower-case hex characters, the shape of Cloudflare account / secret ids.

    Time-ordered like a UUIDv7 (48-bit millisecond time, then 80 random bits), and increasing within
    a process: listings ordered by a millisecond creation time break ties by id, so things made in
    one request (a batch of secrets) list in the order they were made.
    """
    value = (time.time_ns() // 1_000_000 << 80) | secrets.randbits(80)
    with _id_lock:
        if value <= _last_id[0]:
            value = _last_id[0] + 1
        _last_id[0] = value
    return f"{value:032x}"


def new_ulid() -> str:
    """A ULID (48-bit millisecond time, 80 random bits; 26 Crockford base32 characters), as log ids."""
    # Log ids are identifiers, not secrets (reading a log needs a token), so the fast PRNG will do.
    return ulid_text((time.time_ns() // 1_000_000 << 80) | _random.getrandbits(80))


def ulid_text(value: int) -> str:
    """A 128-bit value as a ULID's 26 characters (130 bits: two leading zero bits), ten bits (two
    characters) at a time from a table. Written out because it runs on every request: ~5 × cheaper
    than ``base64.b32encode`` (a Python loop) and a translation, which it equals (tests/test_clock.py)."""
    p, v = _PAIRS, value
    return "".join([p[v >> 120], p[v >> 110 & 1023], p[v >> 100 & 1023], p[v >> 90 & 1023], p[v >> 80 & 1023],
                    p[v >> 70 & 1023], p[v >> 60 & 1023], p[v >> 50 & 1023], p[v >> 40 & 1023],
                    p[v >> 30 & 1023], p[v >> 20 & 1023], p[v >> 10 & 1023], p[v & 1023]])
