"""Table-driven translation tests against recorded wire samples (tests/compat/samples/<provider>/).

Each provider directory holds ``requests.json`` (OpenAI body -> native body), ``refused.json``
(OpenAI body -> 400 naming ``field``), ``responses.json`` (native answer -> OpenAI answer),
``errors.json`` (native error body and status -> OpenAI error body) and ``streams.json`` (a native
SSE capture -> the OpenAI chunks, compared delta by delta). Streams are also fed one byte at a time:
the translators are incremental, so the output must not depend on how the bytes arrive.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from sluice.compat import anthropic, chat, gemini
from sluice.errors import TranslationError

SAMPLES = Path(__file__).parent / "samples"
CREATED = 1_700_000_000
PROVIDERS = ("anthropic", "google-ai-studio")


def _table(provider: str, name: str) -> list[Any]:
    return orjson.loads((SAMPLES / provider / name).read_bytes())  # type: ignore[no-any-return]


def _cases(name: str) -> list[Any]:
    return [pytest.param(provider, case, id=f"{provider}: {case.get('name', case.get('status'))}")
            for provider in PROVIDERS for case in _table(provider, name)]


def translate_request(provider: str, body: dict[str, Any]) -> dict[str, Any]:
    prefix, model = chat.split_model(body)
    assert prefix == provider
    if provider == "anthropic":
        return anthropic.request(body, model)
    chat.fill_path("v1beta/models/{model}:generateContent", model)
    return gemini.request(body)


@pytest.mark.parametrize(("provider", "case"), _cases("requests.json"))
def test_request(provider: str, case: dict[str, Any]) -> None:
    assert translate_request(provider, case["openai"]) == case["native"]


@pytest.mark.parametrize(("provider", "case"), _cases("refused.json"))
def test_refused_request_names_the_field(provider: str, case: dict[str, Any]) -> None:
    with pytest.raises(TranslationError) as caught:
        translate_request(provider, case["openai"])
    assert caught.value.field == case["field"]
    assert caught.value.message.startswith(case["field"] + ": ")
    body = orjson.loads(chat.translation_error_body(caught.value))
    assert body["error"]["param"] == case["field"] and body["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(("provider", "case"), _cases("responses.json"))
def test_response(provider: str, case: dict[str, Any]) -> None:
    if provider == "anthropic":
        got = anthropic.response(case["native"], CREATED)
    else:
        got = gemini.response(case["native"], CREATED, "requested-model")
    assert got == case["openai"]


@pytest.mark.parametrize(("provider", "case"), _cases("errors.json"))
def test_error(provider: str, case: dict[str, Any]) -> None:
    native = case["native"]
    raw = native.encode() if isinstance(native, str) else orjson.dumps(native)
    translate = anthropic.error if provider == "anthropic" else gemini.error
    assert orjson.loads(translate(case["status"], raw)) == case["openai"]


def _stream(provider: str, case: dict[str, Any]) -> Any:
    if provider == "anthropic":
        return anthropic.StreamTranslator(CREATED, case["include_usage"])
    return gemini.StreamTranslator(CREATED, "requested-model", case["include_usage"])


def _events(output: bytes) -> list[Any]:
    events = []
    for block in output.split(b"\n\n"):
        if not block:
            continue
        assert block.startswith(b"data: "), block
        data = block[6:]
        events.append("[DONE]" if data == b"[DONE]" else orjson.loads(data))
    return events


def _shape(event: Any, case: dict[str, Any]) -> Any:
    """What the table compares: delta and finish reason, the usage chunk, an error, or [DONE]."""
    if event == "[DONE]" or "error" in event:
        return event
    assert event["object"] == "chat.completion.chunk"
    assert (event["id"], event["model"], event["created"]) == (case["id"], case["model"], CREATED)
    if case["include_usage"]:
        assert "usage" in event
    if not event["choices"]:
        return {"usage": event["usage"]}
    (choice,) = event["choices"]
    assert choice["index"] == 0
    return {"delta": choice["delta"], "finish_reason": choice["finish_reason"]}


@pytest.mark.parametrize(("provider", "case"), _cases("streams.json"))
@pytest.mark.parametrize("piece", [None, 1, 7], ids=["whole", "byte-by-byte", "7-bytes"])
def test_stream(provider: str, case: dict[str, Any], piece: int | None) -> None:
    raw = (SAMPLES / provider / case["sse"]).read_bytes()
    translator = _stream(provider, case)
    output = bytearray()
    for start in range(0, len(raw), piece or len(raw)):
        output += translator.feed(raw[start:start + (piece or len(raw))])
    output += translator.close()
    assert [_shape(event, case) for event in _events(bytes(output))] == case["expect"]
