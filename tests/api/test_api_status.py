"""`/api/status`: one shared document made by a background refresher, served as ready bytes (plain
or gzip, one weak ETag → 304), filters; one feed's detail."""

from __future__ import annotations

import gzip
import json
import time
from typing import Any
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.status_board import StatusBoard, accepts_gzip
from api.status_child import can_open_elsewhere
from storage.catalog import Camera, FeedStatus
from storage.catalog import cameras as cameras_table
from storage.catalog import feed_status as feed_table
from tests.api.conftest import T0, ApiEnv, camera_url, make_env
from harness.fakes import FakeClock


def put(env: ApiEnv, cam: str, state: str, **kw: object) -> None:
    env.catalog.put_status(FeedStatus(camera_id=cam, state=state, since_us=T0, updated_us=T0, **kw))  # type: ignore[arg-type]


def test_document_filters_and_etag(tmp_path: Path) -> None:
    clock = FakeClock(T0 / 1e6)
    env = make_env(tmp_path, clock=clock)
    env.add_camera("a", tags={"district": "north"})
    env.add_camera("b", tags={"district": "south"})
    env.add_camera("c", enabled=False)
    env.add_camera("d")
    put(env, "a", "online", fps=25.0, bitrate_kbps=2000.0, last_packet_us=T0 + 5, reconnects=2)
    put(env, "b", "frozen", reason="picture unchanged for 10 s")
    h = env.auth("viewer")
    with env.client() as c:
        r = c.get("/api/status", headers={**h, "Accept-Encoding": "identity"})
        assert r.status_code == 200 and "content-encoding" not in r.headers
        doc = r.json()
        assert doc["cameras_total"] == 4
        assert {k: v for k, v in doc["counts"].items() if v} == {"online": 1, "frozen": 1, "disabled": 1, "unknown": 1}
        a = doc["cameras"][0]
        assert a == {
            "id": "a", "name": "", "state": "online", "since_us": T0, "reason": "", "fps": 25.0,
            "bitrate_kbps": 2000.0, "last_packet_us": T0 + 5, "reconnects": 2, "updated_us": T0,
            "enabled": True, "tags": {"district": "north"},
        }  # fmt: skip
        etag = r.headers["etag"]
        assert r.headers["cache-control"] == "no-cache" and r.headers["vary"] == "Accept-Encoding"

        r2 = c.get("/api/status", headers={**h, "If-None-Match": etag})
        assert r2.status_code == 304 and r2.content == b""
        assert r2.headers["etag"] == etag and r2.headers["vary"] == "Accept-Encoding"
        assert c.get("/api/status", headers={**h, "If-None-Match": '"other"'}).status_code == 200

        only = c.get("/api/status?state=frozen&state=online", headers=h).json()
        assert [x["id"] for x in only["cameras"]] == ["a", "b"]
        assert only["counts"]["online"] == 1 and only["cameras_total"] == 2
        assert [x["id"] for x in c.get("/api/status?tag=district:south", headers=h).json()["cameras"]] == ["b"]
        assert [x["id"] for x in c.get("/api/status?tag=district", headers=h).json()["cameras"]] == ["a", "b"]
        assert [x["id"] for x in c.get("/api/status?tag=district&state=online", headers=h).json()["cameras"]] == ["a"]
        assert c.get("/api/status?state=tampered", headers=h).json()["cameras"] == []

        # a change: the refresher's next document has it, with a new ETag
        put(env, "d", "offline", reason="connection refused")
        env.app.state.services.board.refresh()
        r3 = c.get("/api/status", headers={**h, "If-None-Match": etag})
        assert r3.status_code == 200 and r3.headers["etag"] != etag
        assert r3.json()["counts"]["offline"] == 1


def _raw_get(c: TestClient, headers: dict[str, str], path: str = "/api/status") -> tuple[httpx.Response, bytes]:
    """The response and its body as sent (no transparent decoding), to check the encoding itself."""
    with c.stream("GET", path, headers=headers) as r:
        return r, b"".join(r.iter_raw())


