"""The uploader against a real local store and SQLite catalog; the S3 outage itself is in e2e."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.catalog import Catalog
from storage.object_store import LocalStore, ObjectStoreError
from storage.spool import SegmentMeta, Spool
from storage.uploader import Uploader
from vigil.clock import FakeClock

T0 = 1_764_000_000_000_000


def spool_segment(spool: Spool, camera: str, start_us: int, size: int = 1000) -> None:
    meta = SegmentMeta(camera, "run1", start_us // 1_000_000, start_us, 0, "h264")
    seg = spool.open_segment(meta, b"\x00\x00\x00\x08ftyp")
    seg.add_fragment(b"\x00" * size, 0, 2_000_000, 50)
    seg.close(start_us + 2_000_000, 0)


class BrokenStore(LocalStore):
    """A store that refuses puts, as S3 does while it is down."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.down = True

    def put_file(self, key: str, path: Path, content_type: str = "video/mp4") -> None:
        if self.down:
            raise ObjectStoreError("s3 put: ConnectionRefusedError")
        super().put_file(key, path, content_type)


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return Catalog(f"sqlite:///{tmp_path / 'c.db'}")


def test_uploads_marks_stored_and_empties_the_spool(tmp_path: Path, catalog: Catalog) -> None:
    spool, store = Spool(tmp_path / "spool"), LocalStore(tmp_path / "obj")
    for i in range(3):
        spool_segment(spool, "cam", T0 + i * 2_000_000)
    up = Uploader(spool, store, catalog, max_spool_bytes=10**9, clock=FakeClock())
    assert up.pass_once()
    segs = catalog.segments_for("cam")
    assert [s.state for s in segs] == ["stored"] * 3
    assert all(store.stat(s.object_key).size == s.bytes for s in segs)  # type: ignore[union-attr]
    assert spool.closed_segments() == []


def test_store_down_keeps_rows_spooled_then_drains(tmp_path: Path, catalog: Catalog) -> None:
    spool, store = Spool(tmp_path / "spool"), BrokenStore(tmp_path / "obj")
    spool_segment(spool, "cam", T0)
    up = Uploader(spool, store, catalog, max_spool_bytes=10**9, clock=FakeClock())
    assert not up.pass_once()
    assert [s.state for s in catalog.segments_for("cam")] == ["spooled"]
    assert catalog.segments_between("cam", T0, T0 + 10**7) == []  # not visible as recorded yet
    store.down = False
    assert up.pass_once()
    assert [s.state for s in catalog.segments_for("cam")] == ["stored"]
    assert len(catalog.segments_between("cam", T0, T0 + 10**7)) == 1


def test_budget_drops_the_oldest_with_an_event(tmp_path: Path, catalog: Catalog) -> None:
    spool, store = Spool(tmp_path / "spool"), BrokenStore(tmp_path / "obj")
    for i in range(4):
        spool_segment(spool, "cam", T0 + i * 2_000_000, size=10_000)
    usage = spool.usage_bytes()
    up = Uploader(spool, store, catalog, max_spool_bytes=usage - 15_000, clock=FakeClock())
    assert not up.pass_once()
    left = spool.closed_segments()
    assert [s.meta.start_us for s in left] == [T0 + 4_000_000, T0 + 6_000_000]
    drops = [e for e in catalog.events_since(0) if e.kind == "spool_drop"]
    assert [e.figures["start_us"] for e in drops] == [T0, T0 + 2_000_000]
    assert up.stats.dropped == 2
