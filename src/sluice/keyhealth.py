"""Key pools: which stored keys are out of service, and why (docs/gateway.md "Key pools"). Pure, no I/O.

A gateway with ``key_failover`` fails a request over to another stored key of the same provider when
the provider refuses the key. What the provider's answer means for the key is decided here
(``verdict``), and ``KeyHealth`` remembers it per provider config id:

* 429 → *cooling* for the answer's ``Retry-After`` (seconds or an HTTP date; ``DEFAULT_COOL_S``
  without one; at most ``MAX_COOL_S``);
* 402, or a 429 whose body says ``insufficient_quota`` (OpenAI's out-of-credit answer) → *cooling*
  for the gateway's quota cool-down;
* 401 / 403 → *failed* until the key is rotated (``clear``, called when the key's config or secret
  changes).

The state is this process's memory only: in a cluster each process learns on its own. The clock
(wall time, so an end time can be shown as a date) is injected.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

COOLING = "cooling"
FAILED = "failed"
RATE_LIMITED = "rate_limited"
QUOTA = "quota"
AUTH = "auth"
DEFAULT_COOL_S = 60.0  # a 429 without a usable Retry-After
MAX_COOL_S = 86_400.0  # a provider's Retry-After is believed up to a day
QUOTA_MARKER = b"insufficient_quota"
QUOTA_SCAN_BYTES = 64 * 1024  # where the marker is looked for: error bodies are small
FAILOVER_STATUSES = frozenset({401, 402, 403, 429})


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one provider answer says about the key it was sent with."""

    state: str  # COOLING | FAILED
    reason: str  # RATE_LIMITED | QUOTA | AUTH
    seconds: float | None = None  # how long a COOLING key stays out


@dataclass(frozen=True, slots=True)
class Mark:
    provider: str
    state: str
    reason: str
    until: float | None  # clock time the key is back; None: until rotated


def retry_after_s(value: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds from ``now``: delta-seconds or an HTTP date; None when unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - now
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return min(MAX_COOL_S, max(0.0, seconds))


def verdict(status: int, retry_after: str | None, body: bytes, quota_cool_s: float,
            now: float) -> Verdict | None:
    """The key's fate after the provider answered ``status``; None: the answer says nothing about the key."""
    if status in (401, 403):
        return Verdict(FAILED, AUTH)
    if status == 402 or (status == 429 and QUOTA_MARKER in body[:QUOTA_SCAN_BYTES]):
        return Verdict(COOLING, QUOTA, quota_cool_s)
    if status == 429:
        seconds = retry_after_s(retry_after, now)
        return Verdict(COOLING, RATE_LIMITED, DEFAULT_COOL_S if seconds is None else seconds)
    return None


class KeyHealth:
    """Marks by provider config id. ``usable`` is a dict lookup (the hot path asks once per key)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._marks: dict[str, Mark] = {}

    def __bool__(self) -> bool:
        return bool(self._marks)

    def mark(self, config_id: str) -> Mark | None:
        """The key's current mark; an expired cool-down is dropped and reads as None."""
        found = self._marks.get(config_id)
        if found is not None and found.until is not None and self.clock() >= found.until:
            del self._marks[config_id]
            return None
        return found

    def usable(self, config_id: str) -> bool:
        return not self._marks or self.mark(config_id) is None

    def apply(self, config_id: str, provider: str, found: Verdict) -> Mark:
        until = None if found.state == FAILED else self.clock() + (found.seconds or 0.0)
        mark = self._marks[config_id] = Mark(provider, found.state, found.reason, until)
        return mark

    def clear(self, config_id: str) -> None:
        self._marks.pop(config_id, None)

    def marked(self) -> list[str]:
        return list(self._marks)

    def counts(self) -> dict[tuple[str, str], int]:
        """Keys out of service by (provider, state), expired cool-downs left out."""
        out: dict[tuple[str, str], int] = {}
        for config_id in list(self._marks):
            mark = self.mark(config_id)
            if mark is not None:
                out[(mark.provider, mark.state)] = out.get((mark.provider, mark.state), 0) + 1
        return out
