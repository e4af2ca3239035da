"""The OpenAPI 3.1 document of the management API, describing what the server does (used for fuzzing).

Every route of ``routes.ROUTES`` is looked up in ``OPERATIONS``; a route added without an entry there is
still emitted, marked ``x-undocumented``, so the server keeps answering and tests/control/test_openapi.py
fails until it is described. Request bodies come from the pydantic models the handlers validate with.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from sluice.control import schemas as s
from sluice.control.validation import MAX_MANAGEMENT_BODY, MAX_PAGE
from sluice.identity.permissions import ALL_GROUPS
from sluice.logs import filters
from sluice.store import logs as logstore
from sluice.providers.registry import CATALOG_SLUGS

Schema = dict[str, Any]
REF = "#/components/schemas/{model}"
HEX32 = {"type": "string", "pattern": "^[0-9a-f]{32}$"}
STAMP = {"type": "string", "format": "date-time", "description": "RFC 3339 UTC with milliseconds"}
BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
ANY_CREDENTIALS: list[dict[str, list[str]]] = [{"bearer": []}, {"x_auth_email": [], "x_auth_key": []}]


def _ref(name: str) -> Schema:
    return {"$ref": REF.format(model=name)}


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


# -- path and query parameters ---------------------------------------------------------------------

PATH_PARAMS: dict[str, Schema] = {
    "account_id": {**HEX32, "description": "the account: 32 lower-case hex characters"},
    "gateway_id": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": s.GATEWAY_ID_PATTERN},
    "config_id": {**HEX32, "description": "a provider config id"},
    "store_id": {**HEX32, "description": "a secrets store id"},
    "secret_id": {**HEX32, "description": "a secret id"},
    "token_id": {**HEX32, "description": "an API token id"},
    "provider": {"type": "string", "enum": list(CATALOG_SLUGS),
                 "description": "a provider slug; others: 400"},
    "log_id": {"type": "string", "pattern": "^[0-9A-Za-z]{1,64}$",
               "description": "a log id (ULID, also the cf-aig-log-id response header)"},
}


def _page_params(max_per_page: int) -> list[Schema]:
    return [
        {"name": "page", "in": "query",
         "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1}},
        {"name": "per_page", "in": "query",
         "schema": {"type": "integer", "minimum": 1, "maximum": max_per_page, "default": 20}},
    ]


def _query(name: str, schema: Schema, description: str = "") -> Schema:
    param: Schema = {"name": name, "in": "query", "schema": schema}
    if description:
        param["description"] = description
    return param


def _order(*fields: str) -> list[Schema]:
    return [_query("order", {"type": "string", "enum": list(fields), "default": "created"}),
            _query("direction", {"type": "string", "enum": ["asc", "desc"], "default": "asc"})]


SEARCH = _query("search", {"type": "string"}, "substring match")
SCOPES_QUERY = {**_query("scopes", {"type": "array", "items": {"type": "string", "enum": list(s.SCOPES)}},
                         "only secrets holding every listed scope"), "style": "form", "explode": True}
FORCE = _query("force", {"type": "boolean", "default": False}, "delete the store with its secrets")
PERMISSION_GROUP_QUERY = (_query("name", {"type": "string"}, "only the group of this name"),
                          _query("scope", {"type": "string"}, "only groups of this scope"))


def _logs_query() -> tuple[Schema, ...]:
    """Cloudflare's log filters: ``filters`` (JSON or dotted, repeated), plus the deprecated flat ones."""
    text, number, flag = {"type": "string"}, {"type": "number"}, {"type": "boolean"}
    dotted = [{**_query(f"filters.{part}", {"type": "array", "items": items}), "style": "form",
               "explode": True}
              for part, items in (("key", {"type": "string", "enum": list(filters.KEYS)}),
                                  ("operator", {"type": "string", "enum": list(filters.OPERATORS)}),
                                  ("value", text))]
    return (
        _query("filters", text, "a JSON array of {key, operator, value}; filters[0][key]=… works too"),
        *dotted,
        *[_query(name, flag) for name in ("cached", "success")],
        _query("feedback", {"type": "integer", "enum": [-1, 0, 1]}),
        *[_query(name, text) for name in ("model", "model_type", "provider", "request_content_type",
                                          "response_content_type")],
        *[_query(f"{bound}_{name}", number) for name in ("cost", "duration", "tokens_in", "tokens_out",
                                                         "total_tokens") for bound in ("min", "max")],
        *[_query(name, {"type": "string", "format": "date-time"}) for name in ("start_date", "end_date")],
    )


