"""HealthMonitor: one per camera, the glue between a session's packets and the catalog.

The session thread calls `on_packet` for every packet before muxing it; that must stay cheap, so
non-keyframes only add to counters, and at each keyframe `cadence` decides from the packet sizes
whether to decode it (keyframes only), measure it (`metrics`) and judge it (`rules`). A keyframe not
decoded is kept (its bytes) until the next decoded one: when a keyframe looks suspicious the kept
ones are decoded first, in order, so the rules see the same pictures since the last decoded sample,
and date a freeze from the same keyframe, as with every-keyframe sampling. The watchdog thread calls `tick` about twice a second, even while
the session is blocked in a read: it notices a stall and refreshes fps/bitrate in the catalog.

Writes (catalog status/events, snapshot JPEGs) never run on the session thread: they are handed
to a small shared I/O pool, so a slow or dead catalog or object store delays a status line, never
the recording. Each transition is written as one status + one event in one transaction; between
transitions the status is refreshed at most every STATUS_REFRESH_S. A worker process shares one
`StatusWriter` between its monitors, so all its cameras' statuses go in one transaction per flush.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from time import perf_counter
from typing import Any

import av
import numpy as np

from ingest.health.cadence import Cadence, Gop, looks_back
from ingest.health.keyframe import decode_keyframe, open_keyframe_decoder
from ingest.health.metrics import Picture, measure_picture, snapshot_jpeg, trimmed_diff
from ingest.health.rules import REPEAT_BAND, ConnectFailed, Figures, HealthRules, LinkCheck, Sample, Verdict
from ingest.health.writer import StatusWriter, Write, WriteQueue
from ingest.network import ArrivalTiming, LinkMeter
from storage.catalog import Catalog, Event, FeedStatus
from storage.keys import snapshot_key
from storage.object_store import ObjectStore
from core.clock import Clock
from core.settings import HealthConfig
from core.states import STATUS_REFRESH_S  # status rewritten at least this often when nothing changes

__all__ = ["STATUS_REFRESH_S", "HealthMonitor", "InlineExecutor", "shared_pool"]

log = logging.getLogger("vigil.health")

RATE_WINDOW_S = 2.0  # fps and bitrate are averaged over this window
MAX_P_SIZES = 4096  # frame sizes kept in one GOP (a 10 s GOP at 60 fps is 600)
REFERENCES = 3  # earlier pictures a sample is compared with (rules.py: exact repeats)
MAX_KEPT = 8  # skipped keyframes kept for a look-back (a 10 s interval at GOP 2 s keeps 4; ~90 kB each at 720p)

_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def shared_pool() -> ThreadPoolExecutor:
    """One small pool per process for health I/O: writes are rare and short, cameras are many."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="vigil-health-io")
        return _pool


