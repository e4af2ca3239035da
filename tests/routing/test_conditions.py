"""Conditions: Cloudflare's MongoDB-like operators over cf-aig-metadata and the request body."""

from __future__ import annotations

from typing import Any

import pytest

from sluice.routing.conditions import ConditionError, RequestView, parse_condition

REQUEST = RequestView("r1", {"plan": "paid", "tier": 3, "beta": True},
                      {"model": "dynamic/x", "max_tokens": 100, "user": {"org": "acme"}})

CASES: list[tuple[Any, bool]] = [
    ({"metadata.plan": "paid"}, True),
    ({"metadata.plan": {"$eq": "free"}}, False),
    ({"metadata.plan": {"$ne": "free"}}, True),
    ({"metadata.missing": {"$ne": "free"}}, True),
    ({"metadata.missing": "free"}, False),
    ({"metadata.tier": {"$gte": 3}}, True),
    ({"metadata.tier": {"$gt": 3}}, False),
    ({"metadata.tier": {"$lt": "4"}}, False),  # a number and a string do not compare
    ({"metadata.tier": 3.0}, True),
    ({"metadata.beta": 1}, False),  # booleans are not numbers
    ({"metadata.beta": True}, True),
    ({"metadata.plan": {"$in": ["pro", "paid"]}}, True),
    ({"metadata.plan": {"$nin": ["pro", "paid"]}}, False),
    ({"metadata.plan": {"$exists": True}}, True),
    ({"metadata.nope": {"$exists": False}}, True),
    ({"body.max_tokens": {"$gt": 50, "$lte": 100}}, True),
    ({"body.user.org": "acme"}, True),
    ({"body.user.org.deeper": "acme"}, False),
    ({"$and": [{"metadata.plan": "paid"}, {"body.max_tokens": {"$lt": 10}}]}, False),
    ({"$or": [{"metadata.plan": "free"}, {"body.max_tokens": {"$lt": 1000}}]}, True),
    ({"metadata.plan": "paid", "metadata.tier": 2}, False),  # several keys: all must hold
]


@pytest.mark.parametrize(("condition", "expected"), CASES)
def test_condition(condition: Any, expected: bool):
    assert parse_condition(condition)(REQUEST) is expected


@pytest.mark.parametrize(("condition", "where"), [
    ({}, "conditions"),
    ([], "conditions"),
    ({"metadata.plan": {"$where": "1"}}, "conditions.metadata.plan.$where"),
    ({"metadata.plan": ["a"]}, "conditions.metadata.plan"),
    ({"$not": {}}, "conditions.$not"),
    ({"$and": [{"metadata.a": 1}, 5]}, "conditions.$and.1"),
    ({"metadata.": 1}, "conditions.metadata."),
    ({"body..x": 1}, "conditions.body..x"),
])
def test_invalid_conditions_say_where(condition: Any, where: str):
    with pytest.raises(ConditionError) as refused:
        parse_condition(condition)
    assert refused.value.field == where


def test_depth_and_size_are_capped():
    deep: Any = {"metadata.a": 1}
    for _ in range(20):
        deep = {"$and": [deep]}
    with pytest.raises(ConditionError, match="deeper"):
        parse_condition(deep)
    with pytest.raises(ConditionError, match="at most"):
        parse_condition({"$or": [{f"metadata.k{i}": i} for i in range(100)]})
