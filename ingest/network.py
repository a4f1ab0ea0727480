"""The network's condition per camera, from what its connection shows (no probe traffic of our own).

Two halves, both pure (times are passed in):

- `ArrivalTiming` lives with the connection (ingest/source.py): packet arrival jitter and, over UDP,
  RTP packets lost. Only the reader knows which arrival times are the network's: with TCP read
  coalescing a frame read from the socket's backlog after a pause arrives "late" by the pause, not
  by the network, and a pausing reader never waits on the network. So jitter is taken over frames
  the reader had to wait for (a read that blocked ≥ WAITED_S; UDP, or TCP without coalescing), the
  RFC 3550 interarrival estimator over consecutive such frames. RTP loss is what
  FFmpeg's RTP demuxer reports ("RTP: missed N packets", only over UDP: TCP does not lose).
- `LinkMeter` lives with the camera's health monitor and survives reconnects: reconnects per hour,
  seconds stalled, frames delivered against the camera's nominal rate, bitrate against the camera's
  own baseline. `figures(now)` gives them as `NetworkFigures`, written with the feed status.

Definitions (docs/design/network.md):

- **reconnects per hour**: reconnects in the last hour, per hour of that hour the meter watched
  (at least 10 minutes, so one reconnect in the first minute is not 60 an hour).
- **stalled seconds**: in the last hour, the time with no video frame for longer than STALL_GAP_S
  (the whole gap counts), outages included, and the silence going on now.
- **delivery**: frames delivered in the last minute ÷ (nominal rate × the seconds connected in it).
  The nominal rate is the stream's declared one (SDP / SPS timing), else its timestamps' median step.
- **bitrate ratio**: the last minute's bitrate ÷ the median of the minute bitrates of the last hour.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, fields
from statistics import median
from typing import Any

__all__ = [
    "BUCKET_S",
    "MIN_RATE_SPAN_S",
    "STALL_GAP_S",
    "WAITED_S",
    "WINDOW_S",
    "ArrivalTiming",
    "LinkMeter",
    "NetworkFigures",
    "rtp_missed",
]

WINDOW_S = 3600.0  # reconnects and stalls: the last hour
MIN_RATE_SPAN_S = 600.0  # a per-hour rate is never extrapolated from less than 10 minutes
STALL_GAP_S = 1.0  # no frame for longer than this is a stall (a 25 fps camera sends one every 0.04 s)
BUCKET_S = 10.0  # frames and bytes are counted in 10 s buckets…
RECENT_BUCKETS = 6  # …the last minute is the "now" of delivery and bitrate…
BASELINE_BUCKETS = 360  # …and the last hour the bitrate baseline
WAITED_S = 0.0005  # a read that blocked this long got a frame off the network, not from the backlog
JITTER_GAIN = 1 / 16  # RFC 3550, 6.4.1
_MISSED = re.compile(r"missed (\d+) packets")


def rtp_missed(message: str) -> int:
    """RTP packets FFmpeg's demuxer says it skipped in one log message (0 if it says nothing of it)."""
    m = _MISSED.search(message)
    return int(m.group(1)) if m else 0


class ArrivalTiming:
    """Jitter and RTP loss of one connection; written by its reading thread, read by the watchdog."""

    def __init__(self, transport: str) -> None:
        self.transport = transport
        self.jitter_s: float | None = None
        self.frames_timed = 0
        self.rtp_lost = 0  # meaningful over UDP only (see `rtp_loss`)
        self._prev: tuple[float, float] | None = None  # (arrival, media time) of the last timed frame

    def frame(self, arrival_s: float, media_s: float, waited_s: float) -> None:
        """A video frame read at `arrival_s` (monotonic) with timestamp `media_s`; the read blocked `waited_s`."""
        if waited_s < WAITED_S:
            return  # read from the backlog: its arrival time is the reader's, not the network's
        prev = self._prev
        self._prev = (arrival_s, media_s)
        self.frames_timed += 1
        if prev is None:
            return
        d = abs((arrival_s - prev[0]) - (media_s - prev[1]))
        j = self.jitter_s if self.jitter_s is not None else d
        self.jitter_s = j + (d - j) * JITTER_GAIN

    def log(self, message: str) -> None:
        """One FFmpeg log message of this connection's thread."""
        self.rtp_lost += rtp_missed(message)

    @property
    def rtp_loss(self) -> int | None:
        """RTP packets lost on this connection, where the transport shows it (UDP); None over TCP."""
        return self.rtp_lost if self.transport == "udp" else None


