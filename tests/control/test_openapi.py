"""GET /client/v4/openapi.json: served without auth, valid OpenAPI 3.1, covers every route, and real
responses of the running server validate against it (and broken ones do not)."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest
from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

import sluice.control
from sluice.control.routes import ENDPOINTS, management_app
from tests.conftest import unique_id
from tests.support.server import Server

AUTHENTICATED_STATUSES = {"401", "500"}
ACCOUNT_STATUSES = {"403", "404"}
BODY_STATUSES = {"400", "413"}


@pytest.fixture(scope="module")
def document(server: Server) -> dict[str, Any]:
    response = httpx.get(f"{server.api}/openapi.json", timeout=30)  # no credentials
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in document["paths"].items() for method, op in item.items()]


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _response_validator(document: dict[str, Any], path: str, method: str,
                        status: int) -> jsonschema_rs.Validator:
    """A validator for the JSON body the document promises for this operation and status."""
    response = _resolve(document, document["paths"][path][method]["responses"][str(status)])
    schema = response["content"]["application/json"]["schema"]
    return jsonschema_rs.Draft202012Validator({**schema, "components": document["components"]},
                                              validate_formats=True)


def _assert_matches(document: dict[str, Any], path: str, method: str, response: httpx.Response,
                    status: int = 200) -> Any:
    assert response.status_code == status, f"{method.upper()} {path}: {response.status_code} {response.text}"
    validator = _response_validator(document, path, method, response.status_code)
    errors = [str(e) for e in validator.iter_errors(response.json())]
    assert not errors, f"{method.upper()} {path} {response.status_code}: {errors}\n{response.text}"
    return response.json()


def test_document_is_valid_openapi_31(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    errors = [str(e) for e in OPENAPI_31_VALIDATOR.iter_errors(document)]
    assert not errors, errors[:5]


def test_the_validator_rejects_a_broken_document(document: dict[str, Any]) -> None:
    broken = {**document, "paths": {"/x": {"get": {"responses": {"200": {"content": "nope"}}}}}}
    assert not OPENAPI_31_VALIDATOR.is_valid(broken)


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                _resolve(document, {"$ref": node["$ref"]})  # KeyError when dangling
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)


def _routed(app: Any, prefix: str = "/client/v4") -> set[tuple[str, str]]:
    """(path as OpenAPI writes it, method) of every route the app answers, walked from its router."""
    found: set[tuple[str, str]] = set()
    for mount in app.routes:
        assert isinstance(mount, Mount) and mount.path == prefix, mount
        for route in mount.routes:
            assert isinstance(route, Route), route
            path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
            found |= {(path, m.lower()) for m in route.methods or () if m != "HEAD"}
    return found


def test_every_route_is_documented_and_every_documented_path_routed(document: dict[str, Any]) -> None:
    """Walks the app the server runs: what it routes and what /openapi.json lists are the same set."""
    documented = {(path, method) for path, method, _ in _operations(document)}
    routed = _routed(management_app())
    assert routed - documented == set(), "routed but not documented"
    assert documented - routed == set(), "documented but not routed"
    assert len(documented) == len(ENDPOINTS) + 1  # + GET /openapi.json


def test_an_entry_added_to_the_table_is_routed_and_documented() -> None:
    """Adding a route is one entry: built from a copy of the table with one more, the app answers it
    and its document describes it."""
    async def ping(request: Request) -> Response:
        return PlainTextResponse(f"pong {request.path_params['gateway_id']}")

    template = next(e for e in ENDPOINTS if e.id == "get_gateway")
    extra = dataclasses.replace(template, method="POST", path=template.path + "/ping", handler=ping,
                                id="ping_gateway", summary="Ping a gateway")
    with TestClient(management_app((*ENDPOINTS, extra))) as client:
        answer = client.post("/client/v4/accounts/" + "a" * 32 + "/ai-gateway/gateways/gw/ping")
        assert answer.text == "pong gw"
        document = client.get("/client/v4/openapi.json").json()
    path = "/accounts/{account_id}/ai-gateway/gateways/{gateway_id}/ping"
    operation = document["paths"][path]["post"]
    assert operation["operationId"] == "ping_gateway" and operation["summary"] == "Ping a gateway"
    assert [p["name"] for p in operation["parameters"]] == ["account_id", "gateway_id"]
    assert (path, "post") in _routed(management_app((*ENDPOINTS, extra)))
    with TestClient(management_app()) as client:  # the real table is untouched
        assert path not in client.get("/client/v4/openapi.json").json()["paths"]


def test_control_has_no_import_inside_a_function() -> None:
    """The routes -> openapi -> openapi_doc chain has no cycle left to dodge with a late import."""
    for path in Path(sluice.control.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                late = [n for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))]
                assert not late, f"{path.name}: {node.name} imports inside the function"


def test_an_operation_listed_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="more than once"):
        management_app((*ENDPOINTS, ENDPOINTS[0]))


def test_operations_declare_their_parameters_security_and_errors(document: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in _operations(document)]
    assert len(ids) == len(set(ids))
    for path, method, op in _operations(document):
        names = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert names == {seg[1:-1] for seg in path.split("/") if seg.startswith("{")}, (path, names)
        statuses = set(op["responses"])
        assert {"200", "500"} <= statuses, (method, path)
        if op["operationId"] == "openapi":
            assert op["security"] == []
            continue
        assert AUTHENTICATED_STATUSES <= statuses, (method, path)
        if not path.endswith(("/tokens/verify", "/sluice/identity")):  # any valid caller may ask who it is
            assert op["x-permissions"], (method, path)  # from the entry's accepts, which the server enforces
        if "account_id" in names:
            assert ACCOUNT_STATUSES <= statuses, (method, path)
        if "requestBody" in op:
            assert BODY_STATUSES <= statuses, (method, path)
        if any(p["in"] == "query" for p in op.get("parameters", [])):
            assert "400" in statuses, (method, path)


def test_path_parameters_have_the_server_formats(document: dict[str, Any]) -> None:
    params = {p["name"]: p["schema"] for _, _, op in _operations(document) for p in op.get("parameters", [])
              if p["in"] == "path"}
    assert params["account_id"]["pattern"] == "^[0-9a-f]{32}$"
    assert params["gateway_id"]["pattern"] == "^[a-z0-9_]+(?:-[a-z0-9_]+)*$"
    assert params["gateway_id"]["maxLength"] == 64


def test_security_schemes_match_the_server(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    assert {(s["in"], s["name"]) for s in schemes.values() if s["type"] == "apiKey"} == {
        ("header", "X-Auth-Email"), ("header", "X-Auth-Key")}


GW = "/accounts/{account_id}/ai-gateway/gateways"
PC = GW + "/{gateway_id}/provider_configs"
STORES = "/accounts/{account_id}/secrets_store/stores"


def test_real_responses_validate(server: Server, api: httpx.Client, document: dict[str, Any]) -> None:
    gateway_id = unique_id("doc")
    created = _assert_matches(document, GW, "post", api.post("/ai-gateway/gateways", json={"id": gateway_id}))
    assert created["result"]["id"] == gateway_id
    _assert_matches(document, GW, "get", api.get("/ai-gateway/gateways", params={"per_page": 5}))
    _assert_matches(document, GW + "/{gateway_id}", "put",
                    api.put(f"/ai-gateway/gateways/{gateway_id}",
                            json={"cache_ttl": None, "collect_logs": False}))
    _assert_matches(document, GW + "/{gateway_id}/url/{provider}", "get",
                    api.get(f"/ai-gateway/gateways/{gateway_id}/url/openai"))
    config = _assert_matches(document, PC, "post", api.post(
        f"/ai-gateway/gateways/{gateway_id}/provider_configs",
        json={"provider_slug": "openai", "alias": "doc", "default_config": True,
              "secret": "sk-doc-0123456789abcdef",
              "rate_limit": 5.0}))["result"]
    _assert_matches(document, PC, "get", api.get(f"/ai-gateway/gateways/{gateway_id}/provider_configs"))
    _assert_matches(document, PC + "/{config_id}", "get",
                    api.get(f"/ai-gateway/gateways/{gateway_id}/provider_configs/{config['id']}"))
    store = _assert_matches(document, STORES, "post",
                            api.post("/secrets_store/stores", json={"name": unique_id("doc")}))["result"]
    _assert_matches(document, STORES + "/{store_id}/secrets", "post", api.post(
        f"/secrets_store/stores/{store['id']}/secrets",
        json=[{"name": "a", "value": "v1", "scopes": ["workers"]}]))
    _assert_matches(document, STORES + "/{store_id}/secrets", "get",
                    api.get(f"/secrets_store/stores/{store['id']}/secrets", params={"scopes": "workers"}))
    conflict = api.delete(f"/secrets_store/stores/{store['id']}")
    _assert_matches(document, STORES + "/{store_id}", "delete", conflict, 409)
    assert conflict.headers["x-should-retry"] == "false"
    _assert_matches(document, STORES + "/{store_id}", "delete",
                    api.delete(f"/secrets_store/stores/{store['id']}", params={"force": "true"}))
    _assert_matches(document, "/accounts/{account_id}/secrets_store/quota", "get",
                    api.get("/secrets_store/quota"))
    token = _assert_matches(document, "/accounts/{account_id}/tokens", "post", api.post(
        "/tokens",
        json={"name": "doc", "permissions": ["AI Gateway Read"], "expires_on": "2099-01-01T00:00:00Z"}))
    _assert_matches(document, "/accounts/{account_id}/tokens/{token_id}", "delete",
                    api.delete(f"/tokens/{token['result']['id']}"))
    _assert_matches(document, "/accounts/{account_id}/tokens/verify", "get", api.get("/tokens/verify"))
    _assert_matches(document, "/user/tokens/verify", "get",
                    httpx.get(f"{server.api}/user/tokens/verify", headers=server.headers()))
    _assert_matches(document, GW + "/{gateway_id}/logs", "get",
                    api.get(f"/ai-gateway/gateways/{gateway_id}/logs"))
    _assert_matches(document, GW + "/{gateway_id}", "delete",
                    api.delete(f"/ai-gateway/gateways/{gateway_id}"))


def test_error_responses_validate(server: Server, api: httpx.Client, document: dict[str, Any]) -> None:
    missing = api.get("/ai-gateway/gateways/no-such-gateway")
    _assert_matches(document, GW + "/{gateway_id}", "get", missing, 404)
    invalid = api.post("/ai-gateway/gateways", json={"id": "Bad Id", "nope": 1})
    _assert_matches(document, GW, "post", invalid, 400)
    anonymous = httpx.get(f"{server.api}/accounts/{server.account_id}/ai-gateway/gateways")
    _assert_matches(document, GW, "get", anonymous, 401)
    other_account = api.get(f"{server.api}/accounts/{'0' * 32}/ai-gateway/gateways")
    _assert_matches(document, GW, "get", other_account, 403)
    too_large = api.post("/ai-gateway/gateways", content=b"[" + b"0," * 600_000 + b"0]",
                         headers={"content-type": "application/json"})
    _assert_matches(document, GW, "post", too_large, 413)


def test_responses_that_break_the_contract_do_not_validate(document: dict[str, Any]) -> None:
    """The checks above can fail: documents a server must not send are refused."""
    ok = _response_validator(document, GW, "get", 200)
    good = {"result": [], "success": True, "errors": [], "messages": [],
            "result_info": {"page": 1, "per_page": 20, "count": 0, "total_count": 0, "total_pages": 0}}
    assert ok.is_valid(good)
    assert not ok.is_valid({**good, "success": False})
    assert not ok.is_valid({k: v for k, v in good.items() if k != "result_info"})
    assert not ok.is_valid({**good, "result": [{"id": "x"}]})  # a gateway without its fields
    not_found = _response_validator(document, GW + "/{gateway_id}", "get", 404)
    assert not not_found.is_valid({"result": None, "success": False,
                                   "errors": [{"code": 7001, "message": "x"}],
                                   "messages": []})  # wrong code for a 404
    assert not not_found.is_valid({"result": None, "success": False, "errors": [], "messages": []})
    verify = _response_validator(document, "/user/tokens/verify", "get", 200)
    assert not verify.is_valid({"result": {"id": "0" * 32, "status": "active"}, "success": True, "errors": [],
                                "messages": []})  # expires_on missing


def test_request_bodies_match_what_the_server_accepts(api: httpx.Client, gateway: str,
                                                      document: dict[str, Any]) -> None:
    """Whole floats for rate_limit pass both; an unknown field fails both."""
    schemas = document["components"]["schemas"]
    body = jsonschema_rs.Draft202012Validator({"$ref": "#/components/schemas/ProviderConfigCreate",
                                               "components": document["components"]})
    accepted = {"provider_slug": "anthropic", "alias": "floaty", "default_config": False,
                "secret": "sk-ant-0123456789abcdef", "rate_limit": 10.0, "rate_limit_period": 30.0}
    assert body.is_valid(accepted)
    assert api.post(f"/ai-gateway/gateways/{gateway}/provider_configs", json=accepted).status_code == 200
    for refused in ({**accepted, "alias": "other", "unknown": 1},
                    {**accepted, "alias": "frac", "rate_limit": 1.5},
                    {**accepted, "alias": "ctl", "secret": "sk-\n-x"}):
        assert not body.is_valid(refused), refused
        assert api.post(f"/ai-gateway/gateways/{gateway}/provider_configs", json=refused).status_code == 400
    assert schemas["SecretCreateList"]["type"] == "array"
