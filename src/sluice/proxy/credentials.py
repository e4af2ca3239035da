"""Which credential a request goes upstream with, as a pure function of in-memory state.

Order (docs/gateway.md#credentials-in-this-order): (1) gateway authentication, (2) the caller's
own provider key — unless it is a Sluice token, which authenticates the caller to the gateway
instead, (3) a stored key chosen by ``cf-aig-byok-alias``, else the provider's default config, else
alias ``default``, (4) 401 — except for a custom provider, which then goes with its definition's
headers only.

Choices where Cloudflare is silent:
* ``cf-aig-authorization`` on a gateway with authentication off is ignored (never verified, never
  forwarded), as Cloudflare does.
* Every Sluice token in the provider's auth headers is verified; an invalid one is a 401 even when
  another header would have been enough. The caller's own key is the first non-empty auth header
  that is not a Sluice token.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sluice.errors import GatewayAuthFailed, NoProviderKey, UnknownAlias
from sluice.identity.credentials import hash_value, is_sluice_token
from sluice.providers.registry import Provider
from sluice.proxy.state import GatewayState, StoredKey, TokenState

GATEWAY_AUTH_HEADER = "cf-aig-authorization"
ALIAS_HEADER = "cf-aig-byok-alias"


@dataclass(frozen=True, slots=True)
class Credentials:
    key: StoredKey | None  # None: the caller's own provider key goes upstream untouched
    token_id: str | None  # the Sluice token that authenticated the caller, if any


def bearer(value: str) -> str:
    value = value.strip()
    if value[:7].lower() == "bearer ":
        return value[7:].strip()
    return value


def _verify(token: str, tokens: Mapping[str, TokenState], account_id: str, now: float,
            host: str | None) -> str:
    """The token's id when it may run this account's gateways from this address; otherwise 401 / 2009."""
    state = tokens.get(hash_value(token)) if is_sluice_token(token) else None
    if state is None or not state.usable(account_id, now, host):
        raise GatewayAuthFailed()
    return state.id


def caller(gateway: GatewayState, sent: Iterable[str], control: Mapping[str, str],
           tokens: Mapping[str, TokenState], now: float, host: str | None = None) -> tuple[str | None, bool]:
    """Steps (1) and (2): ``(token id, whether the caller brought its own provider key)`` for the bare
    values of the headers a provider key may arrive in (``sent``); raises ``GatewayAuthFailed``."""
    token_id: str | None = None
    if gateway.authentication:
        given = bearer(control.get(GATEWAY_AUTH_HEADER, ""))
        if given:
            token_id = _verify(given, tokens, gateway.account_id, now, host)
    own = False
    for bare in sent:
        if not bare:
            continue
        if is_sluice_token(bare):
            token_id = _verify(bare, tokens, gateway.account_id, now, host)
        else:
            own = True
    if gateway.authentication and token_id is None:
        raise GatewayAuthFailed("gateway authentication required: send cf-aig-authorization: Bearer <token "
                                "with AI Gateway Run>, or a Sluice token as the provider key")
    return token_id, own


def choose(gateway: GatewayState, provider: Provider, control: Mapping[str, str],
           tokens: Mapping[str, TokenState], now: float, host: str | None = None) -> Credentials:
    """Apply the credential order to one request from ``host`` (the peer address); raises
    ``GatewayAuthFailed``, ``UnknownAlias`` or ``NoProviderKey``."""
    sent = (provider.strip_scheme(control[name], name) for name in provider.auth_header_names
            if control.get(name))
    token_id, own = caller(gateway, sent, control, tokens, now, host)
    if own:
        return Credentials(None, token_id)
    if not provider.stored_keys:
        raise NoProviderKey(f"provider {provider.slug!r} takes only the caller's own signed credentials; "
                            "no provider key was sent")
    keys = gateway.keys.get(provider.slug)
    alias = control.get(ALIAS_HEADER, "").strip()
    if alias:
        key = keys.by_alias.get(alias) if keys is not None else None
        if key is None:
            raise UnknownAlias(f"cf-aig-byok-alias: no stored key with alias {alias[:64]!r} for "
                               f"provider {provider.slug!r} on this gateway")
        return Credentials(key, token_id)
    if keys is None or keys.default is None:
        if provider.custom:  # its definition's headers may carry the credential, or it needs none
            return Credentials(None, token_id)
        raise NoProviderKey(f"no provider key in the request and no stored key for provider "
                            f"{provider.slug!r} on this gateway")
    return Credentials(keys.default, token_id)
