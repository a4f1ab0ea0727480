"""One connection to one camera: open → record runs → return on disconnect, or raise.

A session never retries by itself; the worker's loop owns backoff and stopping (Moonfire's
streamer split). Within one connection a timestamp jump or a codec change ends the run and starts
a new one, so every run has continuous media time.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass, field
from typing import Callable, Protocol

import av

from ingest.fmp4_writer import RunWriter
from ingest.live_publish import open_publisher
from ingest.parameter_sets import parameter_sets
from ingest.segmenter import TimestampRepair, Verdict
from ingest.source import PacketSource, SourceError
from storage.spool import OpenSegment, Spool
from core.clock import Clock

__all__ = ["FeedObserver", "NullObserver", "Session", "SessionResult"]

log = logging.getLogger("vigil.session")


class FeedObserver(Protocol):
    """What a session tells the health monitor (ingest/health/monitor.py)."""

    def on_connected(self, run_id: str, video_stream: av.video.stream.VideoStream) -> None: ...
    def on_packet(self, packet: av.Packet, arrival_mono: float) -> None: ...


class NullObserver:
    def on_connected(self, run_id: str, video_stream: av.video.stream.VideoStream) -> None:
        pass

    def on_packet(self, packet: av.Packet, arrival_mono: float) -> None:
        pass


@dataclass(slots=True)
class SessionResult:
    runs: int = 0
    segments: int = 0
    packets: int = 0
    frames: int = 0
    media_s: float = 0.0
    ended_by: str = ""
    run_ids: list[str] = field(default_factory=list)


class Session:
    def __init__(
        self,
        source: PacketSource,
        spool: Spool,
        *,
        camera_id: str,
        segment_s: float,
        clock: Clock,
        stop: threading.Event,
        observer: FeedObserver | None = None,
        lease_epoch: Callable[[], int | None] = lambda: None,
        lease_valid: Callable[[], bool] = lambda: True,
        node_id: str | None = None,
        max_gap_s: float = 10.0,
    ) -> None:
        self.node_id = node_id
        self.lease_valid = lease_valid
        self.source = source
        self.spool = spool
        self.camera_id = camera_id
        self.segment_us = int(segment_s * 1_000_000)
        self.clock = clock
        self.stop = stop
        self.observer = observer or NullObserver()
        self.lease_epoch = lease_epoch
        self.max_gap_s = max_gap_s
        self.result = SessionResult()
        self.writer: RunWriter | None = None
        self._repairs: dict[int, TimestampRepair] = {}
        self._pending_first: av.Packet | None = None
        self._pending_first_wall_us = 0
        self._params: bytes | None = None

    # ---- runs -------------------------------------------------------------------------------
    def _new_run(self, wall_start_us: int) -> RunWriter:
        run_id = uuid.uuid4().hex
        self.result.runs += 1
        self.result.run_ids.append(run_id)
        self._repairs = {}
        self.observer.on_connected(run_id, self.source.video)
        log.debug("%s: run %s starts", self.camera_id, run_id[:8])
        return RunWriter(
            self.spool,
            camera_id=self.camera_id,
            run_id=run_id,
            wall_start_us=wall_start_us,
            video=self.source.video,
            audio=self.source.audio,
            segment_us=self.segment_us,
            lease_epoch=self.lease_epoch(),
            node_id=self.node_id,
            on_segment_closed=self._segment_closed,
            now_us=self._now_us,
        )

    def _end_run(self, why: str) -> None:
        if self.writer is None:
            return
        w = self.writer
        self.writer = None
        w.close()
        self.result.media_s += w.last_media_us / 1e6
        self.result.frames += w.frames
        log.debug(
            "%s: run %s ends (%s): %.2f s, %d frames, %d segments",
            self.camera_id,
            w.run_id[:8],
            why,
            w.last_media_us / 1e6,
            w.frames,
            len(w.closed_segments),
        )

    def _segment_closed(self, seg: OpenSegment) -> None:
        self.result.segments += 1

    def _now_us(self) -> int:
        return int(self.clock.now() * 1_000_000)

    def _repair(self, pkt: av.Packet) -> TimestampRepair:
        idx = pkt.stream.index
        rep = self._repairs.get(idx)
        if rep is None:
            tb = pkt.time_base
            per_s = int(1 / tb) if tb else 90000
            rep = TimestampRepair(max_gap_ticks=int(self.max_gap_s * per_s), max_back_ticks=per_s)
            self._repairs[idx] = rep
        return rep

    # ---- the loop ---------------------------------------------------------------------------
    def run(self) -> SessionResult:
        """Record until the stream ends (returns) or fails (raises); always closes what it opened.

        This loop runs for every packet of every camera, so the steady case — a packet inside a
        GOP of an open run, timestamps in order — takes a short path with names bound once.
        """
        stopped, lease_valid, observe, monotonic = self.stop.is_set, self.lease_valid, self.observer.on_packet, self.clock.monotonic
        video = self.source.video
        # the live channel: viewers get each frame as it arrives, from this one connection
        live = open_publisher(self.spool.root, self.camera_id, video)
        if live is not None and hasattr(self.source, "live"):
            self.source.live = live  # while someone watches: the watched read pause (source.py)
        n = 0
        why = ""
        try:
            for pkt in self.source.packets():
                if stopped():
                    self.result.ended_by = "stopped"
                    break
                if not lease_valid():
                    # fencing: past the lease deadline another node may own this camera
                    self.result.ended_by = "lease lost"
                    break
                n += 1
                arrival = monotonic()
                observe(pkt, arrival)
                if live is not None and live.active and pkt.stream is video:
                    live.publish(pkt, self._now_us())
                w = self.writer
                if w is not None and not pkt.is_keyframe:
                    stream = pkt.stream
                    if stream is video or stream is w.audio_in:
                        rep = self._repairs.get(stream.index)
                        if rep is not None and rep.accept(pkt.dts, pkt.pts):
                            w.write(pkt)
                            continue
                self._handle(pkt, arrival)
            else:
                self.result.ended_by = "stream ended"
        except Exception as e:
            why = str(e) if isinstance(e, SourceError) else "camera connection failed"
            raise
        finally:
            self.result.packets += n
            if live is not None:
                live.close(self.result.ended_by or why or "camera connection failed")
            self._end_run(self.result.ended_by or "error")
            self.source.close()
        return self.result

    def _handle(self, pkt: av.Packet, arrival: float) -> None:
        is_video = pkt.stream is self.source.video
        if is_video and pkt.dts is None and pkt.pts is None:
            if self.writer is None and self._pending_first is None and pkt.is_keyframe:
                # FFmpeg's RTSP demuxer hands the first IDR over without timestamps (docs/design/platform.md §1.1):
                # keep it and stamp it one frame before the first timed packet.
                self._pending_first = pkt
                self._pending_first_wall_us = self._now_us()
                return
        if is_video and self.writer is not None and pkt.is_keyframe and self._codec_changed(pkt):
            self._end_run("codec parameters changed")
        if self._pending_first is not None and is_video and pkt.dts is not None:
            first, self._pending_first = self._pending_first, None
            step = pkt.duration or self._frame_ticks(pkt)
            first.dts = pkt.dts - step
            first.pts = (pkt.pts if pkt.pts is not None else pkt.dts) - step
            self._feed(first, self._pending_first_wall_us)
        self._feed(pkt, self._now_us())

    def _frame_ticks(self, pkt: av.Packet) -> int:
        rate = self.source.video.average_rate or self.source.video.guessed_rate
        tb = pkt.time_base
        if rate and tb:
            return max(1, int(1 / (tb * rate)))
        return max(1, int(1 / (tb * 25))) if tb else 3600

    def _codec_changed(self, pkt: av.Packet) -> bool:
        ps = parameter_sets(bytes(pkt), self.source.video.codec_context.name)
        if not ps:
            return False
        if self._params is None:
            self._params = ps
            return False
        if ps != self._params:
            self._params = ps
            return True
        return False

    def _feed(self, pkt: av.Packet, arrival_us: int) -> None:
        is_video = pkt.stream is self.source.video
        if self.writer is None:
            if not (is_video and pkt.is_keyframe):
                return  # a run starts at a keyframe; anything earlier cannot be decoded
            if pkt.dts is None and pkt.pts is None:
                return
            self.writer = self._new_run(arrival_us)
            if self._params is None:
                self._params = parameter_sets(bytes(pkt), self.source.video.codec_context.name)
        v = self._repair(pkt).check(pkt.dts, pkt.pts)
        if v.verdict is Verdict.DROP:
            return
        if v.verdict is Verdict.NEW_RUN:
            self._end_run(v.reason)
            if is_video and pkt.is_keyframe:
                self._feed(pkt, arrival_us)
            return
        if v.verdict is Verdict.REPAIRED:
            assert v.stamp is not None
            pkt.dts, pkt.pts = v.stamp.dts, v.stamp.pts
        self.writer.write(pkt)
