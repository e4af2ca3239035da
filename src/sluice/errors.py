"""The one exception tree. Each error that reaches a client carries its HTTP status and code.

    SluiceError
    ├── ApiError                 management API (v4 envelope: errors[{code, message, path?}]), 500 / 7000
    │   ├── ValidationError      400 / 7001, names the field in ``path``
    │   │   └── FieldErrors      400 / 7001, several at once, each naming its field
    │   ├── NotFound             404 / 7002
    │   ├── NoRoute              404 / 7003
    │   ├── MethodNotAllowed     405 / 7005
    │   ├── Conflict             409 / 7009 (+ x-should-retry: false); the store raises it for a taken key
    │   │   └── StoreNotEmpty    409 / 7009, a store still holding secrets
    │   ├── BodyTooLarge         413 / 7010 (+ connection: close: the rest is never read)
    │   ├── RequestTimeout       408 / 7000 (+ connection: close)
    │   ├── ClientClosed         400 / 7000 the client went away mid-body (nobody reads the answer)
    │   ├── AuthenticationError  401 / 10000
    │   ├── Forbidden            403 / 10000, a permission the caller lacks
    │   │   └── AccountForbidden 403 / 9109, another account's path
    │   └── ServiceUnavailable   503 / 7503 (+ retry-after): the database cannot be reached
    ├── GatewayError             data plane (AiGatewayError body), 500 / 2000; the catalogue, with the
    │   │                        ``reason`` metrics count refusals by:
    │   ├── GatewayNotFound      404 / 2001  not_found
    │   ├── UnforwardableRequest 400 / 2002  unknown_provider (unknown slug, or a path it cannot take)
    │   ├── GatewayRateLimited   429 / 2003  gateway_rate_limit
    │   ├── KeyRateLimited       429 / 2004  key_rate_limit
    │   ├── NoProviderKey        401 / 2005  auth
    │   ├── UnknownAlias         400 / 2006  unknown_alias
    │   ├── UpstreamTimeout      504 / 2007  timeout
    │   ├── UpstreamUnreachable  502 / 2008  unreachable
    │   ├── GatewayAuthFailed    401 / 2009  auth
    │   ├── RequestTooLarge      413 / 2010  body_too_large
    │   ├── UpgradeRefused       400 / 2011  upgrade (a protocol upgrade: never forwarded with a key)
    │   ├── Untranslatable       400 / 2012  untranslatable (/compat, OpenAI-shaped body naming the field)
    │   ├── UnknownRoute         400 / 2013  unknown_route (/compat: "dynamic/{name}" names no route)
    │   ├── RouteRateLimited     429 / 2014  route_limit (a route's limit without a fallback output)
    │   ├── CompatPathNotServed  404 / 2002  unknown_provider (a /compat path not served, an unknown model)
    │   ├── CompatMethodNotAllowed 405 / 2002  unknown_provider
    │   ├── UnrelayableUpstreamError 502 / 2000  internal (an upstream error body not checked for keys)
    │   ├── InvalidSteps         400 / 2002  invalid_steps (a Universal body that cannot be used))
    │   └── UniversalMethodNotAllowed 405 / 2002  invalid_steps (the Universal endpoint takes POST)
    ├── TranslationError         /compat: an OpenAI request its provider cannot take (400, names the field)
    ├── CryptoError              a secret could not be decrypted (never says why in detail)
    └── MasterKeyError           start-up refused: the master key is missing or does not open the
                                 stored secrets (the message names the setting or key file)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar


class SluiceError(Exception):
    """Root of every error Sluice raises on purpose."""


class ApiError(SluiceError):
    status = 500
    code = 7000
    default_message = "Internal Server Error"

    def __init__(self, message: str | None = None, *, path: Sequence[str | int] | None = None) -> None:
        self.message = message or self.default_message
        self.path = list(path) if path is not None else None
        super().__init__(self.message)

    @property
    def headers(self) -> dict[str, str]:
        return {}


class ValidationError(ApiError):
    status, code, default_message = 400, 7001, "Input Validation Error"


class NotFound(ApiError):
    status, code, default_message = 404, 7002, "Not Found"


class NoRoute(ApiError):
    status, code = 404, 7003
    default_message = "Could not route to the requested resource, perhaps your object identifier is invalid?"


class MethodNotAllowed(ApiError):
    status, code, default_message = 405, 7005, "Method not allowed"


class Conflict(ApiError):
    status, code, default_message = 409, 7009, "Resource already exists"

    @property
    def headers(self) -> dict[str, str]:
        return {"x-should-retry": "false"}


class BodyTooLarge(ApiError):
    status, code, default_message = 413, 7010, "Request body too large"

    @property
    def headers(self) -> dict[str, str]:
        return {"connection": "close"}


class RequestTimeout(ApiError):
    status, code, default_message = 408, 7000, "Request Timeout"

    @property
    def headers(self) -> dict[str, str]:
        return {"connection": "close"}


class ClientClosed(ApiError):
    status, code, default_message = 400, 7000, "The client closed the connection before the body ended"


class AuthenticationError(ApiError):
    status, code, default_message = 401, 10000, "Authentication error"


class Forbidden(ApiError):
    status, code, default_message = 403, 10000, "Authentication error"


class AccountForbidden(Forbidden):
    code, default_message = 9109, "Unauthorized to access requested resource"


class FieldErrors(ValidationError):
    """Several validation errors, each ``(path, message)``; answered as one 400 listing all."""

    def __init__(self, items: list[tuple[list[str | int], str]]) -> None:
        self.items = items
        super().__init__("; ".join(f"{'.'.join(map(str, p))}: {m}" for p, m in items))


class StoreNotEmpty(Conflict):
    default_message = "store_not_empty: the store still holds secrets; pass force=true to delete it with them"


class ServiceUnavailable(ApiError):
    """The management API cannot reach its database; the data plane keeps serving from memory."""

    status, code = 503, 7503
    default_message = "Service temporarily unavailable: the database cannot be reached; retry later"

    @property
    def headers(self) -> dict[str, str]:
        return {"retry-after": "5"}


class GatewayError(SluiceError):
    """A data-plane refusal, answered in Cloudflare's AiGatewayError shape.

    Each subclass below is one entry of the catalogue: HTTP ``status``, Cloudflare's ``internal_code``,
    the message when none is given, and ``reason``, the label metrics count refusals by
    (``Exchange.rejected_by``). Raise the subclass; the base class is the unexpected failure (500 / 2000).
    """

    status: ClassVar[int] = 500
    internal_code: ClassVar[int] = 2000
    reason: ClassVar[str] = "internal"
    default_message: ClassVar[str] = "internal gateway error"

    def __init__(self, message: str | None = None, headers: dict[str, str] | None = None,
                 body: bytes | None = None) -> None:
        self.message = message or self.default_message
        self.headers = headers or {}
        self.body = body  # another body than AiGatewayError's (/compat answers in OpenAI's error shape)
        super().__init__(self.message)


class GatewayNotFound(GatewayError):
    status, internal_code, reason, default_message = 404, 2001, "not_found", "gateway not found"


class UnforwardableRequest(GatewayError):
    """An unknown provider slug, or a path or URL the provider cannot be sent (the message says which)."""

    status, internal_code, reason, default_message = 400, 2002, "unknown_provider", "unknown provider"


class GatewayRateLimited(GatewayError):
    status, internal_code, reason, default_message = 429, 2003, "gateway_rate_limit", "rate limit exceeded"


class KeyRateLimited(GatewayError):
    status, internal_code, reason, default_message = 429, 2004, "key_rate_limit", "rate limit exceeded"


class NoProviderKey(GatewayError):
    status, internal_code, reason, default_message = 401, 2005, "auth", "no provider key"


class UnknownAlias(GatewayError):
    status, internal_code, reason = 400, 2006, "unknown_alias"
    default_message = "no stored key with this alias"


class UpstreamTimeout(GatewayError):
    status, internal_code, reason = 504, 2007, "timeout"
    default_message = "upstream timeout: the provider did not answer in time"


class UpstreamUnreachable(GatewayError):
    status, internal_code, reason = 502, 2008, "unreachable"
    default_message = "upstream unreachable: the connection to the provider failed"


class GatewayAuthFailed(GatewayError):
    status, internal_code, reason = 401, 2009, "auth"
    default_message = ("gateway authentication failed: the token is invalid, expired, not yet "
                       "valid, disabled, refused from this address (condition.request_ip), "
                       "or lacks AI Gateway Run on this account")


class RequestTooLarge(GatewayError):
    status, internal_code, reason, default_message = 413, 2010, "body_too_large", "request body too large"


class UpgradeRefused(GatewayError):
    status, internal_code, reason = 400, 2011, "upgrade"
    default_message = "protocol upgrades are not forwarded"


class Untranslatable(GatewayError):
    """/compat: an OpenAI request its provider cannot take; ``body`` is OpenAI's error shape."""

    status, internal_code, reason = 400, 2012, "untranslatable"
    default_message = "the request cannot be translated for its provider"


