"""Server CPU per request of a dynamic route against calling its model directly on ``/compat``.

    PYTHONPATH=src .venv/bin/python bench/routing.py [--requests 3000] [--rounds 5] [--concurrency 16]
The method and stack of bench/compat.py (fast mock on core 0, Sluice on core 1, gateway
authentication, a stored key, request logging on; server CPU seconds from /proc around each batch,
the variants in turn each round, the median). Two variants of the same chat request to the same
model: ``compat`` names ``openai/gpt-4o-mini``; ``route`` names ``dynamic/bench``, a three-node route
(a condition on ``metadata.plan``, then a 50/50 split, then a model element calling
``openai/gpt-4o-mini``). Both send the same ``cf-aig-metadata``. Prints every round, the medians and
the difference: the route's cost (issue 18's goal: ≤ 50 µs).
"""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from compat import OPENAI, _check, measure, options, start_stack  # noqa: E402
from run import GATEWAY, _call  # noqa: E402

MODEL = f"openai/{OPENAI['model']}"
ROUTE = "bench"
GOAL_US = 50


def _model(element_id: str) -> dict:
    return {"id": element_id, "type": "model",
            "properties": {"provider": "openai", "model": OPENAI["model"], "timeout": 30000, "retries": 0},
            "outputs": {"success": {"elementId": "end"}}}


ELEMENTS = [
    {"id": "start", "type": "start", "outputs": {"next": {"elementId": "plan"}}},
    {"id": "plan", "type": "conditional", "properties": {"conditions": {"metadata.plan": {"$eq": "paid"}}},
     "outputs": {"true": {"elementId": "split"}, "false": {"elementId": "split"}}},
    {"id": "split", "type": "percentage",
     "outputs": {"50%": {"elementId": "a"}, "else": {"elementId": "b"}}},
    _model("a"), _model("b"),
    {"id": "end", "type": "end", "outputs": {}},
]


def _routed(url: str, body: bytes, headers: dict[str, str]) -> None:
    """One request through the route: it answers through a model element, after the three nodes."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        path = response.headers["cf-aig-dynamic-route-path"]
    assert path in ("start,plan,split,a", "start,plan,split,b"), path


def main() -> None:
    args = options(__doc__.splitlines()[0]).parse_args()
    stack = start_stack(args)
    try:
        _call("POST", f"{stack.api}/ai-gateway/gateways/{GATEWAY}/routes", stack.admin,
              {"name": ROUTE, "elements": ELEMENTS})
        url = f"{stack.url}/v1/{stack.account}/{GATEWAY}/compat/chat/completions"
        token = stack.headers[0].split(": ", 1)[1]
        headers = {"cf-aig-authorization": token, "content-type": "application/json",
                   "cf-aig-metadata": '{"plan": "paid", "team": "bench"}'}
        bodies = {"compat": (url, json.dumps({**OPENAI, "model": MODEL}).encode()),
                  "route": (url, json.dumps({**OPENAI, "model": f"dynamic/{ROUTE}"}).encode())}
        median = measure(stack, bodies, headers, args,
                         lambda _, answer: _check("compat", answer, False), "chat")
        _routed(*bodies["route"], headers)
        added = median["route"] - median["compat"]
        print(f"route - compat = {added:.0f} µs (goal ≤ {GOAL_US}); route / compat = "
              f"{median['route'] / median['compat']:.2f}")
    finally:
        stack.close()


if __name__ == "__main__":
    main()
