"""The walk: splits are deterministic per request id, fallbacks are taken, and any graph the validator
accepts ends for any request (hypothesis)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, event, find, given, settings
from hypothesis import strategies as st

from sluice.errors import FieldErrors
from sluice.routing.conditions import RequestView
from sluice.routing.graph import End, Limit, Model, Split, parse_graph
from sluice.routing.walk import Walk, choose, walk
from tests.routing.graphs import conditional, end, limit, model, split, start

KNOWN = {"openai", "anthropic"}.__contains__


class Scripted:
    """Effects with fixed outcomes: models in ``failing`` fail, limits in ``exhausted`` refuse."""

    def __init__(self, failing: set[str] = frozenset(), exhausted: set[str] = frozenset()) -> None:
        self.failing, self.exhausted = failing, exhausted
        self.calls: list[str] = []

    async def admit(self, node: Limit, key: str) -> bool:
        return node.id not in self.exhausted

    async def call(self, node: Model) -> str | None:
        self.calls.append(node.id)
        return None if node.id in self.failing else f"answer of {node.id}"


def run(elements: list[dict[str, Any]], effects: Any, request_id: str = "r", metadata: Any = None) -> Walk:
    graph = parse_graph(elements, KNOWN)
    return asyncio.run(walk(graph, RequestView(request_id, metadata or {}, {}), effects))


def test_split_is_deterministic_and_proportional():
    elements = [start("s"), split("s", p80="a", p20="b"), model("a"), model("b"), end()]
    graph = parse_graph(elements, KNOWN)

    async def answered(request_id: str) -> str:
        done = await walk(graph, RequestView(request_id, {}, {}), Scripted())
        assert done.answered_by is not None
        return done.answered_by.id

    async def split_many() -> tuple[list[str], list[str]]:
        ids = [f"req-{i}" for i in range(10_000)]
        return [await answered(i) for i in ids], [await answered(i) for i in ids]

    first, again = asyncio.run(split_many())
    assert first == again  # the same request id takes the same branch
    counts = Counter(first)
    assert 7_800 <= counts["a"] <= 8_200, counts


def test_fractional_split_and_else():
    elements = [start("s"), split("s", p12_5="a", else_="b"), model("a"), model("b"), end()]
    split_node = parse_graph(elements, KNOWN).nodes["s"]
    assert isinstance(split_node, Split)
    counts = Counter(choose(split_node, f"q{i}") for i in range(8_000))
    assert 800 <= counts["a"] <= 1_200, counts


def test_conditional_on_metadata():
    elements = [start("c"), conditional("c", {"metadata.plan": "paid"}, "big", "small"), model("big"),
                model("small"), end()]
    assert run(elements, Scripted(), metadata={"plan": "paid"}).answered_by.id == "big"  # type: ignore[union-attr]
    assert run(elements, Scripted(), metadata={"plan": "free"}).answered_by.id == "small"  # type: ignore[union-attr]


def test_model_failure_takes_the_fallback():
    elements = [start("m1"), model("m1", fallback="m2"), model("m2"), end()]
    effects = Scripted(failing={"m1"})
    done = run(elements, effects)
    assert effects.calls == ["m1", "m2"]
    assert done.answer == "answer of m2" and done.path == ["start", "m1", "m2"]


def test_failure_without_fallback_ends_the_walk():
    done = run([start("m1"), model("m1"), end()], Scripted(failing={"m1"}))
    assert done.answer is None and done.failed is not None and done.failed.id == "m1"


def test_limit_without_fallback_refuses_and_with_fallback_diverts():
    elements = [start("l"), limit("l", success="m1"), model("m1"), end()]
    done = run(elements, Scripted(exhausted={"l"}))
    assert done.refused_by is not None and done.answer is None and done.path == ["start", "l"]
    elements = [start("l"), limit("l", success="m1", fallback="m2"), model("m1"), model("m2"), end()]
    assert run(elements, Scripted(exhausted={"l"})).answered_by.id == "m2"  # type: ignore[union-attr]
    assert run(elements, Scripted()).answered_by.id == "m1"  # type: ignore[union-attr]


def test_the_first_answer_ends_the_walk():
    elements = [start("m1"), model("m1", success="m2"), model("m2"), end()]
    effects = Scripted()
    done = run(elements, effects)
    assert done.answer == "answer of m1" and effects.calls == ["m1"] and done.path == ["start", "m1"]


# -- any accepted graph ends ---------------------------------------------------------------------------

KINDS = ("start", "conditional", "percentage", "rate", "model", "end")


@st.composite
def graphs(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Random element lists. Half are wired forward (output 1 of element i to i + 1, the others to any
    later element, the last one an end): the validator accepts these, so the property is exercised.
    The rest are wired at random (cycles, gaps, dangling outputs) and mostly refused."""
    size = draw(st.integers(2, 9))
    ids = [f"e{i}" for i in range(size)]
    forward = draw(st.booleans())

    def wire(i: int, first: bool = False) -> str:
        if not forward:
            return draw(st.sampled_from([*ids, "missing"]))
        return ids[i + 1] if first else draw(st.sampled_from(ids[i + 1:]))

    elements: list[dict[str, Any]] = [start(wire(0, True), "e0")]
    for i in range(1, size):
        eid = ids[i]
        kinds = KINDS[1:-1] if forward else KINDS[1:]
        kind = "end" if forward and i == size - 1 else draw(st.sampled_from(kinds))
        if kind == "conditional":
            elements.append(conditional(eid, {"metadata.k": draw(st.sampled_from(["a", "b"]))},
                                        wire(i, True), wire(i)))
        elif kind == "percentage":
            share = draw(st.integers(1, 100))
            elements.append(split(eid, **{f"p{share}": wire(i, True), "else_": wire(i)}))
        elif kind == "rate":
            fallback = wire(i) if draw(st.booleans()) else None
            elements.append(limit(eid, success=wire(i, True), fallback=fallback))
        elif kind == "model":
            fallback = wire(i) if draw(st.booleans()) else None
            elements.append(model(eid, success=wire(i, True), fallback=fallback))
        else:
            elements.append(end(eid))
    return elements


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(elements=graphs(), request_id=st.text(max_size=8), plan=st.sampled_from(["a", "b", None]),
       failing=st.sets(st.sampled_from([f"e{i}" for i in range(9)])),
       exhausted=st.sets(st.sampled_from([f"e{i}" for i in range(9)])))
def test_any_accepted_graph_ends_for_any_request(elements, request_id, plan, failing, exhausted):
    try:
        graph = parse_graph(elements, KNOWN)
    except FieldErrors:
        event("refused")
        return
    event("accepted")
    metadata = {} if plan is None else {"k": plan}
    effects = Scripted(failing=failing, exhausted=exhausted)
    done = asyncio.run(walk(graph, RequestView(request_id, metadata, {}), effects))
    assert len(done.path) == len(set(done.path)) <= len(graph.nodes)  # no element visited twice
    last = graph.nodes[done.path[-1]]
    if isinstance(last, End):
        assert done.refused_by is None
    elif isinstance(last, Limit):
        assert done.refused_by is last and last.fallback is None
    elif done.answer is not None:
        assert done.answered_by is last
    else:
        assert isinstance(last, Model) and done.failed is last and last.fallback is None


def test_the_generator_yields_graphs_the_validator_accepts():
    def accepted(elements: list[dict[str, Any]]) -> bool:
        try:
            return len(parse_graph(elements, KNOWN).nodes) >= 6
        except FieldErrors:
            return False

    assert len(find(graphs(), accepted, settings=settings(database=None, max_examples=200))) >= 6
