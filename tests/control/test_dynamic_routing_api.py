"""Dynamic routes' management API, driven by the official ``cloudflare`` SDK against a running server."""

from __future__ import annotations

import json
from typing import Any

import cloudflare
import pytest

from tests.conftest import unique_id
from tests.routing.graphs import conditional, end, model, single_model, start
from tests.support.server import Server


def _routes(cf):  # type: ignore[no-untyped-def]
    return cf.ai_gateway.dynamic_routing


def test_route_lifecycle_through_the_sdk(cf, server: Server, gateway: str) -> None:  # type: ignore[no-untyped-def]
    account = server.account_id
    dr = _routes(cf)
    created = dr.create(gateway, account_id=account, name="support", elements=single_model())
    assert created.name == "support" and created.gateway_id == gateway and len(created.id) == 32
    assert created.version.active == "true" and created.deployment.version_id == created.version.version_id
    assert json.loads(created.version.data) == single_model()
    assert [e.type for e in created.elements] == ["start", "model", "end"]
    v1 = created.version.version_id

    got = dr.get(created.id, account_id=account, gateway_id=gateway)
    assert (got.id, got.name, got.version.version_id) == (created.id, "support", v1)

    two = [start("c"), conditional("c", {"metadata.plan": "paid"}, "big", "small"),
           model("big", "anthropic", "claude-3-5-sonnet"), model("small"), end()]
    made = dr.create_version(created.id, account_id=account, gateway_id=gateway, elements=two)
    assert made.id == created.id and len(made.elements) == 5
    v2 = made.model_extra["version_id"]  # type: ignore[index]
    assert dr.get(created.id, account_id=account, gateway_id=gateway).version.version_id == v1  # not live yet

    version = dr.get_version(v2, account_id=account, gateway_id=gateway, id=created.id)
    assert version.version_id == v2 and version.active == "false" and len(version.elements) == 5

    deployed = dr.create_deployment(created.id, account_id=account, gateway_id=gateway, version_id=v2)
    assert deployed.model_extra["deployment"]["version_id"] == v2  # type: ignore[index]
    assert dr.get(created.id, account_id=account, gateway_id=gateway).version.version_id == v2
    dr.create_deployment(created.id, account_id=account, gateway_id=gateway, version_id=v1)  # roll back

    versions = dr.list_versions(created.id, account_id=account, gateway_id=gateway)
    assert versions.success and [v.version_id for v in versions.data.versions] == [v2, v1]
    assert [v.active for v in versions.data.versions] == ["false", "true"]
    deployments = dr.list_deployments(created.id, account_id=account, gateway_id=gateway)
    assert [d.version_id for d in deployments.data.deployments] == [v1, v2, v1]

    renamed = dr.update(created.id, account_id=account, gateway_id=gateway, name="support-v2")
    assert renamed.success and renamed.route.name == "support-v2" and renamed.route.account_tag == account

    deleted = dr.delete(created.id, account_id=account, gateway_id=gateway)
    assert deleted.id == created.id and deleted.name == "support-v2"
    with pytest.raises(cloudflare.NotFoundError):
        dr.get(created.id, account_id=account, gateway_id=gateway)


def test_listing_pages(cf, server: Server, gateway: str) -> None:  # type: ignore[no-untyped-def]
    dr = _routes(cf)
    ids = [dr.create(gateway, account_id=server.account_id, name=f"r{i}", elements=single_model()).id
           for i in range(5)]
    pages = [dr.list(gateway, account_id=server.account_id, page=page, per_page=2) for page in (1, 2, 3)]
    assert [[r.id for r in p.data.routes] for p in pages] == [ids[:2], ids[2:4], ids[4:]]
    assert (pages[1].data.page, pages[1].data.per_page) == (2, 2)
    assert pages[0].data.model_extra["total_count"] == 5  # type: ignore[index]
    route = ids[0]
    for _ in range(3):
        dr.create_version(route, account_id=server.account_id, gateway_id=gateway, elements=single_model())
    second = dr.list_versions(route, account_id=server.account_id, gateway_id=gateway,
                              extra_query={"page": 2, "per_page": 3})
    assert len(second.data.versions) == 1 and second.data.page == 2


