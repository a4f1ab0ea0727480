"""A camera's outer loop: connect, record, back off, until stopped. The worker process
(ingest/worker_process.py) runs many of them as threads (PyAV releases the GIL while it waits on
the network)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from core.backoff import Backoff
from ingest.session import FeedObserver, Session
from core.camera_url import DEFAULT_SCHEMES
from ingest.source import PacketSource, SourceError, SourceOptions, open_source
from ingest.substream import CountOnly, HealthSubstream
from storage.catalog import Camera
from storage.spool import Spool
from core.clock import SYSTEM_CLOCK, Clock
from core.logs import LogThrottle
from ingest.network import ArrivalTiming
from core.redact import scrub_text

__all__ = ["PROBLEM_LOG_INTERVAL_S", "CameraWorker", "Monitor", "WorkerOptions"]

log = logging.getLogger("vigil.worker")

PROBLEM_LOG_INTERVAL_S = 300.0  # a camera that keeps failing: one console line per 5 min (with a count)


class Monitor(FeedObserver, Protocol):
    """The health monitor as the camera loop sees it (ingest/health/monitor.py)."""

    def on_connecting(self) -> None: ...
    def on_source(self, timing: ArrivalTiming | None) -> None: ...
    def on_connect_failed(self, reason: str) -> None: ...
    def on_disconnected(self, reason: str) -> None: ...
    def tick(self) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    segment_s: float = 60.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 30.0
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 5.0
    read_coalesce_s: float = 0.2
    watched_read_coalesce_s: float = 0.2  # the read pause while watched from wall tiles (source.py)
    low_delay_live: bool = True  # a single view may ask for each frame as it arrives (source.py)
    healthy_after_s: float = 10.0  # a session that lasted this long resets the backoff
    node_id: str | None = None
    schemes: tuple[str, ...] = DEFAULT_SCHEMES  # camera URL schemes this node may open


class CameraWorker:
    def __init__(
        self,
        camera: Camera,
        spool: Spool,
        monitor: Monitor,
        opts: WorkerOptions,
        *,
        clock: Clock = SYSTEM_CLOCK,
        opener: Callable[[str, SourceOptions], PacketSource] = open_source,
        lease_epoch: Callable[[], int | None] = lambda: None,
        lease_valid: Callable[[], bool] = lambda: True,
    ) -> None:
        self.camera = camera
        self.lease_valid = lease_valid
        self.spool = spool
        self.monitor = monitor
        self.opts = opts
        self.clock = clock
        self.opener = opener
        self.lease_epoch = lease_epoch
        self.stop_event = threading.Event()
        self.backoff = Backoff(opts.backoff_initial_s, opts.backoff_max_s)
        self.attempts = 0
        self.sessions = 0
        self.last_reason = ""
        self._problems = LogThrottle(PROBLEM_LOG_INTERVAL_S)
        self.thread = threading.Thread(target=self._run_guarded, name=f"cam-{camera.id}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()

    def join(self, timeout: float | None = None) -> bool:
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def _problem(self, line: str) -> None:
        """A failed connection or a lost stream: one console line, then one per PROBLEM_LOG_INTERVAL_S
        (the state changes it causes are logged by the health monitor; reconnects are counted there)."""
        left_out = self._problems(self.clock.monotonic())
        if left_out is not None:
            more = f" ({left_out} more since the last line)" if left_out else ""
            log.warning("%s%s", line, more)

    def _run_guarded(self) -> None:
        try:
            self.run()
        except BaseException as e:  # a camera's thread dying silently is the one thing not allowed
            log.exception("%s: camera loop crashed", self.camera.id)
            self.last_reason = f"recording stopped: {scrub_text(f'{type(e).__name__}: {e}')}"
            try:  # the camera alone goes offline, saying why; the process and its other cameras go on
                self.monitor.on_connect_failed(self.last_reason)
            except Exception:  # noqa: BLE001
                log.exception("%s: cannot report the crash", self.camera.id)

    def run(self) -> None:
        cam = self.camera
        src_opts = SourceOptions(
            cam.transport,
            self.opts.connect_timeout_s,
            self.opts.read_timeout_s,
            self.opts.read_coalesce_s,
            watched_coalesce_s=self.opts.watched_read_coalesce_s,
            low_delay=self.opts.low_delay_live,
            schemes=self.opts.schemes,
        )
        observer: FeedObserver = self.monitor
        if cam.health_url:
            observer = CountOnly(self.monitor)  # type: ignore[arg-type]
            HealthSubstream(cam.id, cam.health_source_url or cam.health_url, self.monitor, src_opts, self.stop_event,
                            clock=self.clock, live_root=str(self.spool.root)).start()
        while not self.stop_event.is_set():
            if not self.lease_valid():
                # no lease, no recording: wait for the supervisor to renew it or to stop us
                self.clock.sleep(0.5, self.stop_event)
                continue
            self.attempts += 1
            self.monitor.on_connecting()
            started = self.clock.monotonic()
            try:
                source = self.opener(cam.source_url, src_opts)
            except SourceError as e:
                self.last_reason = str(e)
                self._problem(f"{cam.id}: {e}")
                self.monitor.on_connect_failed(str(e))
            else:
                self.sessions += 1
                self.monitor.on_source(getattr(source, "timing", None))
                session = Session(
                    source,
                    self.spool,
                    camera_id=cam.id,
                    segment_s=self.opts.segment_s,
                    clock=self.clock,
                    stop=self.stop_event,
                    observer=observer,
                    lease_epoch=self.lease_epoch,
                    lease_valid=self.lease_valid,
                    node_id=self.opts.node_id,
                )
                try:
                    result = session.run()
                    reason = result.ended_by
                except SourceError as e:
                    reason = str(e)
                except Exception as e:
                    reason = f"recording failed: {scrub_text(f'{type(e).__name__}: {e}')}"
                    log.exception("%s: %s", cam.id, reason)
                self.last_reason = reason
                if not self.stop_event.is_set():
                    self._problem(f"{cam.id}: disconnected: {reason}")
                self.monitor.on_disconnected(reason)
                if self.clock.monotonic() - started >= self.opts.healthy_after_s:
                    self.backoff.reset()
            if self.stop_event.is_set():
                break
            delay = self.backoff.next_delay()
            log.debug("%s: reconnecting in %.1f s", cam.id, delay)
            self.clock.sleep(delay, self.stop_event)
