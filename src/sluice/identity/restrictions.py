"""A token's restrictions — validity window and client-IP condition — as pure, precomputed checks.

Both planes use this: the management API on every call, the data plane with the result built once
when an account's state loads (networks are parsed there, never per request).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_CIDRS = 100  # per list; a condition is checked on every request the token makes


def parse_network(text: str) -> Network:
    """``10.0.0.0/8``, ``2001:db8::/32`` or a single address; host bits are ignored (``10.0.0.1/8``)."""
    return ipaddress.ip_network(text.strip(), strict=False)


def client_address(host: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The caller's address; an IPv4-mapped IPv6 address (dual-stack socket) counts as IPv4."""
    if not host:
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True, slots=True)
class IpRule:
    """``condition.request_ip``: allowed when in an ``in`` network (or ``in`` is empty), in no ``not_in``."""

    allow: tuple[Network, ...]
    deny: tuple[Network, ...]

    def permits(self, host: str | None) -> bool:
        address = client_address(host)
        if address is None:  # unknown peer (e.g. a Unix socket): a restricted token fails closed
            return False
        if self.allow and not any(address in net for net in self.allow):
            return False
        return not any(address in net for net in self.deny)


def ip_rule(condition: dict[str, Any] | None) -> IpRule | None:
    """The rule of a stored (already validated) condition; None when the token has no IP condition."""
    request_ip = (condition or {}).get("request_ip") or {}
    allow = tuple(parse_network(c) for c in request_ip.get("in") or ())
    deny = tuple(parse_network(c) for c in request_ip.get("not_in") or ())
    return IpRule(allow, deny) if allow or deny else None


def epoch(stamp: str | None) -> float | None:
    if not stamp:
        return None
    return datetime.fromisoformat(stamp).timestamp()


@dataclass(frozen=True, slots=True)
class Restrictions:
    """Everything about a token beyond its permissions that decides whether a request may use it."""

    not_before: float | None = None  # epoch seconds
    expires_at: float | None = None
    ip: IpRule | None = None

    def in_window(self, now: float) -> bool:
        return (self.not_before is None or now >= self.not_before) and (self.expires_at is None
                                                                          or now < self.expires_at)

    def permits_ip(self, host: str | None) -> bool:
        return self.ip is None or self.ip.permits(host)


NONE = Restrictions()


def restrictions(row: dict[str, Any]) -> Restrictions:
    """Built from a token row (columns ``not_before``, ``expires_on``, ``condition`` as JSON text)."""
    condition = orjson.loads(row["condition"]) if row.get("condition") else None
    rule = ip_rule(condition)
    not_before, expires_at = epoch(row.get("not_before")), epoch(row.get("expires_on"))
    if rule is None and not_before is None and expires_at is None:
        return NONE
    return Restrictions(not_before, expires_at, rule)


def cidr_list(values: Iterable[str]) -> list[str]:
    """Validated and normalised CIDR texts (``10.0.0.1/8`` → ``10.0.0.0/8``); ValueError names the entry."""
    out = []
    for index, value in enumerate(values):
        try:
            out.append(str(parse_network(value)))
        except ValueError:
            raise ValueError(f"entry {index} is not an IPv4/IPv6 address or CIDR range") from None
    return out