def test_duplicate_name_is_a_conflict(cf, server: Server, gateway: str) -> None:  # type: ignore[no-untyped-def]
    dr = _routes(cf)
    dr.create(gateway, account_id=server.account_id, name="dup", elements=single_model())
    with pytest.raises(cloudflare.ConflictError):
        dr.create(gateway, account_id=server.account_id, name="dup", elements=single_model())
    other = dr.create(gateway, account_id=server.account_id, name="other", elements=single_model())
    with pytest.raises(cloudflare.ConflictError):
        dr.update(other.id, account_id=server.account_id, gateway_id=gateway, name="dup")


INVALID: list[tuple[str, Any, list[Any]]] = [
    ("unknown provider", [start("m"), model("m", "nope"), end()],
     ["body", "elements", 1, "properties", "provider"]),
    ("cycle", [start("m"), model("m", success="m", fallback="end"), end()],
     ["body", "elements", 1, "outputs", "success", "elementId"]),
    ("unreachable", [*single_model(), end("spare")], ["body", "elements", 3, "id"]),
    ("unknown type", [start("m"), {"id": "m", "type": "magic", "outputs": {}}, end()],
     ["body", "elements", 1, "type"]),
]


@pytest.mark.parametrize(("case", "elements", "path"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_graph_is_a_400_naming_element_and_field(cf, api, server: Server, gateway: str,  # type: ignore[no-untyped-def]
                                                         case: str, elements: Any, path: list[Any]) -> None:
    with pytest.raises(cloudflare.BadRequestError) as refused:
        _routes(cf).create(gateway, account_id=server.account_id, name=unique_id("bad"), elements=elements)
    errors = refused.value.body["errors"]  # type: ignore[index]
    assert [e["path"] for e in errors] == [path], errors
    element_id = elements[path[2]]["id"]
    assert f"elements[{path[2]}] ({element_id!r})" in errors[0]["message"]
    ok = _routes(cf).create(gateway, account_id=server.account_id, name=unique_id("ok"),
                            elements=single_model())
    response = api.post(f"/ai-gateway/gateways/{gateway}/routes/{ok.id}/versions",
                        json={"elements": elements})
    assert response.status_code == 400 and response.json()["errors"][0]["path"] == path


@pytest.mark.parametrize(("body", "path"), [
    ({"elements": single_model()}, ["body", "name"]),
    ({"name": "a b", "elements": single_model()}, ["body", "name"]),
    ({"name": "x", "elements": single_model(), "extra": 1}, ["body", "extra"]),
    ({"name": "x", "elements": "start"}, ["body", "elements"]),
    ({"name": "x", "elements": []}, ["body", "elements"]),
])
def test_malformed_bodies(api, gateway: str, body: Any, path: list[Any]) -> None:  # type: ignore[no-untyped-def]
    response = api.post(f"/ai-gateway/gateways/{gateway}/routes", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["path"] == path


def test_unknown_ids_are_404(api, gateway: str) -> None:  # type: ignore[no-untyped-def]
    missing = "0" * 32
    assert api.get(f"/ai-gateway/gateways/{gateway}/routes/{missing}").status_code == 404
    assert api.get(f"/ai-gateway/gateways/nope-{missing[:6]}/routes").status_code == 404
    created = api.post(f"/ai-gateway/gateways/{gateway}/routes",
                       json={"name": "n404", "elements": single_model()}).json()["result"]
    base = f"/ai-gateway/gateways/{gateway}/routes/{created['id']}"
    assert api.get(f"{base}/versions/{missing}").status_code == 404
    response = api.post(f"{base}/deployments", json={"version_id": missing})
    assert response.status_code == 404


def test_deleting_the_gateway_deletes_its_routes(api, gateway: str) -> None:  # type: ignore[no-untyped-def]
    created = api.post(f"/ai-gateway/gateways/{gateway}/routes",
                       json={"name": "gone", "elements": single_model()}).json()["result"]
    assert api.delete(f"/ai-gateway/gateways/{gateway}").status_code == 200
    assert api.post("/ai-gateway/gateways", json={"id": gateway}).status_code == 200
    assert api.get(f"/ai-gateway/gateways/{gateway}/routes/{created['id']}").status_code == 404
    assert api.get(f"/ai-gateway/gateways/{gateway}/routes").json()["data"]["routes"] == []
