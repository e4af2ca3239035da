"""One definition of what a v4 error response looks like, shared by every management-API test."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx


def assert_v4_error(response: httpx.Response, status: int, code: int, *,
                    path: Sequence[str | int] | None = None, says: str | None = None) -> dict[str, Any]:
    """The response is the v4 failure envelope with this status and code; returns the first error.

    ``path``: some error names exactly this field. ``says``: some error message contains this text.
    """
    assert response.status_code == status, f"{response.status_code} != {status}: {response.text}"
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"result", "success", "errors", "messages"}, body
    assert body["result"] is None and body["success"] is False and body["messages"] == [], body
    assert body["errors"], body
    for error in body["errors"]:
        assert error["code"] == code, body
        assert isinstance(error["message"], str) and error["message"].strip(), body
        assert set(error) <= {"code", "message", "path"}, body
    if path is not None:
        assert any(e.get("path") == list(path) for e in body["errors"]), (
            f"no error with path {list(path)}: {body}")
    if says is not None:
        assert any(says in e["message"] for e in body["errors"]), f"no message mentions {says!r}: {body}"
    return body["errors"][0]


def assert_ok(response: httpx.Response) -> Any:
    """A 200 success envelope; returns ``result``."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and body["errors"] == [] and body["messages"] == [], body
    return body["result"]