DIRECTION = {"type": "string", "enum": ["asc", "desc"]}
LOGS_LIST_QUERY = (
    *_page_params(50), SEARCH, _query("order_by", {"type": "string", "enum": list(logstore.ORDER_COLUMNS)}),
    _query("direction", DIRECTION), _query("order_by_direction", DIRECTION),
    _query("meta_info", {"type": "boolean"}),
    *_logs_query())
LOGS_DELETE_QUERY = (
    *_logs_query()[:4],
    _query("order_by", {"type": "string", "enum": list(logstore.DELETE_ORDER_COLUMNS)}),
    _query("order_by_direction", DIRECTION),
    _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}, "delete at most this many"))


# -- request bodies (from the pydantic models, corrected where a validator does more) ---------------

SECRET_VALUE: Schema = {
    "type": "string", "minLength": 1, "maxLength": s.MAX_SECRET_BYTES, "writeOnly": True,
    # no control characters (sent in an HTTP header) and not blank; at most 64 KiB of UTF-8
    "pattern": "^[^\\u0000-\\u001f\\u007f]*[^\\s\\u0000-\\u001f\\u007f\\u0085][^\\u0000-\\u001f\\u007f]*$",
}
# JSON numbers: the SDK sends floats, so whole floats (5.0) are accepted as well as integers.
RATE_LIMIT: Schema = _nullable({"type": "number", "multipleOf": 1, "minimum": 0, "maximum": 2**31 - 1,
                                "description": "requests per period; 0 means unlimited"})
RATE_PERIOD: Schema = _nullable({"type": "number", "multipleOf": 1, "exclusiveMinimum": 0,
                                 "maximum": s.MAX_PERIOD_S, "description": "seconds (default 60)"})


def _model(model: type[BaseModel], defs: dict[str, Schema], **overrides: Schema) -> Schema:
    """The model's JSON Schema with nested definitions hoisted into components."""
    schema = model.model_json_schema(ref_template=REF, mode="validation")
    defs.update(schema.pop("$defs", {}))
    schema["properties"].update(overrides)
    schema["additionalProperties"] = False
    return schema


def _bodies() -> dict[str, Schema]:
    defs: dict[str, Schema] = {}
    gateway_update = _model(s.GatewayFields, defs, id={
        "type": "string", "description": "may repeat the path's gateway_id; any other value is refused"})
    bodies = {
        "GatewayCreate": _model(s.GatewayCreate, defs),
        "GatewayUpdate": gateway_update,
        "ProviderConfigCreate": _model(
            s.ProviderConfigCreate, defs, provider_slug={"type": "string", "enum": list(CATALOG_SLUGS)},
            secret=SECRET_VALUE, rate_limit=RATE_LIMIT, rate_limit_period=RATE_PERIOD),
        "ProviderConfigUpdate": {**_model(s.ProviderConfigUpdate, defs, secret=SECRET_VALUE,
                                          rate_limit=RATE_LIMIT,
                                          rate_limit_period=RATE_PERIOD), "minProperties": 1},
        "StoreCreate": _model(s.StoreCreate, defs),
        "SecretCreate": _model(s.SecretCreate, defs, value=SECRET_VALUE),
        "SecretCreateList": {"type": "array", "minItems": 1, "items": _ref("SecretCreate"),
                             "description": "secret names must be unique within the request"},
        "SecretPatch": {**_model(s.SecretPatch, defs, value=_nullable(SECRET_VALUE)), "minProperties": 1},
        "SecretDuplicate": _model(s.SecretDuplicate, defs),
        "SecretRef": _model(s.SecretRef, defs),
        "SecretDeleteList": {"type": "array", "minItems": 1, "maxItems": 1000, "items": _ref("SecretRef"),
                             "description": "Cloudflare's bulk delete body; each id once, all or nothing"},
        "LogPatch": {"type": "object", "additionalProperties": False, "minProperties": 1, "properties": {
            "feedback": {"enum": [-1, 0, 1, None]},
            "score": _nullable({"type": "number", "minimum": 0, "maximum": 100}),
            "metadata": _nullable({"type": "object", "maxProperties": 5, "propertyNames": {
                "minLength": 1, "maxLength": 128}, "additionalProperties": {"type": ["string", "number",
                                                                                     "boolean"]},
                "description": "replaces the whole object"})}},
        "TokenCreate": _model(s.TokenCreate, defs, expires_on=_nullable({"type": "string",
                                                                         "format": "date-time"}),
                              not_before=_nullable({"type": "string", "format": "date-time"})),
        "TokenUpdate": _model(s.TokenUpdate, defs, expires_on=_nullable({"type": "string",
                                                                         "format": "date-time"}),
                              not_before=_nullable({"type": "string", "format": "date-time"})),
    }
    for name in ("TokenCreate", "TokenUpdate"):
        bodies[name]["description"] = "give permission groups in permissions, policies, or both"
    return {**defs, **bodies}


