"""One request's walk through a route's graph, from start to end.

Pure: the two things that touch the world — asking a limiter and calling a model — are ``Effects``
the caller supplies. A parsed graph is acyclic and fully wired, so the walk visits each element at
most once and always ends: at an end element, at a limit without a fallback output (the route
answers 429), at a model that failed without a fallback output, or at the first model that answers:
its answer is already on its way to the client (Cloudflare: success is "the model starts streaming
a response"), so the elements after a model's success output are not run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from sluice.routing.conditions import RequestView
from sluice.routing.graph import SCALE, Conditional, Graph, Limit, Model, Split, Start

Answer = TypeVar("Answer")
Answer_co = TypeVar("Answer_co", covariant=True)


class Effects(Protocol[Answer_co]):
    async def admit(self, node: Limit, key: str) -> bool:
        """Whether the request is within the limit for this key value (and, for a count, count it)."""
        ...

    async def call(self, node: Model) -> Answer_co | None:
        """The model's answer, or None when it failed (after its retries) or timed out."""
        ...



@dataclass
class Walk(Generic[Answer]):
    """What the walk did: the element ids in order, the last model answer, and why it stopped early."""

    path: list[str] = field(default_factory=list)
    answer: Answer | None = None  # the answering model's (the walk ends there)
    answered_by: Model | None = None
    refused_by: Limit | None = None  # a limit without a fallback output: the route answers 429
    failed: Model | None = None  # the last model that failed


def bucket(element_id: str, request_id: str) -> int:
    """A request's place in [0, SCALE) for a split: the same request id always takes the same branch,
    and ids spread uniformly (the first 8 bytes of a BLAKE2b hash)."""
    digest = hashlib.blake2b(f"{element_id}\x00{request_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % SCALE


def choose(split: Split, request_id: str) -> str:
    place = bucket(split.id, request_id)
    for upper, target in split.branches:
        if place < upper:
            return target
    assert split.rest is not None  # the percentages add up to 100% when there is no else
    return split.rest


def limit_key(node: Limit, request: RequestView) -> str:
    """The counter a request counts against: the route's element and the value of the key field
    (requests without the field share one counter)."""
    value = request.lookup(node.key)
    text = value if isinstance(value, str) else "" if value is None or not isinstance(
        value, int | float | bool) else repr(value)
    return text[:256]


async def walk(graph: Graph, request: RequestView, effects: Effects[Answer],
               done: Walk[Answer] | None = None) -> Walk[Answer]:
    """``done``: where the walk records itself as it goes (the effects may read its path)."""
    done = Walk() if done is None else done
    nodes, path = graph.nodes, done.path
    node = nodes[graph.start]
    for _ in range(len(nodes)):
        path.append(node.id)
        # exact type tests, cheapest first (this runs for every request of a route)
        if type(node) is Start:
            target = node.next
        elif type(node) is Conditional:
            target = node.true if node.test(request) else node.false
        elif type(node) is Split:
            target = choose(node, request.request_id)
        elif type(node) is Limit:
            if await effects.admit(node, limit_key(node, request)):
                target = node.success
            elif node.fallback is None:
                done.refused_by = node
                return done
            else:
                target = node.fallback
        elif type(node) is Model:
            answer = await effects.call(node)
            if answer is not None:
                done.answer, done.answered_by = answer, node
                return done
            done.failed = node
            if node.fallback is None:
                return done
            target = node.fallback
        else:  # End
            return done
        node = nodes[target]
    raise AssertionError("a parsed graph is acyclic: the walk cannot visit more elements than it has")