def test_gzip_is_the_same_document_and_shares_the_etag(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    for i in range(30):
        env.add_camera(f"cam{i:02d}", tags={"zone": str(i % 3)})
        put(env, f"cam{i:02d}", "online" if i % 4 else "offline", fps=25.0)
    h = env.auth("viewer")
    with env.client() as c:
        for path in ("/api/status", "/api/status?state=offline", "/api/status?tag=zone:1"):
            plain, plain_body = _raw_get(c, {**h, "Accept-Encoding": "identity"}, path)
            gz, gz_body = _raw_get(c, {**h, "Accept-Encoding": "br, gzip;q=0.8"}, path)
            assert "content-encoding" not in plain.headers and gz.headers["content-encoding"] == "gzip"
            assert gz.headers["vary"] == plain.headers["vary"] == "Accept-Encoding"
            assert gz.headers["content-type"] == plain.headers["content-type"] == "application/json"
            body = gzip.decompress(gz_body)
            assert body == plain_body and json.loads(body)["cameras_total"] > 0
            assert len(gz_body) < len(body) and int(gz.headers["content-length"]) == len(gz_body)
            # one weak ETag for both encodings: a poller may switch encodings and still get 304s
            assert gz.headers["etag"] == plain.headers["etag"] and gz.headers["etag"].startswith('W/"')
            for enc, etag in (("identity", gz.headers["etag"]), ("gzip", plain.headers["etag"])):
                r, raw = _raw_get(c, {**h, "Accept-Encoding": enc, "If-None-Match": etag}, path)
                assert (r.status_code, raw, r.headers["vary"]) == (304, b"", "Accept-Encoding")
                assert "content-encoding" not in r.headers
        assert "content-encoding" not in _raw_get(c, {**h, "Accept-Encoding": "gzip;q=0"})[0].headers
        assert _raw_get(c, {**h, "Accept-Encoding": "*"})[0].headers["content-encoding"] == "gzip"


def test_accepts_gzip() -> None:
    assert accepts_gzip("gzip") and accepts_gzip("gzip, deflate, br") and accepts_gzip("br;q=1.0, GZIP;q=0.5")
    assert accepts_gzip("x-gzip") and accepts_gzip("*") and accepts_gzip("identity, *;q=0.1")
    assert not accepts_gzip(None) and not accepts_gzip("") and not accepts_gzip("identity")
    assert not accepts_gzip("gzip;q=0") and not accepts_gzip("br, *;q=0") and not accepts_gzip("gzip;q=x")
    assert not accepts_gzip("*, gzip;q=0")


def _wait_for(cond: Callable[[], bool], timeout_s: float) -> float:
    """Poll `cond` until true; the seconds it took (fails after `timeout_s`)."""
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < timeout_s, f"not within {timeout_s} s"
        time.sleep(0.01)
    return time.monotonic() - t0


def _two_online_cameras(env: ApiEnv, **camera_a: Any) -> tuple[int, StatusBoard]:
    """Cameras "a" (with `camera_a`'s fields) and "b", both online now; the app's board refreshing every 0.2 s."""
    env.add_camera("a", **camera_a)
    env.add_camera("b")
    now_us = int(time.time() * 1e6)
    for cam in ("a", "b"):
        env.catalog.put_status(FeedStatus(cam, "online", now_us, now_us))
    board = env.app.state.services.board
    board.interval_s = 0.2
    return now_us, board


def test_a_change_is_served_within_the_refresh_bound(tmp_path: Path) -> None:
    """Real clock and the app's own refresher: a status written by a worker shows in the document
    (full and filtered) within one refresh interval plus the refresh itself."""
    env = make_env(tmp_path)
    now_us, board = _two_online_cameras(env)
    h = env.auth("viewer")
    with env.client() as c:
        assert board.running
        etag = c.get("/api/status", headers=h).headers["etag"]
        assert c.get("/api/status?state=frozen", headers=h).json()["cameras"] == []
        t_write = time.monotonic()
        env.catalog.put_status(FeedStatus("b", "frozen", now_us + 1, int(time.time() * 1e6)))

        def seen() -> bool:
            full = c.get("/api/status", headers={**h, "If-None-Match": etag, "Accept-Encoding": "identity"})
            frozen = c.get("/api/status?state=frozen", headers=h).json()["cameras"]
            return full.status_code == 200 and [x["id"] for x in frozen] == ["b"]

        _wait_for(seen, timeout_s=10 * board.interval_s + 5)  # generous: a loaded machine
        took = time.monotonic() - t_write
        doc = c.get("/api/status", headers=h).json()
        assert [x["state"] for x in doc["cameras"]] == ["online", "frozen"]
    assert not board.running  # stopped with the app
    print(f"change served after {took * 1e3:.0f} ms (interval {board.interval_s} s)")


def test_polls_do_not_touch_the_catalog(tmp_path: Path) -> None:
    """The hot path: a cached key and the ready document; no SQL per poll, whatever the encoding."""
    env = make_env(tmp_path)
    for i in range(10):
        env.add_camera(f"c{i}")
    board = env.app.state.services.board
    board.interval_s = 3600.0  # no refresh during the polls
    queries: list[str] = []
    h = env.auth("viewer")
    with env.client() as c:
        etag = c.get("/api/status", headers=h).headers["etag"]  # verifies the key (one lookup)
        c.get("/api/status?state=unknown", headers=h)  # a filter's first request builds it
        sa.event.listen(env.catalog.engine, "before_cursor_execute", lambda *a: queries.append(a[2]))
        for _ in range(20):
            assert c.get("/api/status", headers=h).status_code == 200
            assert c.get("/api/status", headers={**h, "Accept-Encoding": "identity"}).status_code == 200
            assert c.get("/api/status", headers={**h, "If-None-Match": etag}).status_code == 304
            assert c.get("/api/status?state=unknown", headers=h).json()["cameras_total"] == 10
    assert queries == []


def test_unchanged_feeds_keep_their_bytes(tmp_path: Path) -> None:
    """A refresh that finds no change keeps the encoded variants (and generated_us) as they were."""
    clock = FakeClock(T0 / 1e6)
    env = make_env(tmp_path, clock=clock)
    env.add_camera("a")
    put(env, "a", "online")
    board = env.app.state.services.board
    board.refresh()
    first = board.variant()
    off = board.variant(["offline"])
    clock.advance(5.0)
    board.refresh()
    assert board.variant() is first and board.variant(["offline"]) is off  # hot filter rebuilt, unchanged
    env.catalog.put_status(FeedStatus("a", "offline", T0 + 5_000_000, T0 + 5_000_000))
    clock.advance(1.0)
    board.refresh()
    now = board.variant()
    assert now.etag != first.etag and json.loads(now.plain)["generated_us"] == T0 + 6_000_000
    assert [x["id"] for x in json.loads(board.variant(["offline"]).plain)["cameras"]] == ["a"]


def test_camera_detail(env: ApiEnv) -> None:
    env.add_camera("a", url=camera_url())
    put(env, "a", "black", figures={"luma": 3.1, "diff": 0.01}, run_id="r1", node_id="n1")
    with env.client() as c:
        r = c.get("/api/cameras/a/status", headers=env.auth("viewer"))
        assert r.status_code == 200
        d = r.json()
        assert (d["state"], d["figures"], d["run_id"], d["node_id"]) == (
            "black",
            {"luma": 3.1, "diff": 0.01},
            "r1",
            "n1",
        )
        assert d["latest_recording_end_us"] is None
        assert c.get("/api/cameras/zz/status", headers=env.auth("viewer")).status_code == 404


def test_many_cameras(tmp_path: Path) -> None:
    """4,470 cameras: the document is complete and a repeated poll is cheap (shared, 304)."""
    import time

    env = make_env(tmp_path)
    with env.catalog.engine.begin() as conn:
        conn.execute(
            sa.insert(feed_table),
            [
                {"camera_id": f"cam{i:04d}", "state": "online" if i % 10 else "offline", "since_us": T0,
                 "updated_us": T0, "reason": "", "reconnects": 0, "figures": {}}
                for i in range(4470)
            ],
        )  # fmt: skip
        rows = [
            {"id": f"cam{i:04d}", "name": "", "url": camera_url(), "transport": "tcp", "tags": {"zone": str(i % 7)},
             "enabled": True, "health_url": None, "options": {}, "updated_us": T0}
            for i in range(4470)
        ]  # fmt: skip
        conn.execute(sa.insert(cameras_table), rows)
    with env.client() as c:
        h = env.auth("viewer")
        r = c.get("/api/status", headers=h)
        doc = r.json()
        assert doc["cameras_total"] == 4470 and doc["counts"]["offline"] == 447
        t = time.perf_counter()
        for _ in range(50):
            assert c.get("/api/status", headers={**h, "If-None-Match": r.headers["etag"]}).status_code == 304
        assert (time.perf_counter() - t) / 50 < 0.05


def test_refresh_is_incremental_and_complete(tmp_path: Path) -> None:
    """Statuses written since the last refresh are picked up without a full reload; camera
    changes and the periodic full reload catch everything else."""
    clock = FakeClock(T0 / 1e6)
    env = make_env(tmp_path, clock=clock)
    for c in ("a", "b", "c"):
        env.add_camera(c)
        put(env, c, "online")
    board = env.app.state.services.board
    assert {x["state"] for x in board.current().cameras} == {"online"}
    env.catalog.put_status(FeedStatus("b", "frozen", T0 + 10, T0 + 10_000_000))
    clock.advance(1.0)
    assert [x["state"] for x in board.current().cameras] == ["online", "frozen", "online"]
    # a row stamped far in the past (a lagging clock) is only seen by the periodic full reload
    env.catalog.put_status(FeedStatus("c", "offline", T0, T0 - 60_000_000))
    clock.advance(1.0)
    assert board.current().cameras[2]["state"] == "online"
    clock.advance(board.full_every_s)
    assert board.current().cameras[2]["state"] == "offline"
    env.add_camera("d")  # a camera change: full reload at once
    env.catalog.put_status(FeedStatus("a", "black", T0, T0 - 60_000_000))
    clock.advance(1.0)
    assert [x["state"] for x in board.current().cameras] == ["black", "frozen", "offline", "unknown"]


# ---- the raw ASGI fast path (api/fast_status.py) ------------------------------------------------


def _both(env: ApiEnv, c: TestClient, method: str, path: str, headers: dict[str, str]) -> tuple[tuple, tuple, bool]:
    """The same request through the fast path and through the FastAPI route: (status, raw headers,
    raw body) of each, and whether the fast path answered the first itself."""
    switch = env.app.state.fast_status
    out = []
    served = switch.served
    for enabled in (True, False):
        switch.enabled = enabled
        try:
            with c.stream(method, path, headers=headers) as r:
                out.append((r.status_code, list(r.headers.raw), b"".join(r.iter_raw())))
        finally:
            switch.enabled = True
    return out[0], out[1], switch.served > served


def test_fast_path_answers_as_the_route_does(tmp_path: Path) -> None:
    """Byte-identical responses (status, every header in order, body) from the fast path and the
    FastAPI route, for what pollers send and for the refusals."""
    from storage.api_keys import revoke_key

    clock = FakeClock(T0 / 1e6)
    env = make_env(tmp_path, clock=clock)
    for i in range(12):
        env.add_camera(f"cam{i:02d}", name=f"Cam {i}", tags={"zone": str(i % 3)})
        put(env, f"cam{i:02d}", "online" if i % 4 else "offline", fps=25.0)
    viewer, admin = env.auth("viewer"), env.auth("admin")
    with env.client() as c:
        assert c.get("/api/status", headers=viewer).status_code == 200  # a key-cache miss: verified, cached
        assert c.get("/api/status", headers=admin).status_code == 200
        etag = c.get("/api/status", headers=viewer).headers["etag"]
        fetag = c.get("/api/status?state=offline&tag=zone:0", headers=viewer).headers["etag"]
        cases: list[tuple[str, dict[str, str], int, bool]] = [
            ("/api/status", {**viewer, "Accept-Encoding": "identity"}, 200, True),
            ("/api/status", {**viewer, "Accept-Encoding": "gzip, deflate"}, 200, True),
            ("/api/status", {**admin, "Accept-Encoding": "gzip"}, 200, True),  # any role ≥ viewer
            ("/api/status", {**viewer, "Accept-Encoding": "gzip", "If-None-Match": etag}, 304, True),
            ("/api/status", {**viewer, "If-None-Match": f'"x", {etag.removeprefix("W/")}'}, 304, True),
            ("/api/status", {**viewer, "If-None-Match": '"other"'}, 200, True),
            ("/api/status?state=offline&tag=zone:0", {**viewer, "Accept-Encoding": "gzip"}, 200, True),
            ("/api/status?state=offline&tag=zone:0", {**viewer, "If-None-Match": fetag}, 304, True),
            ("/api/status?tag=zone&state=online&state=frozen", viewer, 200, True),
            ("/api/status?state=", viewer, 200, True),
            ("/api/status", {}, 401, True),  # no key
            ("/api/status", {"Authorization": "Basic dXNlcjpwYXNz"}, 401, True),  # not a Bearer key
            ("/api/status", {"Authorization": "Bearer "}, 401, True),
            # an unknown key is never cached: both go to the catalog (the fast path passes it on)
            ("/api/status", {"Authorization": "Bearer vgl_000000000000_nope"}, 401, False),
        ]
        for path, headers, code, fast in cases:
            a, b, served = _both(env, c, "GET", path, headers)
            assert a == b, (path, headers)
            assert a[0] == code and served is fast, (path, headers, a[0])
        r401 = _both(env, c, "GET", "/api/status", {})[0]
        assert json.loads(r401[2]) == {"detail": "an API key is required: 'Authorization: Bearer KEY'"}
        assert (b"www-authenticate", b"Bearer") in r401[1]
        # a revoked key: served from the cache for at most KEY_TTL_S (both paths), then refused
        key_id = env.keys["viewer"].split("_")[1]
        assert revoke_key(env.catalog, key_id)
        a, b, served = _both(env, c, "GET", "/api/status", viewer)
        assert a == b and a[0] == 200 and served
        clock.advance(3.0)
        a, b, served = _both(env, c, "GET", "/api/status", viewer)
        assert a == b and a[0] == 401 and not served
        assert json.loads(a[2]) == {"detail": "unknown or revoked API key"}
        # polls answered by the fast path are counted under the route, as before
        metrics = c.get("/metrics", headers=admin).text
        assert 'vigil_api_requests_total{method="GET",route="/api/status",status="304"}' in metrics


def test_fast_path_with_auth_off(tmp_path: Path) -> None:
    env = make_env(tmp_path, auth=False)
    env.add_camera("a")
    with env.client() as c:
        a, b, served = _both(env, c, "GET", "/api/status", {"Accept-Encoding": "gzip"})
        assert a == b and a[0] == 200 and served


def test_what_the_fast_path_does_not_handle_falls_through(tmp_path: Path) -> None:
    """Unknown parameters, HEAD, other paths: FastAPI answers (as it did before the fast path)."""
    env = make_env(tmp_path)
    env.add_camera("a", tags={"zone": "1"})
    env.add_camera("b")
    put(env, "a", "offline")
    h = env.auth("viewer")
    switch = env.app.state.fast_status
    with env.client() as c:
        assert c.get("/api/status", headers=h).status_code == 200
        before = switch.served
        r = c.get("/api/status?state=offline&verbose=1", headers=h)  # FastAPI ignores unknown params
        assert r.status_code == 200 and [x["id"] for x in r.json()["cameras"]] == ["a"]
        assert c.head("/api/status", headers=h).status_code == 405  # the route is GET only
        assert c.get("/api/status/", headers=h, follow_redirects=False).status_code in (307, 404)
        assert c.get("/api/cameras/a/status", headers=h).json()["state"] == "offline"
        assert switch.served == before
        assert c.get("/api/status?tag=zone:1", headers=h).json()["cameras_total"] == 1
        assert switch.served == before + 1
        # the route stays documented
        assert "/api/status" in c.get("/openapi.json").json()["paths"]


def test_leak_watch_decodes_gzip_bodies() -> None:
    """conftest's password watch sees through Content-Encoding: gzip (split over two messages)."""
    import asyncio

    from tests.api.conftest import CAMERA_PASSWORD, LEAKS, LeakWatch

    body = gzip.compress(b'{"url":"rtsp://operator:' + CAMERA_PASSWORD.encode() + b'@10.1.2.3/x"}')

    async def app(scope: dict, receive: Callable, send: Callable) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-encoding", b"gzip")]})
        await send({"type": "http.response.body", "body": body[:10], "more_body": True})
        await send({"type": "http.response.body", "body": body[10:]})

    async def send(_: dict) -> None:
        return None

    n = len(LEAKS)
    scope = {"type": "http", "path": "/leaky", "query_string": b""}
    asyncio.run(LeakWatch(app)(scope, None, send))  # type: ignore[arg-type]
    try:
        assert len(LEAKS) == n + 1 and LEAKS[-1].path == "/leaky"
    finally:
        del LEAKS[n:]


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'c.db'}"
    return str(request.getfixturevalue("pg_url"))


