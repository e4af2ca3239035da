"""Time series of request logs (a Sluice extension for the console's charts): pure bucketing rules.

Stored ``created_at`` values are RFC 3339 text (``2026-11-29T08:12:03.123Z``), so a bucket is a text
prefix of that stamp — the same SQL on SQLite and PostgreSQL, and the (account, gateway, created_at)
index still narrows the range.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sluice.clock import rfc3339
from sluice.errors import ValidationError

# interval -> (length of the created_at prefix that names the bucket, bucket length)
INTERVALS: dict[str, tuple[int, timedelta]] = {
    "minute": (16, timedelta(minutes=1)),
    "hour": (13, timedelta(hours=1)),
    "day": (10, timedelta(days=1)),
}
MAX_POINTS = 1500  # a day of minutes fits; the handler refuses longer series rather than truncating
DEFAULT_SPAN = timedelta(hours=24)
COUNTERS = ("requests", "errors", "tokens", "cost")


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    interval: str

    @property
    def prefix(self) -> int:
        return INTERVALS[self.interval][0]


def parse(raw: str, name: str) -> datetime:
    """An ISO 8601 date-time query parameter (``Z`` or an offset; naive means UTC)."""
    try:
        moment = datetime.fromisoformat(raw.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValidationError(f"{name}: not an ISO 8601 date-time", path=["query", name]) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ValidationError(f"{name}: out of range", path=["query", name]) from None


def _floor(moment: datetime, interval: str) -> datetime:
    if interval == "day":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if interval == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(second=0, microsecond=0)


def window(start: datetime | None, end: datetime | None, interval: str | None, now: datetime) -> Window:
    """The buckets to answer for: ``end`` defaults to now, ``start`` to 24 h before ``end``, ``interval``
    to the finest one that keeps the series within MAX_POINTS."""
    end = end or now
    if start is None:
        try:
            start = end - DEFAULT_SPAN
        except OverflowError:  # an end in the first day of year 1
            raise ValidationError("end: out of range", path=["query", "end"]) from None
    if start >= end:
        raise ValidationError("start: must be before end", path=["query", "start"])
    if interval is None:
        interval = next((name for name, (_, step) in INTERVALS.items()
                         if (end - start) / step <= MAX_POINTS), "day")
    step = INTERVALS[interval][1]
    if (end - _floor(start, interval)) / step > MAX_POINTS:
        raise ValidationError(f"interval: {interval} buckets over this range make more than {MAX_POINTS} "
                              "points; choose a coarser interval or a shorter range",
                              path=["query", "interval"])
    return Window(start, end, interval)


def bucket_stamp(prefix: str) -> str:
    """The RFC 3339 start of the bucket a created_at prefix names."""
    return {16: prefix + ":00.000Z", 13: prefix + ":00:00.000Z", 10: prefix + "T00:00:00.000Z"}[len(prefix)]


def points(win: Window, rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every bucket of the window in order, empty ones as zeros (a chart needs the gaps)."""
    step = INTERVALS[win.interval][1]
    out = []
    moment = _floor(win.start, win.interval)
    while moment <= win.end:
        start = rfc3339(moment)
        row = rows.get(start, {})
        out.append({"t": start, **{name: row.get(name) or 0 for name in COUNTERS}})
        if moment > datetime.max.replace(tzinfo=UTC) - step:  # the last bucket of year 9999
            break
        moment += step
    return out
