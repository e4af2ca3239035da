"""Periodic: runs its job every interval, early when woken, and outlives a failing run."""

from __future__ import annotations

import asyncio

from sluice.tasks import Periodic


async def test_wake_runs_the_job_before_the_interval_ends() -> None:
    runs: list[int] = []
    ran = asyncio.Event()

    async def work() -> None:
        runs.append(1)
        ran.set()

    job = Periodic("test-job", 3600, work)
    job.start()
    await asyncio.sleep(0.02)
    assert runs == []  # the first interval has not ended
    job.wake()
    async with asyncio.timeout(10):  # a guard: without wake() the job would run in an hour
        await ran.wait()
    ran.clear()
    job.wake()
    job.wake()  # wakes before a run coalesce into one run
    async with asyncio.timeout(10):
        await ran.wait()
    await asyncio.sleep(0.02)
    assert runs == [1, 1]
    await job.stop()


async def test_a_failing_run_does_not_stop_the_job() -> None:
    runs: list[int] = []
    second = asyncio.Event()

    async def work() -> None:
        runs.append(1)
        if len(runs) == 1:
            raise RuntimeError("database away")
        second.set()

    job = Periodic("test-job", 0.01, work)
    job.start()
    async with asyncio.timeout(10):
        await second.wait()
    await job.stop()
    assert len(runs) >= 2
