"""Packet sources: PyAV demuxing an RTSP URL (or any URL PyAV opens), with timeouts so a dead
camera never blocks a thread forever."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import av
import av.container
import av.logging

from ingest.network import ArrivalTiming

from core.camera_url import DEFAULT_SCHEMES, check_camera_url, ffmpeg_protocols
from core.redact import redact_url
from core.redact import scrub_text as scrub  # PyAV errors quote the URL they opened

__all__ = ["PacketSource", "AvSource", "LiveEdge", "SourceOptions", "WAITED_S", "open_source", "scrub", "SourceError"]

log = logging.getLogger("vigil.source")
_libav_lock = threading.Lock()
_libav_on = False


def _hear_libav() -> None:
    """Let FFmpeg's warnings reach Python (once per process): over UDP its RTP demuxer says when it
    skips lost packets. Each connection captures its own thread's messages (`AvSource.packets`), so
    none reaches the console; identical messages of different cameras are not merged."""
    global _libav_on
    with _libav_lock:
        if not _libav_on:
            av.logging.set_skip_repeated(False)
            av.logging.set_level(av.logging.WARNING)
            _libav_on = True


class SourceError(Exception):
    """The camera could not be opened or read; the message is free of credentials."""


@dataclass(frozen=True, slots=True)
class SourceOptions:
    transport: str = "tcp"
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 5.0
    # After a packet that arrived fresh (the socket is drained), sleep this long so the next reads
    # find whole frames waiting instead of waking once per RTP packet: ~180 wake-ups/s per 2 Mbps
    # camera become ~5 (bench/README.md, "Read coalescing"). TCP only; 0 turns it off.
    coalesce_s: float = 0.2
    # The pause while the connection's live channel has subscribers content with bursts (wall
    # tiles). Equal to `coalesce_s`: being watched costs the recording nothing, and the player
    # absorbs the bursts (~0.4 s glass to glass). 0: every viewer gets each frame as it arrives.
    # Never more than `coalesce_s` (docs/design/live.md, "Cost of being watched").
    watched_coalesce_s: float = 0.2
    # A subscriber asking for low delay (a single view, a fullscreen tile: `LOW_DELAY` in
    # storage/live_channel.py) gets no pause at all: the reader wakes as each frame arrives
    # (~0.1 s glass to glass, ~2.7× the worker's CPU for that camera while so viewed). False: bursts.
    low_delay: bool = True
    # URL schemes this node may open (security.camera_url_schemes; core/camera_url.py)
    schemes: tuple[str, ...] = DEFAULT_SCHEMES


class PacketSource(Protocol):
    video: av.video.stream.VideoStream
    audio: av.audio.stream.AudioStream | None

    def packets(self) -> Iterator[av.Packet]: ...
    def close(self) -> None: ...


def _is_network(url: str) -> bool:
    return bool(re.match(r"^(rtsps?|rtmps?|https?|srt|udp|tcp)://", url, re.IGNORECASE))


# A read that waited this long for its packet found the socket drained: that packet was read as it
# arrived. A frame already waiting (in the kernel's buffer or libavformat's) is returned in well
# under a millisecond; the next frame of a 25 fps camera is up to 40 ms away.
WAITED_S = 0.005


class LiveEdge:
    """Whether a packet was read at the live edge of its connection or from a backlog.

    The edge is the lag (read time − media time) of the latest packet read as it arrived — its read
    waited on the network — or a smaller lag if one is seen (a camera clock stepping forward). A
    packet within `near_s` of it is at the edge: the reader may pause without first blocking on
    the socket (a wake-up it saves each pause). Packets left in the socket then are at most
    `near_s` old, and the edge only moves with packets read as they arrived, so the reader cannot
    drift behind the camera. (The first rule let the edge rise 1 ms a second from any read, for
    slow camera clocks: the frames a pause left unread raised it, and the reader fell ~1 ms a
    second behind — a wall tile 0.84 s behind over ten minutes.) A reader that is behind reads on
    without pausing, drains the socket and waits: its next packet re-bases the edge, which is how
    a slow or stepping camera clock is followed.
    """

    def __init__(self, near_s: float) -> None:
        self.near_s = near_s
        self.edge: float | None = None

    def at_edge(self, waited: bool, now: float, media_s: float) -> bool:
        lag = now - media_s
        if waited or self.edge is None or lag < self.edge:
            self.edge = lag
            return True
        return lag - self.edge < self.near_s


class AvSource:
    """One open connection. Iterating ends when the stream ends — for a camera, a disconnect."""

    def __init__(self, url: str, opts: SourceOptions) -> None:
        self.url = url
        self.safe_url = redact_url(url)
        try:  # checked again here: a row written before the rule, or by hand, is refused too
            check_camera_url(url, opts.schemes)
        except ValueError as e:
            raise SourceError(f"cannot open {self.safe_url}: {e}") from None
        self.network = _is_network(url)
        # RTSP over TCP only: over UDP a pause would overflow the socket buffer and lose packets
        tcp = url.lower().startswith("rtsp") and opts.transport == "tcp"
        self.coalesce_s = opts.coalesce_s if tcp else 0.0
        self.watched_coalesce_s = min(opts.watched_coalesce_s, self.coalesce_s)
        self.low_delay = opts.low_delay
        # the session's live channel: `active` while it has subscribers (the watched pause),
        # `low_delay` while one of them wants each frame as it arrives (no pause)
        self.live: Any = None
        # Fast open first: an RTSP camera's SDP usually carries the codec parameters, and probing
        # costs ~1 s per connect (docs/design/platform.md §1.5). Without them (no sprop-parameter-sets), reopen
        # and let libavformat probe the stream itself.
        self.container = self._open(url, opts, fast=True)
        v = self.container.streams.video[0] if self.container.streams.video else None
        if url.lower().startswith("rtsp") and (v is None or not v.codec_context.width or not v.codec_context.extradata):
            self.container.close()
            self.container = self._open(url, opts, fast=False)
        videos = [s for s in self.container.streams.video]
        if not videos:
            self.container.close()
            raise SourceError(f"{self.safe_url} has no video stream")
        self.video = videos[0]
        self.video.thread_type = "NONE"
        audios = [s for s in self.container.streams.audio if s.codec_context.name in ("aac", "mp3", "opus", "alac")]
        self.audio = audios[0] if audios else None
        self._streams = [self.video] + ([self.audio] if self.audio else [])
        # jitter and (UDP) RTP loss of this connection: ingest/network.py
        rtsp = url.lower().startswith("rtsp")
        self.timing = ArrivalTiming(opts.transport if rtsp else "file")
        if rtsp and opts.transport == "udp":
            _hear_libav()
        self._iter: Iterator[av.Packet] | None = None

    def _open(self, url: str, opts: SourceOptions, *, fast: bool) -> av.container.InputContainer:
        options: dict[str, str] = {}
        if url.lower().startswith("rtsp"):
            options = {
                "rtsp_transport": opts.transport,
                # socket I/O timeout in µs: a hung server raises instead of blocking forever
                "timeout": str(int(opts.read_timeout_s * 1_000_000)),
                "analyzeduration": "0" if fast else "1000000",
                "probesize": "32" if fast else "500000",
            }
        # FFmpeg opens only the protocols the URL's scheme needs: no file, concat, http or
        # data inside an RTSP session, a playlist or a redirect
        options["protocol_whitelist"] = ffmpeg_protocols(url)
        # For RTSP, reads are guarded by libavformat's own socket timeout (`timeout` above) rather
        # than PyAV's interrupt callback: that callback takes the GIL on every socket read — three
        # per RTP packet — which cost ~0.1 % of a core per camera with many cameras per process
        # (bench/README.md). PyAV's timeout still bounds the open (connect, DESCRIBE, SETUP).
        timeout = (opts.connect_timeout_s, None if "timeout" in options else opts.read_timeout_s)
        try:
            return av.open(url, options=options, timeout=timeout)
        except av.error.FFmpegError as e:
            raise SourceError(f"cannot open {self.safe_url}: {scrub(_describe(e))}") from None
        except OSError as e:
            raise SourceError(f"cannot open {self.safe_url}: {scrub(str(e))}") from None

    def packets(self) -> Iterator[av.Packet]:
        self._iter = self._packets()
        return self._iter

    def _packets(self) -> Iterator[av.Packet]:
        try:
            if not self.network:
                yield from self._paced_packets()
            else:
                with av.logging.Capture(local=True) as said:  # this thread's FFmpeg messages
                    yield from self._network_packets(said)
        except av.error.FFmpegError as e:
            raise SourceError(f"reading {self.safe_url}: {scrub(_describe(e))}") from None
        except OSError as e:
            raise SourceError(f"reading {self.safe_url}: {scrub(str(e))}") from None

    def _network_packets(self, said: list[tuple[int, str, str]]) -> Iterator[av.Packet]:
        """Network packets; with `coalesce_s`, read in bursts: after a video packet at the live edge, pause.

        A packet at the live edge (`LiveEdge`: near the lag of the latest packet read as it arrived)
        may be followed by a pause: the frames left in the socket are at most half a pause old.
        Packets read from a backlog sit further from the edge, so a reader that falls behind (a busy
        machine, a receive window smaller than a pause's worth of stream) stops pausing until it has
        caught up. Each read is timed: one that blocked got its frame off the network, and only those
        frames' arrival times measure jitter (ingest/network.py) and move the edge.
        """
        pause = self.coalesce_s
        watched_pause = self.watched_coalesce_s
        low_delay_ok = self.low_delay
        video = self.video.index
        tb = float(self.video.time_base or 0) or 1 / 90000
        # "at the edge": within half the pause about to be taken (a shorter pause while watched
        # leaves fewer frames waiting)
        near, near_watched = pause / 2, (watched_pause or pause) / 2
        edge = LiveEdge(near)
        at_edge = edge.at_edge
        watched = low = False
        mono = time.monotonic
        sleep = time.sleep
        timing = self.timing
        it = iter(self.container.demux(self._streams))
        while True:
            t0 = mono()
            pkt = next(it, None)
            if pkt is None:
                return
            t1 = mono()
            if said:
                for _level, name, message in said:
                    timing.log(message)
                    log.debug("%s: libav %s: %s", self.safe_url, name, message.strip())
                said.clear()
            dts = pkt.dts
            if dts is None:
                if pkt.size:
                    yield pkt  # the first IDR of an RTSP session comes without timestamps
                continue
            if pkt.stream_index != video:
                yield pkt
                continue
            if not pause:
                # With read coalescing the reader sleeps at the live edge instead of waiting on the
                # network, so no arrival time is the network's: jitter is measured without it only.
                timing.frame(t1, dts * tb, t1 - t0)
            fresh = False
            if pause:
                live = self.live
                watched = live is not None and live.active
                low = watched and low_delay_ok and live.low_delay
                edge.near_s = near_watched if watched and not low else near
                fresh = at_edge(t1 - t0 >= WAITED_S, t1, dts * tb)
            yield pkt  # the consumer sees a fresh packet before any pause
            if fresh and not low:
                if not watched:
                    sleep(pause)
                elif watched_pause:
                    # watched from wall tiles: bursts as unwatched (at the same pause, the
                    # recording's cost is unchanged); the browser's player absorbs them
                    sleep(watched_pause)
                # Watched with low delay, no pause: the next read waits on the socket and wakes as
                # the next frame arrives — about one wake-up per frame (26–39/s at 25 fps), near the
                # fewest a frame-by-frame view allows. A 20 ms pause woke it twice per frame (the
                # sleep, then the socket): 50–61/s and ~1.6× the reader's CPU (docs/design/live.md,
                # "Cost of being watched").

    def _paced_packets(self) -> Iterator[av.Packet]:
        """Files play at their own pace, like a camera (the demo and some tests use them)."""
        t0 = time.monotonic()
        first_ts: float | None = None
        for pkt in self.container.demux(self._streams):
            if pkt.size == 0 and pkt.dts is None:
                continue  # the demuxer's flush packet at the end of the stream
            if pkt.stream is self.video and pkt.dts is not None and pkt.time_base:
                ts = float(pkt.dts * pkt.time_base)
                if first_ts is None:
                    first_ts = ts
                ahead = (ts - first_ts) - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)
            yield pkt

    def close(self) -> None:
        it, self._iter = self._iter, None
        if it is not None:
            try:
                it.close()  # type: ignore[attr-defined]  # a generator: ends its log capture in this thread
            except Exception:
                pass
        try:
            self.container.close()
        except Exception:
            pass


def _describe(e: Exception) -> str:
    if isinstance(e, (av.error.ExitError, av.error.TimeoutError)):  # an interrupt or socket timeout fired
        return "no data from the camera within the read timeout"
    name = type(e).__name__
    msg = getattr(e, "strerror", None) or str(e)
    return f"{name}: {msg}"


def open_source(url: str, opts: SourceOptions) -> AvSource:
    return AvSource(url, opts)