def test_refresh_sees_another_connections_write(tmp_path: Path, catalog_url: str) -> None:
    """A status written through another Catalog (its own engine: a real second connection, as a
    worker process has) is in the document within the refresh bound; no camera re-read for it."""
    from storage.catalog import Catalog

    env = make_env(tmp_path / "env", catalog=Catalog(catalog_url))
    now_us, board = _two_online_cameras(env, name="Gate", tags={"zone": "1"})
    board.child_min_cameras = 1  # as at city scale: built in the child process
    other = Catalog(catalog_url, create=False)
    try:
        with env.client() as c:
            h = env.auth("viewer")
            assert c.get("/api/status?state=frozen", headers=h).json()["cameras"] == []
            board.full_every_s = 3600.0  # only incremental refreshes from here on
            # the child process builds from the refresher's first tick on (its first build reads everything)
            assert board.wait_for(lambda: board.builder_pid is not None and board.refreshes >= 3, 10)
            reloads = board.reloads
            t_write = time.monotonic()
            other.put_status(FeedStatus("b", "frozen", now_us + 1, int(time.time() * 1e6), reason="still"))

            def seen() -> bool:
                return [x["id"] for x in board.current().cameras if x["state"] == "frozen"] == ["b"]

            bound = board.interval_s + 5.0  # one interval + the refresh itself (generous: a loaded machine)
            assert board.wait_for(seen, bound), f"not within {bound} s"
            took = time.monotonic() - t_write
            doc = c.get("/api/status?state=frozen", headers=h).json()
            assert [(x["id"], x["reason"]) for x in doc["cameras"]] == [("b", "still")]
            a = c.get("/api/status", headers=h).json()["cameras"][0]
            assert (a["name"], a["tags"], a["state"]) == ("Gate", {"zone": "1"}, "online")
            assert board.reloads == reloads  # the cameras were not re-read for a status change
            # a camera change (another connection too) reloads the metadata at the next refresh
            other.upsert_camera(Camera(id="a", url=camera_url(), name="Gate 2"), now_us + 10)
            assert board.wait_for(lambda: board.current().cameras[0]["name"] == "Gate 2", bound)
            assert board.reloads > reloads
    finally:
        other.close()
    print(f"change served after {took * 1e3:.0f} ms (interval {board.interval_s} s)")


