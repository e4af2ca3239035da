"""A gateway's advanced settings (dlp, guardrails, otel, spend_limits, stripe), shaped exactly as the official
SDK types them (``cloudflare.types.ai_gateway.ai_gateway_update_params``). Sluice stores and returns them
and does not act on them yet, so their shape is all it can check -- and it checks all of it.

A union whose variants are told apart by their keys is a tagged union; its tags start with ``VARIANT`` so
error paths can leave them out (``body.dlp.policies.0.action``, not ``body.dlp.<tag>.policies.0.action``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    Tag,
    create_model,
)

VARIANT = "\x00"  # starts the tag of a tagged-union variant; left out of error paths (validation.py)

Action = Literal["FLAG", "BLOCK"]
Filter = Literal["filter"]


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def omittable() -> Any:
    """A field that may be left out but, when sent, must not be null (the SDK does not type it nullable)."""
    return Field(default=None, json_schema_extra=_no_default)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


# -- dlp: {action, enabled, profiles} or {enabled, policies: [...]} ---------------------------------------

class DlpProfiles(Strict):
    action: Action
    enabled: StrictBool
    profiles: list[StrictStr]


class DlpPolicy(Strict):
    id: StrictStr
    action: Action
    check: list[Literal["REQUEST", "RESPONSE"]]
    enabled: StrictBool
    profiles: list[StrictStr]


class DlpPolicies(Strict):
    enabled: StrictBool
    policies: list[DlpPolicy]


def _dlp_variant(value: Any) -> str | None:
    if isinstance(value, (DlpProfiles, DlpPolicies)):  # serialising a validated value
        return f"{VARIANT}policies" if isinstance(value, DlpPolicies) else f"{VARIANT}profiles"
    if not isinstance(value, dict):
        return None
    return f"{VARIANT}policies" if "policies" in value else f"{VARIANT}profiles"


Dlp = Annotated[
    Annotated[DlpProfiles, Tag(f"{VARIANT}profiles")] | Annotated[DlpPolicies, Tag(f"{VARIANT}policies")],
    Discriminator(_dlp_variant, custom_error_type="dlp_shape", custom_error_message=(
        "must be an object: {action, enabled, profiles} or {enabled, policies}")),
]


# -- guardrails: {prompt: {P1, S1..S13: FLAG|BLOCK}, response: {same}} -------------------------------------

GUARDRAIL_CATEGORIES = ("P1", *(f"S{n}" for n in range(1, 14)))
GuardrailCategories = create_model(  # type: ignore[call-overload]
    "GuardrailCategories", __base__=Strict, **{name: (Action, omittable()) for name in GUARDRAIL_CATEGORIES})


class Guardrails(Strict):
    prompt: GuardrailCategories  # type: ignore[valid-type]
    response: GuardrailCategories  # type: ignore[valid-type]


# -- otel: [{url, headers, authorization?, content_type?}] ------------------------------------------------

class Otel(Strict):
    headers: dict[StrictStr, StrictStr]
    url: Annotated[StrictStr, Field(min_length=1, max_length=2048)]
    authorization: Annotated[StrictStr, Field(max_length=256)] = omittable()
    content_type: Literal["json", "protobuf"] = omittable()


# -- spend_limits: {enabled?, rules?: [{limit, limitType, window, ...}]} -----------------------------------

class ValueFilter(Strict):
    mode: Filter
    values: list[StrictStr]


class Partition(Strict):
    mode: Literal["partition"]


def _metadata_variant(value: Any) -> str | None:
    mode = value.mode if isinstance(value, (Partition, ValueFilter)) else (
        value.get("mode") if isinstance(value, dict) else None)
    return f"{VARIANT}{mode}" if mode in ("partition", "filter") else None


MetadataRule = Annotated[
    Annotated[Partition, Tag(f"{VARIANT}partition")] | Annotated[ValueFilter, Tag(f"{VARIANT}filter")],
    Discriminator(_metadata_variant, custom_error_type="metadata_shape",
                  custom_error_message="must be {mode: 'partition'} or {mode: 'filter', values: [...]}"),
]


class SpendLimitRule(Strict):
    limit: Annotated[float, Field(gt=0, allow_inf_nan=False)]  # strict: a JSON int or float, not a bool
    limitType: Literal["cost"]
    window: Annotated[StrictInt, Field(gt=0)]
    id: StrictStr = omittable()
    enabled: StrictBool = omittable()
    metadata: dict[StrictStr, MetadataRule] = omittable()
    model: ValueFilter = omittable()
    provider: ValueFilter = omittable()
    technique: Literal["fixed", "sliding"] = omittable()


class SpendLimits(Strict):
    enabled: StrictBool = omittable()
    rules: list[SpendLimitRule] = omittable()


# -- stripe: {authorization, usage_events: [{payload}]} ---------------------------------------------------

class StripeUsageEvent(Strict):
    payload: StrictStr


class Stripe(Strict):
    authorization: StrictStr
    usage_events: list[StripeUsageEvent]
