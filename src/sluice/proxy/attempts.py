"""Run one sub-request through the data plane and learn how it went before the client sees anything.

Used by the Universal endpoint (``universal.py``) for its steps, and meant for anything else that
tries targets in turn (fallbacks). One attempt is one ordinary provider-path request, made with a
synthetic scope and body and handed to the data plane itself, so everything applies exactly as on
the provider path: gateway authentication, credentials and ``cf-aig-byok-alias``, rate limits, the
cache, retries and timeouts, and one request log (with its own ``cf-aig-log-id``).

Interface::

    outcome = await attempt(app, scope, account_id, gateway_id,
                            SubRequest(provider, endpoint, headers, body), receive, send, commit_headers)

* ``app``: the data plane (an ASGI callable); ``scope``/``receive``/``send``: the client's own
  request, whose body has already been read (``receive`` is only listened to for a disconnect).
* ``SubRequest.parsed``: a ``/compat`` chat request already parsed (a dynamic route's model call);
  it rides in the scope under ``PARSED_KEY`` and no body is fed (``receive`` is the client's channel).
* Nothing reaches ``send`` until the answer's status is known. A status below 400 is committed:
  its start goes to the client with ``commit_headers`` added, and the body (a stream included)
  follows as it arrives; ``outcome.committed`` is then True and the caller is done.
* An error status (an upstream 4xx/5xx, or a gateway refusal such as 504 on ``cf-aig-request-timeout``,
  502 on a connection failure, 429, 401) is buffered whole (up to ``MAX_ERROR_BYTES``) and not sent:
  ``outcome.failure`` holds it, to try the next target or to ``deliver`` as the final answer.
* ``outcome.client_gone``: the client left; stop.

``in_turn`` is the usual loop over that: try requests in order until one is committed, and when all
failed deliver the last failure (with the commit headers of its index)::

    answered = await in_turn(app, scope, account_id, gateway_id, requests, receive, send,
                             lambda index: [(b"cf-aig-step", str(index).encode())])
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import structlog

from sluice.envelope import gateway_error_body
from sluice.errors import UnrelayableUpstreamError

log = structlog.get_logger("sluice.proxy")

MAX_ERROR_BYTES = 1024 * 1024  # an error answer larger than this is replaced by a 502 (never held whole)
Message = dict[str, Any]
Send = Callable[[Message], Awaitable[None]]
Receive = Callable[[], Awaitable[Message]]
App = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]
PARSED_KEY = "sluice.parsed_request"  # in a sub-request's scope: only the data plane can set it


@dataclass(frozen=True, slots=True)
class SubRequest:
    """One provider-path request: ``POST /v1/{account}/{gateway}/{provider}/{endpoint}``."""

    provider: str  # a provider slug, or ``compat``
    endpoint: str  # the provider path (no leading slash), optionally with ``?query``
    headers: Headers  # everything the data plane should see, ``cf-aig-*`` options included
    body: bytes
    method: str = "POST"
    # A ``/compat`` chat request already parsed by the caller (a dynamic route's model call): the data
    # plane takes it from the scope (``PARSED_KEY``) instead of reading and parsing ``body`` again.
    parsed: dict[str, Any] | None = None


@dataclass(slots=True)
class Failure:
    """An error answer held back from the client."""

    status: int
    headers: Headers
    body: bytes

    async def deliver(self, send: Send, extra: Headers) -> None:
        """Send it as the final answer (its length recomputed: the body may have been replaced)."""
        headers = [(k, v) for k, v in self.headers if k != b"content-length"]
        headers += [*extra, (b"content-length", str(len(self.body)).encode())]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body, "more_body": False})


@dataclass(slots=True)
class Outcome:
    status: int = 0  # the answer's status; 0 when none came (the client left)
    committed: bool = False
    client_gone: bool = False
    failure: Failure | None = None


class _Receive:
    """The sub-request's ``receive``: its body once, then the client's channel (a disconnect)."""

    def __init__(self, body: bytes | None, client: Receive) -> None:
        self._body = body  # None: the request was handed over parsed, nothing to read
        self._client = client
        self.gone = False

    async def __call__(self) -> Message:
        if self._body is not None:
            body, self._body = self._body, None
            return {"type": "http.request", "body": body, "more_body": False}
        message = await self._client()
        if message["type"] == "http.disconnect":
            self.gone = True
        return message


class _Gate:
    """The sub-request's ``send``: holds the response start until its status decides."""

    def __init__(self, send: Send, commit_headers: Headers) -> None:
        self._send = send
        self._extra = commit_headers
        self.outcome = Outcome()
        self._start: Message | None = None
        self._buffer = bytearray()
        self._overflow = False

    async def __call__(self, message: Message) -> None:
        outcome = self.outcome
        if message["type"] == "http.response.start":
            outcome.status = message["status"]
            if outcome.status < 400:
                outcome.committed = True
                await self._send({**message, "headers": [*message["headers"], *self._extra]})
            else:
                self._start = message
            return
        if outcome.committed:
            await self._send(message)
            return
        if message["type"] != "http.response.body" or self._overflow:
            return
        self._buffer += message.get("body", b"")
        if len(self._buffer) > MAX_ERROR_BYTES:
            self._overflow = True  # the data plane's relay stops here and closes the upstream
            raise UnrelayableUpstreamError(f"upstream error answer larger than {MAX_ERROR_BYTES} bytes")

    def failure(self) -> Failure:
        if self._overflow or self._start is None:
            error = UnrelayableUpstreamError(f"upstream error answer larger than {MAX_ERROR_BYTES} bytes") \
                if self._overflow else UnrelayableUpstreamError("no answer")
            body = gateway_error_body(error.status, error.internal_code, error.message)
            return Failure(error.status, [(b"content-type", b"application/json")], body)
        return Failure(self.outcome.status, list(self._start["headers"]), bytes(self._buffer))


