"""log_management limits: what a full gateway does with a new batch."""

from __future__ import annotations

from sluice.logs.retention import DEFAULT_LIMIT, DELETE_OLDEST, STOP_INSERTING, Policy, plan, policy_of


def test_room_left_inserts_everything() -> None:
    assert plan(0, 10, Policy(100, STOP_INSERTING)) == (10, 0)
    assert plan(90, 10, Policy(100, DELETE_OLDEST)) == (10, 0)


def test_stop_inserting_keeps_only_what_fits() -> None:
    assert plan(95, 10, Policy(100, STOP_INSERTING)) == (5, 0)
    assert plan(100, 10, Policy(100, STOP_INSERTING)) == (0, 0)


def test_delete_oldest_deletes_in_chunks_of_a_thousandth() -> None:
    assert plan(10_000, 1, Policy(10_000, DELETE_OLDEST)) == (1, 10)  # chunk = 0.1 % of 10,000
    assert plan(10_000, 25, Policy(10_000, DELETE_OLDEST)) == (25, 30)
    assert plan(100, 1, Policy(100, DELETE_OLDEST)) == (1, 1)  # at least one row per chunk
    assert plan(5, 200, Policy(100, DELETE_OLDEST)) == (100, 5)  # a batch bigger than the limit


def test_policy_from_gateway_settings() -> None:
    assert policy_of({}) == Policy(DEFAULT_LIMIT, STOP_INSERTING)
    assert policy_of({"log_management": 20_000, "log_management_strategy": "DELETE_OLDEST"}) == Policy(
        20_000, DELETE_OLDEST)
