"""Writes one run as fragmented-MP4 segments into the spool, by stream copy.

One muxer per run (docs/design/platform.md §1.7): its byte stream — header (ftyp + moov), then one
fragment (moof + mdat) per GOP — is split on box boundaries between fragments into segment files.
Every segment file is header + its fragments, so it plays on its own, and decode times continue
across the run's segments, so a run plays as one HLS stream. The muxer emits a GOP's fragment only
when the next keyframe arrives (or at close); a FIFO of GOP descriptions pairs each fragment with
its media time and segment, whatever the muxer's output buffering.
"""

from __future__ import annotations

import logging
from collections import deque
from fractions import Fraction
from dataclasses import dataclass
from typing import Callable

import av

from ingest.segmenter import Cut, SegmentCutter
from storage.catalog import Segment
from storage.spool import OpenSegment, Spool

__all__ = ["RunWriter", "GopInfo"]

log = logging.getLogger("vigil.writer")

MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof+skip_trailer"
WRITE_BUFFER = 128 * 1024


@dataclass(slots=True)
class GopInfo:
    segment: int
    start_us: int  # media time since the run's first keyframe
    drift_us: int  # wall-clock minus media time elapsed in the run, at its keyframe
    duration_us: int | None = None
    frames: int = 0


class _BoxSplitter:
    """Cuts a byte stream into complete top-level ISO-BMFF boxes.

    Boxes are handed out as views of the buffer, valid only during the callback: a GOP's fragment
    reaches the spool file after one copy in Python, not four (slice, bytes, join).
    """

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes, on_box: Callable[[bytes, memoryview], None]) -> None:
        buf = self.buf
        buf += data
        n = len(buf)
        pos = 0
        with memoryview(buf) as view:
            while n - pos >= 8:
                size = int.from_bytes(view[pos : pos + 4], "big")
                kind = bytes(view[pos + 4 : pos + 8])
                if size == 1:
                    if n - pos < 16:
                        break
                    size = int.from_bytes(view[pos + 8 : pos + 16], "big")
                if size < 8:
                    raise ValueError(f"muxer wrote a malformed box {kind!r} of size {size}")
                if n - pos < size:
                    break
                box = view[pos : pos + size]
                try:
                    on_box(kind, box)
                finally:
                    box.release()  # the buffer is cut below; a view kept past here would pin it
                pos += size
        if pos:
            del buf[:pos]


class _Sink:
    """The file-like object the muxer writes to (write-only, not seekable)."""

    def __init__(self, on_bytes: Callable[[bytes], None]) -> None:
        self._on_bytes = on_bytes

    def write(self, data: bytes) -> int:
        self._on_bytes(bytes(data))
        return len(data)


def _settle_duration(held: av.Packet, next_dts: int, last: int) -> int:
    """A held packet's duration, if the demuxer gave none: up to the next packet of its stream (or
    the last known one when the next does not advance). Returns it, the new "last known"."""
    if not held.duration:
        d = next_dts - held.dts
        held.duration = d if d > 0 else last
    return held.duration


