"""Key health (sluice.keyhealth, pure): what a provider's answer means for a key, and how long it stays
out. The clock is injected and moved; nothing waits."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from sluice.keyhealth import (
    AUTH,
    COOLING,
    DEFAULT_COOL_S,
    FAILED,
    MAX_COOL_S,
    QUOTA,
    RATE_LIMITED,
    KeyHealth,
    Verdict,
    retry_after_s,
    verdict,
)

NOW = 1_800_000_000.0


class Clock:
    def __init__(self, at: float = NOW) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


@pytest.mark.parametrize(("value", "seconds"), [
    ("5", 5.0), (" 30 ", 30.0), ("0", 0.0), (formatdate(NOW + 120, usegmt=True), 120.0),
    (formatdate(NOW - 50, usegmt=True), 0.0), ("999999999", MAX_COOL_S),
    (None, None), ("", None), ("soon", None), ("-5", None), ("1.5", None),
])
def test_retry_after_takes_seconds_or_an_http_date(value: str | None, seconds: float | None) -> None:
    assert retry_after_s(value, NOW) == seconds


@pytest.mark.parametrize(("status", "retry_after", "body", "expected"), [
    (429, "5", b"{}", Verdict(COOLING, RATE_LIMITED, 5.0)),
    (429, None, b"{}", Verdict(COOLING, RATE_LIMITED, DEFAULT_COOL_S)),
    (429, "junk", b"{}", Verdict(COOLING, RATE_LIMITED, DEFAULT_COOL_S)),
    (429, "5", b'{"error": {"code": "insufficient_quota"}}', Verdict(COOLING, QUOTA, 900.0)),
    (402, None, b"", Verdict(COOLING, QUOTA, 900.0)),
    (401, None, b"", Verdict(FAILED, AUTH)),
    (403, "5", b"", Verdict(FAILED, AUTH)),
    (400, None, b"insufficient_quota", None),
    (500, "5", b"", None),
    (200, None, b"", None),
])
def test_verdict(status: int, retry_after: str | None, body: bytes, expected: Verdict | None) -> None:
    assert verdict(status, retry_after, body, 900.0, NOW) == expected


def test_a_cooling_key_is_back_when_its_time_is_up() -> None:
    clock = Clock()
    health = KeyHealth(clock)
    assert health.usable("a") and not health
    mark = health.apply("a", "openai", Verdict(COOLING, RATE_LIMITED, 5.0))
    assert mark.until == NOW + 5 and health
    assert not health.usable("a") and health.usable("b")
    clock.at = NOW + 4.999
    assert not health.usable("a")
    assert health.counts() == {("openai", COOLING): 1}
    clock.at = NOW + 5
    assert health.usable("a") and health.mark("a") is None
    assert health.counts() == {} and not health


def test_a_failed_key_stays_out_until_cleared() -> None:
    clock = Clock()
    health = KeyHealth(clock)
    health.apply("a", "openai", Verdict(FAILED, AUTH))
    health.apply("b", "openai", Verdict(COOLING, QUOTA, 60.0))
    health.apply("c", "anthropic", Verdict(FAILED, AUTH))
    clock.at = NOW + 10 * 365 * 86400
    assert not health.usable("a")
    assert health.counts() == {("openai", FAILED): 1, ("anthropic", FAILED): 1}
    health.clear("a")
    health.clear("never-marked")
    assert health.usable("a") and health.marked() == ["c"]


def test_a_new_verdict_replaces_the_old() -> None:
    clock = Clock()
    health = KeyHealth(clock)
    health.apply("a", "openai", Verdict(FAILED, AUTH))
    health.apply("a", "openai", Verdict(COOLING, RATE_LIMITED, 1.0))
    mark = health.mark("a")
    assert mark is not None and (mark.state, mark.reason, mark.until) == (COOLING, RATE_LIMITED, NOW + 1)
