"""Request bodies (validated strictly; unknown fields refused) and the wire shape of each resource."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    WithJsonSchema,
    field_validator,
)

from sluice.clock import now, rfc3339, rfc3339_ts
from sluice.control import gateway_settings as settings
from sluice.control.gateway_settings import omittable
from sluice.identity.permissions import ACCOUNT_SCOPE, ALL_GROUPS, GROUP_IDS, group_name
from sluice.identity.restrictions import MAX_CIDRS, cidr_list
from sluice.keyhealth import Mark
from sluice.providers.custom import is_custom
from sluice.providers.registry import CATALOG_SLUGS

GATEWAY_ID_PATTERN = r"^[a-z0-9_]+(?:-[a-z0-9_]+)*$"
ALIAS_PATTERN = r"^[A-Za-z0-9_-]+$"
MAX_SECRET_BYTES = 65536
MAX_PERIOD_S = 2_592_000


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def check_secret_value(value: str) -> str:
    """A provider key is sent in an HTTP header: non-blank, no control characters, <= 64 KiB."""
    if not value.strip():
        raise ValueError("must not be empty or blank")
    if len(value.encode("utf-8", "surrogatepass")) > MAX_SECRET_BYTES:
        raise ValueError(f"must be at most {MAX_SECRET_BYTES} bytes")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise ValueError("must not contain control characters (it is sent in an HTTP header)")
    return value


def whole_number(value: Any, *, name: str) -> int:
    """JSON numbers arrive as int or float (the SDK types them as float); only whole values pass."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"must be a number of {name}")
    if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
        raise ValueError(f"must be a whole number of {name}")
    return int(value)


# -- gateways --------------------------------------------------------------------------------------

NonNegative = Annotated[StrictInt, Field(ge=0, le=2**31 - 1)]


class GatewayFields(Strict):
    """Typed as the official SDK's update params: a field it types nullable takes null (clearing it), any
    other field may be left out but not sent as null."""

    cache_invalidate_on_update: StrictBool = omittable()
    cache_ttl: NonNegative | None = None
    collect_logs: StrictBool = omittable()
    rate_limiting_interval: NonNegative | None = None
    rate_limiting_limit: NonNegative | None = None
    rate_limiting_technique: Literal["fixed", "sliding"] | None = None
    authentication: StrictBool = omittable()
    byok_only: StrictBool = omittable()
    store_id: Annotated[StrictStr, Field(min_length=1, max_length=32)] | None = None
    retry_max_attempts: Annotated[StrictInt, Field(ge=1, le=5)] | None = None
    retry_delay: Annotated[StrictInt, Field(ge=0, le=60000)] | None = None
    retry_backoff: Literal["constant", "linear", "exponential"] | None = None
    log_management: Annotated[StrictInt, Field(ge=10_000, le=10_000_000)] | None = None
    log_management_strategy: Literal["STOP_INSERTING", "DELETE_OLDEST"] | None = None
    logpush: StrictBool = omittable()
    logpush_public_key: Annotated[StrictStr, Field(min_length=16, max_length=1024)] | None = None
    log_classification: StrictBool = omittable()
    zdr: StrictBool = omittable()
    workers_ai_billing_mode: Literal["postpaid", "unified"] = omittable()
    # Stored and returned, not acted on yet; validated against the SDK's types (gateway_settings).
    dlp: settings.Dlp = omittable()
    guardrails: settings.Guardrails | None = None
    otel: list[settings.Otel] | None = None
    spend_limits: settings.SpendLimits | None = None
    stripe: settings.Stripe | None = None
    # Sluice extensions (docs/api.md, "Key pools"): fail over across a provider's stored keys.
    key_failover: StrictBool = omittable()
    key_failover_quota_cooldown: Annotated[StrictInt, Field(ge=1, le=MAX_PERIOD_S)] = omittable()


class GatewayCreate(GatewayFields):
    id: Annotated[StrictStr, Field(min_length=1, max_length=64, pattern=GATEWAY_ID_PATTERN)]


GATEWAY_DEFAULTS: dict[str, Any] = {
    "cache_invalidate_on_update": False,
    "cache_ttl": 0,
    "collect_logs": True,
    "rate_limiting_interval": 0,
    "rate_limiting_limit": 0,
    "rate_limiting_technique": "fixed",
    "authentication": True,
    "byok_only": False,
    "store_id": None,
    "retry_max_attempts": 1,
    "retry_delay": 0,
    "retry_backoff": "constant",
    "log_management": 10_000_000,
    "log_management_strategy": "STOP_INSERTING",
    "key_failover": False,
    "key_failover_quota_cooldown": 3600,
}
# Sluice extensions a gateway stored before they existed reads back with (their defaults).
EXTENSION_DEFAULTS = {name: GATEWAY_DEFAULTS[name]
                      for name in ("key_failover", "key_failover_quota_cooldown")}
