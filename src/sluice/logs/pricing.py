"""Cost of a request from its token counts and a price table kept as data (``prices.toml``)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

PRICES = Path(__file__).with_name("prices.toml")
PER = 1_000_000  # the table is per million tokens
_SEPARATORS = ("-", "@", ":")
FOUND_MAX = 4096  # (provider, model) pairs remembered by PriceTable.price


@dataclass(frozen=True, slots=True)
class Price:
    per_token_in: float
    per_token_out: float

    def cost(self, tokens_in: int | None, tokens_out: int | None) -> float:
        return (tokens_in or 0) * self.per_token_in + (tokens_out or 0) * self.per_token_out


class PriceTable:
    def __init__(self, data: dict[str, Any]) -> None:
        self.aliases: dict[str, str] = dict(data.get("aliases", {}))
        self.tables: dict[str, dict[str, Price]] = {
            provider: {model: Price(p["in"] / PER, p["out"] / PER) for model, p in models.items()}
            for provider, models in data.items() if provider != "aliases"
        }
        self._found: dict[tuple[str, str], Price | None] = {}

    def _match(self, provider: str, model: str) -> Price | None:
        table = self.tables.get(self.aliases.get(provider, provider), {})
        if model in table:
            return table[model]
        best = None
        for name, price in table.items():
            longer = best is None or len(name) > len(best[0])
            if model.startswith(name) and model[len(name)] in _SEPARATORS and longer:
                best = (name, price)
        return best[1] if best else None

    def price(self, provider: str, model: str | None) -> Price | None:
        """The price of ``model`` at ``provider`` (or of any provider, ``*``); looked up once per
        pair: every request log asks, and a prefix match scans the provider's table."""
        if not model:
            return None
        key = (provider, model)
        try:
            return self._found[key]
        except KeyError:
            pass
        found = self._lookup(provider, model)
        if len(self._found) >= FOUND_MAX:  # model names come from callers: bound the memo
            self._found.clear()
        self._found[key] = found
        return found

    def _lookup(self, provider: str, model: str) -> Price | None:
        model = model.removeprefix("models/")  # Google's resource names
        found = self._match(provider, model)
        if found is None and "/" in model:  # OpenRouter-style "openai/gpt-4o"
            vendor, _, bare = model.partition("/")
            found = self._match(vendor, bare)
            model = bare
        return found or self._match("*", model)


@lru_cache(maxsize=1)
def default_table() -> PriceTable:
    with PRICES.open("rb") as handle:
        return PriceTable(tomllib.load(handle))
