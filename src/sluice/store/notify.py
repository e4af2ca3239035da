"""PostgreSQL LISTEN on a dedicated connection: the fast path of change propagation.

Every ``record_change`` sends ``NOTIFY sluice_changes`` inside its transaction, so PostgreSQL
delivers it at commit. The listener only says "read the feed now": what changed, and whether
anything was missed, is the feed's business (``proxy/feed.py``), so a notification lost while the
connection was down costs speed, never a change. After every (re)connect it also says "read now".
The connection is checked every ``CHECK_EVERY_S`` (a silently dropped one sends no termination).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import structlog

from sluice.store.queries import CHANGES_CHANNEL

log = structlog.get_logger("sluice.store")

APPLICATION_NAME = "sluice-change-listener"  # how the connection shows in pg_stat_activity
CHECK_EVERY_S = 10.0
CONNECT_TIMEOUT_S = 5.0
RETRY_AFTER_S = (0.2, 0.5, 1.0, 2.0, 5.0)  # back-off between reconnects, last one repeats


class ChangeListener:
    def __init__(self, url: str, on_notify: Callable[[], None]) -> None:
        self.url = url  # postgresql://... (asyncpg takes the user-facing URL as it is)
        self.on_notify = on_notify
        self.connected = False
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="sluice-change-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 — stopping; its errors were logged
                pass
            self._task = None

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self._listen()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 — driver messages can carry the URL: type only
                if failures == 0:
                    log.warning("change listener disconnected; the feed poll carries on",
                                error=type(exc).__name__)
                failures += 1
            self.connected = False
            await asyncio.sleep(RETRY_AFTER_S[min(failures, len(RETRY_AFTER_S) - 1)])

    async def _listen(self) -> None:
        import asyncpg  # here, not at the top: a SQLite process never loads it (~3 MiB resident)

        conn: Any = await asyncpg.connect(self.url, timeout=CONNECT_TIMEOUT_S,
                                          server_settings={"application_name": APPLICATION_NAME})
        lost = asyncio.Event()
        try:
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(CHANGES_CHANNEL, lambda *_args: self.on_notify())
            self.connected = True
            self.on_notify()  # anything committed while we were not listening
            while not lost.is_set():
                try:
                    async with asyncio.timeout(CHECK_EVERY_S):
                        await lost.wait()
                except TimeoutError:
                    await conn.execute("SELECT 1", timeout=CONNECT_TIMEOUT_S)
            raise ConnectionError("listener connection closed")
        finally:
            conn.terminate()