# ---- the child process that builds the document while the app runs (api/status_child.py) --------


def _started_with_child(env: ApiEnv, interval_s: float = 0.1) -> StatusBoard:
    board = StatusBoard(env.catalog, env.ctx.clock, interval_s=interval_s, child=True, child_min_cameras=1)
    board.start()
    # the first document is built here; the child builds from the refresher's first tick on
    assert board.wait_for(lambda: board.builder_pid is not None and board.refreshes >= 3, 20)
    return board


def test_the_child_builds_the_same_document(tmp_path: Path) -> None:
    """Byte for byte what a build in this process makes: the whole document, a hot filter and a
    filter asked for the first time (built by the child on request), cameras and counts."""
    clock = FakeClock(T0 / 1e6)  # both boards build at the same generated_us
    env = make_env(tmp_path, clock=clock)
    for i in range(30):
        env.add_camera(f"c{i:02d}", name=f"Gate ✓ {i}", tags={"zone": str(i % 3)})
        put(env, f"c{i:02d}", "online" if i % 5 else "offline", fps=25.0, bitrate_kbps=1999.5, reason="ok \"q\"")
    board = _started_with_child(env)
    try:
        board.variant(["offline"])  # hot from now on
        env.catalog.put_status(FeedStatus("c07", "frozen", T0 + 1, T0 + 1, reason="no change"))
        assert board.wait_for(lambda: board.current().cameras[7]["state"] == "frozen", 20)
        n = board.refreshes
        assert board.wait_for(lambda: board.refreshes >= n + 2, 20)  # the filter built by the refresher
        here = StatusBoard(env.catalog, clock)
        for states, tags in [((), ()), (("offline",), ()), (("frozen", "online"), ("zone:1",)), ((), ("zone",))]:
            a, b = board.variant(states, tags), here.variant(states, tags)
            assert (a.plain, a.etag, gzip.decompress(a.gzip)) == (b.plain, b.etag, b.plain), (states, tags)
        assert board.current().cameras == here.current().cameras
        assert board.current().counts() == here.current().counts()
        assert board.builder_pid is not None  # still the child's documents
    finally:
        board.stop()
    assert board.builder_pid is None


