"""playback.clips: stream-copy clips cut at keyframes, across segments and runs, hashed."""

from __future__ import annotations

import base64
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import av
import pytest

from storage.catalog import Catalog, Fragment, Segment
from playback.clips import ClipError, IncompatibleRuns, NothingRecorded, export_clip, plan_clip, repr_digest
from storage.keys import segment_key
from storage.object_store import LocalStore, S3Store
from storage.timeline import Span
from harness.recorded import Recording, RunSpec, make_recording, us
from harness.media import probe
from harness.servers import SeaweedS3

T0 = us(1714557600)
FPS = 25


@dataclass
class Rec:
    catalog: Catalog
    store: LocalStore
    rec: Recording
    tmp: Path


@pytest.fixture(scope="module")
def rec(tmp_path_factory: pytest.TempPathFactory) -> Rec:
    tmp = tmp_path_factory.mktemp("clips")
    catalog = Catalog(f"sqlite:///{tmp / 'catalog.db'}")
    store = LocalStore(tmp / "objects")
    # run A: [T0, T0+12 s), 4 segments of 3 one-second GOPs; gap; run B: [T0+20 s, T0+28 s)
    r = make_recording(store, catalog, "cam1", tmp / "media", [RunSpec(T0, 12, 3), RunSpec(T0 + us(20), 8, 2)])
    return Rec(catalog, store, r, tmp)


def decoded_times(path: Path) -> list[float]:
    with av.open(str(path)) as c:
        return [float(f.time) for f in c.decode(c.streams.video[0])]


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_plan_is_keyframe_aligned_and_covers_the_end() -> None:
    def mk(run: str, start: int, n: int) -> Segment:
        frags = [Fragment(100 + i * 10, 10, i * 2_000_000, 2_000_000) for i in range(n)]
        return Segment(
            "c",
            run,
            0,
            start,
            start + n * 2_000_000,
            0,
            100 + n * 10,
            100,
            "h264",
            n * 50,
            frags,
            state="stored",
        )

    segs = [mk("a", T0, 5), mk("a", T0 + us(10), 5), mk("b", T0 + us(30), 5)]
    plan = plan_clip("c", segs, T0 + us(3), T0 + us(31))
    assert plan.first_us == T0 + us(2)  # the GOP holding 3 s starts at 2 s
    assert plan.end_us == T0 + us(32)  # the GOP holding 31 s ends at 32 s
    assert [r.run_id for r in plan.runs] == ["a", "b"]
    a = plan.runs[0]
    # consecutive fragments of one object become one range; two objects, two ranges
    assert [(r.key, r.offset, r.size) for r in a.ranges] == [(segment_key("c", T0), 110, 40),
                                                             (segment_key("c", T0 + us(10)), 100, 50)]
    assert plan.gaps == [Span(T0 + us(20), T0 + us(30))]
    with pytest.raises(NothingRecorded):
        plan_clip("c", segs, T0 + us(20), T0 + us(30))


def test_clip_inside_one_segment(rec: Rec) -> None:
    out = rec.tmp / "a.mp4"
    r = export_clip(rec.catalog, rec.store, "cam1", T0 + us(4.5), T0 + us(5.5), out)
    assert (r.first_us, r.end_us) == (T0 + us(4), T0 + us(6))  # keyframe at 4 s; the GOP holding 5.5 s ends at 6 s
    p = probe(out, decode=True)
    assert p.frames == p.decoded_frames == r.frames == 2 * FPS
    assert p.keyframes[0] == 0
    assert r.sha256 == sha256_file(out) and r.bytes == out.stat().st_size
    assert r.repr_digest == "sha-256=:" + base64.b64encode(bytes.fromhex(r.sha256)).decode() + ":"
    head = out.read_bytes()[:64]
    assert head[4:8] == b"ftyp" and b"moov" in head  # faststart: the index comes first


def test_clip_across_segments_and_runs_keeps_the_gap(rec: Rec) -> None:
    out = rec.tmp / "b.mp4"
    r = export_clip(rec.catalog, rec.store, "cam1", T0 + us(2.5), T0 + us(24.2), out)
    assert (r.first_us, r.end_us) == (T0 + us(2), T0 + us(25))
    assert r.frames == (12 - 2 + 25 - 20) * FPS == rec.rec.frames_between(T0 + us(2.5), T0 + us(24.2))
    assert r.gaps == [Span(T0 + us(12), T0 + us(20))]
    times = decoded_times(out)
    assert len(times) == r.frames
    assert times[0] == 0.0
    # wall-clock faithful: the first frame of run B sits 18 s after the clip's first frame
    jump = max(range(1, len(times)), key=lambda i: times[i] - times[i - 1])
    assert times[jump] == pytest.approx(18.0) and times[jump - 1] == pytest.approx(10.0 - 1 / FPS)
    assert len(r.segment_keys) == 4 + 3


