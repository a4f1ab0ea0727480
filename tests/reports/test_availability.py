"""Availability report over a real SQLite catalog: exact uptime, outages, MTTR, longest outage."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.catalog import Camera, Catalog, Event, FeedStatus
from reports.availability import ReportRow, availability, camera_timeline, to_csv, to_json

S = 1_000_000
T0 = 1_700_000_000 * S  # window start


@pytest.fixture()
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    cat = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    yield cat
    cat.close()


def ev(cat: Catalog, cam: str, at_s: float, frm: str, to: str) -> None:
    cat.add_event(Event(camera_id=cam, at_us=T0 + int(at_s * S), kind="state", from_state=frm, to_state=to))


def cams(cat: Catalog, *specs: tuple[str, dict[str, str]]) -> None:
    for cid, tags in specs:
        cat.upsert_camera(Camera(id=cid, url=f"rtsp://u:p@h/{cid}", tags=tags), T0)


def one(rows: list[ReportRow], key: str) -> ReportRow:
    (row,) = [r for r in rows if r.key == key]
    return row


def test_uptime_outages_mttr_and_longest_outage(catalog: Catalog) -> None:
    cams(catalog, ("cam-a", {}))
    ev(catalog, "cam-a", -100, "starting", "online")  # online before the window
    ev(catalog, "cam-a", 100, "online", "frozen")  # outage 1: 100 → 130 (frozen then offline)
    ev(catalog, "cam-a", 120, "frozen", "offline")
    ev(catalog, "cam-a", 130, "offline", "online")
    ev(catalog, "cam-a", 500, "online", "black")  # outage 2: 500 → 510
    ev(catalog, "cam-a", 510, "black", "online")
    ev(catalog, "cam-a", 900, "online", "tampered")  # outage 3: still open at the end (1000)
    ev(catalog, "cam-a", 2000, "tampered", "online")  # after the window: ignored
    row = one(availability(catalog, T0, T0 + 1000 * S), "cam-a")
    assert row.period_s == 1000
    assert row.online_s == 1000 - 30 - 10 - 100
    assert row.uptime_pct == pytest.approx(86.0)
    assert (row.frozen_s, row.offline_s, row.black_s, row.tampered_s, row.starting_s) == (20, 10, 10, 100, 0)
    assert row.outages == 3
    assert row.mttr_s == pytest.approx((30 + 10) / 2)  # the open outage has not recovered yet
    assert row.longest_outage_s == 100  # clipped to the window


def test_state_before_the_window_comes_from_the_last_event_before_it(catalog: Catalog) -> None:
    cams(catalog, ("cam-b", {}))
    ev(catalog, "cam-b", -50, "starting", "online")
    ev(catalog, "cam-b", -10, "online", "offline")  # out since before the window
    ev(catalog, "cam-b", 40, "offline", "online")
    row = one(availability(catalog, T0, T0 + 100 * S), "cam-b")
    assert (row.offline_s, row.online_s, row.uptime_pct) == (40, 60, 60.0)
    assert row.outages == 0  # it began before the window…
    assert row.mttr_s is None
    assert row.longest_outage_s == 40  # …but its part inside the window counts as an outage stretch


def test_time_before_the_first_event_is_unknown_and_starting_is_not_an_outage(catalog: Catalog) -> None:
    cams(catalog, ("cam-c", {}))
    ev(catalog, "cam-c", 20, "starting", "offline")  # never connected
    ev(catalog, "cam-c", 50, "offline", "online")
    row = one(availability(catalog, T0, T0 + 100 * S), "cam-c")
    assert row.period_s == 80  # the first 20 s have no known state
    assert row.uptime_pct == pytest.approx(50 / 80 * 100)
    assert row.outages == 0 and row.longest_outage_s == 0


def test_current_status_fills_in_a_camera_without_events(catalog: Catalog) -> None:
    cams(catalog, ("cam-d", {}))
    catalog.put_status(FeedStatus(camera_id="cam-d", state="starting", since_us=T0 + 30 * S, updated_us=T0 + 99 * S))
    row = one(availability(catalog, T0, T0 + 100 * S), "cam-d")
    assert (row.period_s, row.starting_s, row.uptime_pct) == (70, 70, 0.0)


def test_now_clips_the_window(catalog: Catalog) -> None:
    cams(catalog, ("cam-e", {}))
    ev(catalog, "cam-e", -1, "starting", "online")
    ev(catalog, "cam-e", 30, "online", "offline")
    row = one(availability(catalog, T0, T0 + 3600 * S, now_us=T0 + 40 * S), "cam-e")
    assert (row.period_s, row.online_s, row.offline_s) == (40, 30, 10)
    assert row.outages == 1 and row.mttr_s is None and row.longest_outage_s == 10


def test_a_stale_status_is_unknown_time_not_uptime(catalog: Catalog) -> None:
    """Its worker last reported at 40 s: from then on the camera's state is unknown, not online."""
    cams(catalog, ("cam-s", {}))
    ev(catalog, "cam-s", -1, "starting", "online")
    catalog.put_status(FeedStatus(camera_id="cam-s", state="online", since_us=T0 - S, updated_us=T0 + 40 * S))
    row = one(availability(catalog, T0, T0 + 3600 * S, now_us=T0 + 100 * S), "cam-s")
    assert (row.period_s, row.online_s, row.unknown_s, row.uptime_pct) == (100, 40, 60, 40.0)
    assert row.outages == 0 and row.longest_outage_s == 0  # no report is not a fault of the camera
    row = one(availability(catalog, T0, T0 + 3600 * S, now_us=T0 + 45 * S), "cam-s")  # 5 s old: still fresh
    assert (row.period_s, row.online_s, row.unknown_s) == (45, 45, 0)
    catalog.upsert_camera(Camera(id="cam-s", url="rtsp://u:p@h/cam-s", enabled=False), T0)  # switched off
    assert one(availability(catalog, T0, T0 + 3600 * S, now_us=T0 + 100 * S), "cam-s").unknown_s == 0
    assert "unknown_s" in to_csv([row]).splitlines()[0].split(",")


