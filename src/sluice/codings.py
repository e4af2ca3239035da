"""HTTP content codings, decoded with a bound on the output: pure, no I/O.

Bodies are relayed and logged as the provider sent them, so one a client asked to be compressed
(``accept-encoding`` goes upstream) is compressed. Where Sluice must read such a body — an upstream
error body checked for stored keys (``proxy/errorbody.py``), a logged body (``logs/redact.py``)
— it is decoded here. gzip, deflate and zstd are understood; brotli is not (no decoder installed):
``decode`` answers None for it, and the caller decides what an unreadable body means.
"""

from __future__ import annotations

import zlib

import zstandard

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
MAGIC_FIRST = (GZIP_MAGIC[:1], ZSTD_MAGIC[:1])  # a cheap first look before ``sniff``
IDENTITY = frozenset({"", "identity"})


def _zlib(body: bytes, wbits: int, limit: int) -> bytes | None:
    decoder = zlib.decompressobj(wbits)
    try:
        out = decoder.decompress(body, limit + 1)
    except zlib.error:
        return None
    return out if len(out) <= limit else None


def _zstd(body: bytes, limit: int) -> bytes | None:
    try:
        with zstandard.ZstdDecompressor().stream_reader(body) as reader:
            out = reader.read(limit + 1)
    except zstandard.ZstdError:
        return None
    return out if len(out) <= limit else None


def decode(body: bytes, coding: str, limit: int) -> bytes | None:
    """``body`` decoded from ``coding`` (a ``content-encoding`` value); None when the coding is
    not understood, the data is damaged, or the output would pass ``limit`` bytes. A truncated
    stream (a log keeps only the first bytes) decodes as far as it goes."""
    codings = [part.strip().lower() for part in coding.split(",") if part.strip().lower() not in IDENTITY]
    for name in reversed(codings):  # applied in the order listed, so undone from the last
        if name in ("gzip", "x-gzip"):
            decoded = _zlib(body, 16 + zlib.MAX_WBITS, limit)
        elif name == "deflate":  # RFC 9110 says zlib-wrapped; some servers send raw deflate
            decoded = _zlib(body, zlib.MAX_WBITS, limit) or _zlib(body, -zlib.MAX_WBITS, limit)
        elif name == "zstd":
            decoded = _zstd(body, limit)
        else:
            return None
        if decoded is None:
            return None
        body = decoded
    return body


def sniff(body: bytes, limit: int) -> bytes | None:
    """A gzip or zstd body recognised by its magic bytes, decoded; None when it is neither."""
    if body.startswith(GZIP_MAGIC):
        return decode(body, "gzip", limit)
    if body.startswith(ZSTD_MAGIC):
        return decode(body, "zstd", limit)
    return None