class CompatPathNotServed(GatewayError):
    status, internal_code, reason = 404, 2002, "unknown_provider"
    default_message = "compat: the paths are chat/completions, embeddings and models"


class CompatMethodNotAllowed(GatewayError):
    status, internal_code, reason = 405, 2002, "unknown_provider"
    default_message = "compat: wrong method (chat/completions and embeddings take POST, models GET)"


class UnrelayableUpstreamError(GatewayError):
    """An upstream error response that could not be checked for stored keys (too large, or a coding
    Sluice cannot decode), so it is not relayed; the message says why."""

    status, internal_code, reason = 502, 2000, "internal"
    default_message = "upstream error response not relayed: it could not be checked for stored keys"


class UnknownRoute(GatewayError):
    """``model: "dynamic/{name}"`` on /compat naming no route of the gateway."""

    status, internal_code, reason = 400, 2013, "unknown_route"


class RouteRateLimited(GatewayError):
    """A dynamic route's rate or budget limit without a fallback output: the route ends with 429."""

    status, internal_code, reason, default_message = 429, 2014, "route_limit", "route limit exceeded"


class InvalidSteps(GatewayError):
    """The Universal endpoint's body is not a usable array of steps; the message names the field
    (``steps[1].provider``) and says what is wrong. Nothing was forwarded."""

    status, internal_code, reason = 400, 2002, "invalid_steps"
    default_message = "the Universal endpoint takes a JSON array of steps"


class UniversalMethodNotAllowed(GatewayError):
    status, internal_code, reason = 405, 2002, "invalid_steps"
    default_message = "the Universal endpoint takes POST"


class TranslationError(SluiceError):
    """An OpenAI-format request (``/compat``) that cannot be translated for its provider: a 400 that
    names the field (``param``, as OpenAI's error body does) and says what is wrong."""

    status = 400

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = f"{field}: {message}" if field else message
        super().__init__(self.message)


class CryptoError(SluiceError):
    """A ciphertext did not authenticate under any loaded key (wrong key, tampered or moved row)."""


class MasterKeyError(SluiceError):
    """The master key this process loaded cannot open the stored secrets (or is missing for an
    initialised database). Start-up stops: a new key would make every stored key unreadable."""
