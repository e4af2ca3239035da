"""Property-based fuzzing of the live management API against its own OpenAPI document (schemathesis).

Authenticated run: no 5xx; every status code, content type, header and body as the document says.
Known ids (a gateway, store, secret, provider config and a throwaway token made here) are fed in through
dictionaries so many calls reach the handlers' deeper branches instead of stopping at 404.
Anonymous run: every operation answers 401, whatever valid input it gets.

The schemathesis engine (the one behind its CLI) runs in-process: its pytest plugin does not support
this pytest version, and the engine also runs the coverage phase (boundary values, missing fields).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.engine import Status, events, from_schema

from tests.conftest import unique_id
from tests.support.server import Server

CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_headers_conformance", "response_schema_conformance", "unsupported_method", "ignored_auth",
          "allow_header_conformance")
KNOWN: set[tuple[str, str]] = set()  # (check, operation) pairs to tolerate; keep empty
MAX_EXAMPLES = 15  # per operation and mode; the whole file stays near a minute on 2 shared cores


def _config(server: Server, *, headers: dict[str, str], parameters: dict[str, Any],
            dictionaries: dict[str, Any], mode: str, phases: dict[str, Any]) -> schemathesis.Config:
    return schemathesis.Config.from_dict({
        "base-url": server.api,
        "headers": headers,
        "parameters": parameters,
        "dictionaries": dictionaries,
        "workers": 1,
        # a loaded machine makes generation slow, which is not a defect of the API under test
        "suppress-health-check": ["too_slow"],
        "generation": {"max-examples": MAX_EXAMPLES, "mode": mode, "deterministic": True},
        "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
        "phases": {"stateful": {"enabled": False}, **phases},
    })


class Run:
    """What one engine run did: failures (with reproduction code), errors, and every response status."""

    def __init__(self) -> None:
        self.failures: list[str] = []
        self.errors: list[str] = []
        self.statuses: Counter[tuple[str, int]] = Counter()

    def report(self) -> str:
        return "\n\n".join([*self.failures, *self.errors][:20])


def run_engine(schema: schemathesis.BaseSchema) -> Run:
    run = Run()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            for case_id, interaction in recorder.interactions.items():
                if interaction.response is not None:
                    label = recorder.cases[case_id].value.operation.label
                    run.statuses[(label, interaction.response.status_code)] += 1
            if event.status in (Status.FAILURE, Status.ERROR):
                for checks in recorder.checks.values():
                    for check in checks:
                        if check.failure_info is not None:
                            failure = check.failure_info.failure
                            if (check.name, failure.operation) in KNOWN:
                                continue
                            run.failures.append(f"[{check.name}] {failure.operation}: {failure.title}\n"
                                                f"{failure.message}\n{check.failure_info.code_sample}")
        elif isinstance(event, events.NonFatalError):
            run.errors.append(f"{event.label}: {event.info.title}: {event.value!r}")
        elif isinstance(event, events.FatalError):
            run.errors.append(f"fatal: {event.exception!r}")
    return run


@pytest.fixture(scope="module")
def known_ids(server: Server) -> Iterator[dict[str, str]]:
    """Real resources for the fuzzer to hit; the store (and the secrets it gets) is removed afterwards."""
    with httpx.Client(base_url=f"{server.api}/accounts/{server.account_id}", headers=server.headers(),
                      timeout=30) as api:
        def ok(response: httpx.Response) -> Any:
            assert response.status_code == 200, response.text
            return response.json()["result"]

        gateway = ok(api.post("/ai-gateway/gateways",
                              json={"id": unique_id("fuzz"), "authentication": False}))
        store = ok(api.post("/secrets_store/stores", json={"name": unique_id("fuzz-store")}))
        secret = ok(api.post(f"/secrets_store/stores/{store['id']}/secrets", json=[
            {"name": "fuzz_secret", "value": "sk-fuzz-0123456789", "scopes": ["ai_gateway"]}]))[0]
        config = ok(api.post(f"/ai-gateway/gateways/{gateway['id']}/provider_configs",
                             json={"provider_slug": "openai", "alias": "fuzz", "default_config": True,
                                   "secret": "sk-fuzz-abcdefghijklmnop"}))
        token = ok(api.post("/tokens", json={"name": "fuzz-victim", "permissions": ["AI Gateway Read"]}))
        yield {"gateway_id": gateway["id"], "store_id": store["id"], "secret_id": secret["id"],
               "config_id": config["id"], "token_id": token["id"]}
        api.delete(f"/ai-gateway/gateways/{gateway['id']}")
        api.delete(f"/secrets_store/stores/{store['id']}", params={"force": "true"})


def test_management_api_conforms_to_its_document(server: Server, known_ids: dict[str, str]) -> None:
    config = _config(
        server, headers=server.headers(), mode="all", phases={},
        parameters={"path.account_id": server.account_id,
                    **{f"path.{name}": {"dictionary": name, "probability": 0.6} for name in known_ids}},
        dictionaries={name: {"values": [value]} for name, value in known_ids.items()},
    )
    run = run_engine(schemathesis.openapi.from_url(f"{server.api}/openapi.json", config=config))
    assert not run.failures and not run.errors, run.report()
    # the run reached the handlers: successes and validation errors, not only 401/403/404
    assert sum(n for (_, status), n in run.statuses.items() if status == 200) >= 50, run.statuses
    assert sum(n for (_, status), n in run.statuses.items() if status == 400) >= 50, run.statuses


def test_every_operation_refuses_anonymous_callers(server: Server) -> None:
    config = _config(server, headers={}, mode="positive", phases={"coverage": {"enabled": False}},
                     parameters={"path.account_id": server.account_id}, dictionaries={})
    schema = schemathesis.openapi.from_url(f"{server.api}/openapi.json", config=config)
    run = run_engine(schema.exclude(operation_id="openapi"))
    assert not run.failures and not run.errors, run.report()
    assert run.statuses, "no request was sent"
    assert {status for _, status in run.statuses} == {401}, run.statuses
