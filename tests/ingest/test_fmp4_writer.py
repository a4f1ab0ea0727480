"""The run writer against real encoded clips: segments play alone, abut, and keep decode time."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
from pathlib import Path

import av
import pytest

from ingest.fmp4_writer import RunWriter, _BoxSplitter
from ingest.session import Session
from ingest.source import SourceOptions, open_source
from storage.spool import Spool, read_journal
from harness.media import make_clip
from harness.fakes import FakeClock

T0 = 1_764_000_000_000_000


def _write_run(clip: Path, spool: Spool, segment_us: int, *, camera: str = "cam", stop_after_gops: int | None = None):
    with av.open(str(clip)) as c:
        v = c.streams.video[0]
        a = c.streams.audio[0] if c.streams.audio else None
        w = RunWriter(spool, camera_id=camera, run_id="r1", wall_start_us=T0, video=v, audio=a, segment_us=segment_us)
        keys = 0
        for p in c.demux([s for s in (v, a) if s]):
            if p.dts is None:
                continue
            if p.stream is v and p.is_keyframe:
                keys += 1
                if stop_after_gops is not None and keys > stop_after_gops:
                    os.kill(os.getpid(), signal.SIGKILL)  # a real crash, mid-segment
            w.write(p)
        w.close()
    return w


@pytest.mark.parametrize("codec, bframes, audio", [("h264", 0, False), ("h264", 2, True), ("hevc", 0, True)])
def test_segments_decode_alone_abut_and_continue_decode_time(tmp_path: Path, codec: str, bframes: int, audio: bool) -> None:
    clip = make_clip(tmp_path / "c.mp4", 9.0, codec=codec, gop=25, bframes=bframes, audio=audio)
    spool = Spool(tmp_path / "spool")
    _write_run(clip.path, spool, 4_000_000)
    segs = spool.closed_segments()
    assert [s.segment.seq for s in segs] == [0, 1, 2]
    # closed at the first keyframe at or after 4 s: GOP 1 s → 4 s, 4 s, 1 s
    assert [(s.segment.end_us - s.segment.start_us) for s in segs] == [4_000_000, 4_000_000, 1_000_000]
    for a, b in zip(segs, segs[1:]):
        assert a.segment.end_us == b.segment.start_us
    assert sum(s.segment.frames for s in segs) == clip.frames
    decoded = 0
    prev_last_dts = None
    for s in segs:
        assert s.data_path.stat().st_size == s.segment.bytes
        with av.open(str(s.data_path)) as f:
            pkts = [p for p in f.demux(video=0) if p.dts is not None]
            assert pkts[0].is_keyframe
            tb = f.streams.video[0].time_base
            first_dts = float(pkts[0].dts * tb)
            assert first_dts == pytest.approx(s.segment.media_start_us / 1e6, abs=0.05), "decode time must not rebase"
            if prev_last_dts is not None:
                assert first_dts > prev_last_dts
            prev_last_dts = float(pkts[-1].dts * tb)
            if audio:
                assert len(f.streams.audio) == 1
        with av.open(str(s.data_path)) as f:
            decoded += sum(1 for _ in f.decode(video=0))
    assert decoded == clip.frames


def test_fragment_index_points_at_moof_boxes(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "c.mp4", 6.0, gop=50)
    spool = Spool(tmp_path / "spool")
    _write_run(clip.path, spool, 60_000_000)
    (seg,) = spool.closed_segments()
    data = seg.data_path.read_bytes()
    assert data[4:8] == b"ftyp"
    assert len(seg.segment.fragments) == 3
    for f in seg.segment.fragments:
        assert data[f.offset + 4 : f.offset + 8] == b"moof"
        assert f.duration_us == 2_000_000
    assert [f.start_off_us for f in seg.segment.fragments] == [0, 2_000_000, 4_000_000]


def test_crash_mid_segment_is_recovered_to_the_last_complete_fragment(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "c.mp4", 8.0, gop=25)
    spool = Spool(tmp_path / "spool")
    ctx = mp.get_context("fork")
    p = ctx.Process(target=_write_run, args=(clip.path, spool, 60_000_000), kwargs={"stop_after_gops": 5})
    p.start()
    p.join(30)
    assert p.exitcode == -signal.SIGKILL
    assert spool.closed_segments() == []
    (rec,) = spool.recover()
    assert rec.segment.recovered and rec.closed
    # GOP 5's keyframe flushed fragment 4; fragments 0..3 were journaled: 4 s recovered
    assert len(rec.segment.fragments) >= 4
    assert rec.segment.end_us - rec.segment.start_us == sum(f.duration_us for f in rec.segment.fragments)
    assert rec.data_path.stat().st_size == rec.segment.bytes
    with av.open(str(rec.data_path)) as f:
        assert sum(1 for _ in f.decode(video=0)) == rec.segment.frames == 25 * len(rec.segment.fragments)
    assert read_journal(rec.journal_path).closed  # type: ignore[union-attr]
    assert spool.recover() == []  # idempotent


def test_session_over_a_file_source_keeps_every_frame(tmp_path: Path) -> None:
    """A file source is paced like a camera; here with a fake clock so it runs at full speed."""
    clip = make_clip(tmp_path / "c.mp4", 5.0, gop=25)
    spool = Spool(tmp_path / "spool")
    src = open_source(str(clip.path), SourceOptions(schemes=("file",)))
    src.network = True  # no real-time pacing in this test
    res = Session(src, spool, camera_id="cam", segment_s=2, clock=FakeClock(), stop=threading.Event()).run()
    assert res.ended_by == "stream ended" and res.runs == 1
    assert res.frames == clip.frames
    assert sum(s.segment.frames for s in spool.closed_segments()) == clip.frames


def _box(kind: bytes, payload: bytes, *, large: bool = False) -> bytes:
    if large:  # size 1: the real size follows as 64 bits
        return (1).to_bytes(4, "big") + kind + (16 + len(payload)).to_bytes(8, "big") + payload
    return (8 + len(payload)).to_bytes(4, "big") + kind + payload


@pytest.mark.parametrize("chunk", [1, 3, 7, 4096])
def test_box_splitter_finds_every_box_whatever_the_muxer_chunking(chunk: int) -> None:
    boxes = [_box(b"moof", b"m" * 40), _box(b"mdat", os.urandom(3000), large=True), _box(b"moof", b""), _box(b"mdat", b"d" * 9)]
    stream = b"".join(boxes)
    got: list[tuple[bytes, bytes]] = []
    kept: list[memoryview] = []

    def on_box(kind: bytes, box: memoryview) -> None:
        got.append((kind, bytes(box)))
        kept.append(box)

    sp = _BoxSplitter()
    for i in range(0, len(stream), chunk):
        sp.feed(stream[i : i + chunk], on_box)
    assert got == [(b[4:8], b) for b in boxes]
    assert sp.buf == b""
    with pytest.raises(ValueError):  # a view does not outlive its callback (the buffer moves on)
        bytes(kept[0])


def test_box_splitter_rejects_a_malformed_box() -> None:
    with pytest.raises(ValueError, match="malformed"):
        _BoxSplitter().feed((4).to_bytes(4, "big") + b"moof", lambda k, b: None)
