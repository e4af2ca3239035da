"""Header filtering between client and upstream, in one pass over the raw ASGI header list.

Request side: hop-by-hop headers (the fixed set and any header the ``connection`` header names,
RFC 9110 §7.6.1), ``host``, ``content-length`` (recomputed by the client library),
``expect`` (the ASGI server already answered it), every ``cf-aig-*`` header and the deprecated
``cf-cache-ttl`` / ``cf-skip-cache`` (aliases of ``cf-aig-cache-ttl`` / ``cf-aig-skip-cache``) never go
upstream.
Any header whose value holds a Sluice token (``sluice_``) is removed too, wherever it appears, so a
gateway credential can never reach a provider. Those gateway headers and the provider's auth headers
are handed to the caller as a small dict for the credential and option logic.
"""

from __future__ import annotations

from collections.abc import Iterable

HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"proxy-connection",
    b"te", b"trailer", b"transfer-encoding", b"upgrade",
})
REQUEST_DROP = HOP_BY_HOP | {b"host", b"content-length", b"expect"}
# ``date``: the ASGI server adds its own; two would confuse clients.
RESPONSE_DROP = HOP_BY_HOP | {b"date"}
PLAIN_CONNECTION = frozenset({b"keep-alive", b"close", b""})  # name no other header
GATEWAY_PREFIX = b"cf-aig-"
DEPRECATED_GATEWAY = frozenset({b"cf-cache-ttl", b"cf-skip-cache"})  # still honoured, as on Cloudflare
TOKEN_MARK = b"sluice_"
IDENTITY = ("accept-encoding", "identity")

Pairs = list[tuple[str, str]]


def connection_options(value: bytes) -> set[bytes]:
    """Header names a ``connection`` header lists: they belong to that hop only and are dropped."""
    if value.lower() in PLAIN_CONNECTION:
        return set()
    tokens = (part.strip().lower() for part in value.split(b","))
    return {t for t in tokens if t and t not in PLAIN_CONNECTION}


def split_request(raw: list[tuple[bytes, bytes]], watched: frozenset[bytes]) -> tuple[Pairs, dict[str, str]]:
    """``(headers to forward, control headers)``.

    Control holds every ``cf-aig-*`` header (and the deprecated cache ones), ``content-length``,
    ``upgrade`` (refused by the data plane), the ``watched`` headers (the provider's auth headers, which
    are ALSO forwarded unless they hold a Sluice token) and any header holding a Sluice token. The
    first occurrence of a name wins.
    """
    forward: Pairs = []
    control: dict[str, str] = {}
    listed: set[bytes] = set()
    for name, value in raw:
        if name in REQUEST_DROP or name.startswith(b"proxy-"):
            if name == b"content-length":
                control.setdefault("content-length", value.decode("latin-1"))
            elif name == b"connection":
                listed |= connection_options(value)
            elif name == b"upgrade":  # refused by the caller: never forwarded as a plain request
                control.setdefault("upgrade", value.decode("latin-1"))
            continue
        if name.startswith(GATEWAY_PREFIX) or name in DEPRECATED_GATEWAY:
            control.setdefault(name.decode("latin-1"), value.decode("latin-1"))
            continue
        text = value.decode("latin-1")
        if TOKEN_MARK in value:
            control.setdefault(name.decode("latin-1"), text)
            continue
        key = name.decode("latin-1")
        if name in watched:
            control.setdefault(key, text)
        forward.append((key, text))
    if listed:
        forward = [pair for pair in forward if pair[0].encode("latin-1") not in listed]
    return forward, control


def with_stored_key(forward: Pairs, strip: frozenset[str], auth: tuple[str, str],
                    extra: tuple[tuple[str, str], ...]) -> Pairs:
    """Forward headers with the provider's auth headers replaced by the stored key's, the answer
    asked for uncompressed (``uncompressed``), and the provider's required extra headers added where
    the caller did not send them."""
    out = [pair for pair in forward if pair[0] not in strip and pair[0] != "accept-encoding"]
    out.append(auth)
    out.append(IDENTITY)
    return with_extra(out, extra)


def uncompressed(forward: Pairs) -> Pairs:
    """Forward headers asking for an uncompressed answer (``accept-encoding: identity`` in place of
    the caller's): an answer to a request that carried a stored value is masked as it is relayed,
    which needs it readable chunk by chunk (docs/security.md, "Stored keys")."""
    return [*(pair for pair in forward if pair[0] != "accept-encoding"), IDENTITY]


def with_extra(forward: Pairs, extra: tuple[tuple[str, str], ...]) -> Pairs:
    """``extra`` headers added where the forwarded request does not have them already."""
    if extra:
        present = {name for name, _ in forward}
        forward = [*forward, *(pair for pair in extra if pair[0] not in present)]
    return forward


def response_headers(raw: Iterable[tuple[bytes, bytes]],
                     extra: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Upstream response headers for the client: hop-by-hop removed (with those ``connection``
    names), names lower-cased, ``extra`` added."""
    out = []
    listed: set[bytes] = set()
    for name, value in raw:
        lower = name.lower()
        if lower not in RESPONSE_DROP:
            out.append((lower, value))
        elif lower == b"connection":
            listed |= connection_options(value)
    if listed:
        out = [pair for pair in out if pair[0] not in listed]
    out.extend(extra)
    return out
