"""What the hot path needs, held in memory: gateways, stored keys (already decrypted) and tokens.

Pure builders from rows; ``sync.py`` loads the rows and decrypts the keys, at load time, never per
request. Requests never touch the database. An account's state is rebuilt as a whole and swapped in
with one dict assignment, so a request sees either the old or the new state, never a mix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog

from sluice.errors import FieldErrors
from sluice.identity.permissions import AI_GATEWAY_RUN
from sluice.identity.restrictions import IpRule, restrictions
from sluice.keymatch import EMPTY, KeyMatcher
from sluice.providers.custom import custom_provider, parse_headers, provider_slug
from sluice.providers.registry import Provider
from sluice.routing.graph import Graph, parse_graph

log = structlog.get_logger("sluice.proxy")


@dataclass(frozen=True, slots=True)
class StoredKey:
    """One provider config, with its key ready to put on the wire."""

    config_id: str
    alias: str
    provider: str
    auth_header: str = field(repr=False)
    auth_value: str = field(repr=False)  # holds the plaintext key: never printed
    rate_limit: int  # 0 = unlimited
    rate_limit_period: int
    # The config's modified_at: with the key value, what tells a rotated key (key pools) from the old one.
    revision: str = ""


@dataclass(frozen=True, slots=True)
class ProviderKeys:
    by_alias: dict[str, StoredKey]
    default: StoredKey | None  # the default_config one, else alias "default"
    pool: tuple[StoredKey, ...] = ()  # key failover order: the default first, then by creation


@dataclass(frozen=True, slots=True)
class GatewayState:
    account_id: str
    id: str
    authentication: bool
    collect_logs: bool
    rate_limit: int  # 0 = unlimited
    rate_interval: int
    rate_technique: str
    retry_attempts: int
    retry_delay_ms: int
    retry_backoff: str
    keys: dict[str, ProviderKeys]  # provider slug -> stored keys
    cache_ttl: int = 0  # seconds; 0 = the gateway does not cache (cf-aig-cache-* headers still can)
    key_failover: bool = False  # Sluice extension: fail over across stored keys (proxy/pools.py)
    quota_cool_s: int = 3600  # how long a key out of quota (402) stays out of the pool

    @property
    def rate_key(self) -> str:
        return f"gw:{self.account_id}:{self.id}"


@dataclass(frozen=True, slots=True)
class TokenState:
    id: str
    account_id: str
    can_run: bool  # holds AI Gateway Run
    active: bool
    expires_at: float | None  # epoch seconds
    not_before: float | None = None  # epoch seconds
    ip: IpRule | None = None  # condition.request_ip, networks parsed at load time

    def usable(self, account_id: str, now: float, host: str | None = None) -> bool:
        return (self.active and self.can_run and self.account_id == account_id
                and (self.expires_at is None or now < self.expires_at)
                and (self.not_before is None or now >= self.not_before)
                and (self.ip is None or self.ip.permits(host)))


@dataclass(frozen=True, slots=True)
class DeployedRoute:
    """A dynamic route's deployed version, its graph parsed once when loaded."""

    id: str
    name: str
    version_id: str
    graph: Graph


@dataclass(frozen=True, slots=True)
class AccountState:
    gateways: dict[str, GatewayState]
    tokens: dict[str, TokenState]  # value hash -> token
    # Finds this account's stored key values in bytes: error bodies relayed, request logs written.
    key_matcher: KeyMatcher = EMPTY
    # (gateway id, route name) -> the deployed version
    routes: dict[tuple[str, str], DeployedRoute] = field(default_factory=dict)
    # Every provider this account can reach: the catalog plus its enabled custom providers.
    providers: Mapping[str, Provider] = field(default_factory=dict)


def resolve_provider(account: AccountState, slug: str) -> Provider | None:
    """The provider ``slug`` names for this account (a catalog slug or ``custom-{slug}``), or None.

    The one lookup every entry of the data plane uses (provider path, /compat, Universal steps)."""
    return account.providers.get(slug)


def deployed_routes(rows: list[dict[str, Any]], known_provider: Callable[[str], bool]
                    ) -> dict[tuple[str, str], DeployedRoute]:
    """Rows of ``store.routes.deployed``; a version that no longer parses (its provider left the
    catalogue) is left out, so requests to it are refused as an unknown route."""
    routes = {}
    for row in rows:
        try:
            graph = parse_graph(orjson.loads(row["elements"]), known_provider)
        except (FieldErrors, orjson.JSONDecodeError):
            log.warning("deployed route version does not parse; not served", route_id=row["id"],
                        version_id=row["deployed_version_id"])
            continue
        routes[(row["gateway_id"], row["name"])] = DeployedRoute(row["id"], row["name"],
                                                                 row["deployed_version_id"], graph)
    return routes


def _int(value: Any, default: int = 0) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def token_state(row: dict[str, Any]) -> TokenState:
    permissions = orjson.loads(row["permissions"]) if row.get("permissions") else []
    rules = restrictions(row)
    return TokenState(id=row["id"], account_id=row["account_id"], can_run=AI_GATEWAY_RUN in permissions,
                      active=row.get("status") == "active", expires_at=rules.expires_at,
                      not_before=rules.not_before, ip=rules.ip)