# -- results ---------------------------------------------------------------------------------------

def _strip_null(schema: Schema) -> Schema:
    variants = [v for v in schema.get("anyOf", []) if v != {"type": "null"}]
    out = variants[0] if len(variants) == 1 else schema
    return {k: v for k, v in out.items() if k != "default"}


def _gateway_result() -> Schema:
    props = copy.deepcopy(s.GatewayCreate.model_json_schema(ref_template=REF)["properties"])
    always = [k for k in s.GATEWAY_DEFAULTS if k not in s.NULLABLE_GATEWAY_FIELDS]
    for key in always:
        props[key] = _strip_null(props[key])
    props.update(created_at=STAMP, modified_at=STAMP, is_default={"type": "boolean"})
    return {"type": "object", "properties": props,
            "required": ["id", "created_at", "modified_at", "is_default", *s.GATEWAY_DEFAULTS]}


def _log_result(*, detail: bool) -> Schema:
    text, opt_text = {"type": "string"}, _nullable({"type": "string"})
    opt_int = _nullable({"type": "integer"})
    props: Schema = {
        "id": text, "created_at": STAMP, "provider": text, "model": text, "path": text,
        "cached": {"type": "boolean"}, "success": {"type": "boolean"}, "custom_cost": {"type": "boolean"},
        "duration": {"type": "integer", "minimum": 0, "description": "milliseconds"},
        "tokens_in": opt_int, "tokens_out": opt_int, "status_code": opt_int, "step": opt_int,
        "feedback": _nullable({"enum": [-1, 0, 1]}), "cost": _nullable({"type": "number"}),
        "score": _nullable({"type": "number"}), "metadata": _nullable({"type": "string",
                                                                       "description": "JSON text"}),
        **{name: opt_text for name in ("model_type", "request_content_type", "response_content_type",
                                       "request_type",
                                       "event_id", "alias")},
    }
    if detail:
        props.update(request_head=text, response_head=text, request_head_complete={"type": "boolean"},
                     response_head_complete={"type": "boolean"}, request_size={"type": "integer",
                                                                               "minimum": 0},
                     response_size={"type": "integer", "minimum": 0}, method=text, stream={"type": "boolean"},
                     user_agent=opt_text, error=opt_text)
    return {"type": "object", "required": list(props), "properties": props}


