"""One management operation as the route table lists it: how it is routed and how it is documented."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

Handler = Callable[[Request], Awaitable[Response]]
Schema = dict[str, Any]

_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
_SCOPE_KEY = "sluice.endpoint"


@dataclass(frozen=True)
class Endpoint:
    """An entry of ``routes.ENDPOINTS``; the schema names are components of ``openapi_doc``."""

    method: str
    path: str  # below /client/v4, in Starlette's syntax: {token_id:hex32} picks a convertor
    handler: Handler
    id: str  # the operationId
    summary: str
    tag: str
    result: str  # component name of the result schema
    accepts: tuple[str, ...] = ()  # permission groups, one is enough (identity.permissions); () refuses all
    listed: bool = False  # the result is an array
    paged: bool = False  # an array with result_info
    body: str | None = None  # component name of the request body schema
    query: tuple[Schema, ...] = ()  # query parameters (OpenAPI parameter objects)
    errors: tuple[int, ...] = ()  # statuses beyond 401/403/404/500 (400/413 are implied by a body or query)
    bearer_only: bool = False  # an API token only; not the legacy X-Auth-Email/X-Auth-Key pair
    raw: bool = False  # 200 is a stored body as it was sent, any media type
    result_info: str = "ResultInfo"  # component name of result_info when paged
    result_key: str = "result"  # the body field holding the result ("data" / "route": envelope.ok)

    @property
    def doc_path(self) -> str:
        """The path as OpenAPI writes it: ``{name}`` without Starlette's convertor."""
        return _PARAM.sub(r"{\1}", self.path)

    @property
    def path_params(self) -> list[str]:
        return _PARAM.findall(self.path)


def bind(endpoint: Endpoint) -> Handler:
    """The entry's handler, run with the entry in the request scope (see ``routed_by``)."""
    handler = endpoint.handler

    async def handle(request: Request) -> Response:
        request.scope[_SCOPE_KEY] = endpoint
        return await handler(request)

    return handle


def routed_by(request: Request) -> Endpoint:
    """The route-table entry that routed this request."""
    endpoint: Endpoint = request.scope[_SCOPE_KEY]
    return endpoint