def test_grouped_by_tag(catalog: Catalog) -> None:
    cams(
        catalog, ("n1", {"district": "north"}), ("n2", {"district": "north"}), ("s1", {"district": "south"}), ("x", {})
    )
    for cid in ("n1", "n2", "s1", "x"):
        ev(catalog, cid, -1, "starting", "online")
    ev(catalog, "n1", 10, "online", "offline")
    ev(catalog, "n1", 30, "offline", "online")
    ev(catalog, "n2", 50, "online", "frozen")
    ev(catalog, "n2", 90, "frozen", "online")
    ev(catalog, "s1", 0, "online", "black")
    rows = availability(catalog, T0, T0 + 100 * S, by="district")
    assert [r.key for r in rows] == ["(none)", "north", "south"]
    north = one(rows, "north")
    assert (north.cameras, north.period_s, north.online_s) == (2, 200, 140)
    assert north.uptime_pct == pytest.approx(70.0)
    assert (north.outages, north.mttr_s, north.longest_outage_s) == (2, 30.0, 40.0)
    south = one(rows, "south")
    assert (south.uptime_pct, south.outages, south.mttr_s, south.longest_outage_s) == (0.0, 1, None, 100.0)
    assert one(rows, "(none)").uptime_pct == 100.0


def test_events_written_out_of_time_order_are_taken_in_write_order() -> None:
    """A wall-clock step back on the node must not reorder transitions."""
    evs = [
        Event("c", T0 + 10 * S, "state", "starting", "online", id=1),
        Event("c", T0 + 60 * S, "state", "online", "frozen", id=2),
        Event("c", T0 + 50 * S, "state", "frozen", "online", id=3),  # clock stepped back 10 s + 10 s
    ]
    tl = camera_timeline("c", evs, T0, T0 + 100 * S)
    assert tl.seconds["frozen"] == 0 and tl.seconds["online"] == 90


def test_csv_and_json(catalog: Catalog) -> None:
    cams(catalog, ("cam-f", {}))
    ev(catalog, "cam-f", 0, "starting", "online")
    rows = availability(catalog, T0, T0 + 10 * S)
    parsed = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert parsed[0]["key"] == "cam-f" and float(parsed[0]["uptime_pct"]) == 100.0 and parsed[0]["mttr_s"] == ""
    doc = json.loads(to_json(rows))
    assert doc[0]["key"] == "cam-f" and doc[0]["mttr_s"] is None and doc[0]["outages"] == 0


def test_many_events_are_paged(catalog: Catalog) -> None:
    cams(catalog, ("cam-g", {}))
    ev(catalog, "cam-g", -1, "starting", "online")
    for i in range(520):  # 520 ten-second outages, one per minute: 1041 events, more than a page
        ev(catalog, "cam-g", i * 60, "online", "offline")
        ev(catalog, "cam-g", i * 60 + 10, "offline", "online")
    row = one(availability(catalog, T0, T0 + 520 * 60 * S), "cam-g")
    assert row.outages == 520 and row.mttr_s == 10 and row.offline_s == 5200
    assert row.uptime_pct == pytest.approx(100 * 50 / 60, abs=1e-3)


def test_pruned_history_keeps_each_cameras_state_at_the_window_start(catalog: Catalog) -> None:
    day = 86_400
    cams(catalog, ("cam-h", {}), ("cam-i", {}), ("cam-j", {}))
    ev(catalog, "cam-h", -100 * day, "starting", "online")  # online for 100 days, no event since
    ev(catalog, "cam-i", -90 * day, "starting", "online")
    for i in range(30):  # flapping long ago, then out since day -50: an outage open at the window
        ev(catalog, "cam-i", (-80 + i) * day, "online", "frozen")
        ev(catalog, "cam-i", (-80 + i) * day + 60, "frozen", "online")
    ev(catalog, "cam-i", -50 * day, "online", "frozen")
    ev(catalog, "cam-i", -40 * day, "frozen", "offline")
    ev(catalog, "cam-i", 40, "offline", "online")
    ev(catalog, "cam-j", -60 * day, "starting", "offline")  # never online: not an outage
    ev(catalog, "cam-j", -5 * day, "offline", "frozen")
    window = (T0, T0 + 100 * S)
    before = availability(catalog, *window)
    gone = catalog.prune_events(T0 - 30 * day * S)
    assert gone == 1 + 60 + 1 + 1 - 2  # cam-h and cam-j keep their one; cam-i its last and its last online
    assert availability(catalog, *window) == before
    h, i, j = before
    assert (h.online_s, i.offline_s, i.online_s, i.outages, i.longest_outage_s) == (100, 40, 60, 0, 40)
    assert (j.frozen_s, j.longest_outage_s) == (100, 0)
    assert catalog.prune_events(T0 - 30 * day * S) == 0  # what the report needs stays