# Fields the SDK types nullable: null is stored and read back as null (the data plane then acts as for
# the default: no cache, no rate limit, one attempt, the default log limit).
NULLABLE_GATEWAY_FIELDS = frozenset({
    "cache_ttl", "rate_limiting_interval", "rate_limiting_limit", "rate_limiting_technique", "store_id",
    "retry_max_attempts", "retry_delay", "retry_backoff", "log_management", "log_management_strategy",
    "logpush_public_key", "guardrails", "otel", "spend_limits", "stripe"})


def gateway_body(fields: GatewayFields, current: dict[str, Any] | None) -> dict[str, Any]:
    """Stored settings: current (or defaults) overlaid with every field the caller sent, null included.

    PUT is a merge (docs/api.md): a field left out keeps its value, a field sent as null is cleared.
    """
    body = dict(GATEWAY_DEFAULTS) if current is None else {
        k: v for k, v in current.items() if k not in ("id", "account_id", "created_at", "modified_at")
    }
    body.update(fields.model_dump(exclude_unset=True, exclude={"id"}))
    return body


def gateway_wire(row: dict[str, Any]) -> dict[str, Any]:
    out = {**EXTENSION_DEFAULTS, **{k: v for k, v in row.items() if k != "account_id"}}
    out["is_default"] = row["id"] == "default"
    return out


# -- provider configs ------------------------------------------------------------------------------

class ProviderConfigCreate(Strict):
    provider_slug: StrictStr
    alias: Annotated[StrictStr, Field(min_length=1, max_length=64, pattern=ALIAS_PATTERN)]
    default_config: StrictBool
    secret: StrictStr | None = None
    secret_id: Annotated[StrictStr, Field(min_length=1, max_length=64)] | None = None
    rate_limit: Any = None
    rate_limit_period: Any = None

    @field_validator("provider_slug")
    @classmethod
    def _known_slug(cls, value: str) -> str:
        if value not in CATALOG_SLUGS and not is_custom(value):
            # the value is not echoed: a key pasted into the wrong field must not come back in the error
            raise ValueError(f"unknown provider; valid provider slugs: {', '.join(CATALOG_SLUGS)}, or "
                             "custom-{slug} naming a custom provider of the account")
        return value

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        return None if value is None else check_secret_value(value)

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit(cls, value: Any) -> int | None:
        if value is None:
            return None
        number = whole_number(value, name="requests")
        if number < 0:
            raise ValueError("must be >= 0 (0 means unlimited)")
        if number > 2**31 - 1:
            raise ValueError("is too large")
        return number

    @field_validator("rate_limit_period")
    @classmethod
    def _period(cls, value: Any) -> int | None:
        if value is None:
            return None
        number = whole_number(value, name="seconds")
        if number <= 0 or number > MAX_PERIOD_S:
            raise ValueError(f"must be > 0 and <= {MAX_PERIOD_S} seconds")
        return number


class ProviderConfigUpdate(Strict):
    secret: StrictStr | None = None
    rate_limit: Any = None
    rate_limit_period: Any = None
    default_config: StrictBool | None = None

    _secret = field_validator("secret")(ProviderConfigCreate._secret.__func__)  # type: ignore[attr-defined]
    _rate_limit = field_validator("rate_limit")(ProviderConfigCreate._rate_limit.__func__)  # type: ignore[attr-defined]
    _period = field_validator("rate_limit_period")(ProviderConfigCreate._period.__func__)  # type: ignore[attr-defined]


def config_wire(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "alias": row["alias"],
        "default_config": bool(row["default_config"]),
        "gateway_id": row["gateway_id"],
        "modified_at": row["modified_at"],
        "provider_slug": row["provider_slug"],
        "secret_id": row["secret_id"],
        "secret_preview": row.get("secret_preview") or "****",
        "rate_limit": row["rate_limit"],  # null when never set, as Cloudflare's SDK types it
        "rate_limit_period": row["rate_limit_period"],
        "created_at": row["created_at"],
    }


def key_state_wire(mark: Mark | None) -> dict[str, Any]:
    """Key pools (a Sluice extension, this process's view): whether the key is in service."""
    if mark is None:
        return {"key_state": "ok", "key_state_reason": None, "key_state_until": None}
    until = rfc3339_ts(mark.until) if mark.until is not None else None
    return {"key_state": mark.state, "key_state_reason": mark.reason, "key_state_until": until}


# -- secrets store ---------------------------------------------------------------------------------

SCOPES = ("workers", "ai_gateway", "dex", "access", "containers", "websearch")
Scope = Literal["workers", "ai_gateway", "dex", "access", "containers", "websearch"]
SecretName = Annotated[StrictStr, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_.-]+$")]


class StoreCreate(Strict):
    name: Annotated[StrictStr, Field(min_length=1, max_length=255)]


class SecretCreate(Strict):
    name: SecretName
    value: StrictStr
    scopes: Annotated[list[Scope], Field(min_length=1)]
    comment: Annotated[StrictStr, Field(max_length=1024)] | None = None

    _value = field_validator("value")(lambda cls, v: check_secret_value(v))