def test_a_dead_child_is_replaced_by_builds_here(tmp_path: Path) -> None:
    import os
    import signal

    env = make_env(tmp_path)
    env.add_camera("a")
    env.catalog.put_status(FeedStatus("a", "online", T0, int(time.time() * 1e6)))
    board = _started_with_child(env)
    try:
        pid = board.builder_pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # the child this test's board started
        env.catalog.put_status(FeedStatus("a", "frozen", T0 + 1, int(time.time() * 1e6)))
        assert board.wait_for(lambda: board.current().cameras[0]["state"] == "frozen", 20)
        assert board.builder_pid is None  # built here for a minute, then a new child
        assert json.loads(board.variant(["frozen"]).plain)["cameras_total"] == 1
    finally:
        board.stop()


def test_only_a_catalog_another_process_can_open_gets_a_child() -> None:
    assert can_open_elsewhere("sqlite:////var/lib/vigil/catalog.db")
    assert can_open_elsewhere("postgresql+psycopg://vigil@db/vigil")
    assert not can_open_elsewhere("sqlite://")
    assert not can_open_elsewhere("sqlite:///:memory:")


def test_a_small_document_is_built_here(tmp_path: Path) -> None:
    """Below `child_min_cameras` the child is not worth its memory: the app's board builds here."""
    env = make_env(tmp_path)
    env.add_camera("a")
    board = env.app.state.services.board
    board.interval_s = 0.05
    with env.client():
        assert board.wait_for(lambda: board.refreshes >= 4, 20)
        assert board.builder_pid is None