def _results() -> dict[str, Schema]:
    scopes = {"type": "array", "items": {"type": "string", "enum": list(s.SCOPES)}}
    token_props = {
        "id": HEX32, "name": {"type": "string"},
        "status": {"type": "string", "enum": ["active", "disabled", "expired"]},
        "issued_on": STAMP, "modified_on": STAMP, "expires_on": _nullable(STAMP),
        "not_before": _nullable(STAMP),
        "last_used_on": _nullable(STAMP),
        "condition": {"type": "object", "description": "{} or {request_ip: {in: [CIDR], not_in: [CIDR]}}"},
        "permissions": {"type": "array", "items": {"type": "string", "enum": list(ALL_GROUPS)}},
        "policies": {"type": "array", "items": {"type": "object"}},
    }
    return {
        "Gateway": _gateway_result(),
        "ProviderConfig": {"type": "object", "required": [
            "id", "alias", "default_config", "gateway_id", "modified_at", "provider_slug", "secret_id",
            "secret_preview", "rate_limit", "rate_limit_period", "created_at"], "properties": {
            "id": HEX32, "alias": {"type": "string"}, "default_config": {"type": "boolean"},
            "gateway_id": {"type": "string"}, "modified_at": STAMP, "created_at": STAMP,
            "provider_slug": {"type": "string"}, "secret_id": {"type": "string"},
            "secret_preview": {"type": "string", "maxLength": 9, "description": "never the secret itself"},
            "rate_limit": _nullable({"type": "integer", "minimum": 0, "description": "null: never set"}),
            "rate_limit_period": {"type": "integer",
                                                                                   "minimum": 1}}},
        "Store": {"type": "object", "required": ["id", "name", "created", "modified", "account_id"],
                  "properties": {"id": HEX32, "name": {"type": "string"}, "created": STAMP,
                                 "modified": STAMP, "account_id": HEX32}},
        "Secret": {"type": "object", "required": ["id", "name", "status", "store_id", "created", "modified",
                                                  "comment", "scopes"], "properties": {
            "id": HEX32, "name": {"type": "string"}, "status": {"type": "string"}, "store_id": HEX32,
            "created": STAMP, "modified": STAMP, "comment": _nullable({"type": "string"}), "scopes": scopes},
            "description": "the value is write-only and never returned"},
        "Quota": {"type": "object", "required": ["secrets"], "properties": {"secrets": {
            "type": "object", "required": ["quota", "usage"],
            "properties": {"quota": {"type": "integer"}, "usage": {"type": "integer", "minimum": 0}}}}},
        "Token": {"type": "object", "required": list(token_props), "properties": token_props},
        "CreatedToken": {"allOf": [_ref("Token"), {"type": "object", "required": ["value"], "properties": {
            "value": {"type": "string", "pattern": "^sluice_", "description": "shown once"}}}]},
        "TokenId": {"type": "object", "required": ["id"], "properties": {"id": HEX32}},
        "RolledToken": {"type": "string", "pattern": "^sluice_", "description": "the new value, shown once"},
        "PermissionGroup": {"type": "object", "required": ["id", "name", "is_selectable", "scopes"],
                            "properties": {
            "id": HEX32, "name": {"type": "string", "enum": list(ALL_GROUPS)}, "is_selectable": {
                "type": "boolean", "description": "whether the caller holds it, and so may grant it"},
            "scopes": {"type": "array", "items": {"type": "string"}}}},
        "TokenVerification": {"type": "object", "required": ["id", "status", "expires_on", "not_before"],
                              "properties": {"id": HEX32, "status": {"type": "string", "enum": ["active"]},
                                             "expires_on": _nullable(STAMP), "not_before": _nullable(STAMP)}},
        "GatewayUrl": {"type": "string", "format": "uri"},
        "Log": _log_result(detail=False),
        "LogDetail": _log_result(detail=True),
        "LogsDeleted": {"type": "object", "required": ["deleted"], "properties": {
            "deleted": {"type": "integer", "minimum": 0}}},
        "LogsResultInfo": {"allOf": [_ref("ResultInfo"), {"type": "object", "properties": {
            f"{bound}_{name}": {"type": "number"} for name in ("cost", "duration", "tokens_in", "tokens_out",
                                                                "total_tokens") for bound in ("min",
                                                                                              "max")}}]},
        "ResultInfo": {"type": "object", "required": ["page", "per_page", "count", "total_count",
                                                      "total_pages"],
                       "properties": {k: {"type": "integer", "minimum": 0} for k in
                                      ("page", "per_page", "count", "total_count", "total_pages")}},
        "ErrorItem": {"type": "object", "required": ["code", "message"], "additionalProperties": False,
                      "properties": {"code": {"type": "integer"}, "message": {"type": "string",
                                                                              "minLength": 1},
                                     "path": {"type": "array", "items": {"type": ["string", "integer"]},
                                              "description": "the field at fault, e.g. body.alias"}}},
    }


# -- responses -------------------------------------------------------------------------------------

ERRORS: dict[int, tuple[list[int], str]] = {
    400: ([7001], "Input validation error; each error's path names the field"),
    401: ([10000], "Missing or invalid credentials"),
    403: ([10000, 9109], "Valid credentials without the permission (10000) or for another account (9109)"),
    404: ([7002, 7003], "Resource not found (7002) or no such route / malformed identifier (7003)"),
    409: ([7009], "Already exists, or still in use"),
    413: ([7010], f"Request body over {MAX_MANAGEMENT_BODY} bytes"),
    500: ([7000], "Internal error; the message never carries internals"),
}