class InlineExecutor(Executor):
    """Runs each task at once in the caller's thread: deterministic I/O for tests."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as e:  # noqa: BLE001 - handed to the future like a real pool does
            fut.set_exception(e)
        return fut


@dataclass(frozen=True, slots=True)
class _Kept:
    """A keyframe not decoded, kept until the next one in case the pair must be looked at after all."""

    data: bytes
    stream: Any
    gop: Gop

    def packet(self) -> av.Packet:
        pkt = av.Packet(self.data)
        pkt.is_keyframe = True
        return pkt


def _declared_fps(stream: Any) -> float | None:
    """The frame rate the stream declares (SDP, SPS timing), if any."""
    for rate in (getattr(stream, "average_rate", None), getattr(stream.codec_context, "framerate", None)):
        try:
            if rate:
                return float(rate)
        except (TypeError, ValueError, ZeroDivisionError):
            continue
    return None


class _Throttle:
    """Log the first few occurrences of a repeating problem, then one in `every`."""

    def __init__(self, first: int = 3, every: int = 100) -> None:
        self.n, self.first, self.every = 0, first, every

    def __call__(self) -> bool:
        self.n += 1
        return self.n <= self.first or self.n % self.every == 0


class HealthMonitor:
    """Samples one camera's feed and keeps its status and state-change events in the catalog."""

    def __init__(
        self,
        camera_id: str,
        cfg: HealthConfig,
        *,
        catalog: Catalog,
        store: ObjectStore | None,
        clock: Clock,
        node_id: str = "",
        executor: Executor | None = None,
        writer: StatusWriter | None = None,
    ) -> None:
        self.camera_id = camera_id
        self.cfg = cfg
        self.catalog = catalog
        self.store = store
        self.clock = clock
        self.node_id = node_id
        self._io = executor if executor is not None else shared_pool()
        self._writer = writer if writer is not None else StatusWriter(catalog, self._io)
        self._lock = threading.Lock()  # everything below except the session-thread-only block
        now = clock.monotonic()
        self._rules = HealthRules(cfg, start_t=now)
        self._since_us = self._wall_us(now)
        self._wait_since = now
        self._last_packet_t: float | None = None
        # the video stream's time base as a float, per stream: PyAV makes a new Fraction at every
        # `packet.time_base`, and `dts * Fraction` takes a gcd per frame (Fraction arithmetic showed
        # in a profile of the recorders' per-packet path)
        self._tb_stream: Any = None
        self._tb_s: float | None = None
        self._win_start, self._win_frames, self._win_bytes = now, 0, 0
        self._fps: float | None = None
        self._kbps: float | None = None
        self._video_index: int | None = None
        self._run_id: str | None = None
        self._reconnects = 0
        self._link = LinkMeter(now)  # the network's condition (ingest/network.py), under self._lock
        self._lost = False
        self._note = ""
        self._p_sizes: list[int] = []
        self._samples = 0
        self._keyframes = 0
        self._figures: dict[str, Any] = {}
        self._jpeg: bytes | None = None
        self._jpeg_t: float | None = None
        self._queue = WriteQueue()
        self._last_write_t: float | None = None
        self._snap_wanted = False
        self._snap_last_t: float | None = None
        self._snap_busy = False
        self._closed = False
        self._store_errors = _Throttle()
        # Session thread only: the decode cadence, the decoder, the last pictures, the kept keyframe.
        self._cadence = Cadence(cfg)
        self._kept: deque[_Kept] = deque(maxlen=MAX_KEPT)  # skipped since the last decoded sample
        self._skipped = 0  # keyframes not judged (skipped or undecodable) since the last judged one
        # (keyframe time, why it was decoded), newest last: diagnostics for tests and benches.
        self.decisions: deque[tuple[float, str]] = deque(maxlen=1024)
        self._decoder: Any = None  # av.VideoCodecContext; typed loosely, PyAV's stubs lack decode()
        self._decoder_stream: Any = None
        # (picture, run of consecutive keyframes it belongs to): the last judged pictures
        self._references: deque[tuple[np.ndarray, int]] = deque(maxlen=REFERENCES)
        self._chain = 0
        self._decode_errors = 0
        self._decode_log = _Throttle()
        self._writer.register(self)

    # ---- what others read ------------------------------------------------------------------
    @property
    def state(self) -> str:
        with self._lock:
            return self._rules.state

    @property
    def latest_jpeg(self) -> bytes | None:
        """The newest sample as a small JPEG (None before the first decoded keyframe)."""
        with self._lock:
            return self._jpeg

    @property
    def samples(self) -> int:
        """How many keyframes have been sampled (decode attempted, or packet figures judged) so far."""
        with self._lock:
            return self._samples

    @property
    def keyframes(self) -> int:
        """How many keyframes have arrived (sampled or not) since this monitor started."""
        with self._lock:
            return self._keyframes

    def status(self) -> FeedStatus:
        """The status as it would be written now."""
        with self._lock:
            return self._status(self.clock.monotonic())

    # ---- session thread ---------------------------------------------------------------------
    def on_connecting(self) -> None:
        """A connection attempt starts; the state stays what it is (starting, or offline after a loss).

        Nothing to do: a stall is timed from the last video packet (or from this monitor's creation
        if none ever came), so a slow connect counts against stall_timeout_s, as it should.
        """
        log.debug("%s: connecting", self.camera_id)

    def on_source(self, timing: ArrivalTiming | None) -> None:
        """A connection is open; `timing` is its jitter and RTP-loss meter (None: the source has none)."""
        with self._lock:
            self._link.watch(timing)

    def on_connected(self, run_id: str, video_stream: av.video.stream.VideoStream) -> None:
        """A run starts (after connecting, or within a connection after a codec change)."""
        declared = _declared_fps(video_stream)
        now = self.clock.monotonic()
        with self._lock:
            self._run_id = run_id
            self._video_index = video_stream.index
            self._link.connected(now, declared, reconnect=self._lost)
            if self._lost:
                self._reconnects += 1
                self._lost = False
                self._note = ""
        self._drop_decoder()  # parameters may have changed; the next keyframe opens a fresh one

    def on_packet(self, packet: av.Packet, arrival_mono: float, *, count: bool = True, sample: bool = True) -> None:
        """Every packet, before it is muxed: counters for all, decode + judge on sampled keyframes.

        With a `health_url` substream the recorded stream's packets are only counted
        (`sample=False`: link state, fps, bitrate) and the substream's are only sampled
        (`count=False`): the picture is judged at low resolution, the link on the real stream.
        """
        try:
            stream = packet.stream
            size = packet.size
            is_video = stream.type == "video" and (
                not count or self._video_index is None or stream.index == self._video_index
            )
        except Exception:  # noqa: BLE001 - a packet without a stream is not ours to judge
            return
        with self._lock:
            if count:
                self._win_bytes += size
            if not is_video or self._closed:
                if count and not self._closed:
                    self._link.data(arrival_mono, size)
                return
            if count:
                self._win_frames += 1
                self._last_packet_t = arrival_mono
                if stream is not self._tb_stream:
                    tb = packet.time_base
                    self._tb_stream, self._tb_s = stream, float(tb) if tb else None
                dts, tb_s = packet.dts, self._tb_s
                self._link.frame(arrival_mono, size, dts * tb_s if dts is not None and tb_s else None)
            if not sample:
                return
            if not packet.is_keyframe:
                if len(self._p_sizes) < MAX_P_SIZES:
                    self._p_sizes.append(size)
                return
            p_sizes, self._p_sizes = self._p_sizes, []
            self._keyframes += 1
            alert = self._rules.pending
        gop = Cadence.gop(arrival_mono, size, p_sizes)
        why = self._cadence.decide(gop, alert=alert) if self.cfg.enabled else "disabled"
        if why is None:
            self._skipped += 1
            try:
                self._kept.append(_Kept(bytes(packet), packet.stream, gop))  # ~10 µs for a 100 kB keyframe
            except Exception:  # noqa: BLE001 - without it a trigger decodes the current keyframe only
                self._kept.clear()
            return
        kept = list(self._kept)
        self._kept.clear()
        skipped, self._skipped = self._skipped, 0
        if looks_back(why) and kept:
            # The fault may have begun before this keyframe (the packets show a freeze one GOP
            # late, a bitrate-mode encoder's only once its rate control settles): judge the skipped
            # keyframes first, so the rules see the pairs every-keyframe sampling would have seen.
            skipped = self._look_back(kept, skipped, arrival_mono)
            kept = []
        self.decisions.append((gop.t, why))
        self._skipped = self._sample(packet, packet.stream, gop, arrival_mono, skipped, kept)

    def _moved_since(self, pic: Picture | None, k: _Kept) -> bool:
        """Whether the picture moved (beyond any re-quantised frozen picture) since keyframe `k`,
        the one just before it, decoded to look, not judged. Then a loop came back: `k` alone is
        judged before it; else all the kept keyframes are, so a freeze is dated as every-keyframe
        sampling would date it (a loop as long as sample_interval_s costs 2 decodes, not all)."""
        prev, _, _ = self._picture(k.packet(), k.stream)
        if pic is None or prev is None:
            return False  # cannot tell: judge them all
        d = trimmed_diff(pic.reference, prev.reference)
        return d is not None and d >= REPEAT_BAND * self.cfg.freeze_diff

    def _look_back(self, kept: list[_Kept], skipped: int, now: float) -> int:
        """Judge the kept keyframes in order; returns the keyframes skipped before the next one."""
        carry = skipped - len(kept)  # those the bounded store let go
        for k in kept:
            self.decisions.append((k.gop.t, "look-back"))
            carry = self._sample(k.packet(), k.stream, k.gop, now, carry)
        return carry

    def _sample(
        self, packet: av.Packet, stream: Any, gop: Gop, now: float, skipped: int, kept: list[_Kept] | None = None
    ) -> int:
        """Decode, measure and judge one keyframe (session thread); returns the keyframes skipped
        before the next one (0, or one more when this one gave no picture).

        `skipped` keyframes came since the last judged one. When the picture then looks frozen
        against that older one, the `kept` keyframes between are judged first: a loop, a tour or a
        timelapse comes back to the same picture, a freeze stays on it through every keyframe.
        """
        with self._lock:
            self._samples += 1
        frame: av.VideoFrame | None = None
        pic: Picture | None = None
        try:
            pic, frame, decode_ms = self._picture(packet, stream)
            figures = self._figures_of(pic, gop, decode_ms, skipped)
            if kept and skipped and figures.diff is not None:
                with self._lock:
                    suspect = self._rules.holds(figures, gop.t, skipped)["frozen"]
                if suspect:
                    back = kept[-1:] if self._moved_since(pic, kept[-1]) else kept
                    skipped = self._look_back(back, skipped, now)
                    figures = self._figures_of(pic, gop, decode_ms, skipped)
            if pic is not None:
                if self._references and self._references[-1][0].shape != pic.reference.shape:
                    self._references.clear()
                if skipped:
                    self._chain += 1
                self._references.append((pic.reference, self._chain))
        except Exception:  # measuring must never end a recording
            log.exception("%s: health sample failed", self.camera_id)
            figures = Figures(p_ratio=gop.p_ratio, p_median_bytes=gop.p_median, keyframe_bytes=gop.key_bytes)
        with self._lock:
            verdict = self._rules.feed(Sample(gop.t, figures, skipped))
            self._figures = figures.as_dict()
            if verdict is not None:
                self._record(verdict, now)
            picture_due = frame is not None and self._picture_due(now)
        jpeg: bytes | None = None
        if picture_due:
            assert frame is not None
            try:
                jpeg = snapshot_jpeg(frame)
            except Exception:  # a missing snapshot is not worth a sample
                log.debug("%s: snapshot encoding failed", self.camera_id, exc_info=True)
        snap = False
        if jpeg is not None:
            with self._lock:
                self._jpeg, self._jpeg_t = jpeg, now
                snap = self._snapshot_due(now)
        if verdict is not None:
            self._schedule_flush()
        if snap:
            self._schedule_snapshot()
        return 0 if pic is not None or not self.cfg.enabled else skipped + 1

    def on_disconnected(self, reason: str) -> None:
        """The stream ended or failed; `offline` follows if nothing comes back within stall_timeout_s."""
        now = self.clock.monotonic()
        with self._lock:
            self._lost = True
            self._note = reason
            self._p_sizes = []
            self._link.disconnected(now)
        self._kept.clear()
        self._cadence.restart()
        self._references.clear()  # a picture from before the gap is no evidence of a freeze after it
        self._skipped = 0
        self._drop_decoder()
        log.debug("%s: disconnected (%s)", self.camera_id, reason)

    def on_connect_failed(self, reason: str) -> None:
        """A connection attempt failed: the camera is offline now (dated from its last packet)."""
        now = self.clock.monotonic()
        with self._lock:
            self._lost = True
            self._note = reason
            v = self._rules.feed(ConnectFailed(now, reason, self._last_packet_t))
            if v is not None:
                self._record(v, now)
        if v is not None:
            self._schedule_flush()

    # ---- watchdog thread --------------------------------------------------------------------
    def tick(self) -> None:
        """Stall check and periodic status refresh; safe to call from any thread, cheap when idle."""
        now = self.clock.monotonic()
        with self._lock:
            if self._closed:
                return
            last = self._last_packet_t if self._last_packet_t is not None else self._wait_since
            v = self._rules.feed(LinkCheck(now, last, self._note if self._lost else ""))
            if v is not None:
                self._record(v, now)
            elapsed = now - self._win_start
            if elapsed >= RATE_WINDOW_S:
                self._fps = round(self._win_frames / elapsed, 2)
                self._kbps = round(self._win_bytes * 8 / elapsed / 1000, 1)
                self._win_start, self._win_frames, self._win_bytes = now, 0, 0
            if v is None and (self._last_write_t is None or now - self._last_write_t >= STATUS_REFRESH_S):
                self._enqueue(self._status(now), None)
                self._last_write_t = now
        self._schedule_flush()

    def close(self, timeout_s: float = 5.0) -> None:
        """Write what is pending and stop; the last state stays in the catalog (another node may take over)."""
        with self._lock:
            self._closed = True
        self._drop_decoder()
        self._writer.flush(only=self)
        self._writer.unregister(self)
        deadline = perf_counter() + timeout_s
        while perf_counter() < deadline:
            with self._lock:
                if not self._snap_busy:
                    break
            threading.Event().wait(0.01)

    # ---- measuring (session thread only) ----------------------------------------------------
    def _picture(self, packet: av.Packet, stream: Any) -> tuple[Picture | None, av.VideoFrame | None, float | None]:
        """Decode and measure one keyframe: (picture, frame, decode ms); Nones when it gives none."""
        if not self.cfg.enabled:
            return None, None, None
        t0 = perf_counter()
        frame = self._decode(packet, stream)
        if frame is None:
            return None, None, None
        decode_ms = (perf_counter() - t0) * 1e3
        return measure_picture(frame, self.cfg.black_luma), frame, decode_ms

    def _figures_of(self, pic: Picture | None, gop: Gop, decode_ms: float | None, skipped: int) -> Figures:
        """The sample's figures against the references (not changed here).

        `repeat` is over the last judged pictures of the same run of consecutive keyframes; after
        skipped keyframes over the last three judged, whatever their runs (rules.py: then a repeat
        is a suspicion, not evidence).
        """
        packet_figs = Figures(p_ratio=gop.p_ratio, p_median_bytes=gop.p_median, keyframe_bytes=gop.key_bytes)
        if pic is None:
            return packet_figs
        chain = self._references[-1][1] if self._references else 0
        refs = [r for r, c in self._references if skipped or c == chain]
        diffs = [trimmed_diff(pic.reference, r) for r in refs]
        known = [d for d in diffs if d is not None]
        diff = diffs[-1] if diffs else None  # None too when the resolution changed
        return Figures(
            diff=diff,
            repeat=min(known) if diff is not None else None,
            luma=pic.luma,
            dark_fraction=pic.dark_fraction,
            sharpness=pic.sharpness,
            contrast=pic.contrast,
            p_ratio=gop.p_ratio,
            p_median_bytes=gop.p_median,
            keyframe_bytes=gop.key_bytes,
            decode_ms=decode_ms,
        )

    def _decode(self, packet: av.Packet, stream: Any) -> av.VideoFrame | None:
        """Decode one keyframe on its own; None (and counted) when it gives no picture."""
        frame: av.VideoFrame | None = None
        error: Exception | None = None
        try:
            if self._decoder is None or self._decoder_stream is not stream:
                self._decoder = open_keyframe_decoder(stream.codec_context)
                self._decoder_stream = stream
            frame = decode_keyframe(self._decoder, packet)
        except Exception as e:  # noqa: BLE001 - garbage in a packet must never end the session
            error = e
            self._drop_decoder()
        if frame is not None:
            return frame
        self._decode_errors += 1
        if self._decode_log():
            why = str(error) if error is not None else "no picture"
            log.warning("%s: keyframe not decodable (%d so far): %s", self.camera_id, self._decode_errors, why)
        return None

    def _drop_decoder(self) -> None:
        self._decoder = None
        self._decoder_stream = None

    # ---- status and events (callers hold self._lock) ----------------------------------------
    def _wall_us(self, mono: float) -> int:
        return round((self.clock.now() - (self.clock.monotonic() - mono)) * 1_000_000)

    def _status(self, now: float) -> FeedStatus:
        figures = dict(self._figures)
        base = self._rules.baseline
        if base is not None:
            figures["sharpness_baseline"] = round(base, 4)
        if self._decode_errors:
            figures["decode_errors"] = self._decode_errors
        figures["network"] = self._link.figures(now).as_dict()
        silent = self._last_packet_t is None or now - self._last_packet_t >= self.cfg.stall_timeout_s
        return FeedStatus(
            camera_id=self.camera_id,
            state=self._rules.state,
            since_us=self._since_us,
            updated_us=self._wall_us(now),
            reason=self._rules.reason,
            fps=0.0 if silent and self._fps is not None else self._fps,
            bitrate_kbps=0.0 if silent and self._kbps is not None else self._kbps,
            last_packet_us=self._wall_us(self._last_packet_t) if self._last_packet_t is not None else None,
            reconnects=self._reconnects,
            figures=figures,
            run_id=self._run_id,
            node_id=self.node_id or None,
        )

    def _record(self, v: Verdict, now: float) -> None:
        at_us = self._wall_us(v.at)
        self._since_us = at_us
        figures = {**v.figures, "detected_us": self._wall_us(v.detected)}
        ev = Event(
            camera_id=self.camera_id,
            at_us=at_us,
            kind="state",
            from_state=v.previous,
            to_state=v.state,
            reason=v.reason,
            figures=figures,
        )
        self._enqueue(self._status(now), ev)
        self._last_write_t = now
        if v.state != "offline":
            self._snap_wanted = True  # the picture that changed the state goes to the wall at once
        log.info("%s: %s → %s (%s)", self.camera_id, v.previous, v.state, v.reason)

    def _enqueue(self, st: FeedStatus, ev: Event | None) -> None:
        self._queue.add(st, ev)

    # ---- I/O (pool threads) -----------------------------------------------------------------
    def take_writes(self) -> list[Write]:
        """Everything queued for the catalog, in order (StatusWriter)."""
        with self._lock:
            return self._queue.take()

    def put_back(self, writes: list[Write]) -> None:
        """A flush failed: keep its events for the next one; a status is kept only if nothing newer is queued."""
        with self._lock:
            self._queue.put_back(writes)

    def _schedule_flush(self) -> None:
        with self._lock:
            if not self._queue:
                return
        self._writer.request()

    def _picture_due(self, now: float) -> bool:
        """Encode a JPEG of this sample? The first, on a state change, and every snapshot_interval_s."""
        return (
            self._jpeg_t is None
            or self._snap_wanted
            or now - self._jpeg_t >= self.cfg.snapshot_interval_s - 1e-6
        )

    def _snapshot_due(self, now: float) -> bool:
        if self.store is None:
            return False
        if (
            self._snap_wanted
            or self._snap_last_t is None
            or now - self._snap_last_t >= self.cfg.snapshot_interval_s - 1e-6
        ):
            self._snap_wanted = True
            return True
        return False

    def _schedule_snapshot(self) -> None:
        with self._lock:
            if self._snap_busy or not self._snap_wanted or self._jpeg is None:
                return  # the upload in flight will look again when it ends
            self._snap_busy = True
            self._snap_wanted = False
            self._snap_last_t = self.clock.monotonic()
            data = self._jpeg
        try:
            self._io.submit(self._put_snapshot, data)
        except RuntimeError:
            with self._lock:
                self._snap_busy = False

    def _put_snapshot(self, data: bytes) -> None:
        assert self.store is not None
        try:
            self.store.put_bytes(snapshot_key(self.camera_id), data, "image/jpeg")
        except Exception as e:  # noqa: BLE001 - the wall misses a picture; the feed is unaffected
            if self._store_errors():
                log.warning("%s: cannot store snapshot (%s)", self.camera_id, e)
        finally:
            with self._lock:
                self._snap_busy = False
                again = self._snap_wanted and not self._closed
        if again:
            self._schedule_snapshot()
