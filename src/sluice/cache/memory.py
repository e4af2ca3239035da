"""In-process response cache: bounded by bytes, least-recently-used first out, per-entry TTL."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from sluice.cache.base import CachedResponse


class MemoryCache:
    def __init__(self, max_bytes: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self.clock = clock
        self.bytes = 0
        self._entries: OrderedDict[str, tuple[CachedResponse, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> CachedResponse | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[1] <= self.clock():
            self._remove(key)
            return None
        self._entries.move_to_end(key)
        return entry[0]

    async def set(self, key: str, response: CachedResponse, ttl_s: int) -> None:
        if ttl_s <= 0 or response.size > self.max_bytes:
            return  # never evict everything for one entry that cannot fit
        if key in self._entries:
            self._remove(key)
        self._entries[key] = (response, self.clock() + ttl_s)
        self.bytes += response.size
        while self.bytes > self.max_bytes:
            self._remove(next(iter(self._entries)))

    async def invalidate(self, prefix: str) -> None:
        for key in [k for k in self._entries if k.startswith(prefix)]:
            self._remove(key)

    def _remove(self, key: str) -> None:
        response, _ = self._entries.pop(key)
        self.bytes -= response.size
