"""The network's condition per camera in /metrics (ingest/network.py figures, via the feed status).

Read from the catalog's status rows at most every NETWORK_TTL_S (one query for all cameras; the
monitors rewrite them every 2 s anyway), so a scrape every few seconds costs no more.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core.clock import Clock
from reports.weakest_links import link_score
from storage.catalog import Catalog

__all__ = ["NETWORK_TTL_S", "NetworkCollector"]

NETWORK_TTL_S = 5.0


class NetworkCollector(Collector):
    def __init__(self, catalog: Catalog, clock: Clock) -> None:
        self.catalog, self.clock = catalog, clock
        self._cache: tuple[float, dict[str, dict[str, Any]]] | None = None
        self._lock = threading.Lock()

    def _figures(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            now = self.clock.monotonic()
            if self._cache is None or now - self._cache[0] >= NETWORK_TTL_S:
                out = {}
                for st in self.catalog.all_status():
                    net = st.figures.get("network") if isinstance(st.figures, dict) else None
                    if isinstance(net, dict):
                        out[st.camera_id] = net
                self._cache = (now, out)
            return self._cache[1]

    def collect(self) -> Iterator[Metric]:
        try:
            figures = self._figures()
        except Exception:  # noqa: BLE001 - a catalog hiccup must not break the scrape
            return
        gauges = {
            "reconnects_per_hour": GaugeMetricFamily(
                "vigil_feed_reconnects_per_hour", "reconnects in the last hour, per hour", labels=["camera"]
            ),
            "stalled_s": GaugeMetricFamily(
                "vigil_feed_stalled_last_hour_seconds", "seconds without video (gaps > 1 s) in the last hour", labels=["camera"]
            ),
            "delivery_ratio": GaugeMetricFamily(
                "vigil_feed_delivery_ratio", "frames delivered / the camera's nominal rate, last minute", labels=["camera"]
            ),
            "bitrate_ratio": GaugeMetricFamily(
                "vigil_feed_bitrate_ratio", "bitrate of the last minute / the camera's own baseline", labels=["camera"]
            ),
            "jitter_ms": GaugeMetricFamily(
                "vigil_feed_jitter_seconds", "packet arrival jitter (RFC 3550 estimator over frames)", labels=["camera"]
            ),
        }
        stalled_total = CounterMetricFamily(
            "vigil_feed_stalled_seconds", "seconds without video since the monitor started", labels=["camera"]
        )
        lost = CounterMetricFamily("vigil_feed_rtp_lost_packets", "RTP packets lost (UDP cameras)", labels=["camera"])
        score = GaugeMetricFamily("vigil_feed_link_score", "weakest-links score, higher is weaker", labels=["camera"])
        for cid, n in sorted(figures.items()):
            for key, g in gauges.items():
                v = n.get(key)
                if v is not None:
                    g.add_metric([cid], float(v) / 1000.0 if key == "jitter_ms" else float(v))
            if n.get("stalled_total_s") is not None:
                stalled_total.add_metric([cid], float(n["stalled_total_s"]))
            if n.get("rtp_lost") is not None:
                lost.add_metric([cid], float(n["rtp_lost"]))
            score.add_metric([cid], link_score(n))
        yield from gauges.values()
        yield from (stalled_total, lost, score)
