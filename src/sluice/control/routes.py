"""The management API as a Starlette app mounted at /client/v4, with its one error mapping."""

from __future__ import annotations

import structlog
from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

from sluice import envelope
from sluice.control import gateways, logs, provider_configs, secrets_store, tokens
from sluice.control.openapi import openapi
from sluice.control.validation import FieldErrors
from sluice.errors import ApiError, MethodNotAllowed, NoRoute

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
SS = A + "/secrets_store"

ROUTES = [
    Route(GW, gateways.list_gateways, methods=["GET"]),
    Route(GW, gateways.create_gateway, methods=["POST"]),
    Route(GW + "/{gateway_id}", gateways.get_gateway, methods=["GET"]),
    Route(GW + "/{gateway_id}", gateways.update_gateway, methods=["PUT"]),
    Route(GW + "/{gateway_id}", gateways.delete_gateway, methods=["DELETE"]),
    Route(GW + "/{gateway_id}/url/{provider}", gateways.gateway_url, methods=["GET"]),
    Route(PC, provider_configs.list_configs, methods=["GET"]),
    Route(PC, provider_configs.create_config, methods=["POST"]),
    Route(PC + "/{config_id}", provider_configs.get_config, methods=["GET"]),
    Route(PC + "/{config_id}", provider_configs.update_config, methods=["PUT"]),
    Route(PC + "/{config_id}", provider_configs.delete_config, methods=["DELETE"]),
    Route(LOGS, logs.list_logs, methods=["GET"]),
    Route(LOGS, logs.delete_logs, methods=["DELETE"]),
    Route(LOGS + "/{log_id}", logs.get_log, methods=["GET"]),
    Route(LOGS + "/{log_id}", logs.edit_log, methods=["PATCH"]),
    Route(LOGS + "/{log_id}/request", logs.get_log_request, methods=["GET"]),
    Route(LOGS + "/{log_id}/response", logs.get_log_response, methods=["GET"]),
    Route(SS + "/stores", secrets_store.list_stores, methods=["GET"]),
    Route(SS + "/stores", secrets_store.create_store, methods=["POST"]),
    Route(SS + "/stores/{store_id}", secrets_store.get_store, methods=["GET"]),
    Route(SS + "/stores/{store_id}", secrets_store.delete_store, methods=["DELETE"]),
    Route(SS + "/stores/{store_id}/secrets", secrets_store.list_secrets, methods=["GET"]),
    Route(SS + "/stores/{store_id}/secrets", secrets_store.create_secrets, methods=["POST"]),
    Route(SS + "/stores/{store_id}/secrets/{secret_id}", secrets_store.get_secret, methods=["GET"]),
    Route(SS + "/stores/{store_id}/secrets/{secret_id}", secrets_store.patch_secret, methods=["PATCH"]),
    Route(SS + "/stores/{store_id}/secrets/{secret_id}", secrets_store.delete_secret, methods=["DELETE"]),
    Route(SS + "/stores/{store_id}/secrets/{secret_id}/duplicate", secrets_store.duplicate_secret,
          methods=["POST"]),
    Route(SS + "/quota", secrets_store.quota, methods=["GET"]),
    Route(A + "/tokens", tokens.list_tokens, methods=["GET"]),
    Route(A + "/tokens", tokens.create_token, methods=["POST"]),
    Route(A + "/tokens/verify", tokens.verify, methods=["GET"]),
    Route(A + "/tokens/{token_id:hex32}", tokens.get_token, methods=["GET"]),
    Route(A + "/tokens/{token_id:hex32}", tokens.delete_token, methods=["DELETE"]),
    Route("/user/tokens/verify", tokens.verify, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
    Route(SS + "/stores/{store_id}/secrets", secrets_store.delete_secrets, methods=["DELETE"]),
    Route(A + "/tokens/permission_groups", tokens.permission_groups, methods=["GET"]),
    Route(A + "/tokens/{token_id:hex32}", tokens.update_token, methods=["PUT"]),
    Route(A + "/tokens/{token_id:hex32}/value", tokens.roll_token, methods=["PUT"]),
]


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return envelope.error(exc)


async def _field_errors(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FieldErrors)
    return envelope.validation_errors(exc.items)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        response = envelope.error(MethodNotAllowed(f"method {request.method} is not allowed on this route"))
        response.headers["Allow"] = _allowed_methods(request)  # RFC 9110 requires it on a 405
        return response
    return envelope.error(NoRoute())


def _allowed_methods(request: Request) -> str:
    """Every method some route answers on this path (each Route carries one method, plus HEAD for GET)."""
    methods = {m for r in ROUTES if r.matches(request.scope)[0] != Match.NONE for m in r.methods or ()}
    return ", ".join(sorted(methods))


async def _internal_error(request: Request, exc: Exception) -> Response:
    # Only the exception type is logged: messages of driver errors can carry bound values.
    log.error("internal error", path=request.url.path, error=type(exc).__name__)
    return envelope.error(ApiError("Internal Server Error"))


def management_app() -> Starlette:
    return Starlette(
        routes=ROUTES,
        exception_handlers={
            ApiError: _api_error,
            FieldErrors: _field_errors,
            HTTPException: _http_error,
            Exception: _internal_error,
        },
    )
