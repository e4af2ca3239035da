"""Logs API filters, parsed from the query string into typed ``Filter`` values (no SQL here).

The official SDKs send ``filters`` flattened with dots and repeated keys:
``filters.key=provider&filters.operator=eq&filters.value=openai&filters.value=anthropic``. With
several filters every key, operator and value is simply repeated in order, so which values belong
to which filter is not on the wire. Sluice splits the values in order, one filter after another,
using each key's type (numbers for ``cost``, booleans for ``success`` …; ``lt``/``gt`` take exactly
one value). When more than one split fits, the request is refused (400) rather than guessed; the
unambiguous forms ``filters[0][key]=…&filters[0][value]=…`` and ``filters=<JSON array>`` are
accepted as well. Values the SDK sends as ``None`` are dropped by it; a lone filter without values
therefore means "is null".
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable

import orjson

from sluice.clock import rfc3339
from sluice.errors import ValidationError

STRING_KEYS = ("id", "request_content_type", "response_content_type", "request_type", "provider", "model",
               "model_type", "event_id", "user_agent", "dlp_action", "metadata.key", "metadata.value")
BOOL_KEYS = ("success", "cached", "authentication", "wholesale", "compatibilityMode")
NUMBER_KEYS = ("cost", "tokens", "tokens_in", "tokens_out", "duration", "feedback")
DATE_KEYS = ("created_at",)
KEYS = STRING_KEYS + BOOL_KEYS + NUMBER_KEYS + DATE_KEYS
OPERATORS = ("eq", "neq", "contains", "lt", "gt")
ORDERED = ("lt", "gt", "le", "ge")  # le/ge only come from the deprecated min_/max_ parameters
MAX_FILTERS = 20
MAX_VALUES = 100

Value = str | float | bool | None


@dataclass(frozen=True, slots=True)
class Filter:
    key: str
    operator: str  # eq | neq | contains | lt | gt (| le | ge internally)
    values: tuple[Value, ...]


def _bad(message: str, name: str = "filters") -> ValidationError:
    return ValidationError(f"{name}: {message}", path=["query", name])


def parse_date(raw: str, name: str) -> str:
    """Any ISO 8601 date-time (``Z`` or offset; naive means UTC) → the stored RFC 3339 form."""
    try:
        moment = datetime.fromisoformat(raw.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise _bad(f"{raw[:64]!r} is not an ISO 8601 date-time", name) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    try:
        return rfc3339(moment)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise _bad(f"{raw[:64]!r} is out of range", name) from None


def _typed(key: str, raw: Any) -> Value:
    """The value converted to the key's type; raises ValueError when it does not fit."""
    if raw is None:
        return None
    if key in BOOL_KEYS:
        if isinstance(raw, bool):
            return raw
        lowered = str(raw).lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
        raise ValueError("must be true or false")
    if key in NUMBER_KEYS:
        if isinstance(raw, bool):
            raise ValueError("must be a number")
        number = float(raw)
        if not math.isfinite(number):
            raise ValueError("must be a finite number")
        return number
    if key in DATE_KEYS:
        return parse_date(str(raw), "filters.value")
    if isinstance(raw, bool):  # JSON form; the dotted form has only strings
        return "true" if raw else "false"
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    return str(raw)[:1024]


def _fits(key: str, operator: str, raw: Any) -> bool:
    try:
        value = _typed(key, raw)
    except (ValueError, ValidationError):
        return False
    if operator in ORDERED and key in STRING_KEYS:
        return False  # ordering compares numbers and dates only
    return value is not None or operator in ("eq", "neq")


def make_filter(key: Any, operator: Any, raw_values: list[Any], name: str = "filters") -> Filter:
    if key not in KEYS:
        raise _bad(f"unknown key {str(key)[:64]!r}; use one of {', '.join(KEYS)}", f"{name}.key")
    if operator not in OPERATORS:
        raise _bad(f"unknown operator {str(operator)[:16]!r}; use one of {', '.join(OPERATORS)}",
                   f"{name}.operator")
    if operator in ("lt", "gt") and len(raw_values) != 1:
        raise _bad(f"operator {operator} takes exactly one value", f"{name}.value")
    if operator == "contains" and not raw_values:
        raise _bad("operator contains needs a value", f"{name}.value")
    if operator in ORDERED and key in STRING_KEYS:
        raise _bad(f"operator {operator} compares numbers and dates; {key} is text", f"{name}.operator")
    values = []
    for raw in raw_values:
        try:
            values.append(_typed(key, raw))
        except ValueError as exc:
            raise _bad(f"{str(raw)[:64]!r} for {key}: {exc}", f"{name}.value") from None
    return Filter(key, operator, tuple(values) if values else (None,))


