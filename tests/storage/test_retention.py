"""Retention against a real catalog (SQLite and PostgreSQL) and a real local object store."""

from __future__ import annotations

from pathlib import Path


from core.camera_config import CameraOptions
from storage.catalog import Camera, Catalog, Segment
from storage.keys import segment_key
from storage.object_store import LocalStore
from storage.retention import add_hold, apply_retention, list_holds, release_hold
from harness.fakes import FakeClock

DAY = 86_400 * 1_000_000
NOW = 1_800_000_000 * 1_000_000


def put_segment(cat: Catalog, store: LocalStore, cam: str, start_us: int, dur_us: int = 60_000_000, size: int = 1000) -> Segment:
    key = segment_key(cam, start_us)
    store.put_bytes(key, b"x" * size)
    seg = Segment(cam, "run", 0, start_us, start_us + dur_us, 0, size, 10, "h264", 1500, [], state="stored")
    cat.add_segment(seg)
    cat.mark_stored(seg.id or 0, start_us)  # type: ignore[arg-type]
    return seg


def test_age_limits_per_camera_and_holds(catalog_url: str, tmp_path: Path) -> None:
    cat = Catalog(catalog_url)
    store = LocalStore(tmp_path / "obj")
    cat.upsert_camera(Camera("short", "rtsp://h/a", options=CameraOptions(retention_days=1)), NOW)
    cat.upsert_camera(Camera("long", "rtsp://h/b"), NOW)
    short = [put_segment(cat, store, "short", NOW - int(d * DAY)) for d in (5, 3, 2, 0.5)]
    long = [put_segment(cat, store, "long", NOW - d * DAY) for d in (40, 31, 10)]
    hold = add_hold(cat, "short", short[1].start_us + 1_000_000, short[1].start_us + 2_000_000, "case 41/2026", "inv", NOW)

    res = apply_retention(cat, store, default_days=30, clock=FakeClock(NOW / 1e6))

    left = {s.object_key for s in cat.segments_for()}
    assert left == {short[1].object_key, short[3].object_key, long[2].object_key}
    assert res.deleted == 4 and res.spared_by_holds == 1
    for s in short + long:
        assert (store.stat(s.object_key) is not None) == (s.object_key in left), "object and row go together"

    assert release_hold(cat, hold.id, NOW)
    assert list_holds(cat) == []
    apply_retention(cat, store, default_days=30, clock=FakeClock(NOW / 1e6))
    assert {s.object_key for s in cat.segments_for()} == {short[3].object_key, long[2].object_key}


def test_byte_budget_deletes_oldest_first_across_cameras(catalog_url: str, tmp_path: Path) -> None:
    cat = Catalog(catalog_url)
    store = LocalStore(tmp_path / "obj")
    segs = []
    for i in range(10):
        segs.append(put_segment(cat, store, "a" if i % 2 else "b", NOW - (10 - i) * 3_600_000_000, size=1000))
    add_hold(cat, segs[0].camera_id, segs[0].start_us, segs[0].end_us, "evidence", None, NOW)
    res = apply_retention(cat, store, default_days=365, max_bytes=6500, batch=3, clock=FakeClock(NOW / 1e6))
    left = sorted(s.start_us for s in cat.segments_for())
    # 10 kB over a 6.5 kB budget: the 4 oldest unheld go, the held oldest stays
    assert left == sorted([segs[0].start_us] + [s.start_us for s in segs[5:]])
    assert res.deleted == 4
    assert sum(1 for o in store.list()) == 6


def test_an_interrupted_pass_is_finished_next_time(catalog_url: str, tmp_path: Path) -> None:
    import sqlalchemy as sa

    from storage.catalog import segments

    cat = Catalog(catalog_url)
    store = LocalStore(tmp_path / "obj")
    s = put_segment(cat, store, "a", NOW - 100 * DAY)
    with cat.engine.begin() as c:  # as a crash after phase one leaves it
        c.execute(sa.update(segments).values(state="deleting"))
    assert cat.segments_between("a", 0, NOW) == []  # invisible to playback meanwhile
    apply_retention(cat, store, default_days=365, clock=FakeClock(NOW / 1e6))
    assert cat.segments_for() == [] and store.stat(s.object_key) is None



def test_the_byte_budget_reads_the_oldest_in_index_order_not_by_sorting_everything(pg_url: str, tmp_path: Path) -> None:
    """The candidates of a byte-budget pass come from an index on start_us (one probe per day
    partition): with sorting priced out, the plan has no Sort node — without the index it must sort
    every stored row of every partition for each batch of 500."""
    import sqlalchemy as sa

    from storage.retention import oldest_stored

    cat = Catalog(pg_url)
    store = LocalStore(tmp_path / "obj")
    for d in range(5):
        put_segment(cat, store, "a", NOW - d * DAY)
    with cat.engine.connect() as c:
        c.execute(sa.text("SET enable_sort = off"))
        sql = oldest_stored(500).compile(c, compile_kwargs={"literal_binds": True})
        plan = "\n".join(r[0] for r in c.execute(sa.text(f"EXPLAIN {sql}")))
    assert "Sort" not in plan.replace("Merge Append", ""), plan
    assert "ix_segments_start" in plan or "segments_start_us_idx" in plan or "start_us_idx" in plan, plan
