"""Prometheus figures of the operations side: webhook deliveries and open tickets, from the catalog
(cached a few seconds: a scrape every 15 s costs two small queries)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import sqlalchemy as sa
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core.clock import Clock
from core.settings import Settings
from storage.catalog import Catalog
from storage.catalog.tables import tickets
from storage.outbox import WebhookFigures, webhook_figures

__all__ = ["OperationsCollector"]

TTL_S = 5.0


class OperationsCollector(Collector):
    def __init__(self, settings: Settings, catalog: Catalog, clock: Clock) -> None:
        self.names = [w.key for w in settings.notifications.webhooks]
        self.catalog, self.clock = catalog, clock
        self._cache: tuple[float, list[WebhookFigures], dict[tuple[str, str], int]] | None = None
        self._lock = threading.Lock()

    def _read(self) -> tuple[list[WebhookFigures], dict[tuple[str, str], int]]:
        with self._lock:
            now = self.clock.monotonic()
            if self._cache is None or now - self._cache[0] >= TTL_S:
                figures = webhook_figures(self.catalog, self.names)
                q = sa.select(tickets.c.fault, sa.case((tickets.c.acked_us.is_(None), "no"), else_="yes"), sa.func.count())
                q = q.where(tickets.c.status == "open").group_by(tickets.c.fault, tickets.c.acked_us.is_(None))
                with self.catalog.engine.connect() as c:
                    open_ = {(str(r[0]), str(r[1])): int(r[2]) for r in c.execute(q)}
                self._cache = (now, figures, open_)
            return self._cache[1], self._cache[2]

    def collect(self) -> Iterator[Metric]:
        figures, open_ = self._read()
        now_s = self.clock.now()
        pending = GaugeMetricFamily("vigil_webhook_pending", "deliveries waiting in the outbox", labels=["webhook"])
        oldest = GaugeMetricFamily(
            "vigil_webhook_oldest_pending_seconds", "age of the oldest waiting delivery (0: none)", labels=["webhook"]
        )
        delivered = CounterMetricFamily("vigil_webhook_delivered", "deliveries acknowledged by the receiver", labels=["webhook"])
        failures = CounterMetricFamily("vigil_webhook_failures", "failed delivery attempts", labels=["webhook"])
        last_ok = GaugeMetricFamily(
            "vigil_webhook_last_success_timestamp_seconds", "when a delivery last succeeded (0: never)", labels=["webhook"]
        )
        for f in figures:
            pending.add_metric([f.name], f.pending)
            oldest.add_metric([f.name], 0.0 if f.oldest_pending_us is None else max(0.0, now_s - f.oldest_pending_us / 1e6))
            delivered.add_metric([f.name], f.delivered)
            failures.add_metric([f.name], f.failures)
            last_ok.add_metric([f.name], 0.0 if f.last_ok_us is None else f.last_ok_us / 1e6)
        yield from (pending, oldest, delivered, failures, last_ok)
        tk = GaugeMetricFamily("vigil_tickets_open", "open fault tickets", labels=["fault", "acknowledged"])
        for fault in ("offline", "frozen", "black", "tampered"):
            for acked in ("no", "yes"):
                open_.setdefault((fault, acked), 0)
        for (fault, acked), n in sorted(open_.items()):
            tk.add_metric([fault, acked], n)
        yield tk
