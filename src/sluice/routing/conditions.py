"""Conditions of a conditional element: Cloudflare's MongoDB-like operators over request fields.

A condition is an object: each key is a field (``metadata.<key>`` for ``cf-aig-metadata``,
``body.<path>`` for the JSON request body) with either a literal (equality) or an object of
operators, or one of ``$and`` / ``$or`` with a list of conditions. Several keys must all hold.
Parsed once when a version is saved (errors name the field), evaluated per request without I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

FIELD_PREFIXES = ("metadata.", "body.")
COMPARISONS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")
MEMBERSHIP = ("$in", "$nin")
OPERATORS = (*COMPARISONS, *MEMBERSHIP, "$exists")
COMBINATORS = ("$and", "$or")
MAX_DEPTH = 8
MAX_TERMS = 64
MAX_LIST = 100
MISSING = object()

Scalar = str | int | float | bool | None


class ConditionError(ValueError):
    """A condition that cannot be used; ``field`` is its dotted location inside the condition."""

    def __init__(self, path: list[str | int], message: str) -> None:
        self.path = path
        self.field = ".".join(str(p) for p in path)  # "conditions.$and.1.metadata.plan.$in"
        super().__init__(message)


@dataclass(frozen=True)
class RequestView:
    """What a route may look at: the caller's metadata, the JSON body and the request id."""

    request_id: str
    metadata: Mapping[str, Scalar]
    body: Mapping[str, Any]

    def lookup(self, field: str) -> Any:
        """The field's value, or MISSING. ``field`` was checked by ``check_field``."""
        if field.startswith("metadata."):
            return self.metadata.get(field.removeprefix("metadata."), MISSING)
        value: Any = self.body
        for part in field.removeprefix("body.").split("."):
            if not isinstance(value, Mapping) or part not in value:
                return MISSING
            value = value[part]
        return value


def check_field(field: str) -> str | None:
    """Why ``field`` cannot be referenced, or None."""
    if not field.startswith(FIELD_PREFIXES) or field in FIELD_PREFIXES:
        return f"field {field[:64]!r} must start with metadata. or body. and name a field"
    if len(field) > 256 or any(not part for part in field.split(".")):
        return f"field {field[:64]!r} is not a dotted field name (at most 256 characters)"
    return None


Predicate = Callable[[RequestView], bool]


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def equal(a: Any, b: Any) -> bool:
    """JSON equality: numbers by value, booleans never equal to numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    na, nb = _number(a), _number(b)
    if na is not None and nb is not None:
        return na == nb
    return type(a) is type(b) and a == b


def _order(a: Any, b: Any) -> int | None:
    """-1/0/1 for two numbers or two strings; None when they do not compare."""
    na, nb = _number(a), _number(b)
    if na is not None and nb is not None:
        return (na > nb) - (na < nb)
    if isinstance(a, str) and isinstance(b, str):
        return (a > b) - (a < b)
    return None


def _compare(op: str, value: Any, expected: Any) -> bool:
    if op == "$eq":
        return value is not MISSING and equal(value, expected)
    if op == "$ne":
        return value is MISSING or not equal(value, expected)
    order = None if value is MISSING else _order(value, expected)
    if order is None:
        return False
    return {"$gt": order > 0, "$gte": order >= 0, "$lt": order < 0, "$lte": order <= 0}[op]


class _Parser:
    def __init__(self) -> None:
        self.terms = 0

    def condition(self, data: Any, where: list[str | int], depth: int) -> Predicate:
        if depth > MAX_DEPTH:
            raise ConditionError(where, f"nested deeper than {MAX_DEPTH} levels")
        if not isinstance(data, dict) or not data:
            raise ConditionError(where, "must be a non-empty object of fields or $and/$or")
        parts = [self._entry(key, value, [*where, key], depth) for key, value in data.items()]
        if len(parts) == 1:
            return parts[0]
        return lambda request: all(part(request) for part in parts)

    def _entry(self, key: str, value: Any, where: list[str | int], depth: int) -> Predicate:
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise ConditionError(where, f"a condition holds at most {MAX_TERMS} terms")
        if key in COMBINATORS:
            if not isinstance(value, list) or not value:
                raise ConditionError(where, f"{key} takes a non-empty list of conditions")
            subs = [self.condition(item, [*where, i], depth + 1) for i, item in enumerate(value)]
            if key == "$and":
                return lambda request: all(sub(request) for sub in subs)
            return lambda request: any(sub(request) for sub in subs)
        if key.startswith("$"):
            raise ConditionError(where, f"unknown operator {key[:32]!r}; use one of "
                                        f"{', '.join(COMBINATORS)} here, or a field")
        problem = check_field(key)
        if problem is not None:
            raise ConditionError(where, problem)
        if isinstance(value, dict):
            return self._operators(key, value, where)
        if not _is_scalar(value):
            raise ConditionError(where, "compare with a string, number, boolean or null, or an object "
                                        "of operators")
        return _field_test(key, "$eq", value)

    def _operators(self, field: str, ops: dict[str, Any], where: list[str | int]) -> Predicate:
        if not ops:
            raise ConditionError(where, "an object of operators must not be empty")
        tests = []
        for op, expected in ops.items():
            at = [*where, op]
            if op not in OPERATORS:
                raise ConditionError(at, f"unknown operator {op[:32]!r}; supported: {', '.join(OPERATORS)}")
            if op in MEMBERSHIP:
                if not isinstance(expected, list) or len(expected) > MAX_LIST \
                        or not all(_is_scalar(v) for v in expected):
                    raise ConditionError(at, f"{op} takes a list of at most {MAX_LIST} strings, numbers, "
                                             "booleans or nulls")
            elif op == "$exists":
                if not isinstance(expected, bool):
                    raise ConditionError(at, "$exists takes true or false")
            elif not _is_scalar(expected):
                raise ConditionError(at, f"{op} takes a string, number, boolean or null")
            tests.append(_field_test(field, op, expected))
        if len(tests) == 1:  # the usual case, evaluated on every request: no generator around it
            return tests[0]
        return lambda request: all(test(request) for test in tests)


def _field_test(field: str, op: str, expected: Any) -> Predicate:
    if op == "$exists":
        return lambda request: (request.lookup(field) is not MISSING) == expected
    if op in MEMBERSHIP:
        def member(request: RequestView) -> bool:
            value = request.lookup(field)
            found = value is not MISSING and any(equal(value, item) for item in expected)
            return found if op == "$in" else not found
        return member
    return lambda request: _compare(op, request.lookup(field), expected)


def parse_condition(data: Any, root: str = "conditions") -> Predicate:
    """The predicate of a condition, or ConditionError naming where (below ``root``) it is wrong."""
    return _Parser().condition(data, [root], 0)
