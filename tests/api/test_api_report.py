"""`/api/report`: the availability report as JSON or CSV, with the API's time parsing."""

from __future__ import annotations

from pathlib import Path

from storage.catalog import Event
from tests.api.conftest import T0, make_env
from harness.recorded import us
from harness.fakes import FakeClock


def test_report_json_and_csv(tmp_path: Path) -> None:
    clock = FakeClock(T0 / 1e6 + 3600)
    env = make_env(tmp_path, clock=clock)
    env.add_camera("a", tags={"district": "north"})
    env.add_camera("b", tags={"district": "north"})
    for cam, at, state in (("a", 0, "online"), ("a", 600, "offline"), ("a", 900, "online"), ("b", 0, "online")):
        env.catalog.add_event(Event(camera_id=cam, at_us=T0 + us(at), kind="state", to_state=state))
    h = env.auth("investigator")
    with env.client() as c:
        r = c.get("/api/report", params={"from": "2024-05-01T10:00:00Z", "to": "2024-05-01T11:00:00Z"}, headers=h)
        assert r.status_code == 200, r.text
        doc = r.json()
        assert (doc["start_us"], doc["end_us"], doc["by"]) == (T0, T0 + us(3600), None)
        rows = {row["key"]: row for row in doc["rows"]}
        assert rows["a"]["offline_s"] == 300.0 and rows["a"]["outages"] == 1
        assert rows["b"]["uptime_pct"] == 100.0
        grouped = c.get("/api/report", params={"from": "1714557600", "to": "1714561200", "by": "district"},
                        headers=h).json()  # fmt: skip
        assert [row["key"] for row in grouped["rows"]] == ["north"] and grouped["rows"][0]["cameras"] == 2
        csv = c.get(
            "/api/report", params={"from": "1714557600", "to": "1714561200"}, headers={**h, "Accept": "text/csv"}
        )
        assert csv.headers["content-type"].startswith("text/csv")
        lines = csv.text.splitlines()
        assert lines[0].startswith("key,cameras,period_s,uptime_pct") and len(lines) == 3
        default = c.get("/api/report", headers=h).json()  # the last 24 h
        assert default["end_us"] - default["start_us"] == us(86400)
        assert c.get("/api/report", params={"from": "1714561200", "to": "1714557600"}, headers=h).status_code == 422
        assert c.get("/api/report", params={"from": "last week"}, headers=h).status_code == 422
