"""Observability: request logs, provider-key activity, metrics and the response cache.

``Observability`` is the one Observer the data plane sees (``services.observer``): its
``record`` fans an Exchange out to metrics, key activity and the log sink, each of which only
touches memory; the sink and the activity tracker write to the database in the background.
"""

from __future__ import annotations

import os

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from sluice.cache.keys import gateway_prefix
from sluice.cache.memory import MemoryCache
from sluice.cache.redis import RedisCache
from sluice.exchange import Exchange
from sluice.observe.activity import ActivityTracker
from sluice.observe.metrics import SYNC_S, Metrics
from sluice.observe.sink import LogSink
from sluice.settings import Settings
from sluice.store.database import Database
from sluice.store.logs import delete_gateway_logs
from sluice.tasks import Periodic

log = structlog.get_logger("sluice.observe")


class Observability:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.metrics = Metrics(settings.metrics_multiprocess_dir)
        self.sink = LogSink(db, interval_s=settings.log_flush_interval_s,
                            body_max_bytes=settings.log_body_max_bytes,
                            buffer_max_bytes=settings.log_buffer_max_bytes, on_drop=self.metrics.log_dropped)
        self.activity = ActivityTracker(db)
        self.cache: MemoryCache | RedisCache = (
            RedisCache.from_url(settings.redis_url, max_entry_bytes=settings.cache_max_bytes,
                                key_prefix=settings.redis_key_prefix, timeout_s=settings.redis_timeout_s)
            if settings.redis_url else MemoryCache(settings.cache_max_bytes))
        self._parts = (self.metrics, self.activity, self.sink)
        self._metrics_sync = Periodic("metrics-sync", SYNC_S, self._sync_metrics)

    def record(self, exchange: Exchange) -> None:
        """Never blocks, never raises: a broken observer must not break a request.

        A request refused before routing (unknown gateway or provider: ``provider`` is empty) is
        only counted: its account/gateway text is whatever the caller typed, not ours to store.
        """
        for part in self._parts if exchange.provider else (self.metrics,):
            try:
                part.record(exchange)
            except Exception as exc:  # noqa: BLE001
                log.error("observer failed", part=type(part).__name__, error=type(exc).__name__)

    async def on_gateway_delete(self, conn: AsyncConnection, account_id: str, gateway_id: str) -> None:
        """Inside the gateway-delete transaction: its logs, key activity and cached responses go too."""
        await delete_gateway_logs(conn, account_id, gateway_id)
        await self.activity.forget_gateway(conn, account_id, gateway_id)
        self.sink.forget_gateway(account_id, gateway_id)
        await self.cache.invalidate(gateway_prefix(account_id, gateway_id))

    async def start(self) -> None:
        await self.activity.start()
        await self.sink.start()
        if self.metrics.multiprocess_dir is not None:
            self._metrics_sync.start()

    async def _sync_metrics(self) -> None:
        self.metrics.sync()

    async def close(self) -> None:
        """Shutdown: everything buffered is written before the database closes."""
        await self._metrics_sync.stop()
        self.metrics.sync()
        for part in (self.sink, self.activity):
            try:
                await part.close()
            except Exception as exc:  # noqa: BLE001
                log.error("observer shutdown flush failed", part=type(part).__name__,
                          error=type(exc).__name__)
        if isinstance(self.cache, RedisCache):
            await self.cache.close()
        self.metrics.process_exited(os.getpid())
