"""The uploader against a real local store or the real S3 server, and a SQLite catalog; the S3
outage itself is in e2e."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from storage.catalog import Catalog
from storage.object_store import LocalStore, ObjectStoreError, S3Store
from storage.catalog import Segment
from storage.spool import Spool
from storage.uploader import Uploader
from harness.servers import SeaweedS3
from harness.fakes import FakeClock

T0 = 1_764_000_000_000_000


def spool_segment(spool: Spool, camera: str, start_us: int, size: int = 1000) -> None:
    meta = Segment.opening(camera, "run1", start_us // 1_000_000, start_us, 0, "h264")
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
    assert [s.segment.start_us for s in left] == [T0 + 4_000_000, T0 + 6_000_000]
    drops = [e for e in catalog.events_since(0) if e.kind == "spool_drop"]
    assert [e.figures["start_us"] for e in drops] == [T0, T0 + 2_000_000]
    assert up.stats.dropped == 2


class CountingSpool(Spool):
    """The real spool, counting its usage scans (a stat of every file)."""

    scans = 0

    def usage_bytes(self) -> int:
        self.scans += 1
        return super().usage_bytes()


def test_usage_is_measured_every_few_seconds_while_the_store_drains_the_spool(tmp_path: Path, catalog: Catalog) -> None:
    clock = FakeClock()
    spool, store = CountingSpool(tmp_path / "spool"), BrokenStore(tmp_path / "obj")
    store.down = False
    up = Uploader(spool, store, catalog, max_spool_bytes=10**9, clock=clock)
    for i in range(10):  # a pass a second, one segment each
        spool_segment(spool, "cam", T0 + i * 2_000_000, size=10_000)
        assert up.pass_once()
        clock.advance(1.0)
    assert spool.scans == 2  # at 0 s and 5 s (USAGE_SCAN_S), not once or twice a pass
    assert up.stats.spool_bytes == 0 == spool.usage_bytes()  # uploads are taken off in between
    # the store down: every pass measures, since the spool now grows toward its budget
    store.down = True
    spool.scans = 0
    for i in range(3):
        spool_segment(spool, "cam", T0 + (10 + i) * 2_000_000, size=10_000)
        assert not up.pass_once()
        clock.advance(1.0)
    assert spool.scans == 3 and up.stats.spool_bytes == spool.usage_bytes() > 30_000


class SlowStore(S3Store):
    """The real S3 server (SeaweedFS) behind PUTs held a little longer, as a busy store answers
    them: counts how many run at once; `fail_after` refuses later PUTs, as a store going down."""

    def __init__(self, s3: SeaweedS3, fail_after: int | None = None) -> None:
        super().__init__(s3.endpoint, s3.access_key, s3.secret_key, s3.bucket)
        self.lock = threading.Lock()
        self.in_flight = self.most = self.puts = 0
        self.fail_after = fail_after

    def put_file(self, key: str, path: Path, content_type: str = "video/mp4") -> None:
        with self.lock:
            self.puts += 1
            if self.fail_after is not None and self.puts > self.fail_after:
                raise ObjectStoreError("s3 put: ConnectionRefusedError")
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        try:
            time.sleep(0.05)  # the busy store's latency: what concurrent PUTs overlap
            super().put_file(key, path, content_type)
        finally:
            with self.lock:
                self.in_flight -= 1


def test_puts_overlap_and_a_failure_stops_the_pass(tmp_path: Path, catalog: Catalog, s3: SeaweedS3) -> None:
    spool, store = Spool(tmp_path / "spool"), SlowStore(s3)
    for i in range(12):
        spool_segment(spool, f"cam{i % 3}", T0 + i * 2_000_000)
    up = Uploader(spool, store, catalog, max_spool_bytes=10**9, clock=FakeClock(), concurrency=4)
    assert up.pass_once()
    assert store.most == 4 and up.stats.uploaded == 12
    assert {s.state for c in ("cam0", "cam1", "cam2") for s in catalog.segments_for(c)} == {"stored"}
    assert spool.closed_segments() == []

    store.fail_after, store.puts = 5, 0  # the store dies during the second window
    for i in range(12, 24):
        spool_segment(spool, "cam0", T0 + i * 2_000_000)
    assert not up.pass_once()
    assert store.puts == 8  # two windows tried, none after the failing one
    left = spool.closed_segments()
    assert up.stats.uploaded == 12 + 5 and len(left) == 7 and not up.stats.store_ok  # 4 + 1 went through
    store.fail_after = None
    assert up.pass_once() and spool.closed_segments() == []
    assert [s.state for s in catalog.segments_for("cam0")].count("stored") == 4 + 12
