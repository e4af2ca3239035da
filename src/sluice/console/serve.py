"""Serves the console's static files at /console/ with a strict Content-Security-Policy.

The files are package data, read once at first use into memory (with a gzip copy each): a closed set
of names, so no request path ever reaches the filesystem. Security headers (docs/console.md):
scripts, styles and fetches from this origin only, no inline script or style, never framed.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATIC = Path(__file__).parent / "static"
PREFIX = "/console"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png"}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    gzipped: bytes
    media_type: str
    etag: bytes


def load_assets(root: Path = STATIC) -> dict[str, Asset]:
    """Every file under ``root`` by its URL path below /console/ ("" is index.html)."""
    assets = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        body = path.read_bytes()
        media = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        etag = b'"' + hashlib.sha256(body).hexdigest()[:20].encode() + b'"'
        assets[path.relative_to(root).as_posix()] = Asset(body, gzip.compress(body, 9, mtime=0), media, etag)
    assets[""] = assets["index.html"]
    return assets


class Console:
    """The ASGI app answering every path under /console."""

    def __init__(self, root: Path = STATIC) -> None:
        self.assets = load_assets(root)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path: str = scope["path"]
        if path == PREFIX:
            await _send(send, 308, b"", [(b"location", b"/console/")])
            return
        asset = self.assets.get(path[len(PREFIX) + 1:]) if path.startswith(PREFIX + "/") else None
        if asset is None or scope["method"] not in ("GET", "HEAD"):
            status = 404 if asset is None else 405
            await _send(send, status, b"Not Found" if status == 404 else b"Method Not Allowed",
                        [(b"content-type", b"text/plain; charset=utf-8"), (b"allow", b"GET, HEAD")])
            return
        headers = dict(scope["headers"])
        common = [(b"content-type", asset.media_type.encode()), (b"etag", asset.etag),
                  (b"cache-control", b"no-cache"), (b"vary", b"accept-encoding")]
        if headers.get(b"if-none-match") == asset.etag:
            await _send(send, 304, b"", common)
            return
        body = asset.body
        if b"gzip" in headers.get(b"accept-encoding", b""):
            body = asset.gzipped
            common.append((b"content-encoding", b"gzip"))
        await _send(send, 200, b"" if scope["method"] == "HEAD" else body, common,
                    length=len(body))


async def _send(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]],
                length: int | None = None) -> None:
    size = len(body) if length is None else length
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, *SECURITY_HEADERS, (b"content-length", str(size).encode())]})
    await send({"type": "http.response.body", "body": body})