def sub_scope(scope: dict[str, Any], account_id: str, gateway_id: str, request: SubRequest) -> dict[str, Any]:
    """The ASGI scope of ``request`` as if the client had sent it to the provider path."""
    path, _, query = request.endpoint.partition("?")
    target = f"/v1/{account_id}/{gateway_id}/{request.provider}/{path}"
    sub = {**scope, "method": request.method, "path": target, "raw_path": target.encode("utf-8"),
           "query_string": query.encode("utf-8"), "headers": request.headers}
    if request.parsed is not None:
        sub[PARSED_KEY] = request.parsed
    return sub


async def attempt(app: App, scope: dict[str, Any], account_id: str, gateway_id: str, request: SubRequest,
                  receive: Receive, send: Send, commit_headers: Headers) -> Outcome:
    """Run ``request`` through ``app``; see the module docstring for what the outcome means."""
    sub_receive = _Receive(request.body if request.parsed is None else None, receive)
    gate = _Gate(send, commit_headers)
    await app(sub_scope(scope, account_id, gateway_id, request), sub_receive, gate)
    outcome = gate.outcome
    if not outcome.committed:
        outcome.client_gone = sub_receive.gone
        if not sub_receive.gone:
            outcome.failure = gate.failure()
    return outcome


async def in_turn(app: App, scope: dict[str, Any], account_id: str, gateway_id: str,
                  requests: Iterable[SubRequest], receive: Receive, send: Send,
                  commit_headers: Callable[[int], Headers]) -> int | None:
    """Try ``requests`` in order until one answers below 400; when every one failed, deliver the last
    failure. Returns the index whose answer the client got, or None when the client left first.
    ``requests`` may be lazy (the next one is built only when needed); it must not be empty."""
    last: tuple[int, Failure] | None = None
    for index, request in enumerate(requests):
        outcome = await attempt(app, scope, account_id, gateway_id, request, receive, send,
                                commit_headers(index))
        if outcome.committed:
            return index
        if outcome.client_gone or outcome.failure is None:
            return None
        log.info("attempt failed", attempt=index, status=outcome.status, gateway=gateway_id)
        last = index, outcome.failure
    if last is None:
        raise ValueError("in_turn: no request to try")
    index, failure = last
    await failure.deliver(send, commit_headers(index))
    return index
