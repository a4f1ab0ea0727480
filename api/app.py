"""The app factory: `create_app(ctx)` builds the FastAPI app around an `ApiContext`.

No work at import time and no globals: `vigil run`, the tests and the benchmarks each build their
own app (with its own metrics registry) around their own catalog, store and clock."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

import core
from api.auth_throttle import FailedKeyThrottle
from core.validation import describe_errors
from api.dependencies import ApiContext, KeyCache, Services
from api.event_watch import EventWatcher
from api.metrics import ApiMetrics, MetricsMiddleware
from api.request_guard import GuardLimits, RequestGuard
from api.evidence_services import start_evidence
from api.routers import audit, cameras, clips, events, health, holds, keys, live, live_ws, media, metrics, recordings, report, status, web
from api.routers import network_report
from api.routers import notifications, ticket_report, tickets
from api.routers import exports, incidents, signing_keys
from api.schemas import ErrorOut
from api.signing import UrlSigner
from api.status_board import StatusBoard
from storage.server_secrets import server_secret
from playback.live import LiveIndex

__all__ = ["create_app"]

CLIP_EXPORTS_AT_ONCE = 2

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "a malformed body or header"},
    401: {"model": ErrorOut, "description": "no key, or an unknown or revoked key"},
    403: {"model": ErrorOut, "description": "the key's role is too low"},
    404: {"model": ErrorOut, "description": "unknown camera, or nothing there"},
    422: {"model": ErrorOut, "description": "invalid parameters"},
    429: {"model": ErrorOut, "description": "too many failed API keys from this address (Retry-After)"},
}

DESCRIPTION = """Records and watches a city's CCTV. See docs/design/api.md.

Send `Authorization: Bearer KEY` (roles: viewer < investigator < admin; technician = viewer + tickets);
`/health` is open.
Playlists and media also accept signed URLs (`kid`, `exp`, `sig`) handed out by the API.
Times: ISO 8601 with a zone, or epoch seconds. Ranges are half-open [start, end)."""


def _validation_message(exc: RequestValidationError) -> str:
    return describe_errors(exc.errors(), skip=("body",)) or "invalid request"


def create_app(ctx: ApiContext) -> FastAPI:
    # built in a child process while the app runs: its GIL time stays out of the event loop
    board = StatusBoard(ctx.catalog, ctx.clock, child=True)
    watcher = EventWatcher(ctx.catalog)
    services = Services(
        ctx=ctx,
        keys=KeyCache(ctx.catalog, ctx.clock),
        signer=UrlSigner(server_secret(ctx.catalog)),
        board=board,
        events=watcher,
        live=LiveIndex(ctx.catalog, ctx.spool),
        clip_slots=threading.BoundedSemaphore(CLIP_EXPORTS_AT_ONCE),
        throttle=FailedKeyThrottle(ctx.clock.monotonic),
    )
    evidence = services.extra["evidence"] = start_evidence(ctx)  # the signing key exists from the first start
    api_metrics = ApiMetrics(board, ctx.catalog, ctx.clock, ctx.stats, ctx.settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(board.start)  # the status document is ready before the first poll
        evidence.runner.start_retries(ctx.settings.evidence.upload_retry_s)  # bundles the store refused
        # Everything built so far (modules, routes, the first document: ~140k objects at 4,470
        # cameras) leaves the collector's view: a full collection of it stalls every request in
        # flight for 100-150 ms on this machine, every few seconds while statuses change.
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()  # back to normal collection (tests build many apps in one process)
            feeds = services.extra.get("live_feeds")  # api/routers/live_ws.py: live video's channels
            if feeds is not None:
                feeds.close()  # type: ignore[attr-defined]
            await watcher.stop()
            await asyncio.to_thread(board.stop)
            evidence.runner.stop()

    # No /docs or /redoc: their pages load Swagger UI / ReDoc from a public CDN, with no integrity
    # check, on the origin where keys are typed. The schema stays at /openapi.json.
    app = FastAPI(
        title="vigil", version=core.__version__, description=DESCRIPTION, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.state.services = services
    app.state.metrics = api_metrics

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_message(exc)}, status_code=422)

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> JSONResponse:  # pragma: no cover - a bug
        return JSONResponse({"detail": f"internal error ({type(exc).__name__})"}, status_code=500)

    app.include_router(health.router)
    app.include_router(web.router)  # the command-center page (api/web/)
    for r in (metrics, cameras, status, events, report, live, live_ws, recordings, clips, holds, media, keys, audit,
              tickets, ticket_report, notifications, incidents, exports, signing_keys):
        app.include_router(r.router, responses=_ERRORS)
    app.include_router(network_report.router, responses=_ERRORS)
    # The status poll goes to its handler before FastAPI's router (api/routers/status.py), inside
    # the metrics middleware so polls are counted.
    app.add_middleware(status.StatusFront)
    app.add_middleware(MetricsMiddleware, metrics=api_metrics)
    # outermost: the key and the body's size and pace are checked before anything reads the body
    api_cfg = ctx.settings.api
    app.add_middleware(
        RequestGuard,
        services=services,
        limits=GuardLimits(max_body_bytes=api_cfg.max_body_bytes, body_timeout_s=api_cfg.body_timeout_s),
    )
    return app
