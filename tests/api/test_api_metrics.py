"""`/metrics` (Prometheus text, one registry per app) and `/health` (open)."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from storage.catalog import FeedStatus
from tests.api.conftest import T0, make_env
from harness.fakes import FakeClock
from harness.recorded import RunSpec, make_recording


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics(tmp_path: Path) -> None:
    stats = {"spool_bytes": 1234.0, "upload_lag_s": 2.5, "uploaded_total": 7.0, "upload_failures_total": 1.0,
             "spool_dropped_total": 0.0}  # fmt: skip
    env = make_env(tmp_path / "a", stats=lambda: stats, clock=FakeClock(T0 / 1e6))  # statuses at T0 are fresh
    env.add_camera("a")
    env.add_camera("b")
    env.catalog.put_status(FeedStatus("a", "online", T0, T0, fps=25.0, bitrate_kbps=1999.5, reconnects=3))
    env.catalog.put_status(FeedStatus("b", "frozen", T0, T0))
    make_recording(env.ctx.store, env.catalog, "a", tmp_path / "m", [RunSpec(T0, 4, 2)])
    other = make_env(tmp_path / "b")  # a second app in the same process: its own registry
    with env.client() as c, other.client() as c2:
        c.get("/api/status", headers=env.auth("viewer"))
        c.get("/api/cameras/zz/status", headers=env.auth("viewer"))
        r = c.get("/metrics", headers=env.auth("viewer"))
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        m = samples(r.text)
        assert m[("vigil_feeds", (("state", "online"),))] == 1
        assert m[("vigil_feeds", (("state", "frozen"),))] == 1
        assert m[("vigil_feed_fps", (("camera", "a"),))] == 25.0
        assert m[("vigil_feed_bitrate_kbps", (("camera", "a"),))] == 1999.5
        assert m[("vigil_feed_reconnects_total", (("camera", "a"),))] == 3
        assert m[("vigil_feed_up", (("camera", "b"),))] == 0
        assert m[("vigil_feed_up", (("camera", "a"),))] == 1
        assert m[("vigil_feed_state", (("camera", "a"), ("state", "online")))] == 1
        assert m[("vigil_segments_stored", (("camera", "a"),))] == 2
        assert m[("vigil_spool_bytes", ())] == 1234 and m[("vigil_upload_lag_seconds", ())] == 2.5
        assert m[("vigil_uploaded_total", ())] == 7
        route = (("method", "GET"), ("route", "/api/cameras/{camera_id}/status"), ("status", "404"))
        assert m[("vigil_api_requests_total", route)] == 1
        assert m[("vigil_api_requests_total", (("method", "GET"), ("route", "/api/status"), ("status", "200")))] == 1
        m2 = samples(c2.get("/metrics", headers=other.auth("viewer")).text)
        assert ("vigil_api_requests_total", route) not in m2
        assert not any(k[0] == "vigil_spool_bytes" for k in m2)  # no uploader in that app


def test_health_is_open(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    with env.client() as c:
        r = c.get("/health")
        assert r.status_code == 200 and r.json() == {"status": "ok", "catalog": "ok", "store": "ok"}
        env.catalog.engine.dispose()
        (tmp_path / "catalog.db").unlink()
        (tmp_path / "catalog.db").mkdir()  # the catalog file is gone and cannot come back
        r = c.get("/health")
        assert r.status_code == 503 and r.json()["catalog"].startswith("unavailable")
