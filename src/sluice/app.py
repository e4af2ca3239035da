"""Composition root: builds the services from Settings and routes each request to its surface.

    /v1/...           data plane (raw ASGI, the hot path)
    /client/v4/...    management API (Starlette)
    /healthz /readyz  liveness and readiness, no auth
    /metrics          Prometheus
    /console/...      web console: static files, a client of /client/v4 (SLUICE_CONSOLE=off: 404)
"""

from __future__ import annotations

import gc
from typing import Any

import orjson
import structlog

from sluice import envelope
from sluice.observe.endpoint import serve_metrics
from sluice.observe.observer import Observability
from sluice.providers.registry import load_catalog
from sluice.proxy.dataplane import DataPlane
from sluice.proxy.upgrade import refuse_websocket
from sluice.secrets.keycheck import check_keyring
from sluice.services import Keys, Services
from sluice.settings import Settings
from sluice.store.database import open_database

log = structlog.get_logger("sluice")

INTERNAL_ERROR = envelope.error_body([{"code": 7000, "message": "Internal Server Error"}])


class SluiceApp:
    """The ASGI application. One instance per process; state lives here, not in modules."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.services: Services | None = None
        self.dataplane: DataPlane | None = None
        self.observability: Observability | None = None
        self._management_app: Any = None
        self._console: Any = None

    async def startup(self) -> None:
        db = await open_database(self.settings.database_url)
        keys = Keys(self.settings)
        async with db.begin() as conn:
            await check_keyring(conn, keys.keyring,
                                self.settings)  # never serve with a key that opens nothing
        observability = self.observability = Observability(self.settings, db)
        self.services = Services(
            settings=self.settings, db=db, keys=keys,
            catalog=load_catalog(self.settings.upstream_overrides), observer=observability,
            cache=observability.cache, activity=observability.activity,
            on_gateway_delete=observability.on_gateway_delete,
        )
        await observability.start()
        self.dataplane = DataPlane(self.services)
        self.services.on_change.add(self.dataplane.refresh)
        observability.metrics.watch_key_health(self.services.key_health)
        if self.dataplane.limiter.health is not None:
            observability.metrics.watch_rate_limit_store(self.dataplane.limiter.health)
        await self.dataplane.start()
        tune_gc()
        log.info("sluice ready", database=db.dialect, providers=len(self.services.catalog))

    async def shutdown(self) -> None:
        if self.dataplane is not None:
            await self.dataplane.close()
        if self.observability is not None:
            await self.observability.close()  # flush buffered logs before the database closes
        if self.services is not None:
            await self.services.db.close()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            path: str = scope["path"]
            if path.startswith("/v1/"):
                await self.dataplane(scope, receive, send)  # type: ignore[misc]
            elif path == "/healthz":
                await _json(send, 200, b'{"status":"ok"}')
            elif path == "/metrics":
                await serve_metrics(scope, send, self.observability.metrics, self.settings.metrics_token)  # type: ignore[union-attr]
            elif path == "/readyz":
                await self._ready(send)
            elif path.startswith("/console") and self.settings.console == "on":
                await self.console()(scope, receive, send)
            else:
                await self._management(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await refuse_websocket(scope, receive, send)  # no surface serves WebSockets

    async def _ready(self, send: Any) -> None:
        """Ready while the database answers. Each dependency is reported; a down rate-limit store
        does not make the process unready (the data plane serves on, by the outage policy)."""
        database = await self.services.db.ping()  # type: ignore[union-attr]
        dependencies = {"database": "up" if database else "down"}
        health = self.dataplane.limiter.health if self.dataplane is not None else None
        if health is not None:
            dependencies[health.name] = "up" if health.up else "down"
        body = {"status": "ready" if database else "database unreachable", "dependencies": dependencies}
        await _json(send, 200 if database else 503, orjson.dumps(body))

    def management(self) -> Any:
        """The management API (Starlette), built on its first request: a process that only serves
        the data plane never imports it (~10 MiB of resident memory: pydantic models, routes)."""
        if self._management_app is None:
            from sluice.control.routes import management_app

            app = management_app()
            app.state.services = self.services
            self._management_app = app
        return self._management_app

    def console(self) -> Any:
        """The console's static files, loaded on its first request (like the management app)."""
        if self._console is None:
            from sluice.console.serve import Console

            self._console = Console()
        return self._console

    async def _management(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        started = False

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.management()(scope, receive, tracking_send)
        except Exception as exc:  # noqa: BLE001 — the last line of defence; never echo the message
            log.error("unhandled error", path=scope.get("path"), error=type(exc).__name__)
            if not started:
                await _json(send, 500, bytes(envelope.JSONResponse(INTERNAL_ERROR).body))

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:  # noqa: BLE001
                    await send({"type": "lifespan.startup.failed", "message": f"{type(exc).__name__}: {exc}"})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _json(send: Any, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def tune_gc() -> None:
    """Measured on the hot path: cyclic GC passes over the long-lived start-up objects (imports,
    state, pools) were a large share of per-request CPU. Freeze what exists after start-up, and
    collect the young generation less often; request garbage is mostly freed by refcounting."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def create_app(settings: Settings) -> SluiceApp:
    return SluiceApp(settings)
