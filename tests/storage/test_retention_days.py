"""Retention by whole days on PostgreSQL: an unheld day's partition goes in one piece (rows, objects,
totals), a held day loses only its unheld rows, and a day left detached by a crash is finished."""

from __future__ import annotations

import uuid
from pathlib import Path

import sqlalchemy as sa

from storage.catalog import Catalog
from storage.catalog.partitions import DAY_US, day_partitions, partition_name
from storage.object_store import LocalStore
from storage.retention import add_hold, apply_retention
from harness.fakes import FakeClock
from harness.servers import SeaweedS3
from tests.storage.test_retention import put_segment

NOW = 1_800_000_000 * 1_000_000
D0 = NOW // DAY_US * DAY_US  # today's midnight
M = 60_000_000


def attached(cat: Catalog) -> set[str]:
    with cat.engine.connect() as c:
        return {p.name for p in day_partitions(c) if p.attached}


def test_unheld_day_is_dropped_whole_and_a_held_day_keeps_its_held_rows(pg_url: str, tmp_path: Path) -> None:
    cat = Catalog(pg_url)
    store = LocalStore(tmp_path / "obj")
    old = [put_segment(cat, store, cam, D0 - 40 * DAY_US + k * M) for cam in ("a", "b") for k in range(3)]
    held_day = [put_segment(cat, store, "a", D0 - 35 * DAY_US + k * M) for k in range(3)]
    young = put_segment(cat, store, "a", D0 - 2 * DAY_US)
    add_hold(cat, "a", held_day[1].start_us, held_day[1].start_us + 1, "case", "inv", NOW)
    day40, day35 = partition_name((D0 - 40 * DAY_US) // DAY_US), partition_name((D0 - 35 * DAY_US) // DAY_US)
    assert {day40, day35} <= attached(cat)

    res = apply_retention(cat, store, default_days=30, clock=FakeClock(NOW / 1e6))

    assert res.days_dropped == 1 and res.deleted == 6 + 2 and res.spared_by_holds == 1
    assert day40 not in attached(cat) and day35 in attached(cat)
    with cat.engine.connect() as c:  # dropped, not only detached
        assert c.execute(sa.text("SELECT to_regclass(:n)"), {"n": day40}).scalar_one() is None
    assert [s.start_us for s in cat.segments_for()] == [held_day[1].start_us, young.start_us]
    for s in old + held_day + [young]:
        assert (store.stat(s.object_key) is not None) == (s in (held_day[1], young))
    assert cat.segment_totals() == {"a": (2, 2000)}  # the dropped day left the totals with its rows
    assert {partition_name(NOW // DAY_US + k) for k in range(3)} <= attached(cat)  # made ahead


def test_a_day_left_detached_by_a_crash_is_finished_next_pass(pg_url: str, tmp_path: Path) -> None:
    cat = Catalog(pg_url)
    store = LocalStore(tmp_path / "obj")
    segs = [put_segment(cat, store, "a", D0 - 40 * DAY_US + k * M) for k in range(2)]
    name = partition_name((D0 - 40 * DAY_US) // DAY_US)
    with cat.engine.begin() as c:  # a pass detached the day, then the node died
        c.execute(sa.text(f'ALTER TABLE segments DETACH PARTITION "{name}"'))
    assert cat.segments_between("a", D0 - 41 * DAY_US, D0) == []
    res = apply_retention(cat, store, default_days=365, clock=FakeClock(NOW / 1e6))
    assert res.days_dropped == 1 and res.deleted == 2
    assert all(store.stat(s.object_key) is None for s in segs)
    with cat.engine.connect() as c:
        assert name not in {p.name for p in day_partitions(c)}


def test_a_late_segment_for_a_dropped_day_is_still_registered(pg_url: str, tmp_path: Path) -> None:
    cat = Catalog(pg_url)
    store = LocalStore(tmp_path / "obj")
    start = D0 - 40 * DAY_US
    put_segment(cat, store, "a", start)
    other = Catalog(pg_url, create=False)  # another node drops the day this process has seen
    apply_retention(other, store, default_days=30, clock=FakeClock(NOW / 1e6))
    assert cat.segments_for() == []
    late = put_segment(cat, store, "a", start + M)  # an upload that waited out a long outage
    assert [s.start_us for s in cat.segments_for()] == [late.start_us]
    other.close()


def test_a_dropped_day_leaves_s3_in_batched_deletes(pg_url: str, s3: SeaweedS3) -> None:
    from storage.object_store import S3Store

    cat = Catalog(pg_url)
    store = S3Store(s3.endpoint, s3.access_key, s3.secret_key, s3.bucket)
    cam = f"s3-{uuid.uuid4().hex[:8]}"
    segs = [put_segment(cat, store, cam, D0 - 40 * DAY_US + k * M) for k in range(5)]  # type: ignore[arg-type]
    keep = put_segment(cat, store, cam, D0 - DAY_US)  # type: ignore[arg-type]
    res = apply_retention(cat, store, default_days=30, clock=FakeClock(NOW / 1e6))
    assert res.days_dropped == 1 and res.deleted == 5 and res.failed == 0
    assert [o.key for o in store.list(cam + "/")] == [keep.object_key]
    assert all(store.stat(s.object_key) is None for s in segs)


def test_a_camera_kept_longer_moves_to_a_fresh_day_and_goes_by_its_own_limit(pg_url: str, tmp_path: Path) -> None:
    from core.camera_config import CameraOptions
    from storage.catalog import Camera

    cat = Catalog(pg_url)
    store = LocalStore(tmp_path / "obj")
    cat.upsert_camera(Camera("evidence", "rtsp://h/e", options=CameraOptions(retention_days=90)), NOW)
    start = D0 - 40 * DAY_US
    short = [put_segment(cat, store, "a", start + k * M) for k in range(3)]
    kept = put_segment(cat, store, "evidence", start + M)
    day = partition_name(start // DAY_US)

    res = apply_retention(cat, store, default_days=30, clock=FakeClock(NOW / 1e6))
    assert res.days_dropped == 1 and res.deleted == 3
    assert [(s.camera_id, s.id) for s in cat.segments_for()] == [("evidence", kept.id)]
    assert store.stat(kept.object_key) is not None and all(store.stat(s.object_key) is None for s in short)
    assert day in attached(cat) and cat.segment_totals() == {"evidence": (1, 1000)}

    again = apply_retention(cat, store, default_days=30, clock=FakeClock(NOW / 1e6))
    assert again.deleted == 0 and again.days_dropped == 0  # a day of only longer-kept rows is left alone

    later = FakeClock(NOW / 1e6 + 61 * 86_400)
    assert apply_retention(cat, store, default_days=30, clock=later).deleted == 1  # by its own 90 days
    apply_retention(cat, store, default_days=30, clock=later)
    assert cat.segments_for() == [] and day not in attached(cat)  # the emptied day is dropped
