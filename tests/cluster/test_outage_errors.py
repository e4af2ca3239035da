"""Which database errors are an outage (answered 503, retried) and which are bugs or constraints."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, IntegrityError

from sluice.store.database import is_outage


def test_outage_errors_are_told_apart_from_bugs_and_constraints() -> None:
    assert is_outage(ConnectionRefusedError(111, "refused"))
    lost = DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True)
    assert is_outage(lost)
    try:
        raise RuntimeError("wrapped") from OSError(101, "Network is unreachable")
    except RuntimeError as exc:
        assert is_outage(exc)
    assert is_outage(OSError(113, "No route to host"))
    assert is_outage(TimeoutError())
    assert not is_outage(PermissionError(13, "Permission denied"))  # a file, not the database
    assert not is_outage(IntegrityError("INSERT", {}, Exception("duplicate key")))
    assert not is_outage(ValueError("a bug"))
