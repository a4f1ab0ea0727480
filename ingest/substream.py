"""A camera's low-resolution health substream (`health_url`): read in its own thread and sampled
instead of the recorded stream, so a 4K camera's picture is judged at a few ms per keyframe.

Only the picture comes from here; whether the camera is online is still decided by the recorded
stream, so a dead substream never marks a recording camera offline (it is logged and retried).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

import av

from core.backoff import Backoff
from ingest.live_publish import open_publisher
from storage.live_channel import substream_channel
from ingest.source import PacketSource, SourceError, SourceOptions, open_source
from core.clock import SYSTEM_CLOCK, Clock

__all__ = ["CountOnly", "HealthSubstream", "PictureSink"]

log = logging.getLogger("vigil.substream")


class PictureSink(Protocol):
    def on_connected(self, run_id: str, video_stream: av.video.stream.VideoStream) -> None: ...
    def on_packet(self, packet: av.Packet, arrival_mono: float, *, count: bool = True, sample: bool = True) -> None: ...


class CountOnly:
    """The recorded stream's view of the monitor when a substream does the sampling."""

    def __init__(self, monitor: PictureSink) -> None:
        self.monitor = monitor

    def on_connected(self, run_id: str, video_stream: av.video.stream.VideoStream) -> None:
        self.monitor.on_connected(run_id, video_stream)

    def on_packet(self, packet: av.Packet, arrival_mono: float) -> None:
        self.monitor.on_packet(packet, arrival_mono, sample=False)


class HealthSubstream:
    def __init__(
        self,
        camera_id: str,
        url: str,
        monitor: PictureSink,
        opts: SourceOptions,
        stop: threading.Event,
        *,
        clock: Clock = SYSTEM_CLOCK,
        opener: Callable[[str, SourceOptions], PacketSource] = open_source,
        backoff: Backoff | None = None,
        live_root: str | None = None,
    ) -> None:
        self.live_root = live_root  # the spool's root: live viewers may watch this substream
        self.camera_id = camera_id
        self.url = url
        self.monitor = monitor
        self.opts = opts
        self.stop = stop
        self.clock = clock
        self.opener = opener
        self.backoff = backoff or Backoff(1.0, 30.0)
        self.samples_fed = 0
        self.thread = threading.Thread(target=self._run, name=f"sub-{camera_id}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                src = self.opener(self.url, self.opts)
            except SourceError as e:
                log.warning("%s: health substream: %s", self.camera_id, e)
            else:
                # the substream's live channel: the fallback for browsers that cannot decode the main
                # stream's codec (H.265), from this same connection
                live = None
                if self.live_root is not None:
                    live = open_publisher(self.live_root, substream_channel(self.camera_id), src.video)
                    if live is not None and hasattr(src, "live"):
                        src.live = live
                try:
                    for pkt in src.packets():
                        if self.stop.is_set():
                            break
                        if pkt.stream is src.video:
                            if live is not None and live.active:
                                live.publish(pkt, int(self.clock.now() * 1_000_000))
                            self.monitor.on_packet(pkt, self.clock.monotonic(), count=False)
                            self.samples_fed += 1
                    self.backoff.reset()
                except SourceError as e:
                    log.warning("%s: health substream: %s", self.camera_id, e)
                except Exception:  # the substream must never take the recording down with it
                    log.exception("%s: health substream failed", self.camera_id)
                finally:
                    if live is not None:
                        live.close("health substream ended")
                    src.close()
            if not self.stop.is_set():
                self.clock.sleep(self.backoff.next_delay(), self.stop)
