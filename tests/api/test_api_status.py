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
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.routers.status import accepts_gzip
from api.status_board import StatusBoard
from api.status_child import can_open_elsewhere
from core.states import STALE_AFTER_S
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
    env = make_env(tmp_path, clock=FakeClock(T0 / 1e6))  # the statuses, written at T0, are fresh
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


def test_camera_detail(tmp_path: Path) -> None:
    clock = FakeClock(T0 / 1e6)
    env = make_env(tmp_path, clock=clock)
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
        clock.advance(STALE_AFTER_S + 0.1)  # its worker stopped reporting
        d = c.get("/api/cameras/a/status", headers=env.auth("viewer")).json()
        assert (d["state"], d["since_us"], d["updated_us"]) == ("unknown", T0, T0)
        assert d["reason"] == "no report from its worker since 2024-05-01T10:00:00Z"


def test_many_cameras(tmp_path: Path) -> None:
    """4,470 cameras: the document is complete and a repeated poll is cheap (shared, 304)."""
    import time

    env = make_env(tmp_path, clock=FakeClock(T0 / 1e6))  # the statuses, written at T0, are fresh
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
    changes and the periodic full reload catch everything else; a status left stale turns
    `unknown` at the next refresh, without a reload."""
    clock = FakeClock(T0 / 1e6)
    env = make_env(tmp_path, clock=clock)
    for c in ("a", "b", "c"):
        env.add_camera(c)
        put(env, c, "online")
    board = env.app.state.services.board
    board.full_every_s = 3.0  # under STALE_AFTER_S: rows written at T0 stay fresh until the last step
    assert {x["state"] for x in board.current().cameras} == {"online"}
    env.catalog.put_status(FeedStatus("b", "frozen", T0 + 10, T0 + 10_000_000))
    clock.advance(1.0)
    assert [x["state"] for x in board.current().cameras] == ["online", "frozen", "online"]
    # a row stamped 5 s behind the newest (a lagging clock) is only seen by the periodic full reload
    env.catalog.put_status(FeedStatus("c", "offline", T0, T0 + 5_000_000))
    clock.advance(1.0)
    assert board.current().cameras[2]["state"] == "online"
    clock.advance(board.full_every_s)
    assert board.current().cameras[2]["state"] == "offline"
    env.add_camera("d")  # a camera change: full reload at once
    env.catalog.put_status(FeedStatus("a", "black", T0, T0 + 5_000_000))
    clock.advance(1.0)
    assert [x["state"] for x in board.current().cameras] == ["black", "frozen", "offline", "unknown"]
    reloads, board.full_every_s = board.reloads, 60.0
    clock.advance(2.0 + STALE_AFTER_S - 1.0)  # a and c: last written 7 s ago; b: 1 s ago (stamped ahead)
    doc = board.current()
    assert board.reloads == reloads
    assert [x["state"] for x in doc.cameras] == ["unknown", "frozen", "unknown", "unknown"]
    a = doc.cameras[0]
    assert a["reason"] == "no report from its worker since 2024-05-01T10:00:05Z" and a["since_us"] == T0 + 5_000_000
    assert a["fps"] is None and doc.counts()["unknown"] == 3
    env.catalog.put_status(FeedStatus("a", "black", T0, T0 + 9_000_000))  # its worker reports again
    clock.advance(1.0)
    assert board.current().cameras[0]["state"] == "black" and board.reloads == reloads


# ---- the one handler (api/routers/status.py serve_status) ---------------------------------------


def _raw(c: TestClient, method: str, path: str, headers: dict[str, str]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    with c.stream(method, path, headers=headers, follow_redirects=False) as r:
        return r.status_code, list(r.headers.raw), b"".join(r.iter_raw())


def test_answers_byte_for_byte(tmp_path: Path) -> None:
    """Status, every header in order and the body, for what pollers send and for the refusals:
    as FastAPI's own route and its error handler answered before the raw handler replaced them."""
    from storage.api_keys import revoke_key

    clock = FakeClock(T0 / 1e6)
    env = make_env(tmp_path, clock=clock)
    for i in range(12):
        env.add_camera(f"cam{i:02d}", name=f"Cam {i}", tags={"zone": str(i % 3)})
        put(env, f"cam{i:02d}", "online" if i % 4 else "offline", fps=25.0)
    viewer, admin = env.auth("viewer"), env.auth("admin")
    doc = env.app.state.services.board.current()
    full, filtered = doc.variant(), doc.variant(["offline"], ["zone:0"])
    etag, fetag = full.etag.encode(), filtered.etag.encode()
    common = [(b"etag", etag), (b"cache-control", b"no-cache"), (b"vary", b"Accept-Encoding")]

    def ok(enc_body: bytes, gz: bool, tag: bytes = etag) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        hs = [(b"etag", tag), *common[1:]] + ([(b"content-encoding", b"gzip")] if gz else [])
        return 200, hs + [(b"content-length", str(len(enc_body)).encode()), (b"content-type", b"application/json")], enc_body

    def refused(code: int, detail: str, extra: list[tuple[bytes, bytes]]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        body = json.dumps({"detail": detail}, separators=(",", ":")).encode()
        return code, [*extra, (b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")], body

    bearer = [(b"www-authenticate", b"Bearer")]
    with env.client() as c:
        cases = [
            ("/api/status", {**viewer, "Accept-Encoding": "identity"}, ok(full.plain, False)),  # a key-cache miss
            ("/api/status", {**viewer, "Accept-Encoding": "gzip, deflate"}, ok(full.gzip, True)),
            ("/api/status", {**admin, "Accept-Encoding": "gzip"}, ok(full.gzip, True)),  # any role ≥ viewer
            ("/api/status", {**viewer, "Accept-Encoding": "gzip", "If-None-Match": etag.decode()}, (304, common, b"")),
            ("/api/status", {**viewer, "If-None-Match": f'"x", {etag.decode().removeprefix("W/")}'}, (304, common, b"")),
            ("/api/status", {**viewer, "If-None-Match": '"other"'}, ok(full.gzip, True)),  # httpx asks for gzip
            ("/api/status?state=offline&tag=zone:0", {**viewer, "Accept-Encoding": "gzip"}, ok(filtered.gzip, True, fetag)),
            ("/api/status?tag=zone:0&state=offline", {**viewer, "If-None-Match": fetag.decode()},
             (304, [(b"etag", fetag), *common[1:]], b"")),
            ("/api/status?state=offline&tag=zone:0&verbose=1", {**viewer, "Accept-Encoding": "identity"},
             ok(filtered.plain, False, fetag)),  # other parameters are ignored, as FastAPI did
            ("/api/status", {}, refused(401, "an API key is required: 'Authorization: Bearer KEY'", bearer)),
            ("/api/status", {"Authorization": "Basic dXNlcjpwYXNz"}, refused(401, "send the API key as 'Authorization: Bearer KEY'", bearer)),
            ("/api/status", {"Authorization": "Bearer "}, refused(401, "send the API key as 'Authorization: Bearer KEY'", bearer)),
            ("/api/status", {"Authorization": "Bearer vgl_000000000000_nope"}, refused(401, "unknown or revoked API key", bearer)),
        ]
        for path, headers, want in cases:
            assert _raw(c, "GET", path, headers) == want, (path, headers)
        for state_filter in ("state=online&state=frozen&tag=zone", "state="):
            body = c.get(f"/api/status?{state_filter}", headers=viewer).json()
            assert body["cameras_total"] == (9 if state_filter.startswith("state=online") else 0)
        # HEAD and the other methods: 405 from the route, as before (GET only)
        code, hs, body = _raw(c, "POST", "/api/status", viewer)
        assert (code, hs[0], body) == (405, (b"allow", b"GET"), b'{"detail":"Method Not Allowed"}')
        assert c.head("/api/status", headers=viewer).status_code == 405
        assert c.get("/api/status/", headers=viewer, follow_redirects=False).status_code in (307, 404)
        # a revoked key: served from the cache for at most KEY_TTL_S, then refused
        key_id = env.keys["viewer"].split("_")[1]
        assert revoke_key(env.catalog, key_id)
        assert c.get("/api/status", headers=viewer).status_code == 200
        clock.advance(3.0)
        assert _raw(c, "GET", "/api/status", viewer) == refused(401, "unknown or revoked API key", bearer)
        # counted under the route's template; documented in OpenAPI
        metrics = c.get("/metrics", headers=admin).text
        assert 'vigil_api_requests_total{method="GET",route="/api/status",status="304"} 3.0' in metrics
        assert 'vigil_api_requests_total{method="HEAD",route="/api/status",status="405"} 1.0' in metrics
        paths = c.get("/openapi.json").json()["paths"]
        assert [p["name"] for p in paths["/api/status"]["get"]["parameters"]] == ["state", "tag"]


def test_the_router_answers_with_the_same_handler(tmp_path: Path) -> None:
    """A GET that reaches FastAPI's router (no front door in front) gets the same bytes."""
    env = make_env(tmp_path, clock=FakeClock(T0 / 1e6))
    env.add_camera("a")
    put(env, "a", "offline")

    async def router_only(scope: Any, receive: Any, send: Any) -> None:
        scope["app"] = env.app  # as the application sets it
        await env.app.router(scope, receive, send)

    h = {**env.auth("viewer"), "Accept-Encoding": "gzip"}
    with env.client() as c:
        front = _raw(c, "GET", "/api/status?state=offline", h)
        assert front[0] == 200 and _raw(c, "GET", "/api/status", {})[0] == 401
    with TestClient(router_only) as r:
        assert _raw(r, "GET", "/api/status?state=offline", h) == front
        assert _raw(r, "GET", "/api/status", {})[0] == 401


def test_with_auth_off(tmp_path: Path) -> None:
    env = make_env(tmp_path, auth=False)
    env.add_camera("a")
    with env.client() as c:
        r = c.get("/api/status", headers={"Accept-Encoding": "gzip"})
        assert r.status_code == 200 and r.headers["content-encoding"] == "gzip" and r.json()["cameras_total"] == 1


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
