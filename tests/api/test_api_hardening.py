"""The penetration test's smaller findings, each as the request that used to get through."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from fastapi.testclient import TestClient

from api.dependencies import KEY_TTL_S
from api.signing import MAX_TTL_S
from storage.audit_log import list_audit
from storage.server_secrets import server_secret
from tests.api.conftest import CAMERA_PASSWORD, T0, ApiEnv, camera_url, make_env
from harness.fakes import FakeClock


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "/var/lib/vigil/snapshot.jpg",
        "concat:/a.mp4|/b.mp4",
        "tcp://10.0.0.5:554",
        "http://10.0.0.1:8080/admin",
        "https://metadata.internal/latest",
        "rtsp:///no-host",
    ],
)
def test_camera_urls_other_than_rtsp_are_refused(env: ApiEnv, client: TestClient, url: str) -> None:
    h = env.auth("admin")
    r = client.post("/api/cameras", json={"id": "x1", "url": url}, headers=h)
    assert r.status_code == 422, r.text
    env.add_camera("cam1")
    r = client.patch("/api/cameras/cam1", json={"health_url": url}, headers=h)
    assert r.status_code == 422, r.text
    assert env.catalog.get_camera("x1") is None


def test_an_operator_may_allow_more_schemes(tmp_path: Path) -> None:
    e = make_env(tmp_path / "e")
    e.ctx.settings.security.camera_url_schemes = ["rtsp", "rtsps", "http"]
    with e.client() as c:
        r = c.post("/api/cameras", json={"id": "web", "url": "http://10.0.0.1/cam.m3u8"}, headers=e.auth("admin"))
        assert r.status_code == 201, r.text
        r = c.post("/api/cameras", json={"id": "f", "url": "file:///etc/passwd"}, headers=e.auth("admin"))
        assert r.status_code == 422


def test_out_of_range_numbers_are_422(env: ApiEnv, client: TestClient) -> None:
    env.add_camera("cam1")
    h = env.auth("admin")
    r = client.delete("/api/cameras/cam1/holds/25471903420470206464", headers=h)
    assert r.status_code == 422, r.text
    r = client.delete("/api/cameras/cam1/holds/-1", headers=h)
    assert r.status_code == 422, r.text
    r = client.get("/api/events/stream", headers={**h, "Last-Event-ID": "9" * 40}, params={"max_s": 0})
    assert r.status_code == 422, r.text
    # a normal resume still streams
    with client.stream("GET", "/api/events/stream", headers={**h, "Last-Event-ID": "0"}, params={"max_s": 0}) as s:
        assert s.status_code == 200


def test_infinite_and_nan_numbers_are_422(env: ApiEnv, client: TestClient) -> None:
    """Python's JSON reads `Infinity` and `NaN`; each body that takes a number refuses them with a
    sentence (a threshold of Infinity switched a camera's check off; an endless hold was a 500)."""
    env.add_camera("cam1")
    h = {**env.auth("admin"), "Content-Type": "application/json"}
    cases = [
        ("PATCH", "/api/cameras/cam1", '{"health": {"freeze_after_s": Infinity}}'),
        ("PATCH", "/api/cameras/cam1", '{"health": {"sample_interval_s": Infinity}}'),
        ("PATCH", "/api/cameras/cam1", '{"location": {"lat": NaN, "lon": 1}}'),
        ("POST", "/api/cameras", '{"id": "cam2", "url": "rtsp://h/x", "health": {"stall_timeout_s": Infinity}}'),
        ("POST", "/api/cameras/cam1/holds", '{"start": 0, "end": Infinity, "reason": "case 1"}'),
        ("POST", "/api/incidents", '{"name": "x", "start": 0, "end": Infinity}'),
        ("POST", "/api/incidents", '{"name": "x", "start": 0, "end": 60, "near": {"lat": 0, "lon": 0, "radius_m": Infinity}}'),
    ]
    for method, path, body in cases:
        r = client.request(method, path, content=body, headers=h)
        assert r.status_code == 422, (path, body, r.status_code, r.text)
        assert isinstance(r.json()["detail"], str) and r.json()["detail"], r.text
    stored = env.catalog.get_camera("cam1").options.health
    assert stored is None or stored.model_dump(exclude_none=True) == {}, stored


def test_status_state_must_be_a_state(env: ApiEnv, client: TestClient) -> None:
    h = env.auth("viewer")
    r = client.get("/api/status", params={"state": "bogus"}, headers=h)
    assert r.status_code == 422 and "bogus" in r.json()["detail"], r.text
    assert client.get("/api/status", params={"state": "online"}, headers=h).status_code == 200


def test_no_swagger_from_a_cdn(client: TestClient) -> None:
    for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        assert client.get(path).status_code == 404
    assert client.get("/openapi.json").status_code == 200


def test_failed_keys_are_rate_limited_per_address(tmp_path: Path) -> None:
    clock = FakeClock(T0 / 1e6)
    e = make_env(tmp_path / "rl", clock=clock)
    with e.client() as c:
        good = e.auth("viewer")
        assert c.get("/api/status", headers=good).status_code == 200  # cached from here on
        codes = [
            c.get("/api/status", headers={"Authorization": f"Bearer vgl_{i:012x}_guess"}).status_code
            for i in range(60)
        ]
        assert codes[:20] == [401] * 20 and set(codes[25:]) == {429}, codes
        r = c.get("/api/status", headers={"Authorization": "Bearer vgl_000000000000_guess"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        # a POST with a guessed key is refused before its body too
        r = c.post("/api/cameras", json={"id": "a", "url": "rtsp://h/x"}, headers={"Authorization": "Bearer nope_x"})
        assert r.status_code == 429
        # the known poller from the same address keeps its view, also once its cache entry expired
        assert c.get("/api/status", headers=good).status_code == 200
        clock.advance(KEY_TTL_S + 0.1)  # (which refills 2 guesses)
        guesses = [c.get("/api/status", headers={"Authorization": f"Bearer vgl_{i}_g"}).status_code for i in range(5)]
        assert guesses[-1] == 429, guesses
        assert c.get("/api/status", headers=good).status_code == 200
        clock.advance(5)  # refilled at 1 per second
        assert c.get("/api/status", headers={"Authorization": "Bearer vgl_0_guess"}).status_code == 401


def test_signed_urls_are_bounded_and_held_to_the_signers_role(tmp_path: Path) -> None:
    """Someone holding the signing secret (once readable in the catalog) builds URLs by hand."""
    clock = FakeClock(T0 / 1e6)
    e = make_env(tmp_path / "sig", clock=clock)
    e.add_camera("cam1")
    signer = e.app.state.services.signer
    viewer_kid = e.keys["viewer"].split("_")[1]
    investigator_kid = e.keys["investigator"].split("_")[1]
    path = "/api/cameras/cam1/playback.m3u8"
    params = {"start": str(T0 // 10**6), "end": str(T0 // 10**6 + 60)}
    now = int(clock.now())
    with e.client() as c:
        ok = signer.sign(path, params, investigator_kid, now + 3600)
        assert c.get(ok).status_code not in (401, 403)
        year = signer.sign(path, params, investigator_kid, now + 365 * 86400)
        assert c.get(year).status_code == 401
        assert c.get(signer.sign(path, params, investigator_kid, now + MAX_TTL_S)).status_code not in (401, 403)
        as_viewer = signer.sign(path, params, viewer_kid, now + 600)
        assert c.get(as_viewer).status_code == 403
        # what the API hands out stays within the bound
        r = c.get("/api/cameras/cam1/playback-url", params={**params, "ttl_s": 86400}, headers=e.auth("investigator"))
        exp = int(dict(parse_qsl(urlsplit(r.json()["url"]).query))["exp"])
        assert exp - now <= MAX_TTL_S + 60


def test_signing_secret_and_passwords_are_sealed_in_the_catalog(env: ApiEnv) -> None:
    env.add_camera("cam1")
    secret = server_secret(env.catalog)
    db = Path(env.catalog.url.split("///", 1)[1])
    env.catalog.engine.dispose()
    raw = b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))
    assert secret.hex().encode() not in raw
    assert CAMERA_PASSWORD.encode() not in raw
    assert env.catalog.get_camera("cam1", unseal=True).source_url == camera_url(path="/cam1")  # type: ignore[union-attr]


def test_camera_change_is_audited_with_old_and_new_values(env: ApiEnv, client: TestClient) -> None:
    h = env.auth("admin")
    client.post("/api/cameras", json={"id": "gate", "url": camera_url(), "name": "Gate"}, headers=h)
    r = client.patch(
        "/api/cameras/gate",
        json={"name": "North gate", "url": camera_url(host="10.9.9.9").replace(CAMERA_PASSWORD, "N3w-pa55-ZZ")},
        headers=h,
    )
    assert r.status_code == 200, r.text
    entry = [a for a in list_audit(env.catalog) if a.action == "camera.update"][-1]
    d = entry.detail
    assert d["old"]["name"] == "Gate" and d["new"]["name"] == "North gate"
    assert d["old"]["url"] == "rtsp://10.1.2.3:554/stream1" and d["new"]["url"] == "rtsp://10.9.9.9:554/stream1"
    assert (d["old"]["password"], d["new"]["password"]) == ("***", "*** (new)")
    text = str(d)
    assert CAMERA_PASSWORD not in text and "N3w-pa55-ZZ" not in text


def test_live_viewers_get_only_the_live_window(tmp_path: Path) -> None:
    """A viewer's live playlist links each fragment of the window, and its object's header, by a
    signed URL of its own (`part`): a viewer gets those bytes and nothing of the older footage at
    the start of the segment object; the URLs stay the same from one reload to the next."""
    from storage.catalog import Fragment, Segment
    from storage.keys import segment_key

    clock = FakeClock(T0 / 1e6 + 100)
    e = make_env(tmp_path / "live", clock=clock)
    e.add_camera("cam1")
    header = b"H" * 100
    frags = [Fragment(100 + i * 1000, 1000, i * 2_000_000, 2_000_000) for i in range(30)]  # 60 s, 2 s GOPs
    start = T0 + 40_000_000
    key = segment_key("cam1", start)
    e.ctx.store.put_bytes(key, header + b"".join(bytes([i]) * 1000 for i in range(30)))
    e.catalog.add_segment(
        Segment("cam1", "run1", 0, start, start + 60_000_000, 0, 100 + 30_000, 100, "h264", 1500, frags,
                state="stored", stored_us=start + 60_000_000)
    )
    with e.client() as c:
        r = c.get("/api/cameras/cam1/live.m3u8", headers=e.auth("viewer"))
        assert r.status_code == 200, r.text
        assert "#EXT-X-BYTERANGE" not in r.text, "each fragment is its own resource"
        uris = [line for line in r.text.splitlines() if line.startswith("/api/media/")]
        init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', r.text)
        assert init is not None and len(uris) >= 6
        assert c.get("/api/cameras/cam1/live.m3u8", headers=e.auth("viewer")).text == r.text, "stable across reloads"
        parts = [dict(parse_qsl(urlsplit(u).query))["part"] for u in uris]
        assert int(parts[0].split("-")[0]) >= 100 + 20 * 1000, "the window holds only the newest ≥ 12 s"
        header_got = c.get(init.group(1))
        assert header_got.status_code == 200 and header_got.content == header
        newest = c.get(uris[-1])
        assert newest.status_code == 200 and newest.content == bytes([29]) * 1000, "exactly the fragment's bytes"
        ranged = c.get(uris[-1], headers={"Range": "bytes=10-19"})  # a range is within the part
        assert ranged.status_code == 206 and ranged.content == bytes([29]) * 10
        assert ranged.headers["content-range"] == "bytes 10-19/1000"
        older = uris[-1].replace(f"part={parts[-1]}", "part=100-1099")  # the past: the signature no longer matches
        assert c.get(older).status_code in (401, 403)
        # an investigator's Bearer key reaches everything
        assert c.get(f"/api/media/{key}", headers=e.auth("investigator")).status_code == 200
        assert c.get(f"/api/media/{key}", headers=e.auth("viewer")).status_code == 403


def test_live_media_with_the_pages_bearer_key_too(tmp_path: Path) -> None:
    """The page sends its viewer key along with the signed live URL: the signature still counts."""
    from storage.catalog import Fragment, Segment
    from storage.keys import segment_key

    clock = FakeClock(T0 / 1e6 + 20)
    e = make_env(tmp_path / "live2", clock=clock)
    e.add_camera("cam1")
    key = segment_key("cam1", T0)
    e.ctx.store.put_bytes(key, b"H" * 100 + b"x" * 8000)
    frags = [Fragment(100 + i * 1000, 1000, i * 2_000_000, 2_000_000) for i in range(8)]
    e.catalog.add_segment(Segment("cam1", "r", 0, T0, T0 + 16_000_000, 0, 8100, 100, "h264", 400, frags,
                                  state="stored", stored_us=T0 + 16_000_000))  # fmt: skip
    with e.client() as c:
        h = e.auth("viewer")
        uri = next(x for x in c.get("/api/cameras/cam1/live.m3u8", headers=h).text.splitlines() if x.startswith("/api/"))
        assert c.get(uri, headers={**h, "Range": "bytes=0-99"}).status_code == 206
        forged = uri.replace("part=", "part=1")  # the signature no longer matches
        assert c.get(forged, headers={**h, "Range": "bytes=0-99"}).status_code == 403


def test_a_health_url_cannot_change_the_login_unseen(env: ApiEnv, client: TestClient) -> None:
    """A substream URL carries the camera's one login: another password in it is refused (it used to
    replace the stored password silently — the main stream's login too — with an empty audit entry)."""
    h = env.auth("admin")
    assert client.post("/api/cameras", json={"id": "gate", "url": camera_url()}, headers=h).status_code == 201
    other = camera_url(path="/sub").replace(CAMERA_PASSWORD, "0ther-pa55-QQ")
    r = client.patch("/api/cameras/gate", json={"health_url": other}, headers=h)
    assert r.status_code == 422, r.text
    assert "0ther-pa55-QQ" not in r.text
    assert env.catalog.get_camera("gate", unseal=True).password == CAMERA_PASSWORD  # type: ignore[union-attr]
    # the same login in the substream URL is no change of it
    r = client.patch("/api/cameras/gate", json={"health_url": camera_url(path="/sub")}, headers=h)
    assert r.status_code == 200 and r.json()["health_url"] == "rtsp://10.1.2.3:554/sub", r.text
    assert env.catalog.get_camera("gate", unseal=True).password == CAMERA_PASSWORD  # type: ignore[union-attr]
    d = [a for a in list_audit(env.catalog) if a.action == "camera.update"][-1].detail
    assert d["new"] == {"health_url": "rtsp://10.1.2.3:554/sub"} and "password" not in d["new"]
    # a camera without a password takes the substream's, and the audit says so
    assert client.post("/api/cameras", json={"id": "yard", "url": "rtsp://10.1.2.4/main"}, headers=h).status_code == 201
    r = client.patch("/api/cameras/yard", json={"health_url": camera_url(path="/sub")}, headers=h)
    assert r.status_code == 200 and r.json()["password_set"], r.text
    d = [a for a in list_audit(env.catalog) if a.action == "camera.update"][-1].detail
    assert (d["old"]["password"], d["new"]["password"]) == (None, "*** (new)")
