"""``KeyMatcher``: finds the exact stored key values in bytes and masks them.

Known key shapes (``logs/redact.py``) miss keys of no known shape — a Mistral, Azure or
Workers AI key, or any value under an unexpected alias — that a provider echoes in an error body
(``Incorrect API key provided: Bearer …``). A matcher is built from the values themselves when an
account's keys load (``proxy/sync.py``, off the request path) and handed to whoever must not let a
key through: the relay of upstream error bodies and the request-log writer. They get the matcher,
never the values: with hyperscan the values live only inside its compiled database.

Each value is matched as stored, JSON-escaped and percent-encoded (how an echo may quote it).
Values shorter than ``MIN_LENGTH`` are not matched: masking every ``abc`` in every body would
mangle logs, and no real provider key is that short.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

MASK = b"[REDACTED]"
MIN_LENGTH = 8
SIMD_MAX = 16_000  # hyperscan refuses longer literals ("Pattern length exceeds limit")

try:
    import hyperscan
except ImportError:  # pragma: no cover - platforms without a hyperscan wheel
    hyperscan = None  # type: ignore[assignment]


def forms(value: str) -> set[bytes]:
    """The byte strings an echo of ``value`` may contain."""
    if len(value) < MIN_LENGTH:
        return set()
    escaped = json.dumps(value)[1:-1]
    return {value.encode(), escaped.encode(), escaped.replace("/", "\\/").encode(),
            quote(value, safe="").encode()}


def _collect(_id: int, start: int, end: int, _flags: int, found: list[tuple[int, int]]) -> None:
    found.append((start, end))


def merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def mask(body: bytes, spans: list[tuple[int, int]]) -> bytes:
    out = bytearray()
    at = 0
    for start, end in merge(spans):
        out += body[at:start]
        out += MASK
        at = end
    out += body[at:]
    return bytes(out)


class KeyMatcher:
    """Immutable; safe to share between requests and threads (a second thread scanning at the same
    time gets a scratch space of its own)."""

    __slots__ = ("_database", "_local", "_long", "_pattern", "count", "longest")

    def __init__(self, values: Iterable[str]) -> None:
        literals = sorted({form for value in values for form in forms(value)}, key=len, reverse=True)
        self.count = len(literals)
        self.longest = len(literals[0]) if literals else 0  # a streamed scan keeps this much overlap
        self._database: Any = None
        self._pattern: re.Pattern[bytes] | None = None
        self._local = threading.local()
        # Values too long for hyperscan (a provider accepts keys up to 64 KiB) are found by a plain
        # substring search: rare, and bytes.find is linear.
        simd = hyperscan is not None
        self._long = [literal for literal in literals if len(literal) > SIMD_MAX] if simd else []
        literals = [literal for literal in literals if len(literal) <= SIMD_MAX] if simd else literals
        if not literals:
            return
        if hyperscan is not None:
            database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            try:
                database.compile(expressions=literals, ids=list(range(len(literals))), elements=len(literals),
                                 flags=[hyperscan.HS_FLAG_SOM_LEFTMOST] * len(literals), literal=True)
                self._database = database
                return
            except hyperscan.error:  # pragma: no cover - never fail to build: slower, but still masks
                literals = [*literals, *self._long]
                self._long = []
        # longest first, so a value that contains another masks whole
        self._pattern = re.compile(b"|".join(re.escape(literal) for literal in literals))

    def __bool__(self) -> bool:
        return self.count > 0

    def __repr__(self) -> str:
        return f"KeyMatcher({self.count} forms)"

    def spans(self, body: bytes) -> list[tuple[int, int]]:
        """Where stored values occur in ``body`` (possibly overlapping)."""
        if not self.count or not body:
            return []
        if self._pattern is not None:  # pragma: no cover
            return [m.span() for m in self._pattern.finditer(body)]
        found: list[tuple[int, int]] = []
        for literal in self._long:
            start = body.find(literal)
            while start >= 0:
                found.append((start, start + len(literal)))
                start = body.find(literal, start + 1)
        if self._database is None:
            return found
        try:  # the database's own scratch: all scans run on the event loop, so it is free (measured: a
            self._database.scan(body, match_event_handler=_collect, context=found)  # third of a scan)
        except hyperscan.ScratchInUseError:  # another thread is scanning: one of its own
            found.clear()
            self._database.scan(body, match_event_handler=_collect, context=found, scratch=self._scratch())
        return found

    def redact(self, body: bytes) -> bytes:
        """``body`` with every stored value replaced by ``[REDACTED]`` (the same object when none)."""
        found = self.spans(body)
        return mask(body, found) if found else body

    def _scratch(self) -> Any:
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = hyperscan.Scratch(self._database)
        return scratch


EMPTY = KeyMatcher(())


def same_length_mask(body: bytes, spans: list[tuple[int, int]]) -> bytes:
    """``mask``, but each masked run keeps its length (``[REDACTED]****``): a relayed answer's
    ``content-length`` stays true."""
    out = bytearray(body)
    for start, end in merge(spans):
        size = end - start
        out[start:end] = (MASK + b"*" * size)[:size]
    return bytes(out)


class StreamMasker:
    """Masks stored values in a body that passes in chunks (a 2xx answer relayed as it arrives).

    A value split across two chunks is caught by holding back the last ``longest - 1`` bytes of a
    chunk until the next one comes; a chunk that ends a line (an SSE event, a JSON line) is sent
    whole, since no matched form holds a raw line break, so a stream's events are never delayed.
    """

    __slots__ = ("_held", "_keep", "_matcher")

    def __init__(self, matcher: KeyMatcher) -> None:
        self._matcher = matcher
        self._keep = max(matcher.longest - 1, 0)
        self._held = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._held + chunk if self._held else chunk
        cut = len(data) if data.endswith(b"\n") else max(len(data) - self._keep, 0)
        found = merge(self._matcher.spans(data))
        for start, end in found:  # a value that starts before the cut is whole: send it masked
            if start < cut < end:
                cut = end
        self._held = data[cut:]
        done = [(start, end) for start, end in found if end <= cut]
        return same_length_mask(data[:cut], done) if done else data[:cut]

    def flush(self, chunk: bytes = b"") -> bytes:
        """The rest: what is held back and the last ``chunk``, masked (one scan: an answer sent in one
        piece, like a chat completion, is scanned once)."""
        data = self._held + chunk if self._held else chunk
        self._held = b""
        found = self._matcher.spans(data)
        return same_length_mask(data, found) if found else data
