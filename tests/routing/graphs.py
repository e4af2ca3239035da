"""Element builders for route graphs in tests (the official SDK's JSON shape)."""

from __future__ import annotations

from typing import Any


def to(element_id: str) -> dict[str, str]:
    return {"elementId": element_id}


def start(next_id: str, element_id: str = "start") -> dict[str, Any]:
    return {"id": element_id, "type": "start", "outputs": {"next": to(next_id)}}


def end(element_id: str = "end") -> dict[str, Any]:
    return {"id": element_id, "type": "end", "outputs": {}}


def model(element_id: str, provider: str = "openai", name: str = "gpt-4o-mini", *, success: str = "end",
          fallback: str | None = None, timeout: float = 30_000, retries: float = 0,
          alias: str | None = None) -> dict[str, Any]:
    outputs = {"success": to(success)} | ({"fallback": to(fallback)} if fallback else {})
    props: dict[str, Any] = {"provider": provider, "model": name, "timeout": timeout, "retries": retries}
    if alias is not None:
        props["byokAlias"] = alias
    return {"id": element_id, "type": "model", "properties": props, "outputs": outputs}


def conditional(element_id: str, conditions: Any, true: str, false: str) -> dict[str, Any]:
    return {"id": element_id, "type": "conditional", "properties": {"conditions": conditions},
            "outputs": {"true": to(true), "false": to(false)}}


def split(element_id: str, **branches: str) -> dict[str, Any]:
    """split("s", p80="a", p20="b", else_="c") -> outputs {"80%": a, "20%": b, "else": c}."""
    outputs = {("else" if k == "else_" else k.removeprefix("p").replace("_", ".") + "%"): to(v)
               for k, v in branches.items()}
    return {"id": element_id, "type": "percentage", "outputs": outputs}


def limit(element_id: str, *, kind: str = "count", key: str = "metadata.user", limit_value: float = 1,
          window: float = 3600, success: str, fallback: str | None = None,
          technique: str | None = None) -> dict[str, Any]:
    props: dict[str, Any] = {"key": key, "limit": limit_value, "limitType": kind, "window": window}
    if technique is not None:
        props["technique"] = technique
    outputs = {"success": to(success)} | ({"fallback": to(fallback)} if fallback else {})
    return {"id": element_id, "type": "rate", "properties": props, "outputs": outputs}


def single_model(provider: str = "openai", name: str = "gpt-4o-mini") -> list[dict[str, Any]]:
    return [start("m"), model("m", provider, name), end()]
