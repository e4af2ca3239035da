"""A dynamic route's graph: Cloudflare's routing elements parsed into typed nodes and validated.

``parse_graph`` turns the ``elements`` array of a version (the official SDK's shape; Cloudflare's
JSON-configuration page spells two things differently and both are taken, see docs/routing.md) into
a ``Graph``, or raises ``FieldErrors`` whose every item names the element (index and id) and the
field at fault. A graph that parses has one start, every element reachable from it, no cycle, every
output wired to an existing element and every model naming a known provider: so every walk ends
(``walk.py``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sluice.errors import FieldErrors
from sluice.routing.conditions import ConditionError, Predicate, check_field, parse_condition

MAX_ELEMENTS = 100
MAX_SPLITS = 5  # Cloudflare: "up to 5 named percentage outputs, plus an optional else"
MAX_RETRIES = 4  # cf-aig-max-attempts (retries + 1) is at most 5
MAX_TIMEOUT_MS = 600_000
MAX_WINDOW_S = 31 * 86_400
ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
PERCENT = re.compile(r"^(\d{1,3}(?:\.\d{1,4})?)%$")
CUSTOM_PROVIDER = re.compile(r"^custom-[a-z0-9][a-z0-9-]{0,62}$")
ALIAS = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SCALE = 1_000_000  # percentages are held in millionths of the whole: exact for 4 decimals of a percent

LimitKind = Literal["count", "cost"]
Technique = Literal["fixed", "sliding"]


@dataclass(frozen=True)
class Start:
    id: str
    next: str


@dataclass(frozen=True)
class Conditional:
    id: str
    test: Predicate
    true: str
    false: str


@dataclass(frozen=True)
class Split:
    """``branches``: (upper bound in millionths, element id), ascending; ``rest`` takes what is left."""

    id: str
    branches: tuple[tuple[int, str], ...]
    rest: str | None


@dataclass(frozen=True)
class Limit:
    """A rate (``count``) or budget (``cost``, in the logged cost's dollars) limit per ``key`` value."""

    id: str
    key: str
    limit: float
    kind: LimitKind
    window_s: int
    technique: Technique
    success: str
    fallback: str | None


@dataclass(frozen=True)
class Model:
    id: str
    provider: str
    model: str
    timeout_ms: int
    retries: int
    alias: str | None  # the stored key (BYOK alias) to use; None: the provider's default key
    success: str
    fallback: str | None


@dataclass(frozen=True)
class End:
    id: str


Node = Start | Conditional | Split | Limit | Model | End


@dataclass(frozen=True)
class Graph:
    nodes: Mapping[str, Node]
    start: str


class _Element:
    """One element under validation: collects its errors, each naming the element and the field."""

    def __init__(self, index: int, raw: Mapping[str, Any], errors: list[tuple[list[str | int], str]]) -> None:
        self.index, self.raw, self.errors = index, raw, errors
        self.id = raw.get("id") if isinstance(raw.get("id"), str) else None

    def fail(self, field: list[str | int], message: str) -> None:
        label = f"elements[{self.index}]" + (f" ({self.id!r})" if self.id else "")
        dotted = ".".join(str(p) for p in field)
        self.errors.append((["body", "elements", self.index, *field], f"{label}: {dotted}: {message}"))

    def allow_only(self, section: str, allowed: tuple[str, ...]) -> Mapping[str, Any]:
        value = self.raw.get(section, {})
        if not isinstance(value, dict):
            self.fail([section], "must be an object")
            return {}
        for key in value:
            if key not in allowed:
                self.fail([section, key], f"unknown {section[:-1]} of a {self.raw['type']} element; "
                                          f"allowed: {', '.join(allowed) or 'none'}")
        return value

    def output(self, outputs: Mapping[str, Any], name: str, *, required: bool) -> str | None:
        if name not in outputs:
            if required:
                self.fail(["outputs", name], "output required: wire it to an element ({\"elementId\": …})")
            return None
        target = outputs[name]
        if not isinstance(target, dict) or set(target) != {"elementId"} \
                or not isinstance(target["elementId"], str):
            self.fail(["outputs", name], 'must be {"elementId": "<id of an element>"}')
            return None
        element_id: str = target["elementId"]
        return element_id

    def number(self, props: Mapping[str, Any], name: str, *, low: float, high: float, whole: bool,
               unit: str = "") -> float | None:
        value = props.get(name)
        if value is None:
            self.fail(["properties", name], "field required")
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.fail(["properties", name], "must be a number")
            return None
        if whole and value != int(value):
            self.fail(["properties", name], "must be a whole number")
            return None
        if not low <= value <= high:
            self.fail(["properties", name], f"must be between {low:g} and {high:g}{unit}")
            return None
        return float(value)

    def text(self, props: Mapping[str, Any], name: str, *, pattern: re.Pattern[str] | None = None,
             required: bool = True, hint: str = "") -> str | None:
        value = props.get(name)
        if value is None:
            if required:
                self.fail(["properties", name], "field required")
            return None
        if not isinstance(value, str) or not value.strip() or len(value) > 256 \
                or (pattern is not None and not pattern.match(value)):
            self.fail(["properties", name], f"must be a non-empty string{hint} (at most 256 characters)")
            return None
        return value

    def choice(self, props: Mapping[str, Any], name: str, allowed: tuple[str, ...],
               default: str | None = None) -> str | None:
        value = props.get(name, default)
        if value not in allowed:
            self.fail(["properties", name], f"must be one of {', '.join(allowed)}")
            return None
        return str(value)


def _start(e: _Element) -> Node | None:
    outputs = e.allow_only("outputs", ("next",))
    e.allow_only("properties", ())
    target = e.output(outputs, "next", required=True)
    return Start(e.id, target) if e.id and target else None


def _conditional(e: _Element) -> Node | None:
    props = e.allow_only("properties", ("conditions", "condition"))
    outputs = e.allow_only("outputs", ("true", "false"))
    true, false = e.output(outputs, "true", required=True), e.output(outputs, "false", required=True)
    names = [n for n in ("conditions", "condition") if n in props]
    if len(names) != 1:
        e.fail(["properties", "conditions"], "give the condition once, as conditions (or condition)")
        return None
    try:
        test = parse_condition(props[names[0]], names[0])
    except ConditionError as exc:
        e.fail(["properties", *exc.path], str(exc))
        return None
    return Conditional(e.id, test, true, false) if e.id and true and false else None


def _split(e: _Element) -> Node | None:
    e.allow_only("properties", ())
    outputs = e.raw.get("outputs")
    if not isinstance(outputs, dict) or not outputs:
        e.fail(["outputs"], 'must name percentage outputs ("80%": {"elementId": …}) and optionally else')
        return None
    branches, total, ok = [], 0, True
    for name in outputs:
        if name == "else":
            continue
        target = e.output(outputs, name, required=True)
        match = PERCENT.match(name)
        share = round(float(match.group(1)) * SCALE / 100) if match else 0
        if not match or share <= 0 or share > SCALE:
            e.fail(["outputs", name], 'an output is named like "25%" or "12.5%" (more than 0, at most 100) '
                                      "or else")
            ok = False
            continue
        total += share
        if target:
            branches.append((total, target))
    rest = e.output(outputs, "else", required=False)
    if len(branches) > MAX_SPLITS:
        e.fail(["outputs"], f"at most {MAX_SPLITS} percentage outputs, plus else")
        ok = False
    if total > SCALE:
        e.fail(["outputs"], f"the percentages add up to {total * 100 / SCALE:g}%, over 100%")
        ok = False
    elif ok and total < SCALE and "else" not in outputs:
        e.fail(["outputs", "else"], f"the percentages add up to {total * 100 / SCALE:g}%: wire else for "
                                    "the rest")
        ok = False
    every_output_wired = len(branches) + (rest is not None) == len(outputs)  # none malformed
    return Split(e.id, tuple(branches), rest) if ok and e.id and every_output_wired else None


def _limit(e: _Element) -> Node | None:
    props = e.allow_only("properties", ("key", "limit", "limitType", "window", "interval", "technique"))
    outputs = e.allow_only("outputs", ("success", "fallback"))
    success = e.output(outputs, "success", required=True)
    fallback = e.output(outputs, "fallback", required=False)
    kind = e.choice(props, "limitType", ("count", "cost"))
    key = e.text(props, "key", hint=" naming a request field (metadata.<key> or body.<path>)")
    if key is not None and check_field(key) is not None:
        e.fail(["properties", "key"], str(check_field(key)))
        key = None
    limit = e.number(props, "limit", low=0 if kind == "cost" else 1, high=1e12, whole=kind == "count")
    if kind == "cost" and limit == 0:
        e.fail(["properties", "limit"], "must be more than 0")
        limit = None
    spelled = [n for n in ("window", "interval") if n in props]
    window = None
    if len(spelled) != 1:
        e.fail(["properties", "window"], "give the window in seconds once, as window (or interval)")
    else:
        window = e.number(props, spelled[0], low=1, high=MAX_WINDOW_S, whole=True, unit=" seconds")
    technique = e.choice(props, "technique", ("fixed", "sliding"), "fixed")
    if None in (e.id, success, kind, key, limit, window, technique):
        return None
    return Limit(e.id, key, limit, kind, int(window), technique, success, fallback)  # type: ignore[arg-type]


def _model(e: _Element, known_provider: Callable[[str], bool]) -> Node | None:
    props = e.allow_only("properties", ("provider", "model", "timeout", "retries", "byokAlias"))
    outputs = e.allow_only("outputs", ("success", "fallback"))
    success = e.output(outputs, "success", required=True)
    fallback = e.output(outputs, "fallback", required=False)
    provider = e.text(props, "provider")
    if provider is not None and not (known_provider(provider) or CUSTOM_PROVIDER.match(provider)):
        e.fail(["properties", "provider"], f"unknown provider {provider[:64]!r}: use a provider slug of the "
                                           "catalogue (docs/gateway.md) or custom-<slug>")
        provider = None
    model = e.text(props, "model")
    timeout = e.number(props, "timeout", low=1, high=MAX_TIMEOUT_MS, whole=True, unit=" milliseconds")
    retries = e.number(props, "retries", low=0, high=MAX_RETRIES, whole=True)
    alias = e.text(props, "byokAlias", pattern=ALIAS, required=False, hint=" of letters, digits, _ or -")
    if "byokAlias" in props and alias is None:
        return None
    if None in (e.id, success, provider, model, timeout, retries):
        return None
    return Model(e.id, provider, model, int(timeout), int(retries), alias, success,  # type: ignore[arg-type]
                 fallback)


def _end(e: _Element) -> Node | None:
    e.allow_only("outputs", ())
    e.allow_only("properties", ())
    return End(e.id) if e.id else None


_PARSERS: dict[str, Callable[[_Element], Node | None]] = {
    "start": _start, "conditional": _conditional, "percentage": _split, "rate": _limit, "rate_limit": _limit,
    "end": _end}
TYPES = ("start", "conditional", "percentage", "rate", "rate_limit", "model", "end")


def _outputs(raw: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(output name, element id) as written, for the graph checks (names as the client spelled them)."""
    outputs = raw.get("outputs")
    if not isinstance(outputs, dict):
        return []
    return [(name, target["elementId"]) for name, target in outputs.items()
            if isinstance(target, dict) and isinstance(target.get("elementId"), str)]


def parse_graph(elements: Any, known_provider: Callable[[str], bool]) -> Graph:
    """The validated graph, or FieldErrors listing every fault found (each names element and field)."""
    errors: list[tuple[list[str | int], str]] = []
    if not isinstance(elements, list) or not elements:
        raise FieldErrors([(["body", "elements"], "elements: must be a non-empty array of routing elements")])
    if len(elements) > MAX_ELEMENTS:
        raise FieldErrors([(["body", "elements"], f"elements: at most {MAX_ELEMENTS} elements")])
    nodes: dict[str, Node] = {}
    checked: dict[str, tuple[_Element, list[tuple[str, str]]]] = {}
    starts: list[str] = []
    for index, raw in enumerate(elements):
        if not isinstance(raw, dict):
            errors.append((["body", "elements", index], f"elements[{index}]: must be an object"))
            continue
        e = _Element(index, raw, errors)
        if e.id is None or not ID.match(e.id):
            e.id = None
            e.fail(["id"], "must be 1-64 letters, digits, _ . : or -")
        elif e.id in checked:
            e.fail(["id"], f"duplicate id: elements[{checked[e.id][0].index}] has it too")
            continue
        if e.id is not None:
            checked[e.id] = (e, _outputs(raw))
        kind = raw.get("type")
        if kind not in TYPES:
            e.fail(["type"], f"unknown element type; one of {', '.join(TYPES)}")
            continue
        if kind == "start" and e.id is not None:
            starts.append(e.id)
        node = _model(e, known_provider) if kind == "model" else _PARSERS[kind](e)
        if node is not None:
            nodes[node.id] = node
    if len(starts) != 1:
        found = f"; found {len(starts)}: {starts}" if starts else ""
        message = f"a route has exactly one start element{found}"
        errors.append((["body", "elements"], f"elements: {message}"))
    for e, outputs in checked.values():
        for name, target in outputs:
            if target not in checked:
                e.fail(["outputs", name, "elementId"], f"no element has id {target[:64]!r}")
    if errors:
        raise FieldErrors(errors)
    _check_shape(starts[0], checked)  # reports through the elements, into ``errors``
    if errors:
        raise FieldErrors(errors)
    return Graph(nodes, starts[0])


def _check_shape(start: str, checked: Mapping[str, tuple[_Element, list[tuple[str, str]]]]) -> None:
    """Every element reachable from start; no cycle (a depth-first walk, iterative: no recursion
    limit). Each fault names the element and the output or id at fault."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[tuple[str, int]] = [(start, 0)]
    state[start] = 1
    while stack:
        node_id, position = stack.pop()
        element, outputs = checked[node_id]
        if position < len(outputs):
            stack.append((node_id, position + 1))
            name, target = outputs[position]
            if state.get(target) == 1:
                element.fail(["outputs", name, "elementId"],
                             f"makes a cycle back to {target!r}: a route must not loop")
            elif target not in state:
                state[target] = 1
                stack.append((target, 0))
        else:
            state[node_id] = 2
    for node_id, (element, _) in checked.items():
        if node_id not in state:
            element.fail(["id"], "not reachable from the start element")
