"""The spool's listing: which segments are closed (ready to upload), read from journals on disk."""

from __future__ import annotations

from pathlib import Path

from storage.catalog import Segment
from storage.spool import Spool


def _segment(spool: Spool, camera: str, start_s: int, fragments: int, *, close: bool) -> None:
    seg = spool.open_segment(Segment.opening(camera, "run1", start_s, start_s * 1_000_000, 0, "h264"), b"HEAD")
    for i in range(fragments):
        seg.add_fragment(b"x" * 100, i * 2_000_000, 2_000_000, 50)
    if close:
        seg.close(start_s * 1_000_000 + fragments * 2_000_000, 0)


def test_closed_segments_lists_only_closed_ones_oldest_first(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    _segment(spool, "b", 20, 3, close=True)
    _segment(spool, "a", 10, 5, close=True)
    _segment(spool, "a", 30, 2, close=False)  # still being written: never uploaded half-done
    _segment(spool, "c", 40, 0, close=False)  # no fragment yet: the journal holds only its header line
    got = [(s.segment.camera_id, s.segment.start_us // 1_000_000, len(s.segment.fragments)) for s in spool.closed_segments()]
    assert got == [("a", 10, 5), ("b", 20, 3)]


def test_recovered_and_torn_journals(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    _segment(spool, "a", 10, 3, close=False)
    # a crash mid-write tears the last journal line: not closed until recovery says so
    j = next((tmp_path / "a").glob("*.jsonl"))
    with open(j, "ab") as f:
        f.write(b'{"type":"fragment","f":[1')
    assert spool.closed_segments() == []
    (rec,) = spool.recover()  # the writer is gone (this process holds no lock once the file is reopened)
    listed = spool.closed_segments()
    assert [s.segment.start_us for s in listed] == [rec.segment.start_us] and listed[0].closed
    assert len(listed[0].segment.fragments) == 3


def test_usage_counts_every_file(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    _segment(spool, "a", 10, 2, close=True)
    _segment(spool, "b", 20, 1, close=False)
    expected = sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file())
    assert spool.usage_bytes() == expected > 300


def test_a_fragment_given_as_its_boxes_is_written_whole_and_indexed_once(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    seg = spool.open_segment(Segment.opening("cam", "run1", 0, 0, 0, "h264"), b"HEAD")
    moof, mdat = b"M" * 50, bytearray(b"D" * 5000)
    f1 = seg.add_fragment([moof, memoryview(mdat)], 0, 2_000_000, 50)
    f2 = seg.add_fragment(b"whole", 2_000_000, 2_000_000, 50)
    seg.close(4_000_000, 0)
    (closed,) = spool.closed_segments()
    data = closed.data_path.read_bytes()
    assert data == b"HEAD" + moof + mdat + b"whole"
    assert (f1.offset, f1.size, f2.offset, f2.size) == (4, 5050, 5054, 5)
    assert [(f.offset, f.size) for f in closed.segment.fragments] == [(4, 5050), (5054, 5)]
