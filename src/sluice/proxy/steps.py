"""The Universal endpoint's body, read into steps (docs/gateway.md#universal-endpoint). Pure.

The body is a JSON array of steps ``{provider, endpoint, headers, query, config?}`` (a single step
object is taken as a one-step array, as Cloudflare's Workers binding does). Every problem is a
``StepError`` naming its field (``steps[1].provider``, ``steps[0].config.maxAttempts``) and saying
what is wrong; nothing is forwarded for a body that does not read.

Each step becomes the header list and body of one sub-request to the provider path: request headers
(``inherited``), overridden by the step's ``headers``, overridden by the step's ``config`` (written as
the equivalent ``cf-aig-*`` request options, which the gateway's settings only fill in when absent).
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from sluice.proxy.options import BACKOFFS, MAX_ATTEMPTS, MAX_DELAY_MS, MAX_TIMEOUT_MS
from sluice.proxy.paths import has_dot_segment

MAX_STEPS = 10  # more fallbacks than anyone needs; bounds the work one request can cause
MAX_STEP_HEADERS = 64
MAX_HEADER_NAME = 256
MAX_HEADER_VALUE = 16 * 1024
EVENT_ID_HEADER = "cf-aig-event-id"
EVENT_ID = EVENT_ID_HEADER.encode()
GATEWAY_AUTH = b"cf-aig-authorization"
TOKEN_MARK = b"sluice_"  # as headers.py: a header value holding a Sluice token
STEP_FIELDS = frozenset({"provider", "endpoint", "headers", "query", "config", "authorization"})
# step config -> the request option it stands for (``options.py`` reads those)
CONFIG_OPTIONS = {
    "requestTimeout": "cf-aig-request-timeout",
    "maxAttempts": "cf-aig-max-attempts",
    "retryDelay": "cf-aig-retry-delay",
    "backoff": "cf-aig-backoff",
}
# Framing and connection headers belong to the gateway's own hop, never to a step.
FRAMING = frozenset({"host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade",
                     "expect", "te", "trailer", "proxy-connection", "proxy-authorization",
                     "proxy-authenticate"})
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_BAD_ENDPOINT = re.compile(r"[\x00-\x20\x7f#]")

Headers = list[tuple[bytes, bytes]]


class StepError(ValueError):
    """A Universal body that cannot be used; ``field`` names where (``steps[1].provider``)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = f"{field}: {message}"
        super().__init__(self.message)


@dataclass(frozen=True, slots=True)
class Step:
    provider: str
    endpoint: str  # the provider path, without a leading slash; may hold ``?query``
    headers: tuple[tuple[str, str], ...]  # lower-case names; step headers, then config options
    body: bytes  # ``query``, as JSON

    def request_headers(self, common: Iterable[tuple[bytes, bytes]]) -> Headers:
        """The sub-request's headers: ``common`` (the request's, see ``inherited``), each one the step
        names replaced by the step's."""
        own = {name.encode("latin-1") for name, _ in self.headers}
        out = [(n, v) for n, v in common if n not in own and n != b"content-length"]
        out.extend((name.encode("latin-1"), value.encode("utf-8")) for name, value in self.headers)
        if all(name != b"content-type" for name, _ in out):
            out.append((b"content-type", b"application/json"))
        return out


def inherited(raw: Iterable[tuple[bytes, bytes]], auth_names: Container[bytes], event_id: bytes) -> Headers:
    """The request's headers every step starts from, with ``cf-aig-event-id: event_id``.

    A Sluice token in a provider auth header (``Authorization: Bearer sluice_…``) becomes
    ``cf-aig-authorization``: gateway authentication for every step, whatever its provider. A provider
    key there is refused (``StepError``): it would reach every step's provider, not only its own.
    """
    out: Headers = []
    token: bytes | None = None
    for name, value in raw:
        if name in (b"content-length", EVENT_ID):
            continue
        if name in auth_names:
            bare = value.strip().rsplit(b" ", 1)[-1]
            if TOKEN_MARK in bare:
                token = token or bare
            elif bare and bare.lower() != b"bearer":  # an empty one, or a bare scheme, counts as absent
                raise StepError(f"request header {name.decode('latin-1')}",
                                "a provider key on the request would reach the provider of every step: "
                                "give it in the headers of the steps it is for")
            continue
        out.append((name, value))
    if token is not None and all(name != GATEWAY_AUTH for name, _ in out):
        out.append((GATEWAY_AUTH, b"Bearer " + token))
    out.append((EVENT_ID, event_id))
    return out


