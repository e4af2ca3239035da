"""The OpenAPI 3.1 document of the management API, describing what the server does (used for fuzzing).

``build_document`` describes the entries of the route table (``routes.ENDPOINTS``), the same entries
the server routes, so a route cannot go undocumented. Request bodies come from the pydantic models the
handlers validate with; result schemas are written by hand on purpose: schemathesis checks the real
responses against them, an oracle independent of the code that builds those responses.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from sluice.control import custom_schemas as cs
from sluice.control import route_doc
from sluice.control import schemas as s
from sluice.control.endpoint import Endpoint, Schema
from sluice.control.validation import MAX_MANAGEMENT_BODY, MAX_PAGE
from sluice.identity.permissions import ALL_GROUPS
from sluice.logs import filters, series
from sluice.providers.custom import MAX_HEADERS_TEXT, PROVIDER_SLUG_PATTERN
from sluice.providers.registry import CATALOG_SLUGS
from sluice.store import logs as logstore

OPENAPI_PATH = "/openapi.json"
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

PROVIDER_SLUG = {"anyOf": [{"type": "string", "enum": list(CATALOG_SLUGS)},
                           {"type": "string", "pattern": PROVIDER_SLUG_PATTERN,
                            "description": "custom-{slug}: a custom provider of the account"}]}
PATH_PARAMS: dict[str, Schema] = {
    "account_id": {**HEX32, "description": "the account: 32 lower-case hex characters"},
    "gateway_id": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": s.GATEWAY_ID_PATTERN},
    "config_id": {**HEX32, "description": "a provider config id"},
    "store_id": {**HEX32, "description": "a secrets store id"},
    "secret_id": {**HEX32, "description": "a secret id"},
    "token_id": {**HEX32, "description": "an API token id"},
    "provider_id": {"type": "string", "minLength": 1, "description": "a custom provider id"},
    "provider": {**PROVIDER_SLUG, "description": "a provider slug, or custom-{slug} of the account's; "
                                                 "others: 400"},
    "route_id": {**HEX32, "description": "a dynamic route id"},
    "version_id": {**HEX32, "description": "a dynamic route version id"},
    "log_id": {"type": "string", "pattern": "^[0-9A-Za-z]{1,64}$",
               "description": "a log id (ULID, also the cf-aig-log-id response header)"},
}


def page_params(max_per_page: int) -> list[Schema]:
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


def order_params(*fields: str) -> list[Schema]:
    return [_query("order", {"type": "string", "enum": list(fields), "default": "created"}),
            _query("direction", {"type": "string", "enum": ["asc", "desc"], "default": "asc"})]


SEARCH = _query("search", {"type": "string"}, "substring match")
CUSTOM_SEARCH = _query("search", {"type": "string", "maxLength": 256}, "substring of id, name or slug")
CUSTOM_FILTERS = (_query("beta", {"type": "boolean"}), _query("enable", {"type": "boolean"}))
SCOPES_QUERY = {**_query("scopes", {"type": "array", "items": {"type": "string", "enum": list(s.SCOPES)}},
                         "only secrets holding every listed scope"), "style": "form", "explode": True}
FORCE = _query("force", {"type": "boolean", "default": False}, "delete the store with its secrets")
PAGE = tuple(page_params(100))
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
    *page_params(50), SEARCH, _query("order_by", {"type": "string", "enum": list(logstore.ORDER_COLUMNS)}),
    _query("direction", DIRECTION), _query("order_by_direction", DIRECTION),
    _query("meta_info", {"type": "boolean"}),
    *_logs_query())
LOGS_DELETE_QUERY = (
    *_logs_query()[:4],
    _query("order_by", {"type": "string", "enum": list(logstore.DELETE_ORDER_COLUMNS)}),
    _query("order_by_direction", DIRECTION),
    _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}, "delete at most this many"))
SERIES_QUERY = (
    _query("start", {"type": "string", "format": "date-time"}, "default: 24 hours before end"),
    _query("end", {"type": "string", "format": "date-time"}, "default: now"),
    _query("interval", {"type": "string", "enum": list(series.INTERVALS)},
           f"bucket length; default the finest giving at most {series.MAX_POINTS} points (more: 400)"),
    _query("provider", {"type": "string"}, "only this provider's requests"),
    _query("alias", {"type": "string"}, "only requests that used the stored key of this alias"),
)


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


CUSTOM_HEADERS = {"type": "string", "maxLength": MAX_HEADERS_TEXT, "writeOnly": True,
                  "description": "a JSON object of extra headers sent to the provider; values are sealed and "
                                 "never returned"}


def _bodies() -> dict[str, Schema]:
    defs: dict[str, Schema] = {}
    gateway_update = _model(s.GatewayFields, defs, id={
        "type": "string", "description": "may repeat the path's gateway_id; any other value is refused"})
    bodies = {
        "GatewayCreate": _model(s.GatewayCreate, defs),
        "GatewayUpdate": gateway_update,
        "ProviderConfigCreate": _model(
            s.ProviderConfigCreate, defs, provider_slug=PROVIDER_SLUG,
            secret=SECRET_VALUE, rate_limit=RATE_LIMIT, rate_limit_period=RATE_PERIOD),
        "ProviderConfigUpdate": {**_model(s.ProviderConfigUpdate, defs, secret=SECRET_VALUE,
                                          rate_limit=RATE_LIMIT,
                                          rate_limit_period=RATE_PERIOD), "minProperties": 1},
        "CustomProviderCreate": _model(cs.CustomProviderCreate, defs, headers=CUSTOM_HEADERS),
        "CustomProviderUpdate": {**_model(cs.CustomProviderFields, defs, headers=_nullable(CUSTOM_HEADERS)),
                                 "minProperties": 1},
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
        **route_doc.bodies(lambda model: _model(model, defs)),
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
                                       "event_id", "alias", "route", "route_version", "route_path")},
    }
    if detail:
        props.update(request_head=text, response_head=text, request_head_complete={"type": "boolean"},
                     response_head_complete={"type": "boolean"}, request_size={"type": "integer",
                                                                               "minimum": 0},
                     response_size={"type": "integer", "minimum": 0}, method=text, stream={"type": "boolean"},
                     user_agent=opt_text, error=opt_text)
    return {"type": "object", "required": list(props), "properties": props}


def _custom_provider_result() -> Schema:
    text, opt_text = {"type": "string"}, _nullable({"type": "string"})
    props: Schema = {
        "id": HEX32, "name": text, "slug": text,
        "provider": {"type": "string", "pattern": PROVIDER_SLUG_PATTERN},
        "base_url": text, "beta": {"type": "boolean"}, "enable": {"type": "boolean"},
        "position": {"type": "integer", "minimum": 0}, "auth_header": text, "auth_scheme": text,
        "headers": _nullable({"type": "string", "description": "the header names, values masked"}),
        "created_at": STAMP, "modified_at": STAMP,
        **{name: opt_text for name in ("description", "curl_example", "js_example", "link", "logo")},
    }
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
        "CustomProvider": _custom_provider_result(),
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
        "Identity": {"type": "object", "required": ["accounts", "permissions", "credential", "token"],
                     "description": "Sluice extension (not in Cloudflare's API): who the caller is",
                     "properties": {
            "accounts": {"type": "array", "items": HEX32},
            "permissions": {"type": "array", "items": {"type": "string", "enum": list(ALL_GROUPS)}},
            "credential": {"type": "string", "enum": ["api_token", "global_api_key"]},
            "token": _nullable({"type": "object", "required": ["id", "name", "expires_on"], "properties": {
                "id": HEX32, "name": {"type": "string"}, "expires_on": _nullable(STAMP)}})}},
        "GatewayUrl": {"type": "string", "format": "uri"},
        **route_doc.results(STAMP),
        "Log": _log_result(detail=False),
        "LogDetail": _log_result(detail=True),
        "LogSeries": {"type": "object", "required": ["interval", "start", "end", "points"],
                      "description": "Sluice extension (not in Cloudflare's API), for the console's charts",
                      "properties": {
            "interval": {"type": "string", "enum": list(series.INTERVALS)}, "start": STAMP, "end": STAMP,
            "points": {"type": "array", "items": {
                "type": "object", "required": ["t", *series.COUNTERS], "properties": {
                    "t": STAMP, "requests": {"type": "integer", "minimum": 0},
                    "errors": {"type": "integer", "minimum": 0}, "tokens": {"type": "integer", "minimum": 0},
                    "cost": {"type": "number", "minimum": 0}}}}}},
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


def _ok(result: Schema, *, listed: bool = False, paged: bool = False, info: str = "ResultInfo",
        key: str = "result") -> Schema:
    props: Schema = {key: {"type": "array", "items": result} if listed or paged else result,
                     "success": {"const": True}, "errors": {"type": "array", "maxItems": 0},
                     "messages": {"type": "array"}}
    required = [key, "success", "errors", "messages"]
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


def _path_param(name: str) -> Schema:
    if name not in PATH_PARAMS:
        raise KeyError(f"path parameter {name!r}: describe it in openapi_doc.PATH_PARAMS")
    return {"name": name, "in": "path", "required": True, "schema": PATH_PARAMS[name]}


def _operation(op: Endpoint) -> Schema:
    statuses = {401, 500, *op.errors}
    path_params = op.path_params
    if path_params:
        statuses |= {403, 404}
    if op.query:
        statuses.add(400)
    security = BEARER if op.bearer_only else ANY_CREDENTIALS
    out: Schema = {"operationId": op.id, "summary": op.summary, "tags": [op.tag], "security": security}
    if op.accepts:
        out["x-permissions"] = list(op.accepts)
    params = [_path_param(n) for n in path_params]
    if params or op.query:
        out["parameters"] = params + list(op.query)
    if op.body is not None:
        statuses |= {400, 413}
        out["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(op.body)}}}
    ok = RAW_BODY if op.raw else _ok(_ref(op.result), listed=op.listed, paged=op.paged, info=op.result_info,
                                     key=op.result_key)
    out["responses"] = {"200": ok,
                        **{str(c): _ref_response(c) for c in sorted(statuses)}}
    return out


def _ref_response(status: int) -> Schema:
    return {"$ref": f"#/components/responses/E{status}"}


OPENAPI_OPERATION: Schema = {
    "operationId": "openapi", "summary": "This document", "tags": ["meta"], "security": [],
    "responses": {"200": {"description": "The OpenAPI document (not wrapped in the envelope)",
                          "content": {"application/json": {"schema": {
                              "type": "object", "required": ["openapi", "info", "paths"]}}}},
                  "500": _ref_response(500)},
}


def build_document(endpoints: Iterable[Endpoint]) -> dict[str, Any]:
    """The document of these endpoints, plus ``GET /openapi.json`` itself."""
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        operations = paths.setdefault(endpoint.doc_path, {})
        method = endpoint.method.lower()
        if method in operations:
            raise ValueError(f"{endpoint.method} {endpoint.path} is listed twice")
        operations[method] = copy.deepcopy(_operation(endpoint))
    paths[OPENAPI_PATH] = {"get": copy.deepcopy(OPENAPI_OPERATION)}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Sluice management API", "version": "0.1.0", "description": (
            "Cloudflare v4-compatible management API of Sluice. Every response is the v4 envelope "
            "{result, success, errors, messages}. A method a path does not list is answered 405 / 7005. "
            "x-permissions: the permission groups of which an API token needs one.")},
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
