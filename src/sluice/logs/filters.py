"""Logs API filters, parsed from the query string into typed ``Filter`` values (no SQL here).

The official SDKs send ``filters`` flattened with dots and repeated keys, one filter after another:
``filters.key=provider&filters.operator=eq&filters.value=openai&filters.value=anthropic&filters.key=…``.
Each filter's fields are contiguous on the wire, so one pass groups them: a filter ends where its
key or operator comes again, or where a value follows the filter's run of values. The indexed form
``filters[0][key]=…&filters[0][value]=…`` and ``filters=<JSON array>`` are accepted as well, and so
is the column form (every key, then every operator, then every value) when each filter has exactly
one value. Values the SDK sends as ``None`` are dropped by it; a filter without values therefore
means "is null". A value that is not a string, number, boolean or null (the SDK flattens an object
into ``filters.value.<name>``) is refused.

Hostile input: the query string's size and the number of filters and values are capped before
anything is parsed (``check_query``, ``_count``), and every step after that is one linear pass.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson

from sluice.clock import rfc3339
from sluice.errors import ValidationError
from sluice.providers.custom import is_custom
from sluice.providers.registry import CATALOG_SLUGS

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
MAX_QUERY_BYTES = 16 * 1024  # 100 values of ~100 characters each, with room to spare
MAX_QUERY_PARAMS = 3 * MAX_FILTERS + MAX_VALUES + 40  # every filter field plus the other parameters
_NOT_A_FIELD = ("not a filter field: send filters.key, filters.operator and filters.value, whose values are "
                "strings, numbers, booleans or null")

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
        moment = moment.replace(tzinfo=UTC)
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


def _check_names(key: Any, operator: Any, name: str) -> None:
    if key not in KEYS:
        raise _bad(f"unknown key {str(key)[:64]!r}; use one of {', '.join(KEYS)}", f"{name}.key")
    if operator not in OPERATORS:
        raise _bad(f"unknown operator {str(operator)[:16]!r}; use one of {', '.join(OPERATORS)}",
                   f"{name}.operator")


def make_filter(key: Any, operator: Any, raw_values: list[Any], name: str = "filters") -> Filter:
    _check_names(key, operator, name)
    if operator in ("lt", "gt") and len(raw_values) != 1:
        raise _bad(f"operator {operator} takes exactly one value", f"{name}.value")
    if operator == "contains" and not raw_values:
        raise _bad("operator contains needs a value", f"{name}.value")
    if operator in ORDERED and key in STRING_KEYS:
        raise _bad(f"operator {operator} compares numbers and dates; {key} is text", f"{name}.operator")
    values = []
    for raw in raw_values:
        if isinstance(raw, (dict, list)):
            raise _bad(f"{key} values must be strings, numbers, booleans or null, not "
                       f"{'an object' if isinstance(raw, dict) else 'a list'}", f"{name}.value")
        try:
            values.append(_typed(key, raw))
        except ValueError as exc:
            raise _bad(f"{str(raw)[:64]!r} for {key}: {exc}", f"{name}.value") from None
    return Filter(key, operator, tuple(values) if values else (None,))


_ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$", re.IGNORECASE)
_SLUGS = frozenset(CATALOG_SLUGS)
# What a stored log holds, used only to tell apart the values of several filters in the column form:
# a provider is a catalog slug or custom-{slug}, a log id a ULID, and no model is named like either.
_DOMAINS: dict[str, Callable[[str], bool]] = {
    "provider": lambda v: v in _SLUGS or is_custom(v),
    "id": lambda v: _ULID.match(v) is not None,
    "model": lambda v: v not in _SLUGS and not is_custom(v) and _ULID.match(v) is None,
}


def _fits(key: str, operator: str, raw: str, strict: bool) -> bool:
    if operator in ORDERED and key in STRING_KEYS:
        return False
    try:
        value = _typed(key, raw)
    except (ValueError, ValidationError):
        return False
    domain = _DOMAINS.get(key) if strict and operator in ("eq", "neq") else None
    return domain is None or (isinstance(value, str) and domain(value))


def _ways(keys: list[str], operators: list[str], values: list[str], strict: bool) -> list[list[int]]:
    """``ways[i][j]``: the ways (capped at 2) to give ``values[:j]`` to the first ``i`` filters, each
    a non-empty run of values that fit its key and operator. O(filters × values): the runs that may
    end at ``j`` start anywhere after the last value before ``j`` that does not fit, so each cell is
    one difference of prefix sums."""
    m = len(values)
    ways = [[1] + [0] * m]
    for key, operator in zip(keys, operators, strict=True):  # equal: checked by the caller
        previous = ways[-1]
        prefix = [0]
        for count in previous:
            prefix.append(prefix[-1] + count)
        longest = 1 if operator in ("lt", "gt") else m
        row = [0] * (m + 1)
        misfit = -1  # index of the last value so far that does not fit this filter
        for j in range(1, m + 1):
            if not _fits(key, operator, values[j - 1], strict):
                misfit = j - 1
            low = max(misfit + 1, j - longest)
            if low <= j - 1:
                row[j] = min(2, prefix[j] - prefix[low])
        ways.append(row)
    return ways


def _split(keys: list[str], operators: list[str], values: list[str]) -> list[list[str]]:
    """The column form's values split into one run per filter, in order, when exactly one split fits
    (first with what a stored log can hold, then by type alone); otherwise a 400, never a guess."""
    n, m = len(keys), len(values)
    if m == n:
        return [[v] for v in values]
    ways = _ways(keys, operators, values, strict=True)
    if ways[n][m] == 0:
        ways = _ways(keys, operators, values, strict=False)
    if ways[n][m] == 0:
        raise _bad("the values do not fit the filters' keys and operators", "filters.value")
    if ways[n][m] > 1:
        raise _bad("several filters with several values each cannot be told apart in this form; send "
                   "filters[0][key]=…&filters[0][value]=… or filters=<JSON array>", "filters.value")
    runs: list[list[str]] = []
    j = m
    for i in range(n, 0, -1):  # walk back along the one valid path: its run starts at the only
        k = j - 1              # k in reach with a way to fill the filters before it
        while not ways[i - 1][k]:
            k -= 1
        runs.append(values[k:j])
        j = k
    return runs[::-1]


@dataclass(slots=True)
class _Flat:
    """One filter being gathered from the dotted form."""
    key: str | None = None
    operator: str | None = None
    values: list[str] = field(default_factory=list)
    values_ended: bool = False  # another field followed the values: a further value starts a new filter


def _group(fields: list[tuple[str, str]]) -> list[_Flat]:
    """The dotted ``(field, value)`` items split into filters in one pass (see the module doc)."""
    groups: list[_Flat] = []
    current: _Flat | None = None
    for name, value in fields:
        if name == "value":
            if current is None or current.values_ended:
                current = _Flat()
                groups.append(current)
            current.values.append(value)
            continue
        if current is None or getattr(current, name) is not None:
            current = _Flat()
            groups.append(current)
        setattr(current, name, value)
        current.values_ended = bool(current.values)
    return groups


def _dotted(fields: list[tuple[str, str]]) -> list[Filter]:
    groups = _group(fields)
    if all(g.key is not None and g.operator is not None for g in groups):
        return [make_filter(g.key, g.operator, g.values) for g in groups]
    # The column form (every key, then every operator, then every value): what the Python SDK sends.
    keys = [v for n, v in fields if n == "key"]
    operators = [v for n, v in fields if n == "operator"]
    values = [v for n, v in fields if n == "value"]
    if not keys:
        raise _bad("filters.value without filters.key and filters.operator", "filters.key")
    if len(operators) != len(keys):
        raise _bad(f"{len(keys)} filters.key but {len(operators)} filters.operator; send one of each "
                   "per filter", "filters.operator")
    if len(keys) == 1:
        return [make_filter(keys[0], operators[0], values)]
    if len(values) < len(keys):
        raise _bad(f"{len(keys)} filters but only {len(values)} values; every filter needs a value",
                   "filters.value")
    for key, operator in zip(keys, operators, strict=True):  # reported by name before any splitting
        _check_names(key, operator, "filters")
    runs = _split(keys, operators, values)
    return [make_filter(k, o, run) for k, o, run in zip(keys, operators, runs, strict=True)]


_INDEXED = re.compile(r"^filters\[(\d{1,4})\]\[(key|operator|value)\](?:\[\d{0,4}\])?$")
_DOTTED = {"filters.key": "key", "filters.operator": "operator", "filters.value": "value"}


def check_query(raw: bytes) -> None:
    """Refuse an oversized query string before anything parses it."""
    if len(raw) > MAX_QUERY_BYTES:
        raise _bad(f"the query string is {len(raw)} bytes; the limit is {MAX_QUERY_BYTES}", "query")
    if raw.count(b"&") >= MAX_QUERY_PARAMS:
        raise _bad(f"more than {MAX_QUERY_PARAMS} query parameters", "query")
    if b"%00" in raw:  # PostgreSQL text cannot hold U+0000: refused the same on every backend
        for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
            if "\x00" in name or "\x00" in value:
                raise _bad("must not contain U+0000 (NUL)", name.replace("\x00", "") or "query")


def _count(items: list[tuple[str, str]]) -> None:
    """Caps on the number of filters and values, counted before any of them is parsed."""
    filters = values = 0
    for name, _ in items:
        if name in ("filters.key", "filters"):
            filters += 1
        elif name == "filters.value":
            values += 1
        elif name.startswith("filters["):
            if name.endswith("[key]"):
                filters += 1
            elif "[value]" in name:
                values += 1
    if filters > MAX_FILTERS:
        raise _bad(f"{filters} filters; at most {MAX_FILTERS} are allowed")
    if values > MAX_VALUES:
        raise _bad(f"{values} filter values; at most {MAX_VALUES} are allowed", "filters.value")


def parse_filters(items: Iterable[tuple[str, str]]) -> list[Filter]:
    """All filters in a query string given as (name, value) pairs, in any accepted form."""
    items = list(items)
    _count(items)
    dotted: list[tuple[str, str]] = []
    indexed: dict[int, dict[str, Any]] = {}
    out: list[Filter] = []
    for name, value in items:
        if name in _DOTTED:
            dotted.append((_DOTTED[name], value))
        elif name == "filters":
            out += _json_filters(value)
        elif (match := _INDEXED.match(name)) is not None:
            slot = indexed.setdefault(int(match.group(1)), {"value": []})
            if match.group(2) == "value":
                slot["value"].append(value)
            else:
                slot[match.group(2)] = value
        elif name.startswith(("filters.", "filters[")):
            raise _bad(_NOT_A_FIELD, name[:64])
    if dotted:
        out = _dotted(dotted) + out
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
    raws = [item.get("value", []) for item in data]
    if len(data) > MAX_FILTERS or sum(len(r) if isinstance(r, list) else 1 for r in raws) > MAX_VALUES:
        raise _bad(f"at most {MAX_FILTERS} filters and {MAX_VALUES} values")
    out = []
    for index, (item, raw) in enumerate(zip(data, raws, strict=True)):
        out.append(make_filter(item.get("key"), item.get("operator"), raw if isinstance(raw, list) else [raw],
                               f"filters[{index}]"))
    return out
