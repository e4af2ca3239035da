"""The cache interface the data plane uses; the one implementation keeps entries in process memory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class CachedResponse:
    status: int
    headers: tuple[tuple[str, str], ...]  # already filtered by rules.storable_headers
    body: bytes

    @property
    def size(self) -> int:
        return len(self.body) + sum(len(k) + len(v) for k, v in self.headers) + 64


class ResponseCache(Protocol):
    async def get(self, key: str) -> CachedResponse | None: ...

    async def set(self, key: str, response: CachedResponse, ttl_s: int) -> None: ...

    async def invalidate(self, prefix: str) -> None: ...
