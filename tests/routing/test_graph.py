"""The validator: every invalid graph is refused with errors naming the element and the field."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sluice.errors import FieldErrors
from sluice.routing.graph import Conditional, Limit, Model, Split, parse_graph
from tests.routing.graphs import conditional, end, limit, model, single_model, split, start, to

KNOWN = {"openai", "anthropic", "groq"}.__contains__


def parse(elements: Any):
    return parse_graph(elements, KNOWN)


def test_a_minimal_graph_parses():
    graph = parse(single_model())
    assert graph.start == "start"
    node = graph.nodes["m"]
    assert isinstance(node, Model)
    assert (node.provider, node.model, node.timeout_ms, node.retries, node.fallback) == \
        ("openai", "gpt-4o-mini", 30_000, 0, None)


def test_every_element_type_parses_in_both_spellings():
    elements = [
        start("c"),
        conditional("c", {"metadata.plan": {"$eq": "paid"}}, "split", "limit"),
        split("split", p80="m1", p20="m2"),
        {"id": "limit", "type": "rate_limit", "properties": {  # Cloudflare's docs spelling
            "key": "metadata.user", "limit": 10, "limitType": "count", "interval": 60,
            "technique": "sliding"},
         "outputs": {"success": to("m1"), "fallback": to("m2")}},
        model("m1", "anthropic", "claude", fallback="m2", alias="backup"),
        model("m2", "custom-mine", "x"),
        end(),
    ]
    graph = parse(elements)
    assert isinstance(graph.nodes["c"], Conditional)
    assert isinstance(graph.nodes["split"], Split) and graph.nodes["split"].branches == \
        ((800_000, "m1"), (1_000_000, "m2"))
    lim = graph.nodes["limit"]
    assert isinstance(lim, Limit) and (lim.window_s, lim.technique, lim.kind) == (60, "sliding", "count")
    assert graph.nodes["m1"].alias == "backup"  # type: ignore[union-attr]
    budget = parse([start("b"), limit("b", kind="cost", limit_value=0.5, technique="sliding", success="m"),
                    model("m"), end()]).nodes["b"]
    assert isinstance(budget, Limit)
    assert (budget.kind, budget.limit, budget.technique) == ("cost", 0.5, "sliding")


def _with(elements: list[dict[str, Any]], index: int, path: list[str], value: Any) -> list[dict[str, Any]]:
    changed = copy.deepcopy(elements)
    target = changed[index]
    for part in path[:-1]:
        target = target.setdefault(part, {})
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return changed


_DELETE = object()
BASE = [start("m"), model("m", fallback="m2"), model("m2"), end()]

# (case, elements, the error's path below body.elements, words the message must hold)
INVALID: list[tuple[str, Any, list[Any], str]] = [
    ("not a list", {"id": "x"}, [], "non-empty array"),
    ("empty", [], [], "non-empty array"),
    ("element not an object", [start("end"), "end"], [1], "must be an object"),
    ("no start", [model("m"), end()], [], "exactly one start"),
    ("two starts", [start("end"), start("end", "start2"), end()], [], "exactly one start"),
    ("unknown type", _with(BASE, 2, ["type"], "router"), [2, "type"], "unknown element type"),
    ("missing id", _with(BASE, 3, ["id"], _DELETE), [3, "id"], "letters, digits"),
    ("duplicate id", [*BASE, end()], [4, "id"], "duplicate id"),
    ("dangling output", _with(BASE, 1, ["outputs", "fallback"], to("nowhere")),
     [1, "outputs", "fallback", "elementId"], "no element has id 'nowhere'"),
    ("unwired start", _with(BASE, 0, ["outputs"], {}), [0, "outputs", "next"], "output required"),
    ("unwired model success", _with(BASE, 2, ["outputs"], {}), [2, "outputs", "success"], "output required"),
    ("malformed output", _with(BASE, 2, ["outputs", "success"], "end"), [2, "outputs", "success"],
     "elementId"),
    ("unknown output", _with(BASE, 2, ["outputs", "error"], to("end")), [2, "outputs", "error"],
     "unknown output"),
    ("end with outputs", _with(BASE, 3, ["outputs"], {"next": to("m")}), [3, "outputs", "next"],
     "unknown output"),
    ("unreachable", [*BASE, model("orphan")], [4, "id"], "not reachable"),
    ("cycle", _with(BASE, 2, ["outputs", "fallback"], to("m")), [2, "outputs", "fallback", "elementId"],
     "cycle"),
    ("self loop", _with(BASE, 2, ["outputs", "success"], to("m2")), [2, "outputs", "success", "elementId"],
     "cycle"),
    ("unknown provider", _with(BASE, 1, ["properties", "provider"], "openia"),
     [1, "properties", "provider"], "unknown provider 'openia'"),
    ("model missing", _with(BASE, 1, ["properties", "model"], _DELETE), [1, "properties", "model"],
     "field required"),
    ("timeout not a number", _with(BASE, 1, ["properties", "timeout"], "30s"), [1, "properties", "timeout"],
     "must be a number"),
    ("timeout zero", _with(BASE, 1, ["properties", "timeout"], 0), [1, "properties", "timeout"], "between"),
    ("retries fraction", _with(BASE, 1, ["properties", "retries"], 1.5), [1, "properties", "retries"],
     "whole number"),
    ("retries too many", _with(BASE, 1, ["properties", "retries"], 9), [1, "properties", "retries"],
     "between"),
    ("bad alias", _with(BASE, 1, ["properties", "byokAlias"], "a b"), [1, "properties", "byokAlias"],
     "letters, digits"),
    ("unknown model property", _with(BASE, 1, ["properties", "temperature"], 1),
     [1, "properties", "temperature"], "unknown propertie"),
    ("split over 100", [start("s"), split("s", p80="m", p30="e"), model("m", success="e"), end("e")],
     [1, "outputs"], "over 100%"),
    ("split under 100 without else", [start("s"), split("s", p50="m"), model("m"), end()],
     [1, "outputs", "else"], "wire else"),
    ("split bad name", [start("s"), {"id": "s", "type": "percentage", "outputs": {
        "half": to("m"), "else": to("m")}}, model("m"), end()], [1, "outputs", "half"], '"25%"'),
    ("split too many", [start("s"), split("s", p10="m", p11="m", p12="m", p13="m", p14="m", p15="m",
                                          else_="m"), model("m"), end()], [1, "outputs"], "at most 5"),
    ("condition unknown operator", [start("c"), conditional("c", {"metadata.plan": {"$regex": "x"}}, "m",
                                                            "m"), model("m"), end()],
     [1, "properties", "conditions", "metadata.plan", "$regex"], "unknown operator"),
    ("condition bad field", [start("c"), conditional("c", {"plan": "paid"}, "m", "m"), model("m"), end()],
     [1, "properties", "conditions", "plan"], "metadata. or body."),
    ("condition $in not list", [start("c"), conditional("c", {"body.model": {"$in": "gpt"}}, "m", "m"),
                                model("m"), end()], [1, "properties", "conditions", "body.model", "$in"],
     "list"),
    ("condition empty $or", [start("c"), conditional("c", {"$or": []}, "m", "m"), model("m"), end()],
     [1, "properties", "conditions", "$or"], "non-empty list"),
    ("condition missing", [start("c"), {"id": "c", "type": "conditional", "properties": {},
                                        "outputs": {"true": to("m"), "false": to("m")}}, model("m"), end()],
     [1, "properties", "conditions"], "give the condition"),
    ("limit bad type", [start("l"), limit("l", kind="tokens", success="m"), model("m"), end()],
     [1, "properties", "limitType"], "count, cost"),
    ("limit zero", [start("l"), limit("l", limit_value=0, success="m"), model("m"), end()],
     [1, "properties", "limit"], "between"),
    ("limit bad key", [start("l"), limit("l", key="user", success="m"), model("m"), end()],
     [1, "properties", "key"], "metadata. or body."),
    ("limit no window", [start("l"), _with([limit("l", success="m")], 0, ["properties", "window"],
                                           _DELETE)[0], model("m"), end()], [1, "properties", "window"],
     "window in seconds"),
    ("limit bad technique", [start("l"), limit("l", technique="leaky", success="m"), model("m"), end()],
     [1, "properties", "technique"], "fixed, sliding"),
]


@pytest.mark.parametrize(("case", "elements", "path", "words"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_graphs_name_the_element_and_field(case: str, elements: Any, path: list[Any], words: str):
    with pytest.raises(FieldErrors) as refused:
        parse(elements)
    items = refused.value.items
    wanted = ["body", "elements", *path]
    matching = [message for where, message in items if where == wanted]
    assert matching, f"{case}: no error at {wanted}; got {items}"
    assert any(words in message for message in matching), matching
    if len(path) > 0 and isinstance(path[0], int) and isinstance(elements, list) \
            and isinstance(elements[path[0]], dict) and isinstance(elements[path[0]].get("id"), str):
        assert any(f"({elements[path[0]]['id']!r})" in message for message in matching), matching


def test_every_fault_is_reported_at_once():
    elements = _with(_with(BASE, 1, ["properties", "provider"], "nope"), 2, ["properties", "timeout"], -1)
    with pytest.raises(FieldErrors) as refused:
        parse(elements)
    assert {tuple(p) for p, _ in refused.value.items} == {
        ("body", "elements", 1, "properties", "provider"), ("body", "elements", 2, "properties", "timeout")}


def test_messages_do_not_echo_long_values():
    long = "x" * 5000
    with pytest.raises(FieldErrors) as refused:
        parse(_with(BASE, 1, ["properties", "provider"], long))
    assert all(len(message) < 400 for _, message in refused.value.items)
