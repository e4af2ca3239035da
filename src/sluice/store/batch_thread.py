"""``BatchThread``: the one thread that writes SQLite batches (request logs), and its CPU priority.

A batch written at normal priority competes with the event loop for the gateway's core: a request
that arrives meanwhile waits for the core, and chat c=1 p99 was ~4 ms with request logs on against
~0.5 ms with them off (docs/performance.md). So a batch can be run in the background, under Linux's
SCHED_IDLE policy: the thread gets the core only when nothing else wants it, and the event loop,
woken by a request, preempts it at once.

On a core busy with requests such a thread gets almost nothing (~0.3 % of it), so a background
batch is moved back to normal priority while it runs (``hurry``): when its caller says work is
piling up, or when it has not finished after ``patience_s``. That move needs what lowering does
not — CAP_SYS_NICE, or an RLIMIT_NICE that allows the process's nice value (``ulimit -e``; Docker
``--cap-add SYS_NICE``) — so background batches are used only where a probe thread could make it;
elsewhere every batch runs at normal priority, as before, and the server says so once.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import structlog

log = structlog.get_logger("sluice.store")
T = TypeVar("T")
PATIENCE_S = 1.0


def _set_policy(thread_id: int, idle: bool) -> None:
    os.sched_setscheduler(thread_id, os.SCHED_IDLE if idle else os.SCHED_OTHER, os.sched_param(0))


def can_run_in_background() -> bool:
    """Whether a thread of this process can go to SCHED_IDLE and come back (tried on a thread of its
    own: a thread stuck at idle priority is what must never happen)."""
    if not hasattr(os, "SCHED_IDLE"):
        return False
    came_back: list[bool] = []

    def probe() -> None:
        try:
            _set_policy(0, idle=True)
            _set_policy(0, idle=False)
            came_back.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=probe, name="sluice-priority-probe")
    thread.start()
    thread.join()
    return bool(came_back)


class BatchThread:
    def __init__(self, name: str, patience_s: float = PATIENCE_S) -> None:
        self.patience_s = patience_s
        self.background_ok = can_run_in_background()
        if not self.background_ok and hasattr(os, "SCHED_IDLE"):
            log.info("request-log batches run at normal CPU priority: this process cannot move a thread "
                     "back from SCHED_IDLE (grant CAP_SYS_NICE or raise RLIMIT_NICE; docs/observability.md)")
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=name, initializer=self._started)
        self._thread_id: int | None = None
        self._idle = False

    def _started(self) -> None:
        self._thread_id = threading.get_native_id()

    def submit(self, work: Callable[[], T], *, background: bool = False) -> asyncio.Future[T]:
        """``work()`` on the thread; with ``background``, at idle priority until ``hurry``. Call it
        only when no other work is in flight (the caller's lock): the priority is the thread's."""
        loop = asyncio.get_running_loop()
        background = background and self.background_ok and self._thread_id is not None
        self._set_idle(background)
        future = loop.run_in_executor(self._executor, work)
        if background:
            timer = loop.call_later(self.patience_s, self.hurry)
            future.add_done_callback(lambda _: timer.cancel())
        return future

    def hurry(self) -> None:
        """The batch being written, if any, continues at normal priority."""
        self._set_idle(False)

    @property
    def idle(self) -> bool:
        return self._idle

    def _set_idle(self, idle: bool) -> None:
        if idle == self._idle or self._thread_id is None:
            return
        try:
            _set_policy(self._thread_id, idle)
        except OSError as exc:  # the probe said it works; if the OS refuses after all, stop trying
            self.background_ok = False
            log.warning("the log writer's CPU priority could not be changed", idle=idle, error=str(exc))
            return
        self._idle = idle

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)