def gateway_state(row: dict[str, Any], keys: dict[str, ProviderKeys]) -> GatewayState:
    technique = row.get("rate_limiting_technique")
    backoff = row.get("retry_backoff")
    return GatewayState(
        account_id=row["account_id"], id=row["id"],
        authentication=row.get("authentication", True) is not False,
        collect_logs=row.get("collect_logs", True) is not False,
        rate_limit=_int(row.get("rate_limiting_limit")),
        rate_interval=_int(row.get("rate_limiting_interval")),
        rate_technique=technique if technique in ("fixed", "sliding") else "fixed",
        retry_attempts=min(5, max(1, _int(row.get("retry_max_attempts"), 1))),
        retry_delay_ms=min(60_000, max(0, _int(row.get("retry_delay")))),
        retry_backoff=backoff if backoff in ("constant", "linear", "exponential") else "constant",
        keys=keys, cache_ttl=max(0, _int(row.get("cache_ttl"))),
        key_failover=row.get("key_failover") is True,
        quota_cool_s=max(1, _int(row.get("key_failover_quota_cooldown"), 3600)),
    )


def provider_keys(configs: list[dict[str, Any]], plaintext: dict[str, str],
                  catalog: Mapping[str, Provider]) -> dict[str, ProviderKeys]:
    """Group one gateway's configs by provider; configs whose key could not be opened are left out."""
    grouped: dict[str, dict[str, StoredKey]] = {}
    defaults: dict[str, StoredKey] = {}
    for row in configs:
        provider = catalog.get(row["provider_slug"])
        secret = plaintext.get(row["secret_id"])
        if provider is None or secret is None:
            continue
        key = StoredKey(config_id=row["id"], alias=row["alias"], provider=provider.slug,
                        auth_header=provider.auth_header, auth_value=provider.auth_value(secret),
                        rate_limit=_int(row.get("rate_limit")),
                        rate_limit_period=_int(row.get("rate_limit_period"), 60) or 60,
                        revision=str(row.get("modified_at") or ""))
        grouped.setdefault(provider.slug, {})[key.alias] = key
        if row.get("default_config"):
            defaults[provider.slug] = key
    out = {}
    for slug, aliases in grouped.items():
        default = defaults.get(slug) or aliases.get("default")
        rest = tuple(key for key in aliases.values() if key is not default)
        pool = (default, *rest) if default else rest
        out[slug] = ProviderKeys(by_alias=aliases, default=default, pool=pool)
    return out


def _extra_headers(row: dict[str, Any], plaintext: dict[str, str]) -> dict[str, str] | None:
    """A custom provider's decrypted extra headers ({} when it has none); None when unreadable."""
    secret_id = row.get("headers_secret_id")
    if secret_id is None:
        return {}
    try:  # checked again: the sealed value is a secret, which the Secrets Store API can change
        return parse_headers(plaintext[secret_id])
    except (KeyError, ValueError):
        log.warning("custom provider headers unreadable; the provider is unavailable",
                    provider_id=row.get("id"))
        return None


def account_providers(catalog: Mapping[str, Provider], custom: list[dict[str, Any]],
                      plaintext: dict[str, str]) -> Mapping[str, Provider]:
    """The catalog plus the account's enabled custom providers, as ``custom-{slug}``."""
    if not custom:
        return catalog
    providers = dict(catalog)
    for row in custom:
        headers = _extra_headers(row, plaintext) if row.get("enable") else None
        if headers is not None:
            providers[provider_slug(row["slug"])] = custom_provider(row, headers)
    return providers


def custom_header_values(providers: Mapping[str, Provider]) -> list[str]:
    """The custom providers' extra header values: they may be credentials, so they are masked too."""
    return [value for p in providers.values() if p.custom for _, value in p.extra_headers]


def build_account(gateways: list, configs: list, plaintext: dict[str, str],
                  tokens: list, catalog: Mapping[str, Provider],
                  key_matcher: KeyMatcher = EMPTY, routes: list | None = None) -> AccountState:
    """``catalog``: every provider the account can reach (``account_providers``)."""
    by_gateway: dict[str, list[dict[str, Any]]] = {}
    for row in configs:
        by_gateway.setdefault(row["gateway_id"], []).append(row)
    states = {g["id"]: gateway_state(g, provider_keys(by_gateway.get(g["id"], []), plaintext, catalog))
              for g in gateways}
    token_states: dict[str, TokenState] = {}
    for row in tokens:
        try:
            token_states[row["value_hash"]] = token_state(row)
        except (ValueError, TypeError):
            log.warning("token row unreadable; ignored", token_id=row.get("id"))
    return AccountState(gateways=states, tokens=token_states, key_matcher=key_matcher, providers=catalog,
                        routes=deployed_routes(routes or [], catalog.__contains__))
