"""The feed cursor (pure): rows are applied once each, and a row that commits late is not skipped."""

from __future__ import annotations

from sluice.proxy.feed import FeedCursor, accounts_to_reload, keyring_changed


def row(seq: int, xid: int, account: str = "a", kind: str = "gateway") -> dict:
    return {"seq": seq, "xid": xid, "account_id": account, "kind": kind}


def test_a_late_commit_below_a_seen_seq_is_read() -> None:
    cursor = FeedCursor(horizon=100)
    # xid 100 took seq 1 and is still open; xid 101 took seq 2 and committed. The horizon taken before
    # the read is 100 (xid 100 has not ended).
    first = [row(2, 101)]
    assert cursor.unread(first) == first
    cursor = cursor.advance(first, horizon=100)
    # xid 100 commits; the next read returns both rows at or above the horizon.
    second = [row(1, 100), row(2, 101)]
    assert cursor.unread(second) == [row(1, 100)]
    cursor = cursor.advance(second, horizon=102)
    assert cursor == FeedCursor(102)  # everything below 102 has ended: nothing to remember


def test_the_seq_high_water_mark_would_have_skipped_it() -> None:
    """What the old reader did (``seq > last_seen``), for contrast: seq 1 is never read."""
    last_seen = max(r["seq"] for r in [row(2, 101)])
    assert [r for r in [row(1, 100), row(2, 101)] if r["seq"] > last_seen] == []


def test_the_horizon_never_goes_back() -> None:
    cursor = FeedCursor(50).advance([], horizon=40)
    assert cursor.horizon == 50


def test_rows_at_or_above_the_new_horizon_are_remembered() -> None:
    rows = [row(5, 60), row(6, 70)]
    cursor = FeedCursor(50).advance(rows, horizon=65)
    assert cursor == FeedCursor(65, frozenset({6}))
    assert cursor.unread([row(6, 70), row(7, 66)]) == [row(7, 66)]


def test_accounts_and_keyring() -> None:
    rows = [row(1, 1, "b"), row(2, 2, "a"), row(3, 3, "b", "kek")]
    assert accounts_to_reload(rows) == ["b", "a"]
    assert keyring_changed(rows) and not keyring_changed(rows[:2])
