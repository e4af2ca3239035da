"""BatchThread: background batches at idle CPU priority, moved back to normal while they run."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from sluice.store.batch_thread import BatchThread, can_run_in_background

pytestmark = pytest.mark.skipif(not can_run_in_background(),
                                reason="this OS or process cannot move a thread back from SCHED_IDLE")


def policy() -> int:
    return os.sched_getscheduler(0)


async def test_a_background_batch_runs_at_idle_priority_and_the_next_normal_one_does_not() -> None:
    thread = BatchThread("test-batch")
    assert await thread.submit(policy) == os.SCHED_OTHER  # the first: the thread is not known yet
    assert await thread.submit(policy, background=True) == os.SCHED_IDLE
    assert await thread.submit(policy) == os.SCHED_OTHER
    thread.shutdown()


async def test_hurry_moves_the_batch_in_flight_to_normal_priority() -> None:
    thread = BatchThread("test-batch")
    await thread.submit(policy)
    started, go_on = threading.Event(), threading.Event()

    def batch() -> tuple[int, int]:
        before = policy()
        started.set()
        go_on.wait(10)
        return before, policy()

    future = thread.submit(batch, background=True)
    await asyncio.to_thread(started.wait, 10)
    thread.hurry()
    go_on.set()
    assert await future == (os.SCHED_IDLE, os.SCHED_OTHER)
    thread.shutdown()


async def test_a_background_batch_is_hurried_after_its_patience() -> None:
    thread = BatchThread("test-batch", patience_s=0.05)
    await thread.submit(policy)

    def batch() -> tuple[int, int]:
        before = policy()
        deadline = 100
        while policy() == os.SCHED_IDLE and deadline:  # a guard, not a measurement
            threading.Event().wait(0.05)
            deadline -= 1
        return before, policy()

    assert await thread.submit(batch, background=True) == (os.SCHED_IDLE, os.SCHED_OTHER)
    assert not thread.idle
    thread.shutdown()


async def test_a_quick_background_batch_leaves_no_timer_behind() -> None:
    thread = BatchThread("test-batch", patience_s=0.05)
    await thread.submit(policy)
    assert await thread.submit(policy, background=True) == os.SCHED_IDLE
    await asyncio.sleep(0.1)  # past the patience: the timer was cancelled with the batch
    assert thread.idle  # stays idle until the next batch says otherwise
    assert await thread.submit(policy) == os.SCHED_OTHER
    thread.shutdown()


async def test_where_the_os_refuses_every_batch_runs_at_normal_priority(monkeypatch) -> None:
    from sluice.store import batch_thread

    def refuse(thread_id: int, idle: bool) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(batch_thread, "_set_policy", refuse)
    thread = BatchThread("test-batch")
    assert not thread.background_ok  # the probe found it cannot come back from idle priority
    await thread.submit(policy)
    assert await thread.submit(policy, background=True) == os.SCHED_OTHER
    assert not thread.idle
    thread.shutdown()


async def test_a_refusal_after_a_good_probe_stops_background_batches(monkeypatch) -> None:
    from sluice.store import batch_thread

    thread = BatchThread("test-batch")
    await thread.submit(policy)

    def refuse(thread_id: int, idle: bool) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(batch_thread, "_set_policy", refuse)
    assert await thread.submit(policy, background=True) == os.SCHED_OTHER  # the batch still runs
    assert not thread.background_ok and not thread.idle
    thread.shutdown()
