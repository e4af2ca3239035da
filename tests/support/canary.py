"""Searching what a server showed and kept for planted secrets (the canary tests).

A ``Scan`` collects every place a secret must not be — response bodies and headers, the server's
output, the Logs API, the database's bytes, ``/metrics`` — each under a name that says where it came
from, and reports every planted value found in any of them, in any of the encodings ``forms`` lists.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import httpx

from tests.support.key_echo import shown


def forms(value: str) -> list[bytes]:
    """How a value may appear: as is, JSON-escaped, UTF-16, base64, hex, and without its first 8
    characters (a stored preview shows at most 8)."""
    raw = value.encode()
    return [raw, json.dumps(value)[1:-1].encode(), value.encode("utf-16-le"), value.encode("utf-16-be"),
            base64.b64encode(raw), base64.urlsafe_b64encode(raw), raw.hex().encode(), value[8:].encode()]


def files_containing(data_dir: Path, needles: list[bytes]) -> list[str]:
    hits = []
    for path in sorted(data_dir.rglob("*")):
        if path.is_file():
            content = path.read_bytes()
            hits.extend(f"{path.name}: {needle[:12]!r}" for needle in needles if needle in content)
    return hits


class Scan:
    """Places that must hold no planted secret, and the search of them."""

    def __init__(self) -> None:
        self.places: list[tuple[str, bytes]] = []

    def add(self, where: str, content: str | bytes) -> None:
        self.places.append((where, content.encode() if isinstance(content, str) else content))

    def add_response(self, response: httpx.Response, where: str = "") -> None:
        """A response as the client saw it (read whole first): body and every header."""
        response.read()
        label = f"{response.request.method} {response.request.url.path} -> {response.status_code}"
        self.add(f"{where} {label}".strip(), shown(response))

    def hits(self, secrets: Mapping[str, str]) -> list[str]:
        """``"<secret name> in <place>"`` for every planted value found anywhere."""
        needles = [(name, form) for name, value in secrets.items() for form in forms(value)]
        return sorted({f"{name} in {where}" for where, content in self.places
                       for name, form in needles if form in content})

    def excerpts(self, value: str, around: int = 80) -> list[str]:
        """Where ``value`` (as is) was found, with some context: what a failure message shows."""
        needle = value.encode()
        return [f"{where}: ...{content[max(0, at - around):at + len(needle) + around]!r}..."
                for where, content in self.places if (at := content.find(needle)) >= 0]

    def contains(self, text: str) -> bool:
        return any(text.encode() in content for _, content in self.places)

    def count(self, where_starts: Iterable[str] = ("",)) -> int:
        return sum(1 for where, _ in self.places if where.startswith(tuple(where_starts)))
