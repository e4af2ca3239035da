"""The one exception tree. Each error that reaches a client carries its HTTP status and code.

    SluiceError
    ├── ApiError                 management API (v4 envelope: errors[{code, message, path?}])
    │   ├── ValidationError      400 / 7001, names the field in ``path``
    │   ├── NotFound             404 / 7002
    │   ├── NoRoute              404 / 7003
    │   ├── MethodNotAllowed     405 / 7005
    │   ├── Conflict             409 / 7009 (+ x-should-retry: false)
    │   ├── BodyTooLarge         413 / 7010 (+ connection: close: the rest is never read)
    │   ├── RequestTimeout       408 / 7000 (+ connection: close)
    │   ├── ClientClosed         400 / 7000 the client went away mid-body (nobody reads the answer)
    │   ├── AuthenticationError  401 / 10000
    │   └── Forbidden            403 / 10000 or 9109
    ├── GatewayError             data plane (AiGatewayError body: internalCode 2001..2012)
    ├── TranslationError         /compat: an OpenAI request its provider cannot take (400, names the field)
    ├── CryptoError              a secret could not be decrypted (never says why in detail)
    └── MasterKeyError           start-up refused: the master key is missing or does not open the
                                 stored secrets (the message names the setting or key file)
"""

from __future__ import annotations

from typing import Sequence


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


class StoreNotEmpty(Conflict):
    default_message = "store_not_empty: the store still holds secrets; pass force=true to delete it with them"


class GatewayError(SluiceError):
    """A data-plane refusal, answered in Cloudflare's AiGatewayError shape."""

    def __init__(self, status: int, internal_code: int, message: str, headers: dict[str, str] | None = None,
                 body: bytes | None = None):
        self.status = status
        self.internal_code = internal_code
        self.message = message
        self.headers = headers or {}
        self.body = body  # another body than AiGatewayError's (/compat answers in OpenAI's error shape)
        super().__init__(message)


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
