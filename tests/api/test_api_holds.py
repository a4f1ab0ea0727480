"""Holds through the API: placed, listed, released — and retention respects them."""

from __future__ import annotations

from storage.retention import apply_retention
from tests.api.conftest import T0, ApiEnv
from harness.recorded import RunSpec, make_recording
from harness.fakes import FakeClock


def test_hold_protects_a_range_from_retention_until_released(env: ApiEnv) -> None:
    env.add_camera("cam1")
    make_recording(env.ctx.store, env.catalog, "cam1", env.workdir / "media", [RunSpec(T0, 6, 2)])
    segs = env.catalog.segments_for("cam1")
    assert len(segs) >= 2
    held = segs[0]
    with env.client() as c:
        r = c.post(
            "/api/cameras/cam1/holds",
            headers=env.auth("investigator"),
            json={"start": held.start_us / 1e6, "end": (held.end_us - 1) / 1e6, "reason": "case 7/2026"},
        )
        assert r.status_code == 201, r.text
        hold = r.json()
        assert hold["reason"] == "case 7/2026" and hold["created_by"]
        listed = c.get("/api/cameras/cam1/holds", headers=env.auth("investigator")).json()
        assert [h["id"] for h in listed] == [hold["id"]]
        bad = c.post(
            "/api/cameras/cam1/holds", headers=env.auth("investigator"), json={"start": 10, "end": 5, "reason": "x"}
        )
        assert bad.status_code == 422

        far_future = FakeClock(T0 / 1e6 + 400 * 86_400)
        apply_retention(env.catalog, env.ctx.store, default_days=30, clock=far_future)
        assert [s.object_key for s in env.catalog.segments_for("cam1")] == [held.object_key]

        assert c.delete(f"/api/cameras/cam1/holds/{hold['id']}", headers=env.auth("investigator")).status_code == 204
        assert c.delete(f"/api/cameras/cam1/holds/{hold['id']}", headers=env.auth("investigator")).status_code == 404
        apply_retention(env.catalog, env.ctx.store, default_days=30, clock=far_future)
        assert env.catalog.segments_for("cam1") == []
        audit = c.get("/api/audit", headers=env.auth("admin")).json()
        actions = [a["action"] for a in (audit["entries"] if isinstance(audit, dict) else audit)]
        assert "hold.create" in actions and "hold.release" in actions