def _error_response(status: int) -> Schema:
    codes, description = ERRORS[status]
    item = {"allOf": [_ref("ErrorItem"), {"properties": {"code": {"enum": codes}}}]}
    response: Schema = {"description": description, "content": {"application/json": {"schema": {
        "type": "object", "additionalProperties": False, "required": ["result", "success", "errors",
                                                                      "messages"],
        "properties": {"result": {"type": "null"}, "success": {"const": False},
                       "errors": {"type": "array", "minItems": 1, "items": item},
                       "messages": {"type": "array", "maxItems": 0}}}}}}
    if status == 409:
        response["headers"] = {"x-should-retry": {"schema": {"const": "false"},
                                                  "description": "tells the official SDKs not to retry"}}
    return response


def _ok(result: Schema, *, listed: bool = False, paged: bool = False, info: str = "ResultInfo") -> Schema:
    props: Schema = {"result": {"type": "array", "items": result} if listed or paged else result,
                     "success": {"const": True}, "errors": {"type": "array", "maxItems": 0},
                     "messages": {"type": "array"}}
    required = ["result", "success", "errors", "messages"]
    if paged:
        props["result_info"] = _ref(info)
        required.append("result_info")
    return {"description": "Success", "content": {"application/json": {"schema": {
        "type": "object", "required": required, "properties": props}}}}


# -- the operations --------------------------------------------------------------------------------

RAW_BODY: Schema = {"description": "The stored body (JSON, text or the content type it was sent with)",
                    "headers": {"x-sluice-body-complete": {
                        "schema": {"enum": ["true", "false"]}, "description": "false: body was capped"}},
                    "content": {"*/*": {"schema": {}}}}


@dataclass(frozen=True)
class Op:
    id: str
    summary: str
    tag: str
    result: str  # component name of the result schema
    listed: bool = False  # an array result
    paged: bool = False  # a list with result_info
    body: str | None = None  # component name of the request body schema
    query: tuple[Schema, ...] = ()
    errors: tuple[int, ...] = ()  # beyond 401/403/404/500 (and 400/413 implied by a body)
    security: tuple = tuple(ANY_CREDENTIALS)
    raw: bool = False  # 200 is a stored body as it was sent, any media type
    result_info: str = "ResultInfo"


A = "/accounts/{account_id}"
GW = A + "/ai-gateway/gateways"
PC = GW + "/{gateway_id}/provider_configs"
LOGS = GW + "/{gateway_id}/logs"
SS = A + "/secrets_store"
PAGE = tuple(_page_params(100))

