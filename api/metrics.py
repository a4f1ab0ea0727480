"""Prometheus metrics: one CollectorRegistry per app (tests make several apps in one process).

Feed figures come from the shared status document (no extra SQL per scrape); stored-segment totals
come from the catalog's running per-camera totals (one small table, not a scan of the segments),
still cached for a minute since every node's scraper asks."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.operations_metrics import OperationsCollector
from api.status_board import StatusBoard
from core.settings import Settings
from storage.catalog import Catalog
from core.clock import Clock
from core.states import ONLINE

__all__ = ["ApiMetrics", "MetricsMiddleware"]

SEGMENT_TOTALS_TTL_S = 60.0
_COUNTERS = {"uploaded_total", "upload_failures_total", "spool_dropped_total", "worker_restarts_total"}
_HELP = {
    "spool_bytes": "bytes waiting in the local spool",
    "upload_lag_s": "age of the oldest closed segment not yet uploaded, seconds",
    "uploaded_total": "segments uploaded to the object store",
    "upload_failures_total": "failed upload attempts",
    "spool_dropped_total": "segments dropped because the spool was over its budget",
    "worker_restarts_total": "worker processes restarted by the supervisor",
}
_RENAME = {"upload_lag_s": "upload_lag_seconds"}


class _VigilCollector(Collector):
    def __init__(
        self, board: StatusBoard, catalog: Catalog, clock: Clock, stats: Callable[[], dict[str, float]] | None
    ) -> None:
        self.board, self.catalog, self.clock, self.stats = board, catalog, clock, stats
        self._totals: tuple[float, dict[str, tuple[int, int]]] | None = None
        self._lock = threading.Lock()

    def _segment_totals(self) -> dict[str, tuple[int, int]]:
        with self._lock:
            now = self.clock.monotonic()
            if self._totals is None or now - self._totals[0] >= SEGMENT_TOTALS_TTL_S:
                self._totals = (now, self.catalog.segment_totals())
            return self._totals[1]

    def collect(self) -> Iterator[Metric]:
        doc = self.board.current()
        feeds = GaugeMetricFamily("vigil_feeds", "cameras per feed state", labels=["state"])
        for state, n in doc.counts().items():
            feeds.add_metric([state], n)
        yield feeds
        fps = GaugeMetricFamily("vigil_feed_fps", "measured frame rate", labels=["camera"])
        kbps = GaugeMetricFamily("vigil_feed_bitrate_kbps", "measured bitrate, kbit/s", labels=["camera"])
        rec = CounterMetricFamily("vigil_feed_reconnects", "reconnections since the worker started", labels=["camera"])
        up = GaugeMetricFamily("vigil_feed_up", "1 when the feed is online", labels=["camera"])
        # one sample per camera, its current state (unknown: no report from its worker lately)
        state = GaugeMetricFamily("vigil_feed_state", "1 for the feed's current state", labels=["camera", "state"])
        for c in doc.cameras:
            if c["fps"] is not None:
                fps.add_metric([c["id"]], c["fps"])
            if c["bitrate_kbps"] is not None:
                kbps.add_metric([c["id"]], c["bitrate_kbps"])
            rec.add_metric([c["id"]], c["reconnects"])
            up.add_metric([c["id"]], 1.0 if c["state"] == ONLINE else 0.0)
            state.add_metric([c["id"], c["state"]], 1.0)
        yield from (fps, kbps, rec, up, state)
        segs = GaugeMetricFamily("vigil_segments_stored", "segments in the object store", labels=["camera"])
        seg_bytes = GaugeMetricFamily("vigil_segments_stored_bytes", "bytes in the object store", labels=["camera"])
        for cam, (n, b) in sorted(self._segment_totals().items()):
            segs.add_metric([cam], n)
            seg_bytes.add_metric([cam], b)
        yield from (segs, seg_bytes)
        if self.stats is not None:
            try:
                figures = self.stats()
            except Exception:  # noqa: BLE001 - a broken stats source must not break the scrape
                figures = {}
            for key, value in sorted(figures.items()):
                name = "vigil_" + _RENAME.get(key, key)
                helptext = _HELP.get(key, key.replace("_", " "))
                if key in _COUNTERS:
                    yield CounterMetricFamily(name.removesuffix("_total"), helptext, value=value)
                else:
                    yield GaugeMetricFamily(name, helptext, value=value)


class ApiMetrics:
    """The registry of one app and its request instruments."""

    def __init__(
        self,
        board: StatusBoard,
        catalog: Catalog,
        clock: Clock,
        stats: Callable[[], dict[str, float]] | None,
        settings: Settings | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_VigilCollector(board, catalog, clock, stats))
        if settings is not None:
            self.registry.register(OperationsCollector(settings, catalog, clock))
        self.requests = Counter(
            "vigil_api_requests", "API requests served", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "vigil_api_request_duration_seconds",
            "API request duration (to the end of the body)",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )


class MetricsMiddleware:
    """Counts requests by route template (not raw path: camera ids would explode the labels)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - t0)
