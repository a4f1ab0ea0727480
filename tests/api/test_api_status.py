"""`/api/status`: one shared document, filters, ETag → 304; one feed's detail."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from api.status_board import StatusDocument
from storage.catalog import FeedStatus
from storage.catalog import cameras as cameras_table
from storage.catalog import feed_status as feed_table
from tests.api.conftest import T0, ApiEnv, camera_url, make_env
from vigil.clock import FakeClock


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
        r = c.get("/api/status", headers=h)
        assert r.status_code == 200
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
        assert r.headers["cache-control"] == "no-cache"

        r2 = c.get("/api/status", headers={**h, "If-None-Match": etag})
        assert r2.status_code == 304 and r2.content == b""
        assert c.get("/api/status", headers={**h, "If-None-Match": '"other"'}).status_code == 200

        only = c.get("/api/status?state=frozen&state=online", headers=h).json()
        assert [x["id"] for x in only["cameras"]] == ["a", "b"]
        assert [x["id"] for x in c.get("/api/status?tag=district:south", headers=h).json()["cameras"]] == ["b"]
        assert [x["id"] for x in c.get("/api/status?tag=district", headers=h).json()["cameras"]] == ["a", "b"]

        # a change is seen after at most a second, with a new ETag
        put(env, "d", "offline", reason="connection refused")
        assert c.get("/api/status", headers={**h, "If-None-Match": etag}).status_code == 304  # still shared
        clock.advance(1.0)
        r3 = c.get("/api/status", headers={**h, "If-None-Match": etag})
        assert r3.status_code == 200 and r3.headers["etag"] != etag
        assert r3.json()["counts"]["offline"] == 1


def test_built_once_per_second_for_every_poller(tmp_path: Path) -> None:
    clock = FakeClock(T0 / 1e6)
    env = make_env(tmp_path, clock=clock)
    env.add_camera("a")
    board = env.app.state.services.board
    calls: list[int] = []
    real = board._refresh

    def counting_refresh() -> StatusDocument:
        calls.append(1)
        return real()

    board._refresh = counting_refresh
    with env.client() as c:
        for _ in range(20):
            assert c.get("/api/status", headers=env.auth("viewer")).status_code == 200
        assert len(calls) == 1
        clock.advance(1.0)
        c.get("/api/status", headers=env.auth("viewer"))
        assert len(calls) == 2


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
