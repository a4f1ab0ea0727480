"""A camera's outer loop (connect, record, back off, until stopped) and the worker process that
runs many of them as threads (PyAV releases the GIL while it waits on the network)."""

from __future__ import annotations

import gc
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Protocol

from core.backoff import Backoff
from ingest.session import FeedObserver, Session
from core.camera_url import DEFAULT_SCHEMES
from ingest.source import PacketSource, SourceError, SourceOptions, open_source
from ingest.substream import CountOnly, HealthSubstream
from storage.catalog import Camera
from storage.spool import Spool
from core.clock import SYSTEM_CLOCK, Clock
from core.redact import scrub_text

__all__ = ["CameraWorker", "Monitor", "WorkerOptions", "worker_process_main"]

log = logging.getLogger("vigil.worker")


class Monitor(FeedObserver, Protocol):
    """The health monitor as the camera loop sees it (ingest/health/monitor.py)."""

    def on_connecting(self) -> None: ...
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
        self.thread = threading.Thread(target=self._run_guarded, name=f"cam-{camera.id}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()

    def join(self, timeout: float | None = None) -> bool:
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def _run_guarded(self) -> None:
        try:
            self.run()
        except BaseException:  # a camera's thread dying silently is the one thing not allowed
            log.exception("%s: camera loop crashed", self.camera.id)

    def run(self) -> None:
        cam = self.camera
        src_opts = SourceOptions(
            cam.transport,
            self.opts.connect_timeout_s,
            self.opts.read_timeout_s,
            self.opts.read_coalesce_s,
            schemes=self.opts.schemes,
        )
        observer: FeedObserver = self.monitor
        if cam.health_url:
            observer = CountOnly(self.monitor)  # type: ignore[arg-type]
            HealthSubstream(cam.id, cam.health_source_url or cam.health_url, self.monitor, src_opts, self.stop_event, clock=self.clock).start()
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
                log.warning("%s: %s", cam.id, e)
                self.monitor.on_connect_failed(str(e))
            else:
                self.sessions += 1
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
                    log.warning("%s: disconnected: %s", cam.id, reason)
                self.monitor.on_disconnected(reason)
                if self.clock.monotonic() - started >= self.opts.healthy_after_s:
                    self.backoff.reset()
            if self.stop_event.is_set():
                break
            delay = self.backoff.next_delay()
            log.info("%s: reconnecting in %.1f s", cam.id, delay)
            self.clock.sleep(delay, self.stop_event)


# ---- the worker process -------------------------------------------------------------------------


def _camera_fingerprint(c: Camera) -> tuple[Any, ...]:
    return (c.url, c.transport, c.health_url, repr(sorted(c.options.items())), c.enabled, c.username, c.password)


def worker_process_main(index: int, settings_json: str, conn: Connection) -> None:
    """Entry point of one worker process: runs the cameras the supervisor sends it."""
    from ingest.health.monitor import HealthMonitor, shared_pool
    from ingest.health.writer import StatusWriter
    from storage.catalog import Catalog
    from storage.object_store import open_store
    from core.logs import setup_logging
    from core.settings import HealthConfig, Settings

    settings = Settings.model_validate_json(settings_json)
    setup_logging(os.environ.get("VIGIL_LOG_LEVEL", "INFO"))
    catalog = Catalog(settings.catalog, create=False)
    try:
        store = open_store(settings.storage)
    except Exception as e:  # snapshots are optional; recording is not
        log.error("worker %d: object store unavailable for snapshots: %s", index, e)
        store = None
    spool = Spool(settings.spool.path)
    # One writer for every camera of this process: their statuses go in one transaction per flush.
    status_writer = StatusWriter(catalog, shared_pool())
    opts = WorkerOptions(
        segment_s=settings.recording.segment_seconds,
        backoff_initial_s=settings.workers.backoff_initial_s,
        backoff_max_s=settings.workers.backoff_max_s,
        connect_timeout_s=settings.workers.connect_timeout_s,
        read_timeout_s=settings.workers.read_timeout_s,
        read_coalesce_s=settings.workers.read_coalesce_s,
        node_id=settings.node_id or None,
        schemes=tuple(settings.security.camera_url_schemes),
    )
    workers: dict[str, CameraWorker] = {}
    prints: dict[str, tuple[Any, ...]] = {}
    # camera → (lease epoch, monotonic deadline); CLOCK_MONOTONIC is shared by every process
    leases: dict[str, tuple[int | None, float]] = {}
    lock = threading.Lock()
    done = threading.Event()
    parent = os.getppid()

    def health_for(cam: Camera) -> HealthConfig:
        merged = settings.health.model_dump()
        merged.update({k: v for k, v in (cam.options.get("health") or {}).items() if v is not None})
        return HealthConfig.model_validate(merged)

    def watchdog() -> None:
        while not done.wait(0.5):
            with lock:
                current = list(workers.values())
            with status_writer.batch():  # one pass over the cameras, one flush
                for w in current:
                    try:
                        w.monitor.tick()
                    except Exception:
                        log.exception("%s: health tick failed", w.camera.id)
            if os.getppid() != parent:  # the supervisor is gone: stop rather than record unsupervised
                log.error("worker %d: supervisor died; stopping", index)
                conn_closed.set()

    conn_closed = threading.Event()
    # Ctrl-C reaches the whole process group: the supervisor decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: conn_closed.set())
    threading.Thread(target=watchdog, name="watchdog", daemon=True).start()
    # Everything imported so far lives as long as the process: keep it out of the collector's
    # full passes, which otherwise walk ~100k objects (SQLAlchemy, pydantic, numpy) every few
    # seconds while packets allocate (the API process measured 100–320 ms per pass).
    gc.freeze()

    def stop_camera(cid: str) -> CameraWorker:
        w = workers.pop(cid)
        prints.pop(cid, None)
        w.stop()
        return w

    def apply(cams: list[Camera]) -> None:
        wanted = {c.id: c for c in cams if c.enabled}
        stopping = []
        with lock:
            for cid in list(workers):
                if cid not in wanted or prints[cid] != _camera_fingerprint(wanted[cid]):
                    stopping.append(stop_camera(cid))
        for w in stopping:
            w.join(opts.read_timeout_s + 2)
            w.monitor.close()
        with lock:
            for cid, cam in wanted.items():
                if cid in workers:
                    continue
                monitor = HealthMonitor(
                    cid,
                    health_for(cam),
                    catalog=catalog,
                    store=store,
                    clock=SYSTEM_CLOCK,
                    node_id=settings.node_id,
                    writer=status_writer,
                )
                w = CameraWorker(
                    cam,
                    spool,
                    monitor,
                    opts,
                    lease_epoch=lambda cid=cid: leases.get(cid, (None, 0.0))[0],
                    lease_valid=lambda cid=cid: leases.get(cid, (None, 0.0))[1] > time.monotonic(),
                )
                workers[cid] = w
                prints[cid] = _camera_fingerprint(cam)
                w.start()
        log.info("worker %d: recording %d camera(s)", index, len(workers))

    try:
        while not conn_closed.is_set():
            if not conn.poll(0.5):
                continue
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                break
            if msg.get("cmd") == "leases":
                leases.clear()
                leases.update({k: (v[0], float(v[1])) for k, v in msg["leases"].items()})
            elif msg.get("cmd") == "cameras":
                apply([Camera(**c) for c in msg["cameras"]])
            elif msg.get("cmd") == "stop":
                break
    finally:
        with lock:
            stopping = [stop_camera(cid) for cid in list(workers)]
        deadline = SYSTEM_CLOCK.monotonic() + float(os.environ.get("VIGIL_DRAIN_S", "6"))
        for w in stopping:
            w.join(max(0.1, deadline - SYSTEM_CLOCK.monotonic()))
            w.monitor.close()
        done.set()
        log.info("worker %d: stopped", index)
