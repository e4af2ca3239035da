"""Reading the change feed without skipping a commit (pure; ``sync.py`` does the reads).

A feed row's ``seq`` is taken when it is inserted but becomes visible when its transaction
commits, and on PostgreSQL those happen out of order: a reader that remembers "the highest seq I
have seen" skips a row whose commit lands after a higher-numbered one, for good. So the cursor
remembers a *horizon* instead: a point (from ``store.queries.feed_horizon``, taken before each read)
below which every writing transaction had ended. Each read returns every row written at or above
the current horizon; rows already applied are recognised by ``seq`` and not applied again. A
transaction still open at a read is at or above the next horizon, so its rows are read once it
commits, whatever their ``seq``. See docs/scale-out.md#changes-between-instances.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

FeedRow = Mapping[str, Any]  # seq, account_id, kind, xid


@dataclass(frozen=True, slots=True)
class FeedCursor:
    horizon: int  # every writer below it had ended when it was taken
    applied: frozenset[int] = field(default_factory=frozenset)  # seqs at/above the horizon already applied

    def unread(self, rows: Iterable[FeedRow]) -> list[FeedRow]:
        """The rows of a read (from ``horizon`` up) that have not been applied yet, oldest first."""
        return [row for row in rows if row["seq"] not in self.applied]

    def advance(self, rows: Iterable[FeedRow], horizon: int) -> FeedCursor:
        """The cursor once ``rows`` (one whole read from ``self.horizon`` up) have been applied;
        ``horizon`` was taken before that read. Rows below the new horizon can never be read again,
        so only the ones at or above it are remembered."""
        new = max(self.horizon, horizon)  # a horizon never goes back; max() guards against a stale one
        return FeedCursor(new, frozenset(row["seq"] for row in rows if row["xid"] >= new))


def accounts_to_reload(rows: Iterable[FeedRow]) -> list[str]:
    """Each account named by the rows, once, in the order first named."""
    return list(dict.fromkeys(row["account_id"] for row in rows))


def keyring_changed(rows: Iterable[FeedRow]) -> bool:
    return any(row["kind"] == "kek" for row in rows)
