"""The network's condition end to end: a real `vigil run` recording real RTSP cameras (GStreamer),
one over UDP, one whose server is restarted; the figures in the status, /metrics and the weakest
links report (GET /api/reports/network)."""

from __future__ import annotations

import csv
import io
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.servers import RtspServer
from harness.vigilproc import VigilProcess, wait_until
from storage.api_keys import create_key
from storage.catalog import Catalog

pytestmark = pytest.mark.e2e  # a real vigil run and RTSP cameras

SYN = "synthetic:?w=320&h=240&fps=25&gop=25&scene=moving"


def network(cat: Catalog, cid: str) -> dict[str, Any]:
    st = cat.get_status(cid)
    return dict(st.figures.get("network") or {}) if st is not None else {}


def test_reconnects_loss_and_the_weakest_links_first(tmp_path: Path) -> None:
    srv = RtspServer({"/tcp": SYN, "/udp": SYN})
    flaky = RtspServer({"/f": SYN}, die_with_parent=False)
    cams = [
        {"id": "steady", "url": srv.url("/tcp"), "tags": {"district": "north", "uplink": "up-1"}},
        {"id": "over-udp", "url": srv.url("/udp"), "transport": "udp", "tags": {"district": "north", "uplink": "up-1"}},
        {"id": "flaky", "url": flaky.url("/f"), "tags": {"district": "south", "uplink": "up-2"}},
    ]
    v = VigilProcess(
        tmp_path, cams, workers={"processes": 1, "backoff_initial_s": 0.25, "backoff_max_s": 0.5}
    )
    try:
        with v:
            cat = v.catalog
            ids = [c["id"] for c in cams]
            wait_until(lambda: all((st := cat.get_status(c)) and st.state == "online" for c in ids), 40, what="online")
            flaky.stop()  # the camera restarts: its stream ends, it is back 3 s later
            down = time.monotonic()
            wait_until(lambda: time.monotonic() - down >= 3.0, 5, 0.1)
            flaky.start()
            wait_until(lambda: network(cat, "flaky").get("reconnects", 0) >= 1, 30, 0.2, "a reconnect counted")
            # a minute of delivery and bitrate needs ≥ 5 s of connection in it: give every camera 12 s
            wait_until(lambda: all(network(cat, c).get("delivery_ratio") is not None for c in ids), 30, 0.5, "delivery")

            f, s, u = network(cat, "flaky"), network(cat, "steady"), network(cat, "over-udp")
            assert f["reconnects_per_hour"] > 0 and f["stalled_s"] >= 1.5, f
            assert s["reconnects"] == 0 and s["stalled_s"] < 1.0, s
            assert s["transport"] == "tcp" and s["rtp_lost"] is None, s
            assert u["transport"] == "udp" and u["rtp_lost"] is not None and u["rtp_lost"] >= 0, u
            for cid, n in (("steady", s), ("over-udp", u)):
                assert n["nominal_fps"] == 25.0 and 0.8 <= n["delivery_ratio"] <= 1.2, (cid, n)
            # jitter where reads wait on the network (UDP); TCP read coalescing sleeps instead: null
            assert u["jitter_ms"] is not None and 0 <= u["jitter_ms"] < 200, u
            assert s["jitter_ms"] is None, s

            admin = {"Authorization": f"Bearer {create_key(cat, 'admin', 'net-admin')}"}
            viewer = {"Authorization": f"Bearer {create_key(cat, 'viewer', 'net-viewer')}"}
            r = httpx.get(f"{v.url}/api/reports/network", headers=admin, timeout=10)
            assert r.status_code == 200, r.text
            rows = r.json()["rows"]
            assert [x["key"] for x in rows][0] == "flaky", rows
            assert [x["score"] for x in rows] == sorted((x["score"] for x in rows), reverse=True)
            by = httpx.get(f"{v.url}/api/reports/network", params={"by": "uplink"}, headers=admin, timeout=10).json()
            assert [(x["key"], x["cameras"], x["worst_camera"]) for x in by["rows"]] == [
                ("up-2", 1, "flaky"), ("up-1", 2, by["rows"][1]["worst_camera"])
            ]
            text = httpx.get(
                f"{v.url}/api/reports/network", params={"by": "district"}, headers={**admin, "Accept": "text/csv"}, timeout=10
            ).text
            table = list(csv.DictReader(io.StringIO(text)))
            assert [x["key"] for x in table] == ["south", "north"] and table[0]["worst_camera"] == "flaky"
            assert httpx.get(f"{v.url}/api/reports/network", headers=viewer, timeout=10).status_code == 403
            tech = {"Authorization": f"Bearer {create_key(cat, 'technician', 'net-tech')}"}
            assert httpx.get(f"{v.url}/api/reports/network", headers=tech, timeout=10).status_code == 200

            metrics = httpx.get(f"{v.url}/metrics", headers=admin, timeout=10).text
            m = re.search(r'^vigil_feed_reconnects_per_hour\{camera="flaky"\} (\S+)$', metrics, re.M)
            assert m and float(m.group(1)) > 0, metrics[-2000:]
            assert re.search(r'^vigil_feed_rtp_lost_packets_total\{camera="over-udp"\} \S+$', metrics, re.M)
            assert 'vigil_feed_rtp_lost_packets_total{camera="steady"}' not in metrics
            assert re.search(r'^vigil_feed_jitter_seconds\{camera="over-udp"\} \S+$', metrics, re.M)
    finally:
        srv.stop()
        flaky.stop()
