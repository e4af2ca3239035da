"""The management API: its one route table, and the Starlette app mounted at /client/v4 built from it.

``ENDPOINTS`` is the only list of management operations. The Starlette routes and the OpenAPI document
(``GET /client/v4/openapi.json``, see openapi_doc) are both built from it, so a route is documented
by being routed. To add a route, append one ``Endpoint`` to its section below:

    Endpoint("PUT", A + "/tokens/{token_id:hex32}", tokens.update_token, "update_token",
             "Replace a token's name, policies and restrictions", TOKENS, "Token", body="TokenUpdate",
             accepts=TOKEN_WRITE),

that is: method, path (below /client/v4, one of the prefixes below), handler, operationId, summary,
tag, the result schema's component name; ``accepts=``, the permission groups of which the caller
needs one (``common.authorized`` checks them: a handler never names its permission; an entry without
``accepts`` refuses every caller with 403); then as needed ``body=`` (request schema component),
``query=`` (query parameters), ``errors=`` (statuses beyond 401/403/404/500, e.g. ``(409,)``),
``listed=``/``paged=`` (an array result), ``bearer_only=``. A new body or result schema is added to
openapi_doc's ``_bodies``/``_results``, a new path parameter to its ``PATH_PARAMS``;
tests/control/test_openapi.py checks the document, tests/control/test_auth.py the permission matrix.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Iterable

import structlog
from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Mount, Route

from sluice import envelope
from sluice.control import custom_providers, gateways, logs, provider_configs, secrets_store, tokens
from sluice.control import dynamic_routing as dr
from sluice.control import openapi_doc as doc
from sluice.control.endpoint import Endpoint, bind
from sluice.control.openapi import openapi_handler
from sluice.errors import ApiError, MethodNotAllowed, NoRoute, ServiceUnavailable
from sluice.identity.permissions import (
    CONFIG_READ,
    CONFIG_WRITE,
    GATEWAY_READ,
    GATEWAY_WRITE,
    STORE_READ,
    STORE_WRITE,
    TOKEN_READ,
    TOKEN_WRITE,
)
from sluice.store.database import OUTAGE_CANDIDATES, is_outage

log = structlog.get_logger("sluice.api")


class Hex32Convertor(Convertor[str]):
    """Token ids are 32 hex characters; so /tokens/verify can never be taken for a token id."""

    regex = "[0-9a-f]{32}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("hex32", Hex32Convertor())

A = "/accounts/{account_id}"
GW = A + "/ai-gateway/gateways"
PC = GW + "/{gateway_id}/provider_configs"
LOGS = GW + "/{gateway_id}/logs"
DR = GW + "/{gateway_id}/routes"
DRI = DR + "/{route_id}"
SS = A + "/secrets_store"
CP = A + "/ai-gateway/custom-providers"

GATEWAYS, CONFIGS, LOG, STORE, TOKENS = "gateways", "provider configs", "logs", "secrets store", "tokens"
ROUTES = "dynamic routes"
CUSTOM = "custom providers"
STORE_SORT = doc.order_params("name", "created", "modified")
SECRET_SORT = doc.order_params("name", "comment", "created", "modified", "status")

# The route table. To add a route, append one entry to its section (see the module docstring).
ENDPOINTS: tuple[Endpoint, ...] = (
    # -- gateways --
    Endpoint("GET", GW, gateways.list_gateways, "list_gateways", "List gateways", GATEWAYS, "Gateway",
             paged=True, query=(*doc.PAGE, doc.SEARCH), accepts=GATEWAY_READ),
    Endpoint("POST", GW, gateways.create_gateway, "create_gateway", "Create a gateway", GATEWAYS, "Gateway",
             body="GatewayCreate", errors=(409,), accepts=GATEWAY_WRITE),
    Endpoint("GET", GW + "/{gateway_id}", gateways.get_gateway, "get_gateway", "Get a gateway", GATEWAYS,
             "Gateway", accepts=GATEWAY_READ),
    Endpoint("PUT", GW + "/{gateway_id}", gateways.update_gateway, "update_gateway", "Update a gateway",
             GATEWAYS, "Gateway", body="GatewayUpdate", accepts=GATEWAY_WRITE),
    Endpoint("DELETE", GW + "/{gateway_id}", gateways.delete_gateway, "delete_gateway",
             "Delete a gateway with its provider configs and logs", GATEWAYS, "Gateway",
             accepts=GATEWAY_WRITE),
    Endpoint("GET", GW + "/{gateway_id}/url/{provider}", gateways.gateway_url, "gateway_url",
             "The gateway URL of a provider", GATEWAYS, "GatewayUrl", errors=(400,), accepts=GATEWAY_READ),
    # -- provider configs --
    Endpoint("GET", PC, provider_configs.list_configs, "list_provider_configs", "List provider configs",
             CONFIGS, "ProviderConfig", paged=True, query=doc.PAGE, accepts=CONFIG_READ),
    Endpoint("POST", PC, provider_configs.create_config, "create_provider_config",
             "Store a provider key under an alias", CONFIGS, "ProviderConfig", body="ProviderConfigCreate",
             errors=(409,), accepts=CONFIG_WRITE),
    Endpoint("GET", PC + "/{config_id}", provider_configs.get_config, "get_provider_config",
             "Get a provider config", CONFIGS, "ProviderConfig", accepts=CONFIG_READ),
    Endpoint("PUT", PC + "/{config_id}", provider_configs.update_config, "update_provider_config",
             "Rotate the key or change limits", CONFIGS, "ProviderConfig", body="ProviderConfigUpdate",
             accepts=CONFIG_WRITE),
    Endpoint("DELETE", PC + "/{config_id}", provider_configs.delete_config, "delete_provider_config",
             "Delete a provider config", CONFIGS, "ProviderConfig", accepts=CONFIG_WRITE),
    # -- dynamic routes (docs/routing.md) --
    Endpoint("POST", DR, dr.create_route, "create_route", "Create a dynamic route (version 1, deployed)",
             ROUTES, "Route", body="RouteCreate", errors=(409,), accepts=GATEWAY_WRITE),
    Endpoint("GET", DR, dr.list_routes, "list_routes", "List dynamic routes (answered in data)", ROUTES,
             "RouteList", query=doc.PAGE, result_key="data", accepts=GATEWAY_READ),
    Endpoint("GET", DRI, dr.get_route, "get_route", "Get a route with its deployed version", ROUTES, "Route",
             accepts=GATEWAY_READ),
    Endpoint("PATCH", DRI, dr.update_route, "update_route", "Rename a route (answered in route)", ROUTES,
             "Route", body="RouteUpdate", errors=(409,), result_key="route", accepts=GATEWAY_WRITE),
    Endpoint("DELETE", DRI, dr.delete_route, "delete_route", "Delete a route with its history", ROUTES,
             "RouteBase", accepts=GATEWAY_WRITE),
    Endpoint("POST", DRI + "/versions", dr.create_version, "create_route_version",
             "Save new elements as a version (not deployed)", ROUTES, "RouteVersionCreated",
             body="RouteVersionCreate", accepts=GATEWAY_WRITE),
    Endpoint("GET", DRI + "/versions", dr.list_versions, "list_route_versions",
             "A route's versions, newest first (answered in data)", ROUTES, "RouteVersionList",
             query=doc.PAGE, result_key="data", accepts=GATEWAY_READ),
    Endpoint("GET", DRI + "/versions/{version_id}", dr.get_version, "get_route_version",
             "Get a version with its elements", ROUTES, "RouteVersion", accepts=GATEWAY_READ),
    Endpoint("POST", DRI + "/deployments", dr.create_deployment, "create_route_deployment",
             "Deploy a version (an earlier one rolls back)", ROUTES, "RouteDeployed",
             body="RouteDeploymentCreate", accepts=GATEWAY_WRITE),
    Endpoint("GET", DRI + "/deployments", dr.list_deployments, "list_route_deployments",
             "A route's deployments, newest first (answered in data)", ROUTES, "RouteDeploymentList",
             query=doc.PAGE, result_key="data", accepts=GATEWAY_READ),
    # -- custom providers (same permissions as gateways) --
    Endpoint("GET", CP, custom_providers.list_providers, "list_custom_providers", "List custom providers",
             CUSTOM, "CustomProvider", paged=True, query=(*doc.PAGE, doc.CUSTOM_SEARCH, *doc.CUSTOM_FILTERS),
             accepts=GATEWAY_READ),
    Endpoint("POST", CP, custom_providers.create_provider, "create_custom_provider",
             "Create a custom provider (used as custom-{slug})", CUSTOM, "CustomProvider",
             body="CustomProviderCreate", errors=(409,), accepts=GATEWAY_WRITE),
    Endpoint("GET", CP + "/{provider_id}", custom_providers.get_provider, "get_custom_provider",
             "Get a custom provider", CUSTOM, "CustomProvider", accepts=GATEWAY_READ),
    Endpoint("PATCH", CP + "/{provider_id}", custom_providers.update_provider, "patch_custom_provider",
             "Change a custom provider (a merge)", CUSTOM, "CustomProvider", body="CustomProviderUpdate",
             errors=(409,), accepts=GATEWAY_WRITE),
    Endpoint("PUT", CP + "/{provider_id}", custom_providers.update_provider, "update_custom_provider",
             "Change a custom provider (a merge, as PATCH)", CUSTOM, "CustomProvider",
             body="CustomProviderUpdate", errors=(409,), accepts=GATEWAY_WRITE),
    Endpoint("DELETE", CP + "/{provider_id}", custom_providers.delete_provider, "delete_custom_provider",
             "Delete a custom provider (409 while provider configs use it)", CUSTOM, "CustomProvider",
             errors=(409,), accepts=GATEWAY_WRITE),
    # -- logs --
    Endpoint("GET", LOGS, logs.list_logs, "list_logs",
             "List request logs (filters, order, paging, aggregates)", LOG, "Log", paged=True,
             result_info="LogsResultInfo", query=doc.LOGS_LIST_QUERY, accepts=GATEWAY_READ),
    Endpoint("DELETE", LOGS, logs.delete_logs, "delete_logs", "Delete the logs matching the filters", LOG,
             "LogsDeleted", query=doc.LOGS_DELETE_QUERY, accepts=GATEWAY_WRITE),
    Endpoint("GET", LOGS + "/{log_id}", logs.get_log, "get_log", "Get a log with the heads of its bodies",
             LOG, "LogDetail", accepts=GATEWAY_READ),
    Endpoint("PATCH", LOGS + "/{log_id}", logs.edit_log, "patch_log", "Set feedback, score or metadata", LOG,
             "Log", body="LogPatch", accepts=GATEWAY_WRITE),
    Endpoint("GET", LOGS + "/{log_id}/request", logs.get_log_request, "get_log_request",
             "The stored request body", LOG, "Log", raw=True, accepts=GATEWAY_READ),
    Endpoint("GET", LOGS + "/{log_id}/response", logs.get_log_response, "get_log_response",
             "The stored response body", LOG, "Log", raw=True, accepts=GATEWAY_READ),
    Endpoint("GET", GW + "/{gateway_id}/timeseries", logs.log_series, "get_log_series",
             "Sluice extension: requests, errors, tokens and cost over time (whole gateway or one key)", LOG,
             "LogSeries", query=doc.SERIES_QUERY, accepts=GATEWAY_READ),
    # -- secrets store --
    Endpoint("GET", SS + "/stores", secrets_store.list_stores, "list_stores", "List secrets stores", STORE,
             "Store", paged=True, query=(*doc.PAGE, *STORE_SORT), accepts=STORE_READ),
    Endpoint("POST", SS + "/stores", secrets_store.create_store, "create_store", "Create a secrets store",
             STORE, "Store", body="StoreCreate", errors=(409,), accepts=STORE_WRITE),
    Endpoint("GET", SS + "/stores/{store_id}", secrets_store.get_store, "get_store", "Get a secrets store",
             STORE, "Store", accepts=STORE_READ),
    Endpoint("DELETE", SS + "/stores/{store_id}", secrets_store.delete_store, "delete_store",
             "Delete a store (409 store_not_empty unless force)", STORE, "Store", query=(doc.FORCE,),
             errors=(400, 409), accepts=STORE_WRITE),
    Endpoint("GET", SS + "/stores/{store_id}/secrets", secrets_store.list_secrets, "list_secrets",
             "List secrets (values are never returned)", STORE, "Secret", paged=True,
             query=(*doc.PAGE, doc.SEARCH, doc.SCOPES_QUERY, *SECRET_SORT), accepts=STORE_READ),
    Endpoint("POST", SS + "/stores/{store_id}/secrets", secrets_store.create_secrets, "create_secrets",
             "Create secrets in bulk", STORE, "Secret", listed=True, body="SecretCreateList", errors=(409,),
             accepts=STORE_WRITE),
    Endpoint("GET", SS + "/stores/{store_id}/secrets/{secret_id}", secrets_store.get_secret, "get_secret",
             "Get a secret", STORE, "Secret", accepts=STORE_READ),
    Endpoint("PATCH", SS + "/stores/{store_id}/secrets/{secret_id}", secrets_store.patch_secret,
             "patch_secret", "Change a secret", STORE, "Secret", body="SecretPatch", accepts=STORE_WRITE),
    Endpoint("DELETE", SS + "/stores/{store_id}/secrets/{secret_id}", secrets_store.delete_secret,
             "delete_secret", "Delete a secret (409 while a provider config uses it)", STORE, "Secret",
             errors=(409,), accepts=STORE_WRITE),
    Endpoint("DELETE", SS + "/stores/{store_id}/secrets", secrets_store.delete_secrets, "delete_secrets",
             "Delete secrets in bulk (409 if a provider config uses any; all or nothing)", STORE, "Secret",
             listed=True, body="SecretDeleteList", errors=(409,), accepts=STORE_WRITE),
    Endpoint("POST", SS + "/stores/{store_id}/secrets/{secret_id}/duplicate", secrets_store.duplicate_secret,
             "duplicate_secret", "Copy a secret under a new name", STORE, "Secret", body="SecretDuplicate",
             errors=(409,), accepts=STORE_WRITE),
    Endpoint("GET", SS + "/quota", secrets_store.quota, "secrets_quota", "Secrets quota and usage", STORE,
             "Quota", accepts=STORE_READ),
    # -- tokens --
    Endpoint("GET", A + "/tokens", tokens.list_tokens, "list_tokens", "List API tokens", TOKENS, "Token",
             paged=True, query=tuple(doc.page_params(50)), accepts=TOKEN_READ),
    Endpoint("POST", A + "/tokens", tokens.create_token, "create_token",
             "Create an API token (value shown once)", TOKENS, "CreatedToken", body="TokenCreate",
             accepts=TOKEN_WRITE),
    Endpoint("GET", A + "/tokens/permission_groups", tokens.permission_groups, "list_token_permission_groups",
             "Permission groups a token can hold (names and Cloudflare ids)", TOKENS, "PermissionGroup",
             listed=True, query=doc.PERMISSION_GROUP_QUERY, accepts=TOKEN_READ),
    Endpoint("GET", A + "/tokens/verify", tokens.verify, "verify_account_token",
             "Verify the calling token on this account", TOKENS, "TokenVerification", bearer_only=True),
    Endpoint("GET", A + "/tokens/{token_id:hex32}", tokens.get_token, "get_token", "Get an API token", TOKENS,
             "Token", accepts=TOKEN_READ),
    Endpoint("PUT", A + "/tokens/{token_id:hex32}", tokens.update_token, "update_token",
             "Replace a token's name, policies and restrictions", TOKENS, "Token", body="TokenUpdate",
             accepts=TOKEN_WRITE),
    Endpoint("PUT", A + "/tokens/{token_id:hex32}/value", tokens.roll_token, "roll_token",
             "Roll a token: a new value, shown once", TOKENS, "RolledToken", accepts=TOKEN_WRITE),
    Endpoint("DELETE", A + "/tokens/{token_id:hex32}", tokens.delete_token, "delete_token",
             "Delete an API token", TOKENS, "TokenId", accepts=TOKEN_WRITE),
    Endpoint("GET", "/user/tokens/verify", tokens.verify, "verify_user_token", "Verify the calling token",
             TOKENS, "TokenVerification", bearer_only=True),
    Endpoint("GET", "/sluice/identity", tokens.identity, "sluice_identity",
             "Sluice extension: the caller's accounts and permission groups (the console's sign-in)", TOKENS,
             "Identity"),
)


def starlette_routes(endpoints: Iterable[Endpoint]) -> list[Route]:
    """One Starlette route per entry (one method each), then ``GET /openapi.json`` describing them."""
    endpoints = tuple(endpoints)
    twice = [k for k, n in Counter((e.method, e.doc_path) for e in endpoints).items() if n > 1]
    if twice:
        raise ValueError(f"listed more than once in the route table: {twice}")
    routes = [Route(e.path, bind(e), methods=[e.method], name=e.id) for e in endpoints]
    routes.append(Route(doc.OPENAPI_PATH, openapi_handler(lambda: doc.build_document(endpoints)),
                        methods=["GET"]))
    return routes


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return envelope.error(exc)


def _http_error(routes: list[Route]) -> Callable[[Request, Exception], Awaitable[Response]]:
    """Starlette's 404 and 405 in the v4 envelope; a 405 lists the methods these routes allow."""

    async def handle(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            refusal = MethodNotAllowed(f"method {request.method} is not allowed on this route")
            response = envelope.error(refusal)
            response.headers["Allow"] = _allowed_methods(routes, request)  # RFC 9110 requires it on a 405
            return response
        return envelope.error(NoRoute())

    return handle


def _allowed_methods(routes: list[Route], request: Request) -> str:
    """Every method some route answers on this path (each Route carries one method, plus HEAD for GET)."""
    methods = {m for r in routes if r.matches(request.scope)[0] != Match.NONE for m in r.methods or ()}
    return ", ".join(sorted(methods))


async def _internal_error(request: Request, exc: Exception) -> Response:
    # Only the exception type is logged: messages of driver errors can carry bound values.
    log.error("internal error", path=request.url.path, error=type(exc).__name__)
    return envelope.error(ApiError("Internal Server Error"))


async def _database_error(request: Request, exc: Exception) -> Response:
    """Driver and connection errors: a database outage is a 503 the client may retry (the data plane
    keeps serving from memory meanwhile); anything else stays a 500."""
    if not is_outage(exc):
        return await _internal_error(request, exc)
    log.warning("database unavailable", path=request.url.path, error=type(exc).__name__)
    return envelope.error(ServiceUnavailable())


def management_app(endpoints: Iterable[Endpoint] = ENDPOINTS, prefix: str = "/client/v4") -> Starlette:
    """The management API serving these endpoints (and their document) below ``prefix``."""
    routes = starlette_routes(endpoints)
    return Starlette(
        routes=[Mount(prefix, routes=routes)],
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error(routes),
            # Handled here, not by the catch-all below (which Starlette re-raises after answering).
            **dict.fromkeys(OUTAGE_CANDIDATES, _database_error),
            Exception: _internal_error,
        },
    )