class SecretPatch(Strict):
    value: StrictStr | None = None
    scopes: Annotated[list[Scope], Field(min_length=1)] | None = None
    comment: Annotated[StrictStr, Field(max_length=1024)] | None = None

    @field_validator("value")
    @classmethod
    def _value(cls, value: str | None) -> str | None:
        return None if value is None else check_secret_value(value)


class SecretDuplicate(Strict):
    name: SecretName
    scopes: Annotated[list[Scope], Field(min_length=1)]
    comment: Annotated[StrictStr, Field(max_length=1024)] | None = None


class SecretRef(Strict):
    id: Annotated[StrictStr, Field(min_length=1, max_length=32)]


def store_wire(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "created": row["created"], "modified": row["modified"],
            "account_id": row["account_id"]}


def secret_wire(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "status": row["status"],
        "store_id": row["store_id"],
        "created": row["created"],
        "modified": row["modified"],
        "comment": row["comment"],
        "scopes": orjson.loads(row["scopes"]),
    }


# -- tokens ----------------------------------------------------------------------------------------

def _group_name(value: str) -> str:
    name = group_name(value)
    if name is None:
        raise ValueError(f"unknown permission group; known (name or Cloudflare id): {', '.join(ALL_GROUPS)}")
    return name


# A group's name or its Cloudflare id; stored and returned as the name.
Permission = Annotated[StrictStr, AfterValidator(_group_name),
                       WithJsonSchema({"type": "string", "enum": [*ALL_GROUPS, *GROUP_IDS.values()]})]
CidrList = Annotated[list[Annotated[StrictStr, Field(max_length=64)]], Field(max_length=MAX_CIDRS)]


class PolicyGroup(Strict):
    id: Annotated[StrictStr, Field(max_length=64)] | None = None  # Cloudflare's group id (or its name)
    name: Annotated[StrictStr, Field(max_length=64)] | None = None
    meta: dict[str, Any] | None = None  # descriptive attributes of the group (Cloudflare's shape); not used


class Policy(Strict):
    id: Annotated[StrictStr, Field(max_length=64)] | None = None  # sent back by a GET → PUT round trip
    effect: StrictStr = "allow"
    permission_groups: Annotated[list[PolicyGroup], Field(min_length=1, max_length=len(ALL_GROUPS))]
    resources: dict[str, Any] | None = None  # checked against the account in control/tokens.py

    @field_validator("effect")
    @classmethod
    def _allow_only(cls, value: str) -> str:
        if value != "allow":
            raise ValueError("must be 'allow': a token is the union of what its policies allow; "
                             "'deny' policies are refused, not ignored")
        return value


class RequestIp(Strict):
    # Strict models take no aliases in input by default; "in" is a Python keyword, hence the alias.
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=False)
    allow: CidrList | None = Field(default=None, alias="in")
    not_in: CidrList | None = None

    @field_validator("allow", "not_in")
    @classmethod
    def _cidrs(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else cidr_list(value)


class Condition(Strict):
    request_ip: RequestIp | None = None


class TokenCreate(Strict):
    name: Annotated[StrictStr, Field(min_length=1, max_length=120)]
    permissions: list[Permission] | None = None  # Sluice form: permission groups by name (or id)
    policies: Annotated[list[Policy], Field(max_length=20)] | None = None  # Cloudflare form
    expires_on: StrictStr | None = None
    not_before: StrictStr | None = None
    condition: Condition | None = None


class TokenUpdate(TokenCreate):
    status: Literal["active", "disabled"] | None = None  # "expired" follows from expires_on


def token_status(row: dict[str, Any], at: str) -> str:
    if row["status"] == "active" and row["expires_on"] is not None and row["expires_on"] <= at:
        return "expired"
    return row["status"]


def token_wire(row: dict[str, Any], at: str | None = None) -> dict[str, Any]:
    """A token as Cloudflare shows it (never its value), plus Sluice's flat ``permissions`` list."""
    permissions = orjson.loads(row["permissions"])
    if row.get("policies"):
        policies = orjson.loads(row["policies"])
    else:  # made before policies were stored: one policy over the whole account
        policies = [{"id": row["id"], "effect": "allow",
                     "permission_groups": [{"id": GROUP_IDS.get(p, p), "name": p} for p in permissions],
                     "resources": {f"{ACCOUNT_SCOPE}.{row['account_id']}": "*"}}]
    return {
        "id": row["id"],
        "name": row["name"],
        "status": token_status(row, at or rfc3339(now())),
        "issued_on": row["issued_on"],
        "modified_on": row["modified_on"],
        "expires_on": row["expires_on"],
        "not_before": row.get("not_before"),
        "last_used_on": row["last_used_on"],
        "condition": orjson.loads(row["condition"]) if row.get("condition") else {},
        "permissions": permissions,
        "policies": policies,
    }