class RunWriter:
    """Muxes one run's packets (timestamps already repaired) into spool segments."""

    def __init__(
        self,
        spool: Spool,
        *,
        camera_id: str,
        run_id: str,
        wall_start_us: int,
        video: av.video.stream.VideoStream,
        audio: av.audio.stream.AudioStream | None,
        segment_us: int,
        lease_epoch: int | None = None,
        node_id: str | None = None,
        on_segment_closed: Callable[[OpenSegment], None] | None = None,
        now_us: Callable[[], int] | None = None,
    ) -> None:
        self.spool = spool
        self.camera_id = camera_id
        self.run_id = run_id
        self.wall_start_us = wall_start_us
        self.lease_epoch = lease_epoch
        self.node_id = node_id
        self.on_segment_closed = on_segment_closed
        self._now_us = now_us or (lambda: wall_start_us)
        self.cutter = SegmentCutter(segment_us)
        self.video_in = video
        self.audio_in = audio
        self.video_codec = video.codec_context.name
        self.audio_codec = audio.codec_context.name if audio else None
        self.width = video.codec_context.width or None
        self.height = video.codec_context.height or None

        self._splitter = _BoxSplitter()
        self._header = bytearray()
        self._header_done = False
        self._frag: list[bytes] = []
        self._gops: deque[GopInfo] = deque()  # GOPs muxed whose fragment has not come out yet
        self._current_gop: GopInfo | None = None
        self._open: OpenSegment | None = None
        self._open_index = -1
        self.closed_segments: list[OpenSegment] = []

        # The muxer flushes at each fragment's end; a buffer bigger than PyAV's 32 KiB default hands
        # a fragment over in a few Python calls instead of ~16 (memory: this much per camera).
        self._out = av.open(_Sink(self._on_bytes), mode="w", format="mp4", options={"movflags": MOVFLAGS},
                            buffer_size=WRITE_BUFFER)
        self._vout = self._out.add_stream_from_template(video)
        self._aout = self._out.add_stream_from_template(audio) if audio else None
        self._first_dts = 0  # the run's first video DTS: media time 0
        # one packet per stream held until the next one gives its duration
        self._held_v: av.Packet | None = None
        self._held_a: av.Packet | None = None
        self._last_dur_v = self._last_dur_a = 1
        # time bases as integers: Fraction arithmetic per packet cost more than the rest of write()
        vtb = video.time_base or Fraction(1, 90000)
        atb = audio.time_base if audio else None
        self._v_num_us, self._v_den = vtb.numerator * 1_000_000, vtb.denominator  # type: ignore[union-attr]
        self._a_num_us, self._a_den = (atb.numerator * 1_000_000, atb.denominator) if atb else (0, 1)
        self._video_t0_us: int | None = None
        self.last_media_us = 0
        self.frames = 0
        self.closed = False
        # Packets can arrive late (a server's backlog burst at connect, network delay) but never
        # early: the run's wall anchor is the earliest (arrival − media time) seen while its first
        # segment is open, then frozen so that later segments abut.
        self._anchor_frozen = now_us is None  # no live clock (replaying a file): keep the given start

    # ---- input -----------------------------------------------------------------------------
    def write(self, pkt: av.Packet) -> None:
        """Accept a packet of the run's video or audio stream (dts/pts already repaired).

        Runs for every packet of every camera: kept to a few attribute reads per packet.
        """
        if pkt.stream is self.video_in:
            if self._video_t0_us is None:
                if not pkt.is_keyframe:
                    return  # a run starts at a keyframe
                self._first_dts = pkt.dts
                self._video_t0_us = pkt.dts * self._v_num_us // self._v_den
            if not self._anchor_frozen:
                implied = self._now_us() - (pkt.dts - self._first_dts) * self._v_num_us // self._v_den
                if implied < self.wall_start_us:
                    self.wall_start_us = implied
            held = self._held_v
            self._held_v = pkt
            if held is not None:
                self._last_dur_v = _settle_duration(held, pkt.dts, self._last_dur_v)
                self._mux_video(held)
            return
        t0 = self._video_t0_us
        if t0 is None or pkt.dts * self._a_num_us // self._a_den < t0:
            return  # audio before the run's first keyframe has no segment to go in
        held = self._held_a
        self._held_a = pkt
        if held is not None:
            self._last_dur_a = _settle_duration(held, pkt.dts, self._last_dur_a)
            held.stream = self._aout
            self._out.mux(held)

    def _mux_video(self, pkt: av.Packet) -> None:
        num_us, den = self._v_num_us, self._v_den
        media_us = (pkt.dts - self._first_dts) * num_us // den
        if pkt.is_keyframe:
            self._start_gop(media_us)
        gop = self._current_gop
        if gop is not None:
            gop.frames += 1
        self.frames += 1
        dur = pkt.duration
        self.last_media_us = media_us + dur * num_us // den if dur else media_us
        pkt.stream = self._vout
        self._out.mux(pkt)

    def _start_gop(self, media_us: int) -> None:
        cut = self.cutter.on_keyframe(media_us)
        if self._current_gop is not None:
            self._current_gop.duration_us = media_us - self._current_gop.start_us
        seg = self.cutter.segments - 1
        arrival = self._now_us()
        drift = (arrival - self.wall_start_us) - media_us
        self._current_gop = GopInfo(seg, media_us, drift)
        self._gops.append(self._current_gop)
        if cut is Cut.SEGMENT:
            log.debug("%s: segment %d starts at media %.3f s", self.camera_id, seg, media_us / 1e6)

    # ---- muxer output ----------------------------------------------------------------------
    def _on_bytes(self, data: bytes) -> None:
        self._splitter.feed(data, self._on_box)

    def _on_box(self, kind: bytes, box: memoryview) -> None:
        if not self._header_done:
            if kind != b"moof":
                self._header += box
                return
            self._header_done = True
        if kind == b"moof":
            self._frag = [bytes(box)]
        elif kind == b"mdat" and self._frag:
            self._frag.append(box)  # a view: written before the splitter cuts its buffer
            self._fragment_done(self._frag)
            self._frag = []
        elif self._frag:
            self._frag.append(bytes(box))
        # anything else between fragments (mfra, …) is not media

    def _fragment_done(self, parts: list[bytes | memoryview]) -> None:
        if not self._gops:
            size = sum(len(p) for p in parts)
            log.error("%s: fragment with no GOP to pair it with; dropped (%d bytes)", self.camera_id, size)
            return
        gop = self._gops.popleft()
        if gop.segment != self._open_index:
            self._close_open()
            self._open_segment(gop)
        assert self._open is not None
        duration = gop.duration_us if gop.duration_us is not None else max(0, self.last_media_us - gop.start_us)
        self._open.add_fragment(parts, gop.start_us - self._open.segment.media_start_us, duration, gop.frames)
        self._open_drift = gop.drift_us

    def _open_segment(self, gop: GopInfo) -> None:
        seg = Segment.opening(
            camera_id=self.camera_id,
            run_id=self.run_id,
            seq=gop.segment,
            start_us=self.wall_start_us + gop.start_us,
            media_start_us=gop.start_us,
            video_codec=self.video_codec,
            audio_codec=self.audio_codec,
            width=self.width,
            height=self.height,
            lease_epoch=self.lease_epoch,
            node_id=self.node_id,
        )
        self._open = self.spool.open_segment(seg, bytes(self._header))
        self._open_index = gop.segment
        self._open_drift = 0

    def _close_open(self) -> None:
        seg = self._open
        if seg is None:
            return
        start_us = self.wall_start_us + seg.segment.media_start_us
        end_us = start_us + sum(f.duration_us for f in seg.segment.fragments)
        seg.close(end_us, self._open_drift, start_us=start_us)
        self._anchor_frozen = True
        self.closed_segments.append(seg)
        self._open = None
        if self.on_segment_closed:
            self.on_segment_closed(seg)

    # ---- end -------------------------------------------------------------------------------
    def close(self) -> None:
        """Flush the last GOP and close the open segment; safe to call twice."""
        if self.closed:
            return
        self.closed = True
        if self._held_v is not None:
            if not self._held_v.duration:
                self._held_v.duration = self._last_dur_v
            self._mux_video(self._held_v)
        if self._held_a is not None:
            if not self._held_a.duration:
                self._held_a.duration = self._last_dur_a
            self._held_a.stream = self._aout
            self._out.mux(self._held_a)
        self._held_v = self._held_a = None
        if self._current_gop is not None and self._current_gop.duration_us is None:
            self._current_gop.duration_us = max(0, self.last_media_us - self._current_gop.start_us)
        try:
            self._out.close()
        except Exception as e:  # the muxer failing at the end must not lose what was written
            log.error("%s: muxer failed at close: %s", self.camera_id, e)
        self._close_open()
