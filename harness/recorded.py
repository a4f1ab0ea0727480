"""A test fixture that fakes the recorder's output: real fMP4 segments in a real store + catalog rows.

Why: playback, clip and live tests need stored segments whose every property is known (frames,
keyframes, fragment offsets and times, runs and gaps) without waiting for an RTSP camera. The bytes
are made the way the recorder makes them (docs/design/platform.md §1.7): one fragmented-MP4 muxer per
run, its output split between fragments into segment objects that each start with the run's header,
so decode times continue across a run's segments. When the recorder lands, a `vigil run`
subprocess recording a camera can replace `make_recording` behind the same `Recording` type.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from pathlib import Path

import av

from storage.catalog import Catalog, Fragment, Segment
from storage.object_store import ObjectStore
from harness.media import make_clip

__all__ = [
    "FragmentBytes",
    "Recording",
    "RunSpec",
    "fragment_mp4",
    "make_recording",
    "split_fmp4",
    "us",
]

FMP4_FLAGS = "frag_keyframe+empty_moov+default_base_moof"


def us(seconds: float) -> int:
    return round(seconds * 1_000_000)


@dataclass(frozen=True, slots=True)
class FragmentBytes:
    """One moof+mdat as cut from a muxer's output, with its decode time and length."""

    data: bytes
    decode_time: int  # tfdt, in the track's timescale
    duration: int  # sum of sample durations, track timescale
    samples: int


@dataclass(frozen=True, slots=True)
class RunSpec:
    start_us: int
    seconds: float
    fragments_per_segment: int = 3


@dataclass(slots=True)
class Recording:
    camera_id: str
    fps: int
    gop: int
    segments: list[Segment] = field(default_factory=list)
    runs: list[list[Segment]] = field(default_factory=list)
    header: bytes = b""

    @property
    def frames(self) -> int:
        return sum(s.frames for s in self.segments)

    def frames_between(self, start_us: int, end_us: int) -> int:
        """Frames in the fragments overlapping [start_us, end_us), as the catalog records them."""
        n = 0
        per_frag = self.gop
        for s in self.segments:
            for f in s.fragments:
                fs = s.start_us + f.start_off_us
                if fs < end_us and fs + f.duration_us > start_us:
                    n += round(f.duration_us * self.fps / 1e6) if f.duration_us else per_frag
        return n


# ---- ISO BMFF box parsing (just enough for moof/traf) --------------------------------------


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[str, int, int, int]]:
    """(type, box start, payload start, box end) for each box in data[start:end]."""
    end = len(data) if end is None else end
    out = []
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        head = 8
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
            head = 16
        elif size == 0:
            size = end - pos
        out.append((kind.decode("latin-1"), pos, pos + head, pos + size))
        pos += size
    return out


def _child(data: bytes, start: int, end: int, kind: str) -> tuple[int, int] | None:
    for k, _, p, e in _boxes(data, start, end):
        if k == kind:
            return p, e
    return None


def _timescale_and_trex(header: bytes) -> tuple[int, int]:
    moov = _child(header, 0, len(header), "moov")
    assert moov, "no moov in header"
    trak = _child(header, *moov, "trak")
    assert trak, "no trak in moov"
    mdia = _child(header, *trak, "mdia")
    assert mdia, "no mdia in trak"
    mdhd = _child(header, *mdia, "mdhd")
    assert mdhd, "no mdhd in mdia"
    version = header[mdhd[0]]
    ts_off = mdhd[0] + (20 if version == 1 else 12)
    timescale = struct.unpack(">I", header[ts_off : ts_off + 4])[0]
    default_dur = 0
    mvex = _child(header, *moov, "mvex")
    if mvex:
        trex = _child(header, *mvex, "trex")
        if trex:
            default_dur = struct.unpack(">I", header[trex[0] + 12 : trex[0] + 16])[0]
    return timescale, default_dur


def _parse_moof(data: bytes, start: int, end: int, trex_dur: int) -> tuple[int, int, int]:
    """(decode time, duration, samples) of the first track fragment in a moof."""
    traf = _child(data, start, end, "traf")
    assert traf, "moof without traf"
    tfhd = _child(data, *traf, "tfhd")
    assert tfhd
    flags = int.from_bytes(data[tfhd[0] + 1 : tfhd[0] + 4], "big")
    pos = tfhd[0] + 8  # version/flags + track_ID
    if flags & 0x01:
        pos += 8
    if flags & 0x02:
        pos += 4
    default_dur = trex_dur
    if flags & 0x08:
        default_dur = struct.unpack(">I", data[pos : pos + 4])[0]
    tfdt = _child(data, *traf, "tfdt")
    assert tfdt
    v = data[tfdt[0]]
    decode_time = (
        struct.unpack(">Q", data[tfdt[0] + 4 : tfdt[0] + 12])[0]
        if v == 1
        else struct.unpack(">I", data[tfdt[0] + 4 : tfdt[0] + 8])[0]
    )
    duration = samples = 0
    for k, _, p, _e in _boxes(data, *traf):
        if k != "trun":
            continue
        tflags = int.from_bytes(data[p + 1 : p + 4], "big")
        count = struct.unpack(">I", data[p + 4 : p + 8])[0]
        q = p + 8
        if tflags & 0x01:
            q += 4
        if tflags & 0x04:
            q += 4
        per = sum(4 for bit in (0x100, 0x200, 0x400, 0x800) if tflags & bit)
        for _ in range(count):
            if tflags & 0x100:
                duration += struct.unpack(">I", data[q : q + 4])[0]
            else:
                duration += default_dur
            q += per
        samples += count
    return decode_time, duration, samples