def parse(body: bytes, providers: Container[str]) -> list[Step]:
    """The steps of a Universal body; raises ``StepError``. ``providers``: the slugs a step may name."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise StepError("body", "not valid JSON (expected an array of steps)") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise StepError("body", f"expected an array of steps (or one step object), got {_kind(data)}")
    if not data:
        raise StepError("steps", "empty: give at least one step")
    if len(data) > MAX_STEPS:
        raise StepError("steps", f"{len(data)} steps: at most {MAX_STEPS} are allowed")
    return [_step(item, f"steps[{index}]", providers) for index, item in enumerate(data)]


def _step(item: Any, at: str, providers: Container[str]) -> Step:
    if not isinstance(item, dict):
        raise StepError(at, f"expected an object, got {_kind(item)}")
    for name in item:
        if name not in STEP_FIELDS:
            raise StepError(f"{at}.{name}"[:200], "unknown field (a step has provider, endpoint, headers, "
                                                  "query and config)")
    provider = _text(item, "provider", at)
    if provider not in providers:
        raise StepError(f"{at}.provider", f"unknown provider {provider[:64]!r}")
    endpoint = _text(item, "endpoint", at).lstrip("/")
    if not endpoint or _BAD_ENDPOINT.search(endpoint):
        raise StepError(f"{at}.endpoint", "must be a provider path without spaces, control characters "
                                          "or '#'")
    if has_dot_segment(endpoint.partition("?")[0]):  # would escape the provider's base path (paths.py)
        raise StepError(f"{at}.endpoint", "'.' and '..' segments (also percent-encoded) are not allowed")
    if "query" not in item:
        raise StepError(f"{at}.query", "required: the body sent to the provider")
    headers = _headers(item.get("headers"), f"{at}.headers")
    if "authorization" in item:  # the Universal endpoint's original field: the Authorization header
        value = _header_value(item["authorization"], f"{at}.authorization")
        if "authorization" not in {name for name, _ in headers}:
            headers.append(("authorization", value))
    options = _config(item.get("config"), f"{at}.config")
    names = {name for name, _ in options}
    headers = [pair for pair in headers if pair[0] not in names] + options
    return Step(provider, endpoint, tuple(headers), orjson.dumps(item["query"]))


def _text(item: dict[str, Any], name: str, at: str) -> str:
    value = item.get(name)
    if value is None:
        raise StepError(f"{at}.{name}", "required")
    if not isinstance(value, str) or not value:
        raise StepError(f"{at}.{name}", f"must be a non-empty string, got {_kind(value)}")
    return value


def _headers(value: Any, at: str) -> list[tuple[str, str]]:
    if value is None:
        return []
    if not isinstance(value, dict):
        raise StepError(at, f"must be an object of header names to values, got {_kind(value)}")
    if len(value) > MAX_STEP_HEADERS:
        raise StepError(at, f"{len(value)} headers: at most {MAX_STEP_HEADERS} are allowed")
    out: dict[str, str] = {}
    for raw_name, raw_value in value.items():
        name = raw_name.lower()
        where = f"{at}.{raw_name[:64]}"
        if len(name) > MAX_HEADER_NAME or not _TOKEN.fullmatch(name):
            raise StepError(where, "not a valid header name")
        if name in FRAMING or name.startswith("proxy-"):
            raise StepError(where, "not allowed in a step (the gateway frames each request itself)")
        if name == EVENT_ID_HEADER:
            raise StepError(where, "set cf-aig-event-id on the request: it links the logs of every step")
        out[name] = _header_value(raw_value, where)
    return list(out.items())


def _header_value(value: Any, at: str) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (str, int, float)):
        text = str(value)
    else:
        raise StepError(at, f"a header value must be a string, number or boolean, got {_kind(value)}")
    if len(text) > MAX_HEADER_VALUE or _BAD_VALUE.search(text):
        raise StepError(at, f"header value must be at most {MAX_HEADER_VALUE} characters without line "
                            "breaks or control characters")
    return text


def _config(value: Any, at: str) -> list[tuple[str, str]]:
    if value is None:
        return []
    if not isinstance(value, dict):
        raise StepError(at, f"must be an object, got {_kind(value)}")
    out = []
    for name, raw in value.items():
        option = CONFIG_OPTIONS.get(name)
        if option is None:
            raise StepError(f"{at}.{name[:64]}", "unknown option (one of: " + ", ".join(CONFIG_OPTIONS) + ")")
        out.append((option, _option(name, raw, f"{at}.{name}")))
    return out


def _option(name: str, value: Any, at: str) -> str:
    if name == "backoff":
        if value not in BACKOFFS:
            raise StepError(at, "must be one of " + ", ".join(BACKOFFS))
        return str(value)
    low, high = {"requestTimeout": (1, MAX_TIMEOUT_MS), "maxAttempts": (1, MAX_ATTEMPTS),
                 "retryDelay": (0, MAX_DELAY_MS)}[name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise StepError(at, f"must be an integer from {low} to {high}, got {_short(value)}")
    return str(value)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    return orjson.dumps(value).decode()[:32] if not isinstance(value, (dict, list)) else _kind(value)