OPERATIONS: dict[tuple[str, str], Op] = {
    ("GET", GW): Op("list_gateways", "List gateways", "gateways", "Gateway", paged=True,
                    query=(*PAGE, SEARCH)),
    ("POST", GW): Op("create_gateway", "Create a gateway", "gateways", "Gateway", body="GatewayCreate",
                     errors=(409,)),
    ("GET", GW + "/{gateway_id}"): Op("get_gateway", "Get a gateway", "gateways", "Gateway"),
    ("PUT", GW + "/{gateway_id}"): Op("update_gateway", "Update a gateway", "gateways", "Gateway",
                                      body="GatewayUpdate"),
    ("DELETE", GW + "/{gateway_id}"): Op("delete_gateway",
                                         "Delete a gateway with its provider configs and logs",
                                         "gateways", "Gateway"),
    ("GET", GW + "/{gateway_id}/url/{provider}"): Op("gateway_url", "The gateway URL of a provider",
                                                     "gateways", "GatewayUrl", errors=(400,)),
    ("GET", PC): Op("list_provider_configs", "List provider configs", "provider configs",
                    "ProviderConfig", paged=True, query=PAGE),
    ("POST", PC): Op("create_provider_config", "Store a provider key under an alias", "provider configs",
                     "ProviderConfig", body="ProviderConfigCreate", errors=(409,)),
    ("GET", PC + "/{config_id}"): Op("get_provider_config", "Get a provider config", "provider configs",
                                     "ProviderConfig"),
    ("PUT", PC + "/{config_id}"): Op("update_provider_config", "Rotate the key or change limits",
                                     "provider configs", "ProviderConfig", body="ProviderConfigUpdate"),
    ("DELETE", PC + "/{config_id}"): Op("delete_provider_config", "Delete a provider config",
                                        "provider configs", "ProviderConfig"),
    ("GET", LOGS): Op("list_logs", "List request logs (filters, order, paging, aggregates)", "logs", "Log",
                      paged=True, result_info="LogsResultInfo", query=LOGS_LIST_QUERY),
    ("DELETE", LOGS): Op("delete_logs", "Delete the logs matching the filters", "logs", "LogsDeleted",
                         query=LOGS_DELETE_QUERY),
    ("GET", LOGS + "/{log_id}"): Op("get_log", "Get a log with the heads of its bodies", "logs", "LogDetail"),
    ("PATCH", LOGS + "/{log_id}"): Op("patch_log", "Set feedback, score or metadata", "logs", "Log",
                                      body="LogPatch"),
    ("GET", LOGS + "/{log_id}/request"): Op("get_log_request", "The stored request body", "logs", "Log",
                                            raw=True),
    ("GET", LOGS + "/{log_id}/response"): Op("get_log_response", "The stored response body", "logs", "Log",
                                             raw=True),
    ("GET", SS + "/stores"): Op("list_stores", "List secrets stores", "secrets store", "Store", paged=True,
                                query=(*PAGE, *_order("name", "created", "modified"))),
    ("POST", SS + "/stores"): Op("create_store", "Create a secrets store", "secrets store", "Store",
                                 body="StoreCreate", errors=(409,)),
    ("GET", SS + "/stores/{store_id}"): Op("get_store", "Get a secrets store", "secrets store", "Store"),
    ("DELETE", SS + "/stores/{store_id}"): Op("delete_store",
                                              "Delete a store (409 store_not_empty unless force)",
                                              "secrets store", "Store", query=(FORCE,), errors=(400, 409)),
    ("GET", SS + "/stores/{store_id}/secrets"): Op(
        "list_secrets", "List secrets (values are never returned)", "secrets store", "Secret", paged=True,
        query=(*PAGE, SEARCH, SCOPES_QUERY, *_order("name", "comment", "created", "modified", "status"))),
    ("POST", SS + "/stores/{store_id}/secrets"): Op(
        "create_secrets", "Create secrets in bulk", "secrets store", "Secret", listed=True,
        body="SecretCreateList", errors=(409,)),
    ("GET", SS + "/stores/{store_id}/secrets/{secret_id}"): Op("get_secret", "Get a secret", "secrets store",
                                                               "Secret"),
    ("PATCH", SS + "/stores/{store_id}/secrets/{secret_id}"): Op(
        "patch_secret", "Change a secret", "secrets store", "Secret", body="SecretPatch"),
    ("DELETE", SS + "/stores/{store_id}/secrets/{secret_id}"): Op(
        "delete_secret", "Delete a secret (409 while a provider config uses it)", "secrets store", "Secret",
        errors=(409,)),
    ("POST", SS + "/stores/{store_id}/secrets/{secret_id}/duplicate"): Op(
        "duplicate_secret", "Copy a secret under a new name", "secrets store", "Secret",
        body="SecretDuplicate", errors=(409,)),
    ("GET", SS + "/quota"): Op("secrets_quota", "Secrets quota and usage", "secrets store", "Quota"),
    ("GET", A + "/tokens"): Op("list_tokens", "List API tokens", "tokens", "Token", paged=True,
                               query=tuple(_page_params(50))),
    ("POST", A + "/tokens"): Op("create_token", "Create an API token (value shown once)", "tokens",
                                "CreatedToken", body="TokenCreate"),
    ("GET", A + "/tokens/verify"): Op("verify_account_token", "Verify the calling token on this account",
                                      "tokens", "TokenVerification", security=tuple(BEARER)),
    ("GET", A + "/tokens/{token_id}"): Op("get_token", "Get an API token", "tokens", "Token"),
    ("DELETE", A + "/tokens/{token_id}"): Op("delete_token", "Delete an API token", "tokens", "TokenId"),
    ("GET", "/user/tokens/verify"): Op("verify_user_token", "Verify the calling token", "tokens",
                                       "TokenVerification", security=tuple(BEARER)),
    ("DELETE", SS + "/stores/{store_id}/secrets"): Op(
        "delete_secrets", "Delete secrets in bulk (409 if a provider config uses any; all or nothing)",
        "secrets store", "Secret", listed=True, body="SecretDeleteList", errors=(409,)),
    ("GET", A + "/tokens/permission_groups"): Op(
        "list_token_permission_groups", "Permission groups a token can hold (names and Cloudflare ids)",
        "tokens", "PermissionGroup", listed=True, query=PERMISSION_GROUP_QUERY),
    ("PUT", A + "/tokens/{token_id}"): Op("update_token", "Replace a token's name, policies and restrictions",
                                          "tokens", "Token", body="TokenUpdate"),
    ("PUT", A + "/tokens/{token_id}/value"): Op("roll_token", "Roll a token: a new value, shown once",
                                                "tokens", "RolledToken"),
}