def _split(keys: list[str], operators: list[str], values: list[str]) -> list[list[str]]:
    """Split the flattened values into one non-empty run per filter, in order; exactly one way."""
    n, m = len(keys), len(values)
    if m == n:
        return [[v] for v in values]
    if n == 1:
        return [values]
    if m < n:
        raise _bad(f"{n} filters but only {m} values; every filter needs a value", "filters.value")
    for key in keys:  # unknown keys are reported by name before any splitting
        if key not in KEYS:
            raise _bad(f"unknown key {key[:64]!r}; use one of {', '.join(KEYS)}", "filters.key")
    # ways[i][j]: number of ways (capped at 2) to give values[:j] to filters[:i].
    ways = [[0] * (m + 1) for _ in range(n + 1)]
    ways[0][0] = 1
    for i in range(1, n + 1):
        key, op = keys[i - 1], operators[i - 1]
        longest = 1 if op in ("lt", "gt") else m
        for j in range(i, m + 1):
            total = 0
            for k in range(max(i - 1, j - longest), j):
                if ways[i - 1][k] and all(_fits(key, op, v) for v in values[k:j]):
                    total = min(2, total + ways[i - 1][k])
            ways[i][j] = total
    if ways[n][m] == 0:
        raise _bad("the values do not fit the filters' keys and operators", "filters.value")
    if ways[n][m] > 1:
        raise _bad("several filters with several values each cannot be told apart in the flattened form; "
                   "send filters[0][key]=…&filters[0][value]=… or filters=<JSON array>", "filters.value")
    runs: list[list[str]] = []
    j = m
    for i in range(n, 0, -1):  # walk back along the one valid path
        key, op = keys[i - 1], operators[i - 1]
        for k in range(j - 1, i - 2, -1):
            if ways[i - 1][k] and all(_fits(key, op, v) for v in values[k:j]):
                runs.append(values[k:j])
                j = k
                break
    return runs[::-1]


_INDEXED = re.compile(r"^filters\[(\d+)\]\[(key|operator|value)\](?:\[\d*\])?$")


def parse_filters(items: Iterable[tuple[str, str]]) -> list[Filter]:
    """All filters in a query string given as (name, value) pairs, in any accepted form."""
    keys: list[str] = []
    operators: list[str] = []
    values: list[str] = []
    indexed: dict[int, dict[str, Any]] = {}
    out: list[Filter] = []
    for name, value in items:
        if name == "filters.key":
            keys.append(value)
        elif name == "filters.operator":
            operators.append(value)
        elif name == "filters.value":
            values.append(value)
        elif name == "filters":
            out += _json_filters(value)
        elif (match := _INDEXED.match(name)) is not None:
            slot = indexed.setdefault(int(match.group(1)), {"value": []})
            if match.group(2) == "value":
                slot["value"].append(value)
            else:
                slot[match.group(2)] = value
    if keys or operators or values:
        if len(operators) != len(keys):
            raise _bad(f"{len(keys)} filters.key but {len(operators)} filters.operator; "
                       "send one of each per filter", "filters.operator")
        out += [make_filter(k, o, v) for k, o, v in zip(keys, operators, _split(keys, operators, values),
                                                        strict=True)]
    for index in sorted(indexed):
        slot = indexed[index]
        out.append(make_filter(slot.get("key"), slot.get("operator"), slot["value"], f"filters[{index}]"))
    if len(out) > MAX_FILTERS or sum(len(f.values) for f in out) > MAX_VALUES:
        raise _bad(f"at most {MAX_FILTERS} filters and {MAX_VALUES} values")
    return out


def _json_filters(text: str) -> list[Filter]:
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise _bad("expected a JSON array of {key, operator, value}") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise _bad("expected a JSON array of {key, operator, value}")
    out = []
    for index, item in enumerate(data):
        raw = item.get("value", [])
        out.append(make_filter(item.get("key"), item.get("operator"), raw if isinstance(raw, list) else [raw],
                               f"filters[{index}]"))
    return out
