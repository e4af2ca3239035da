"""The error tree in errors.py: its drawing, the data-plane catalogue, and who may raise what."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import orjson
import pytest

from sluice import envelope, errors
from sluice.errors import ApiError, FieldErrors, GatewayError, SluiceError, ValidationError

SRC = Path(errors.__file__).parent
# What the wire and the metrics saw before the catalogue existed (status, internalCode, metrics kind):
# written out here, not derived, so a changed entry fails.
CATALOGUE = {
    "GatewayError": (500, 2000, "internal"),
    "GatewayNotFound": (404, 2001, "not_found"),
    "UnforwardableRequest": (400, 2002, "unknown_provider"),
    "GatewayRateLimited": (429, 2003, "gateway_rate_limit"),
    "KeyRateLimited": (429, 2004, "key_rate_limit"),
    "NoProviderKey": (401, 2005, "auth"),
    "UnknownAlias": (400, 2006, "unknown_alias"),
    "UpstreamTimeout": (504, 2007, "timeout"),
    "UpstreamUnreachable": (502, 2008, "unreachable"),
    "GatewayAuthFailed": (401, 2009, "auth"),
    "RequestTooLarge": (413, 2010, "body_too_large"),
    "UnrelayableUpstreamError": (502, 2000, "internal"),
    "UpgradeRefused": (400, 2011, "upgrade"),
    "Untranslatable": (400, 2012, "untranslatable"),
    "CompatPathNotServed": (404, 2002, "unknown_provider"),
    "CompatMethodNotAllowed": (405, 2002, "unknown_provider"),
    "InvalidSteps": (400, 2002, "invalid_steps"),
    "UnknownRoute": (400, 2013, "unknown_route"),
    "RouteRateLimited": (429, 2014, "route_limit"),
    "UniversalMethodNotAllowed": (405, 2002, "invalid_steps"),
}


def _classes() -> dict[str, type[BaseException]]:
    return {name: cls for name, cls in inspect.getmembers(errors, inspect.isclass)
            if issubclass(cls, BaseException) and cls.__module__ == errors.__name__}


def test_the_drawing_shows_every_error_under_its_parent() -> None:
    drawn: dict[str, str] = {}
    parents: list[str] = []
    for line in (errors.__doc__ or "").splitlines():
        match = re.match(r"^    ([│ ]*)(?:[├└]── )?([A-Z]\w+)\b", line)
        if not match:
            continue
        depth = len(match.group(1)) // 4 + (1 if "──" in line else 0)
        parents[depth:] = [match.group(2)]
        if depth:
            drawn[match.group(2)] = parents[depth - 1]
    actual = {name: cls.__bases__[0].__name__ for name, cls in _classes().items() if name != "SluiceError"}
    assert drawn == actual


def test_every_error_is_one_of_ours_and_field_errors_is_a_validation_error() -> None:
    assert all(issubclass(cls, SluiceError) for cls in _classes().values())
    assert issubclass(FieldErrors, ValidationError) and issubclass(FieldErrors, ApiError)


def test_the_gateway_catalogue() -> None:
    catalogue = {name: cls for name, cls in _classes().items() if issubclass(cls, GatewayError)}
    assert {name: (cls.status, cls.internal_code, cls.reason) for name, cls in catalogue.items()} == CATALOGUE
    for name, cls in catalogue.items():
        error = cls()  # type: ignore[call-arg]
        assert error.message == cls.default_message and error.headers == {}, name
        body = orjson.loads(envelope.gateway_error_body(error.status, error.internal_code, error.message))
        assert body["internalCode"] == cls.internal_code and body["httpCode"] == cls.status, name
    limited = errors.KeyRateLimited("rate limit exceeded for stored key 'k'", {"retry-after": "3"})
    assert limited.message == "rate limit exceeded for stored key 'k'"
    assert limited.headers == {"retry-after": "3"}


def test_field_errors_render_every_field() -> None:
    exc = FieldErrors([(["body", "alias"], "body.alias: field required"), (["body", 0, "name"], "too long")])
    response = envelope.error(exc)
    assert response.status_code == 400
    assert orjson.loads(response.body)["errors"] == [
        {"code": 7001, "message": "body.alias: field required", "path": ["body", "alias"]},
        {"code": 7001, "message": "too long", "path": ["body", 0, "name"]}]


def test_data_plane_raises_named_errors_only() -> None:
    """A refusal is raised by name (its class), never built from a status and code at the raise site."""
    for path in (SRC / "proxy").glob("*.py"):
        assert not re.search(r"GatewayError\(\s*\d", path.read_text()), path


@pytest.mark.parametrize("module", sorted(p.name for p in (SRC / "control").glob("*.py")))
def test_no_handler_knows_the_database_driver_errors(module: str) -> None:
    """The store turns a taken unique key into Conflict (store/queries.py); handlers never see
    sqlalchemy.exc."""
    assert "sqlalchemy.exc" not in (SRC / "control" / module).read_text()
