"""Clip export: one MP4 for [start, end) from stored segments, stream copy, `+faststart`.

Why in storage: the API, the CLI and the benchmarks all export clips, and the work is reading byte
ranges from the object store and remuxing them — no HTTP in it.

How: the plan (pure) picks, per run, the fragments overlapping the range — the first holds the
keyframe at or before `start`, the last is the GOP holding the last instant before `end`. Each run
is read as one fragmented-MP4 stream (its header, then its fragments straight from the store,
across segment objects: decode times continue within a run) and demuxed with PyAV; packets are
remuxed into one MP4 whose timeline keeps wall-clock offsets, so a gap between runs stays a gap of
the same length (never papered over). `exact=True` shifts the origin to `start`: the frames before
it are still written (the decoder needs them) but an edit list starts presentation at `start`.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from storage.catalog import Catalog, Segment
from playback.hls import fragments_in
from storage.object_store import ObjectStore
from storage.timeline import Span, gaps

__all__ = [
    "ClipError",
    "ClipPlan",
    "ClipResult",
    "IncompatibleRuns",
    "NothingRecorded",
    "RunPlan",
    "export_clip",
    "plan_clip",
    "repr_digest",
    "write_clip",
]


class ClipError(Exception):
    """The clip cannot be made as asked; the message is for the person who asked."""


class NothingRecorded(ClipError):
    pass


class IncompatibleRuns(ClipError):
    """Codec or picture size changes inside the range: one MP4 track cannot hold both."""


@dataclass(frozen=True, slots=True)
class ByteRange:
    key: str
    offset: int
    size: int


@dataclass(frozen=True, slots=True)
class RunPlan:
    """The part of one run inside the clip: its header, then fragments in decode order."""

    run_id: str
    zero_us: int  # wall clock at the run's media time 0 (segment start − media start)
    header: ByteRange
    ranges: tuple[ByteRange, ...]
    first_us: int  # wall clock of the first selected fragment (a keyframe)
    end_us: int  # wall clock of the end of the last selected fragment
    spans: tuple[Span, ...]  # what the selected fragments cover
    segment_keys: tuple[str, ...]

    @property
    def bytes(self) -> int:
        return self.header.size + sum(r.size for r in self.ranges)


@dataclass(frozen=True, slots=True)
class ClipPlan:
    camera_id: str
    requested: Span
    runs: tuple[RunPlan, ...]

    @property
    def first_us(self) -> int:
        return self.runs[0].first_us

    @property
    def end_us(self) -> int:
        return self.runs[-1].end_us

    @property
    def gaps(self) -> list[Span]:
        return gaps([s for r in self.runs for s in r.spans], self.first_us, self.end_us)

    @property
    def segment_keys(self) -> list[str]:
        return [k for r in self.runs for k in r.segment_keys]


@dataclass(frozen=True, slots=True)
class ClipResult:
    path: Path
    sha256: str  # hex
    bytes: int
    camera_id: str
    requested_start_us: int
    requested_end_us: int
    first_us: int  # wall clock of the first frame written (a keyframe at or before the start)
    end_us: int  # wall clock of the end of the last frame written
    frames: int  # video frames written
    exact: bool
    gaps: list[Span] = field(default_factory=list)
    segment_keys: list[str] = field(default_factory=list)

    @property
    def repr_digest(self) -> str:
        return repr_digest(self.sha256)


def repr_digest(sha256_hex: str) -> str:
    """RFC 9530 `Repr-Digest` value: `sha-256=:<base64 of the raw digest>:`."""
    return f"sha-256=:{base64.b64encode(bytes.fromhex(sha256_hex)).decode()}:"


def plan_clip(camera_id: str, segments: Sequence[Segment], start_us: int, end_us: int) -> ClipPlan:
    """Choose the fragments of [start_us, end_us) run by run (pure). Raises NothingRecorded."""
    runs: list[RunPlan] = []
    cur: dict[str, Any] | None = None

    def close() -> None:
        if cur is not None:
            runs.append(
                RunPlan(
                    run_id=cur["run_id"],
                    zero_us=cur["zero_us"],
                    header=cur["header"],
                    ranges=tuple(cur["ranges"]),
                    first_us=cur["first_us"],
                    end_us=cur["end_us"],
                    spans=tuple(cur["spans"]),
                    segment_keys=tuple(cur["keys"]),
                )
            )

    for seg in sorted(segments, key=lambda s: s.start_us):
        frags = fragments_in(seg.start_us, seg.fragments, start_us, end_us)
        if not frags:
            continue
        if cur is None or cur["run_id"] != seg.run_id:
            close()
            cur = {
                "run_id": seg.run_id,
                "zero_us": seg.start_us - seg.media_start_us,
                "header": ByteRange(seg.object_key, 0, seg.header_bytes),
                "ranges": [],
                "first_us": seg.start_us + frags[0].start_off_us,
                "end_us": 0,
                "spans": [],
                "keys": [],
            }
        cur["keys"].append(seg.object_key)
        # consecutive fragments of one object are read as one range
        i = 0
        while i < len(frags):
            j = i + 1
            while j < len(frags) and frags[j].offset == frags[j - 1].offset + frags[j - 1].size:
                j += 1
            head, tail = frags[i], frags[j - 1]
            cur["ranges"].append(ByteRange(seg.object_key, head.offset, tail.offset + tail.size - head.offset))
            i = j
        for f in frags:
            cur["spans"].append(Span(seg.start_us + f.start_off_us, seg.start_us + f.start_off_us + f.duration_us))
        cur["end_us"] = seg.start_us + frags[-1].start_off_us + frags[-1].duration_us
    close()
    if not runs:
        raise NothingRecorded(f"nothing recorded for camera {camera_id} in the requested range")
    return ClipPlan(camera_id, Span(start_us, end_us), tuple(runs))


class _RangesReader(io.RawIOBase):
    """A run's bytes — header then fragments, from the store — as one forward-only file.

    A thread fetches ahead (up to `ahead` chunks) so the store's transfer overlaps the remux:
    for an hour from S3 the two took about as long as each other, one after the other.
    """

    def __init__(self, store: ObjectStore, ranges: Sequence[ByteRange], ahead: int = 16) -> None:
        self._q: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=ahead)
        self._stop = threading.Event()
        self._buf = memoryview(b"")
        self._done = False
        self._thread = threading.Thread(target=self._fetch, args=(store, ranges), name="clip-fetch", daemon=True)
        self._thread.start()

    def _fetch(self, store: ObjectStore, ranges: Sequence[ByteRange]) -> None:
        try:
            for r in ranges:
                got = 0
                for chunk in store.iter_range(r.key, r.offset, r.size):
                    got += len(chunk)
                    if not self._put(chunk):
                        return
                if got != r.size:
                    raise ClipError(f"object {r.key} is shorter than the catalog says ({got} of {r.size} bytes)")
            self._put(None)
        except BaseException as e:  # handed to the reading thread, raised there
            self._put(e)

    def _put(self, item: bytes | BaseException | None) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, b: Any) -> int:
        while not self._buf:
            if self._done:
                return 0
            item = self._q.get()
            if item is None:
                self._done = True
                return 0
            if isinstance(item, BaseException):
                self._done = True
                raise item
            self._buf = memoryview(item)
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    def close(self) -> None:
        self._stop.set()
        super().close()


def _params(stream: Any) -> tuple[Any, ...]:
    cc = stream.codec_context
    return (stream.type, cc.name, getattr(cc, "width", None), getattr(cc, "height", None), bytes(cc.extradata or b""))


def write_clip(store: ObjectStore, plan: ClipPlan, out_path: Path, *, exact: bool = False) -> ClipResult:
    """Remux the plan into `out_path` (MP4, +faststart) and hash it."""
    origin_us = max(plan.requested.start_us, plan.first_us) if exact else plan.first_us
    cut_us = plan.requested.end_us if exact else None
    out_path.parent.mkdir(parents=True, exist_ok=True)
    frames = 0
    last_video_end_us = plan.first_us
    with av.open(str(out_path), "w", format="mp4", options={"movflags": "+faststart"}) as oc:
        outs: list[Any] = []  # output streams, by input stream index of the first run
        first_params: list[tuple[Any, ...]] = []
        for run in plan.runs:
            with io.BufferedReader(_RangesReader(store, (run.header, *run.ranges)), 1 << 20) as reader, \
                    av.open(reader, "r", format="mp4") as ic:
                streams = [s for s in ic.streams if s.type in ("video", "audio")]
                params = [_params(s) for s in streams]
                if not outs:
                    outs = [oc.add_stream_from_template(s) for s in streams]
                    first_params = params
                elif params != first_params:
                    raise IncompatibleRuns(
                        f"the recording's codec parameters change at {_iso(run.first_us)}; "
                        "export the parts before and after it separately"
                    )
                # per input stream: (output stream, tick shift, is video, µs per tick as num/den);
                # integers only in the loop, which runs for every packet of the hour
                per: dict[int, tuple[Any, int, bool, int, int]] = {}
                for k, st in enumerate(streams):
                    tb = st.time_base or Fraction(1, 90000)
                    per[st.index] = (outs[k], _ticks(run.zero_us - origin_us, tb), outs[k].type == "video",
                                     tb.numerator * 1_000_000, tb.denominator)
                cut_rel = cut_us - run.zero_us if cut_us is not None else None
                video_end_ticks: int | None = None
                vnum = vden = 1
                for pkt in ic.demux(streams):
                    pts, dts = pkt.pts, pkt.dts
                    if dts is None and pts is None:
                        continue  # flush packet
                    out, d, is_video, num, den = per[pkt.stream.index]
                    if is_video and pts is not None:
                        if cut_rel is not None and pts * num // den >= cut_rel and pts == dts:
                            continue  # after the end, and no later frame depends on it (no reordering)
                        e = pts + (pkt.duration or 0) + d
                        if video_end_ticks is None or e > video_end_ticks:
                            video_end_ticks, vnum, vden = e, num, den
                    if dts is not None:
                        pkt.dts = dts + d
                    if pts is not None:
                        pkt.pts = pts + d
                    pkt.stream = out
                    if is_video:
                        frames += 1
                    oc.mux(pkt)
                if video_end_ticks is not None:
                    last_video_end_us = max(last_video_end_us, origin_us + video_end_ticks * vnum // vden)
    sha, size = _sha256(out_path)
    return ClipResult(
        path=out_path,
        sha256=sha,
        bytes=size,
        camera_id=plan.camera_id,
        requested_start_us=plan.requested.start_us,
        requested_end_us=plan.requested.end_us,
        first_us=plan.first_us,
        end_us=min(plan.end_us, last_video_end_us) if cut_us is not None else plan.end_us,
        frames=frames,
        exact=exact,
        gaps=plan.gaps,
        segment_keys=plan.segment_keys,
    )


def export_clip(
    catalog: Catalog,
    store: ObjectStore,
    camera_id: str,
    start_us: int,
    end_us: int,
    out_path: Path,
    *,
    exact: bool = False,
) -> ClipResult:
    """Plan from the catalog's stored segments, then write. Raises ClipError subclasses."""
    if start_us >= end_us:
        raise ClipError("start must be before end")
    segments = catalog.segments_between(camera_id, start_us, end_us, stored_only=True)
    plan = plan_clip(camera_id, segments, start_us, end_us)
    try:
        return write_clip(store, plan, out_path, exact=exact)
    except BaseException:
        try:
            os.unlink(out_path)
        except FileNotFoundError:
            pass
        raise


def _ticks(us: int, time_base: Fraction | None) -> int:
    """µs → ticks of a stream's time base (exact rational arithmetic, rounded once)."""
    if not time_base:
        raise ClipError("a stream of the recording has no time base")
    return round(Fraction(us, 1_000_000) / time_base)


def _sha256(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            n += len(chunk)
    return h.hexdigest(), n


def _iso(us: int) -> str:
    from storage.keys import us_to_datetime

    return us_to_datetime(us).isoformat().replace("+00:00", "Z")