def test_exact_clip_presents_only_the_range(rec: Rec) -> None:
    out = rec.tmp / "c.mp4"
    r = export_clip(rec.catalog, rec.store, "cam1", T0 + us(2.5), T0 + us(5.2), out, exact=True)
    times = decoded_times(out)
    # frames k/25 s with k in [63, 130) start inside [2.5 s, 5.2 s): shown; those from the keyframe
    # at 2 s to 2.48 s are written (the decoder needs them) but an edit list hides them
    shown = math.ceil(2.5 * FPS - 1e-9), math.ceil(5.2 * FPS - 1e-9)
    assert times[0] == pytest.approx(0.0)
    assert len(times) == shown[1] - shown[0] == 67
    assert r.frames == shown[1] - 2 * FPS
    assert r.end_us == T0 + us(5.2)
    assert r.sha256 == sha256_file(out)


def test_errors(rec: Rec) -> None:
    with pytest.raises(NothingRecorded):
        export_clip(rec.catalog, rec.store, "cam1", T0 + us(13), T0 + us(19), rec.tmp / "n.mp4")
    with pytest.raises(NothingRecorded):
        export_clip(rec.catalog, rec.store, "other", T0, T0 + us(5), rec.tmp / "n.mp4")
    with pytest.raises(ClipError):
        export_clip(rec.catalog, rec.store, "cam1", T0 + us(5), T0 + us(5), rec.tmp / "n.mp4")
    assert not (rec.tmp / "n.mp4").exists()


def test_picture_size_change_is_refused(rec: Rec) -> None:
    make_recording(rec.store, rec.catalog, "cam2", rec.tmp / "m2", [RunSpec(T0, 2, 2)])
    make_recording(rec.store, rec.catalog, "cam2", rec.tmp / "m3", [RunSpec(T0 + us(5), 2, 2)], width=160, height=120)
    with pytest.raises(IncompatibleRuns, match="separately"):
        export_clip(rec.catalog, rec.store, "cam2", T0, T0 + us(10), rec.tmp / "x.mp4")
    ok = export_clip(rec.catalog, rec.store, "cam2", T0 + us(5), T0 + us(10), rec.tmp / "y.mp4")
    assert ok.frames == 2 * FPS


def test_clip_from_s3(rec: Rec, s3: SeaweedS3, tmp_path: Path) -> None:
    store = S3Store(s3.endpoint, s3.access_key, s3.secret_key, s3.bucket)
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    r = make_recording(store, catalog, "s3cam", tmp_path / "m", [RunSpec(T0, 6, 3)])
    out = tmp_path / "s3.mp4"
    res = export_clip(catalog, store, "s3cam", T0 + us(1.5), T0 + us(4.5), out)
    assert res.frames == 4 * FPS == r.frames_between(T0 + us(1.5), T0 + us(4.5))
    assert probe(out, decode=True).decoded_frames == res.frames
    assert res.repr_digest == repr_digest(sha256_file(out))


def test_a_short_or_missing_object_fails_the_export_loudly(rec: Rec) -> None:
    """The prefetching reader hands the store's failures to the exporting thread."""
    r = make_recording(rec.store, rec.catalog, "cam4", rec.tmp / "m4", [RunSpec(T0, 6, 2)])
    keys = sorted({s.object_key for s in r.segments})
    victim = rec.store.root / keys[1]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    with pytest.raises(ClipError, match="shorter than the catalog says"):
        export_clip(rec.catalog, rec.store, "cam4", T0, T0 + us(6), rec.tmp / "short.mp4")
    victim.unlink()
    with pytest.raises(KeyError):
        export_clip(rec.catalog, rec.store, "cam4", T0, T0 + us(6), rec.tmp / "gone.mp4")
    victim.write_bytes(data)  # whole again: the same export succeeds
    ok = export_clip(rec.catalog, rec.store, "cam4", T0, T0 + us(6), rec.tmp / "ok.mp4")
    assert ok.frames == 6 * FPS
