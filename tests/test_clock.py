"""Wire formats of time and ids (``sluice.clock``)."""

from __future__ import annotations

import base64
import re
import time
from datetime import UTC, datetime

from hypothesis import example, given
from hypothesis import strategies as st

from sluice.clock import new_id, new_ulid, rfc3339, rfc3339_ts, ulid_text

CROCKFORD = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")


def test_rfc3339_shape() -> None:
    moment = datetime(2026, 11, 27, 7, 50, 1, 123456, tzinfo=UTC)
    assert rfc3339(moment) == "2026-11-27T07:50:01.123Z"
    assert rfc3339_ts(moment.timestamp()) == "2026-11-27T07:50:01.123Z"


@given(st.datetimes(timezones=st.just(UTC)))
def test_rfc3339_is_fixed_width_and_sorts_like_time(moment: datetime) -> None:
    """Expiries are compared as text (tokens.window): years before 1000 are zero-padded, as RFC 3339
    requires, or "25-12-18…" would sort after "2026-…" and a past expiry would pass as future."""
    text = rfc3339(moment)
    assert len(text) == len("2026-11-27T07:50:01.123Z")
    assert datetime.fromisoformat(text) == moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    assert (text < rfc3339(datetime(2026, 1, 1, tzinfo=UTC))) == (moment < datetime(2026, 1, 1, tzinfo=UTC))


@given(st.integers(min_value=0, max_value=4_000_000_000_000))
def test_rfc3339_ts_agrees_with_datetime_formatting(millis: int) -> None:
    # whole milliseconds are exact; the per-second cache must never leak one second into the next
    moment = datetime.fromtimestamp(millis / 1000, tz=UTC)
    assert rfc3339_ts(millis / 1000 + 0.0001) == rfc3339(moment)


def test_ulids_are_crockford_and_time_ordered() -> None:
    ids = [new_ulid() for _ in range(1000)]
    assert all(CROCKFORD.fullmatch(i) for i in ids)
    assert len(set(ids)) == 1000
    assert ids[0][:10] <= ids[-1][:10]  # the first 10 characters are the millisecond time


@given(st.integers(min_value=0, max_value=2**128 - 1))
@example(0)
@example(2**128 - 1)
def test_ulid_text_is_base32_of_the_value_in_crockfords_alphabet(value: int) -> None:
    """The reference: RFC 4648 base32 of the value left-padded to 160 bits, whose last 26 characters
    are the ULID's, in Crockford's alphabet."""
    rfc4648 = base64.b32encode(value.to_bytes(20, "big")).decode()[6:]
    expected = rfc4648.translate(str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567",
                                               "0123456789ABCDEFGHJKMNPQRSTVWXYZ"))
    assert ulid_text(value) == expected


def test_new_id_is_cloudflare_shaped_unique_and_increasing() -> None:
    ids = [new_id() for _ in range(5000)]  # many share a millisecond
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    # the first 12 hex digits are the creation time in milliseconds
    assert abs(int(ids[-1][:12], 16) - time.time() * 1000) < 60_000
