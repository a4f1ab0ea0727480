"""The monitoring shipped in deploy/: the alert rules pass `promtool check rules` and their unit
test, and every metric the rules and the Grafana dashboard name exists in a real /metrics — the
app `vigil run` builds (vigil/service.py), with a webhook configured and a camera reporting."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from core.settings import load_settings
from storage.api_keys import create_key
from storage.catalog import Camera, FeedStatus
from vigil.service import Service

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "vigil-rules.yml"
DASHBOARD = DEPLOY / "grafana" / "vigil-dashboard.json"
METRIC = re.compile(r"\b(vigil_[a-z0-9_]+)")
FROM_PROMETHEUS = {"up"}  # made by Prometheus itself, not by vigil


def test_promtool_checks_and_tests_the_rules() -> None:
    r = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS: 10 rules found" in r.stdout
    r = subprocess.run(["promtool", "test", "rules", str(RULES.with_suffix(".test.yml"))], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def used_metrics() -> set[str]:
    import yaml

    exprs = [rule["expr"] for g in yaml.safe_load(RULES.read_text())["groups"] for rule in g["rules"]]
    dash = json.loads(DASHBOARD.read_text())
    exprs += [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(exprs) >= 20
    names = {m for e in exprs for m in METRIC.findall(e)}
    assert {re.sub(r"\{.*", "", e).strip() for e in exprs if e.strip().startswith("up")} <= FROM_PROMETHEUS
    return names


def test_every_metric_in_the_rules_and_dashboard_exists(tmp_path: Path) -> None:
    settings = load_settings(
        None,
        data_dir=str(tmp_path),
        catalog=f"sqlite:///{tmp_path / 'catalog.db'}",
        storage={"backend": "local", "path": str(tmp_path / "objects")},
        spool={"path": str(tmp_path / "spool")},
        notifications={"webhooks": [{"url": "http://127.0.0.1:9/hook", "secret": "x", "name": "ops"}]},
    )
    service = Service(settings)
    service.catalog.upsert_camera(Camera(id="cam1", url="rtsp://10.0.0.1/x"), 1)
    service.catalog.put_status(FeedStatus("cam1", "online", 1, 1, fps=25.0, bitrate_kbps=900.0, reconnects=1))
    key = create_key(service.catalog, "viewer", "prometheus")
    with TestClient(service.build_app()) as c:
        assert c.get("/api/status", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        text = c.get("/metrics", headers={"Authorization": f"Bearer {key}"}).text
    exposed = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    used = used_metrics()
    assert {"vigil_webhook_oldest_pending_seconds", "vigil_tickets_open", "vigil_feeds"} <= used
    missing = used - exposed
    assert not missing, f"deploy/ names metrics that /metrics does not have: {sorted(missing)}"