def split_fmp4(data: bytes) -> tuple[bytes, int, list[FragmentBytes]]:
    """Cut a fragmented MP4 into (header, timescale, fragments); trailing boxes (mfra) are dropped."""
    boxes = _boxes(data)
    first_moof = next(i for i, b in enumerate(boxes) if b[0] == "moof")
    header = data[: boxes[first_moof][1]]
    timescale, trex_dur = _timescale_and_trex(header)
    frags: list[FragmentBytes] = []
    i = first_moof
    while i < len(boxes) and boxes[i][0] == "moof":
        _, b0, p0, e0 = boxes[i]
        assert boxes[i + 1][0] == "mdat", "moof not followed by mdat"
        end = boxes[i + 1][3]
        dt, dur, n = _parse_moof(data, p0, e0, trex_dur)
        frags.append(FragmentBytes(data[b0:end], dt, dur, n))
        i += 2
    return header, timescale, frags


def fragment_mp4(src: Path) -> bytes:
    """Remux an MP4 into a fragmented MP4 (one fragment per GOP), stream copy, like the recorder."""
    buf = io.BytesIO()
    with av.open(str(src)) as inp, av.open(buf, "w", format="mp4", options={"movflags": FMP4_FLAGS}) as out:
        ist = inp.streams.video[0]
        ost = out.add_stream_from_template(ist)
        for pkt in inp.demux(ist):
            if pkt.dts is None:
                continue
            pkt.stream = ost
            out.mux(pkt)
    return buf.getvalue()


def _to_us(t: int, timescale: int) -> int:
    return (t * 1_000_000 + timescale // 2) // timescale


def record_run(
    store: ObjectStore,
    catalog: Catalog,
    camera_id: str,
    run_id: str,
    start_us: int,
    fmp4: bytes,
    fragments_per_segment: int,
    *,
    width: int,
    height: int,
    state: str = "stored",
) -> tuple[bytes, list[Segment]]:
    """Split one run's fMP4 into segment objects, put them, insert their rows; returns (header, rows)."""
    header, timescale, frags = split_fmp4(fmp4)
    segs: list[Segment] = []
    for seq, i in enumerate(range(0, len(frags), fragments_per_segment)):
        group = frags[i : i + fragments_per_segment]
        seg_media_us = _to_us(group[0].decode_time, timescale)
        seg_start = start_us + seg_media_us
        offset = len(header)
        index: list[Fragment] = []
        for fb in group:
            f_start = _to_us(fb.decode_time, timescale) - seg_media_us
            f_dur = _to_us(fb.decode_time + fb.duration, timescale) - _to_us(fb.decode_time, timescale)
            index.append(Fragment(offset, len(fb.data), f_start, f_dur))
            offset += len(fb.data)
        body = header + b"".join(fb.data for fb in group)
        last = index[-1]
        seg = Segment(
            camera_id=camera_id,
            run_id=run_id,
            seq=seq,
            start_us=seg_start,
            end_us=seg_start + last.start_off_us + last.duration_us,
            media_start_us=seg_media_us,
            bytes=len(body),
            header_bytes=len(header),
            video_codec="h264",
            frames=sum(fb.samples for fb in group),
            fragments=index,
            width=width,
            height=height,
            state=state,
            stored_us=seg_start if state == "stored" else None,
        )
        if state == "stored":
            store.put_bytes(seg.object_key, body, "video/mp4")
        catalog.add_segment(seg)
        segs.append(seg)
    return header, segs


def make_recording(
    store: ObjectStore,
    catalog: Catalog,
    camera_id: str,
    workdir: Path,
    runs: list[RunSpec],
    *,
    width: int = 320,
    height: int = 240,
    fps: int = 25,
    gop: int = 25,
) -> Recording:
    """Record `runs` (each its own encoder, so its own header and decode times from 0) for a camera."""
    rec = Recording(camera_id=camera_id, fps=fps, gop=gop)
    workdir.mkdir(parents=True, exist_ok=True)
    for n, spec in enumerate(runs):
        clip = make_clip(
            workdir / f"{camera_id}-run{n}.mp4", spec.seconds, width=width, height=height, fps=fps, gop=gop, seed=n + 1
        )
        fmp4 = fragment_mp4(clip.path)
        header, segs = record_run(
            store,
            catalog,
            camera_id,
            f"run{n:02d}{spec.start_us % 10**9:09d}",
            spec.start_us,
            fmp4,
            spec.fragments_per_segment,
            width=width,
            height=height,
        )
        rec.header = rec.header or header
        rec.runs.append(segs)
        rec.segments.extend(segs)
    return rec
