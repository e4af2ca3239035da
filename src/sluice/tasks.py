"""Background jobs: each periodic job is one named task, kept by reference and stopped cleanly.

A failing run is logged by exception type only (messages of driver errors can carry bound values)
and the job goes on at its next tick: the database may be briefly away.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger("sluice.tasks")


class Periodic:
    def __init__(self, name: str, interval_s: float, work: Callable[[], Awaitable[None]]) -> None:
        self.name = name
        self.interval_s = interval_s
        self.work = work
        self._task: asyncio.Task | None = None
        self._woken = asyncio.Event()

    def wake(self) -> None:
        """Run the job now instead of at the end of the current interval."""
        self._woken.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Cancel the job and wait until it has stopped; never raises."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 — stopping; a failure was logged
                pass
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self.interval_s):
                    await self._woken.wait()
            except TimeoutError:
                pass
            self._woken.clear()
            try:
                await self.work()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 — the job must outlive one bad run
                log.error("background job failed", job=self.name, error=type(exc).__name__)
