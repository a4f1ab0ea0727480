"""Cameras CRUD (admin): written to the catalog, versions move, credentials never come back."""

from __future__ import annotations

from fastapi.testclient import TestClient

from core.camera_config import CameraOptions
from core.health_config import HealthOverrides
from storage.audit_log import list_audit
from storage.catalog import cameras
from tests.api.conftest import CAMERA_PASSWORD, CAMERA_USER, ApiEnv, camera_url


def test_create_list_get_patch_delete(env: ApiEnv, client: TestClient) -> None:
    h = env.auth("admin")
    v0 = env.catalog.cameras_version()
    body = {
        "id": "north-gate",
        "url": camera_url(path="/h264?user=admin&password=" + CAMERA_PASSWORD),
        "name": "North gate",
        "tags": {"district": "north"},
        "health_url": camera_url(path="/sub"),
        "health": {"freeze_after_s": 20},
    }
    r = client.post("/api/cameras", json=body, headers=h)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == "/api/cameras/north-gate"
    out = r.json()
    # credentials split out of the URL (the catalog keeps them apart, the password sealed)
    assert out["url"] == "rtsp://10.1.2.3:554/h264?user=admin&password=***"
    assert out["health_url"] == "rtsp://10.1.2.3:554/sub"
    assert (out["username"], out["password_set"]) == (CAMERA_USER, True)
    assert out["health"] == {"freeze_after_s": 20.0}
    assert (out["tags"], out["enabled"], out["transport"]) == ({"district": "north"}, True, "tcp")
    stored = env.catalog.get_camera("north-gate")
    assert stored is not None and stored.url == "rtsp://10.1.2.3:554/h264?user=admin&password={password}"
    assert stored.password is None and CAMERA_PASSWORD not in (stored.password_sealed or "")
    assert env.catalog.get_camera("north-gate", unseal=True).source_url == body["url"]  # type: ignore[union-attr]
    assert stored.options == CameraOptions(health=HealthOverrides(freeze_after_s=20))
    v1 = env.catalog.cameras_version()
    assert v1 != v0

    assert client.post("/api/cameras", json=body, headers=h).status_code == 409
    listed = client.get("/api/cameras", headers=h).json()["cameras"]
    assert [c["id"] for c in listed] == ["north-gate"]
    assert client.get("/api/cameras/north-gate", headers=h).json() == out

    r = client.patch("/api/cameras/north-gate", json={"enabled": False, "tags": {}, "health": None}, headers=h)
    assert r.status_code == 200, r.text
    assert (r.json()["enabled"], r.json()["tags"], r.json()["health"]) == (False, {}, {})
    assert env.catalog.get_camera("north-gate", unseal=True).source_url == body["url"]  # type: ignore[union-attr]
    v2 = env.catalog.cameras_version()
    assert v2[1] > v1[1]  # the supervisor sees the change
    r = client.patch("/api/cameras/north-gate", json={"url": camera_url(host="10.9.9.9")}, headers=h)
    assert r.json()["url"] == "rtsp://10.9.9.9:554/stream1"
    assert env.catalog.get_camera("north-gate", unseal=True).source_url == camera_url(host="10.9.9.9")  # type: ignore[union-attr]
    assert env.catalog.cameras_version()[1] > v2[1]

    assert client.delete("/api/cameras/north-gate", headers=h).status_code == 204
    assert client.get("/api/cameras/north-gate", headers=h).status_code == 404
    assert client.delete("/api/cameras/north-gate", headers=h).status_code == 404
    assert env.catalog.cameras_version()[0] == 0
    # (the app's first start also audited the making of its evidence signing key)
    actions = [(a.action, a.camera_id, a.key_name) for a in list_audit(env.catalog) if a.action.startswith("camera.")]
    assert actions == [
        ("camera.create", "north-gate", "test-admin"),
        ("camera.update", "north-gate", "test-admin"),
        ("camera.update", "north-gate", "test-admin"),
        ("camera.delete", "north-gate", "test-admin"),
    ]