def _operation(path: str, op: Op, path_params: list[str]) -> Schema:
    statuses = {401, 500, *op.errors}
    if path_params:
        statuses |= {403, 404}
    if op.query:
        statuses.add(400)
    out: Schema = {"operationId": op.id, "summary": op.summary, "tags": [op.tag],
                   "security": list(op.security)}
    params = [{"name": n, "in": "path", "required": True, "schema": PATH_PARAMS[n]} for n in path_params]
    if params or op.query:
        out["parameters"] = params + list(op.query)
    if op.body is not None:
        statuses |= {400, 413}
        out["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(op.body)}}}
    ok = RAW_BODY if op.raw else _ok(_ref(op.result), listed=op.listed, paged=op.paged, info=op.result_info)
    out["responses"] = {"200": ok,
                        **{str(c): _ref_response(c) for c in sorted(statuses)}}
    return out


def _ref_response(status: int) -> Schema:
    return {"$ref": f"#/components/responses/E{status}"}


def _undocumented(path_params: list[str]) -> Schema:
    params = [{"name": n, "in": "path", "required": True, "schema": PATH_PARAMS.get(n, {"type": "string"})}
              for n in path_params]
    return {"x-undocumented": True, "parameters": params,
            "responses": {"default": {"description": "unknown"}}}


OPENAPI_OPERATION: Schema = {
    "operationId": "openapi", "summary": "This document", "tags": ["meta"], "security": [],
    "responses": {"200": {"description": "The OpenAPI document (not wrapped in the envelope)",
                          "content": {"application/json": {"schema": {
                              "type": "object", "required": ["openapi", "info", "paths"]}}}},
                  "500": _ref_response(500)},
}


def doc_path(route_path: str) -> str:
    """Starlette's ``{name:convertor}`` written as OpenAPI's ``{name}``."""
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", route_path)


def build_document() -> dict[str, Any]:
    from sluice.control.routes import ROUTES  # routes imports the openapi handler, which imports us

    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        params = list(route.param_convertors)
        path = doc_path(route.path)
        for method in sorted(route.methods or ()):
            if method == "HEAD":
                continue  # Starlette answers HEAD on every GET route
            if (path, method) == ("/openapi.json", "GET"):
                operation = OPENAPI_OPERATION
            else:
                op = OPERATIONS.get((method, path))
                operation = _operation(path, op, params) if op else _undocumented(params)
            paths.setdefault(path, {})[method.lower()] = copy.deepcopy(operation)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Sluice management API", "version": "0.1.0", "description": (
            "Cloudflare v4-compatible management API of Sluice. Every response is the v4 envelope "
            "{result, success, errors, messages}. A method a path does not list is answered 405 / 7005.")},
        "servers": [{"url": "/client/v4"}],
        "security": ANY_CREDENTIALS,
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "an API token (sluice_…)"},
                "x_auth_email": {"type": "apiKey", "in": "header", "name": "X-Auth-Email",
                                 "description": "legacy: the user's email, with X-Auth-Key"},
                "x_auth_key": {"type": "apiKey", "in": "header", "name": "X-Auth-Key",
                               "description": "legacy: the user's global API key, with X-Auth-Email"},
            },
            "schemas": {**_bodies(), **_results()},
            "responses": {f"E{c}": _error_response(c) for c in ERRORS},
        },
    }