@dataclass(frozen=True, slots=True)
class NetworkFigures:
    """One camera's connection, as the feed status carries it (None: not measurable yet)."""

    reconnects_per_hour: float
    reconnects: int  # since the monitor started
    stalled_s: float  # last hour
    stalled_total_s: float  # since the monitor started
    nominal_fps: float | None
    delivery_ratio: float | None  # frames delivered ÷ nominal, last minute
    bitrate_kbps: float | None  # last minute
    bitrate_baseline_kbps: float | None  # median of the last hour's minutes
    bitrate_ratio: float | None
    jitter_ms: float | None
    rtp_lost: int | None  # UDP only
    transport: str | None

    def as_dict(self) -> dict[str, Any]:
        # every field is a number, a string or None: no deep copy (`asdict`) needed
        out: dict[str, Any] = {}
        for k in _FIGURE_FIELDS:
            v = getattr(self, k)
            out[k] = round(v, 3) if isinstance(v, float) else v
        return out


_FIGURE_FIELDS = tuple(f.name for f in fields(NetworkFigures))


@dataclass(slots=True)
class _Bucket:
    start: float
    frames: int = 0
    bytes: int = 0
    connected_s: float = 0.0


class LinkMeter:
    """One camera's connection figures across reconnects. Not thread-safe: the health monitor calls
    it under its own lock (the session thread writes, the watchdog reads)."""

    def __init__(self, start_t: float) -> None:
        self._start = start_t
        self._reconnects: deque[float] = deque()
        self._reconnects_total = 0
        self._stalls: deque[tuple[float, float]] = deque()  # (end, seconds) of each gap longer than STALL_GAP_S
        self._stalled_total = 0.0
        self._last_frame: float | None = None
        self._connected_since: float | None = None
        self._buckets: deque[_Bucket] = deque(maxlen=BASELINE_BUCKETS)
        self._declared_fps: float | None = None
        self._steps: deque[float] = deque(maxlen=100)  # media-time steps between frames, s
        self._last_media: float | None = None
        self._timing: ArrivalTiming | None = None
        self._transport: str | None = None
        # the hour's baseline and the nominal rate change only as buckets close and frames come:
        # computed again at most once per closed bucket, not at every status refresh (the watchdog
        # refreshes each camera every 2 s, and the hour holds 360 buckets)
        self._baseline_key: tuple[int, float] | None = None
        self._baseline: float | None = None
        self._fps_key: tuple[int, float] | None = None
        self._fps: float | None = None

    # ---- what the connection reports --------------------------------------------------------
    def connected(self, t: float, declared_fps: float | None, *, reconnect: bool) -> None:
        self._roll(t)
        self._connected_since = t
        self._declared_fps = declared_fps if declared_fps and 1.0 <= declared_fps <= 240.0 else None
        self._last_media = None
        if reconnect:
            self._reconnects.append(t)
            self._reconnects_total += 1

    def disconnected(self, t: float) -> None:
        self._roll(t)
        self._close_connected(t)

    def watch(self, timing: ArrivalTiming | None) -> None:
        """The connection's own timing (jitter, RTP loss); None when the source has none."""
        self._timing = timing
        if timing is not None:
            self._transport = timing.transport

    def frame(self, t: float, size: int, media_s: float | None) -> None:
        """A video frame arrived at `t` (monotonic) with `size` bytes and timestamp `media_s`."""
        last = self._last_frame
        if last is not None and t - last > STALL_GAP_S:
            self._stalls.append((t, t - last))
            self._stalled_total += t - last
        self._last_frame = t
        b = self._roll(t)
        b.frames += 1
        b.bytes += size
        if media_s is not None:
            if self._last_media is not None and 0 < media_s - self._last_media < 1.0:
                self._steps.append(media_s - self._last_media)
            self._last_media = media_s

    def data(self, t: float, size: int) -> None:
        """Bytes of another stream (audio) of the same connection: they count in the bitrate."""
        self._roll(t).bytes += size

    # ---- what it adds up to -----------------------------------------------------------------
    def figures(self, now: float) -> NetworkFigures:
        self._roll(now)
        horizon = now - WINDOW_S
        while self._reconnects and self._reconnects[0] < horizon:
            self._reconnects.popleft()
        while self._stalls and self._stalls[0][0] < horizon:
            self._stalls.popleft()
        watched = max(MIN_RATE_SPAN_S, min(WINDOW_S, now - self._start))
        silent = now - self._last_frame if self._last_frame is not None else now - self._start
        ongoing = silent if silent > STALL_GAP_S else 0.0
        stalled = sum(s for _, s in self._stalls) + ongoing
        fps = self._nominal_fps()
        buckets = self._buckets
        recent = [buckets[i] for i in range(max(0, len(buckets) - RECENT_BUCKETS), len(buckets))]
        frames = sum(b.frames for b in recent)
        span = sum(b.connected_s for b in recent) + self._open_connected(now, recent)
        elapsed = now - recent[0].start if recent else 0.0
        delivery = frames / (fps * span) if fps and span >= BUCKET_S / 2 else None
        kbps = sum(b.bytes for b in recent) * 8 / elapsed / 1000 if elapsed >= BUCKET_S / 2 else None
        base = self._baseline_kbps()
        timing = self._timing
        jitter = timing.jitter_s if timing is not None else None
        return NetworkFigures(
            reconnects_per_hour=len(self._reconnects) * 3600.0 / watched,
            reconnects=self._reconnects_total,
            stalled_s=min(stalled, WINDOW_S),
            stalled_total_s=self._stalled_total + ongoing,
            nominal_fps=fps,
            delivery_ratio=min(delivery, 1.5) if delivery is not None else None,
            bitrate_kbps=kbps,
            bitrate_baseline_kbps=base,
            bitrate_ratio=kbps / base if kbps is not None and base else None,
            jitter_ms=jitter * 1000 if jitter is not None else None,
            rtp_lost=timing.rtp_loss if timing is not None else None,
            transport=self._transport,
        )

    # ---- internals (callers hold the lock) --------------------------------------------------
    def _nominal_fps(self) -> float | None:
        if self._declared_fps is not None:
            return self._declared_fps
        if len(self._steps) < 10:
            return None
        key = (len(self._steps), self._buckets[-1].start if self._buckets else 0.0)
        if key != self._fps_key:  # while the steps fill, or once per bucket when they are full
            step = median(self._steps)
            self._fps, self._fps_key = (1.0 / step if step > 0 else None), key
        return self._fps

    def _baseline_kbps(self) -> float | None:
        """Median bitrate of the whole minutes in the last hour (needs five of them)."""
        key = (len(self._buckets), self._buckets[-1].start if self._buckets else 0.0)
        if key != self._baseline_key:
            self._baseline, self._baseline_key = self._compute_baseline(), key
        return self._baseline

    def _compute_baseline(self) -> float | None:
        full = list(self._buckets)[:-1]  # the newest bucket is still filling
        minutes = [full[i : i + RECENT_BUCKETS] for i in range(len(full) % RECENT_BUCKETS, len(full), RECENT_BUCKETS)]
        rates = [sum(b.bytes for b in m) * 8 / (BUCKET_S * len(m)) / 1000 for m in minutes if len(m) == RECENT_BUCKETS]
        return float(median(rates)) if len(rates) >= 5 else None

    def _roll(self, t: float) -> _Bucket:
        """The bucket holding `t`, opening new ones (and closing the connected time of old ones)."""
        if not self._buckets:
            self._buckets.append(_Bucket(t))
        b = self._buckets[-1]
        while t >= b.start + BUCKET_S:
            end = b.start + BUCKET_S
            if self._connected_since is not None:
                b.connected_s += end - max(self._connected_since, b.start)
                self._connected_since = end
            b = _Bucket(end)
            self._buckets.append(b)
        return b

    def _close_connected(self, t: float) -> None:
        if self._connected_since is not None and self._buckets:
            b = self._buckets[-1]
            b.connected_s += t - max(self._connected_since, b.start)
        self._connected_since = None

    def _open_connected(self, now: float, recent: list[_Bucket]) -> float:
        """Connected time in the newest bucket not yet added to it."""
        if self._connected_since is None or not recent:
            return 0.0
        return now - max(self._connected_since, recent[-1].start)