def test_validation(env: ApiEnv, client: TestClient) -> None:
    h = env.auth("admin")
    bad = [
        {"id": "Bad Id", "url": "rtsp://h/x"},
        {"id": "ok", "url": "not a url"},
        {"id": "ok", "url": "rtsp://h/x", "transport": "quic"},
        {"id": "ok", "url": "rtsp://h/x", "surprise": 1},
        {"id": "ok", "url": "rtsp://h/x", "health": {"freeze_after_s": "soon"}},
        {"id": "ok", "url": "rtsp://h/x", "health": {"freeze_after_s": -1}},
        {"id": "ok", "url": "rtsp://h/x", "retention_days": 0},
        {"id": "ok", "url": "rtsp://h/x", "tags": {"bad key!": "x"}},
        {"url": "rtsp://h/x"},
    ]
    for body in bad:
        r = client.post("/api/cameras", json=body, headers=h)
        assert r.status_code == 422, body
        assert isinstance(r.json()["detail"], str) and r.json()["detail"]
    env.add_camera("cam1")
    r = client.patch("/api/cameras/cam1", json={"url": None}, headers=h)
    assert r.status_code == 422 and r.json() == {"detail": "url cannot be null"}
    assert client.patch("/api/cameras/nope", json={"name": "x"}, headers=h).status_code == 404


def test_a_health_setting_the_worker_would_refuse_is_422(env: ApiEnv, client: TestClient) -> None:
    """The config file's rules: a value no worker can use never reaches the catalog."""
    h = env.auth("admin")
    env.add_camera("cam1")
    before = env.catalog.get_camera("cam1")
    for health, key in (({"freeze_after_s": -1}, "freeze_after_s"), ({"black_fraction": 1.5}, "black_fraction")):
        r = client.patch("/api/cameras/cam1", json={"health": health}, headers=h)
        assert r.status_code == 422, r.text
        assert r.json()["detail"].startswith(f"health.{key}: Input should be")
    r = client.post("/api/cameras", json={"id": "cam2", "url": camera_url(), "health": {"freeze_after_s": -1}}, headers=h)
    assert (r.status_code, r.json()["detail"]) == (422, "health.freeze_after_s: Input should be greater than 0")
    assert env.catalog.get_camera("cam2") is None
    assert env.catalog.get_camera("cam1") == before  # nothing written


def test_stored_settings_the_rules_refuse_are_named_and_kept(env: ApiEnv, client: TestClient) -> None:
    """A row written past the API: listed with empty options, kept as stored until corrected."""
    h = env.auth("admin")
    env.add_camera("cam1")
    with env.catalog.engine.begin() as c:
        c.execute(cameras.update().where(cameras.c.id == "cam1").values(options={"health": {"freeze_after_s": -1}}))
    cam = env.catalog.get_camera("cam1")
    assert cam is not None and cam.options_error == "health.freeze_after_s: Input should be greater than 0"
    assert client.patch("/api/cameras/cam1", json={"name": "Gate"}, headers=h).status_code == 200
    with env.catalog.engine.connect() as c:
        stored = c.execute(cameras.select().where(cameras.c.id == "cam1")).one()
    assert (stored.name, stored.options) == ("Gate", {"health": {"freeze_after_s": -1}})
    r = client.patch("/api/cameras/cam1", json={"health": {"freeze_after_s": 30}}, headers=h)
    assert r.status_code == 200 and r.json()["health"] == {"freeze_after_s": 30.0}
    cam = env.catalog.get_camera("cam1")
    assert cam is not None and (cam.options_error, cam.options.health.freeze_after_s) == ("", 30)


def test_status_shows_new_camera_at_once(env: ApiEnv, client: TestClient) -> None:
    h = env.auth("admin")
    assert client.get("/api/status", headers=h).json()["cameras_total"] == 0
    client.post("/api/cameras", json={"id": "c1", "url": camera_url()}, headers=h)
    doc = client.get("/api/status", headers=h).json()
    assert [(c["id"], c["state"]) for c in doc["cameras"]] == [("c1", "unknown")]


def test_the_password_watch_works(env: ApiEnv) -> None:
    """The session-wide check (conftest.LeakWatch) really sees bodies: prove it on a planted leak."""
    from fastapi import FastAPI

    from tests.api import conftest

    leaky = FastAPI()
    leaky.get("/leak")(lambda: {"url": camera_url()})
    before = len(conftest.LEAKS)
    with TestClient(conftest.LeakWatch(leaky)) as c:
        c.get("/leak")
    assert len(conftest.LEAKS) == before + 1
    del conftest.LEAKS[before:]
    assert conftest.BODIES_SEEN[0] > 0
