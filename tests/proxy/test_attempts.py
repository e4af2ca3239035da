"""The attempts runner (``proxy/attempts.py``) against scripted in-process apps: what reaches the
client and when, what is held back, and what the outcome says. The end-to-end behaviour through the
real data plane is in ``test_universal.py``."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from sluice.proxy.attempts import (
    MAX_ERROR_BYTES,
    PARSED_KEY,
    Outcome,
    SubRequest,
    attempt,
    in_turn,
    sub_scope,
)

SCOPE = {"type": "http", "method": "POST", "path": "/v1/a/g", "raw_path": b"/v1/a/g", "query_string": b"",
         "headers": [(b"x-client", b"1")], "client": ("127.0.0.1", 5000)}
REQUEST = SubRequest("openai", "chat/completions?x=1", [(b"content-type", b"application/json")], b'{"q":1}')
COMMIT = [(b"cf-aig-step", b"2")]


async def never() -> dict[str, Any]:
    """A client that neither sends more nor leaves."""
    await asyncio.sleep(3600)
    raise AssertionError("unreachable")


def scripted(status: int, chunks: list[bytes], seen: list[Any] | None = None) -> Any:
    """An app answering ``status`` with ``chunks``; it records the scope and body it was given."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        message = await receive()
        if seen is not None:
            seen.append((scope, message))
        await send({"type": "http.response.start", "status": status, "headers": [(b"x-up", b"1")]})
        for index, chunk in enumerate(chunks):
            try:
                more = index < len(chunks) - 1
                await send({"type": "http.response.body", "body": chunk, "more_body": more})
            except Exception:  # noqa: BLE001 — as the data plane does: the relay stops
                return

    return app


Messages = list[dict[str, Any]]


def run(app: Any, client_messages: Messages | None = None,
        request: SubRequest = REQUEST) -> tuple[Outcome, Messages]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if client_messages:
            return client_messages.pop(0)
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def main() -> Outcome:
        return await attempt(app, SCOPE, "a", "g", request, receive, send, COMMIT)

    return asyncio.run(main()), sent


def test_the_sub_request_is_a_provider_path_request_with_its_own_body() -> None:
    seen: list[Any] = []
    run(scripted(200, [b"ok"], seen))
    ((scope, message),) = seen
    assert scope == {**SCOPE, "path": "/v1/a/g/openai/chat/completions", "query_string": b"x=1",
                     "raw_path": b"/v1/a/g/openai/chat/completions", "headers": REQUEST.headers}
    assert message == {"type": "http.request", "body": b'{"q":1}', "more_body": False}
    assert sub_scope(SCOPE, "a", "g", REQUEST) == scope


def test_a_request_handed_over_parsed_rides_in_the_scope_and_no_body_is_fed() -> None:
    """The app reads the request from the scope; its ``receive`` is the client's channel at once."""
    parsed = SubRequest("compat", "chat/completions", [], b"", parsed={"model": "openai/m"})
    assert PARSED_KEY not in sub_scope(SCOPE, "a", "g", REQUEST)
    seen: list[Any] = []
    outcome, _ = run(scripted(200, [b"ok"], seen), [{"type": "http.disconnect"}], parsed)
    ((scope, message),) = seen
    assert scope[PARSED_KEY] == {"model": "openai/m"} and scope["path"] == "/v1/a/g/compat/chat/completions"
    assert message == {"type": "http.disconnect"}  # no synthetic body before the client's channel
    assert outcome.committed


def test_a_success_is_committed_with_the_commit_headers_and_relayed_as_it_comes() -> None:
    outcome, sent = run(scripted(200, [b"data: 1\n\n", b"data: 2\n\n", b""]))
    assert (outcome.committed, outcome.status, outcome.failure) == (True, 200, None)
    assert not outcome.client_gone
    assert sent[0] == {"type": "http.response.start", "status": 200, "headers": [(b"x-up", b"1"), *COMMIT]}
    assert [m["body"] for m in sent[1:]] == [b"data: 1\n\n", b"data: 2\n\n", b""]


def test_an_error_is_held_back_and_delivered_on_request() -> None:
    outcome, sent = run(scripted(503, [b'{"error":', b'"busy"}']))
    assert sent == [] and not outcome.committed and outcome.status == 503
    assert outcome.failure is not None and outcome.failure.body == b'{"error":"busy"}'
    delivered: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        delivered.append(message)

    asyncio.run(outcome.failure.deliver(send, COMMIT))
    assert delivered[0]["status"] == 503
    assert delivered[0]["headers"] == [(b"x-up", b"1"), *COMMIT, (b"content-length", b"16")]
    assert delivered[1] == {"type": "http.response.body", "body": b'{"error":"busy"}', "more_body": False}


def test_an_error_answer_too_large_to_hold_becomes_a_502() -> None:
    outcome, sent = run(scripted(500, [b"x" * (MAX_ERROR_BYTES // 2)] * 3))
    assert sent == [] and outcome.failure is not None
    assert outcome.failure.status == 502
    message = orjson.loads(outcome.failure.body)["error"][0]["message"]
    assert message.startswith("upstream error answer larger")


def test_a_client_that_left_is_reported() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()  # the body
        await receive()  # the disconnect: the data plane then gives up without answering

    outcome, sent = run(app, [{"type": "http.disconnect"}])
    assert outcome.client_gone and outcome.failure is None and sent == []


def test_in_turn_stops_at_the_first_success_and_builds_requests_lazily() -> None:
    answers = iter([(500, [b"no"]), (200, [b"yes"]), (200, [b"never"])])
    built: list[int] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        status, chunks = next(answers)
        await scripted(status, chunks)(scope, receive, send)

    def requests() -> Any:
        for index in range(3):
            built.append(index)
            yield REQUEST

    sent: Messages = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    answered = asyncio.run(in_turn(app, SCOPE, "a", "g", requests(), never, send,
                                   lambda i: [(b"cf-aig-step", str(i).encode())]))
    assert answered == 1 and built == [0, 1]
    assert sent[0]["status"] == 200 and (b"cf-aig-step", b"1") in sent[0]["headers"]
    assert [m["body"] for m in sent[1:]] == [b"yes"]


def test_in_turn_delivers_the_last_failure_with_its_index() -> None:
    answers = iter([500, 429])

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await scripted(next(answers), [b"e"])(scope, receive, send)

    sent: Messages = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    answered = asyncio.run(in_turn(app, SCOPE, "a", "g", [REQUEST, REQUEST], never, send,
                                   lambda i: [(b"cf-aig-step", str(i).encode())]))
    assert answered == 1 and sent[0]["status"] == 429
    assert (b"cf-aig-step", b"1") in sent[0]["headers"]
