"""The worker process: records the cameras the supervisor sends it, a thread per camera.

Its state is one `WorkerProcess`. The pipe loop is the only writer of it; camera threads read
their lease on every packet, the watchdog reads the cameras twice a second. The lease map is
replaced whole at each heartbeat (`LeaseTable`), so a reader sees the old map or the new one and
never an empty one in between. A camera whose settings cannot be used (`RefusedCamera`) is kept
in an error state on its own: nothing one camera carries stops the others or the process.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ingest.worker import CameraWorker, WorkerOptions
from storage.catalog import Camera, Catalog
from storage.catalog.base import POOL_WORKER
from storage.object_store import ObjectStore, open_store
from storage.spool import Spool
from core.clock import SYSTEM_CLOCK, Clock
from core.drain import WORKER_DRAIN_S
from core.logs import setup_logging
from core.redact import scrub_text
from core.settings import Settings
from core.validation import describe_errors

if TYPE_CHECKING:  # imported where used: the supervisor's process imports this module, not numpy/OpenCV
    from ingest.health.monitor import HealthMonitor
    from ingest.refused_camera import RefusedCamera

__all__ = ["Lease", "LeaseTable", "SetCameras", "SetLeases", "Stop", "WorkerProcess", "worker_process_main"]

log = logging.getLogger("vigil.worker")

WATCHDOG_S = 0.5


@dataclass(frozen=True, slots=True)
class Lease:
    """A camera this node may record: its fencing epoch and until when (CLOCK_MONOTONIC, which every
    process of the machine shares)."""

    epoch: int | None
    deadline: float


# ---- what the supervisor sends down the pipe -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class SetLeases:
    leases: dict[str, Lease]


@dataclass(frozen=True, slots=True)
class SetCameras:
    cameras: list[Camera]


@dataclass(frozen=True, slots=True)
class Stop:
    pass


Message = SetLeases | SetCameras | Stop


class LeaseTable:
    """Camera → lease, replaced whole at each heartbeat and read by every packet of every camera."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._held: dict[str, Lease] = {}
        self._monotonic = monotonic

    def replace(self, held: Mapping[str, Lease]) -> None:
        new = dict(held)  # built aside; readers switch to it in one step
        self._held = new

    def epoch_of(self, camera_id: str) -> Callable[[], int | None]:
        def epoch() -> int | None:
            lease = self._held.get(camera_id)
            return lease.epoch if lease is not None else None

        return epoch

    def valid_for(self, camera_id: str) -> Callable[[], bool]:
        monotonic = self._monotonic

        def valid() -> bool:
            lease = self._held.get(camera_id)
            return lease is not None and lease.deadline > monotonic()

        return valid


def _fingerprint(c: Camera) -> tuple[Any, ...]:
    """What a running camera is restarted for when it changes (not its name nor its tags)."""
    return (c.url, c.transport, c.health_url, c.options, c.options_error, c.enabled, c.username, c.password)


@dataclass(slots=True)
class _Running:
    camera: Camera
    worker: CameraWorker | None = None  # None: refused
    refused: RefusedCamera | None = None
    fingerprint: tuple[Any, ...] = field(default=())

    def tick(self) -> None:
        if self.worker is not None:
            self.worker.monitor.tick()
        elif self.refused is not None:
            self.refused.tick()

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()

    def finish(self, timeout_s: float) -> None:
        """Wait for the camera's thread (its open segment closed), then write its last status."""
        if self.worker is not None:
            self.worker.join(timeout_s)
            self.worker.monitor.close()
        elif self.refused is not None:
            self.refused.close()


class WorkerProcess:
    """One worker process's cameras and leases; `handle` applies what the supervisor sends."""

    def __init__(
        self,
        index: int,
        settings: Settings,
        *,
        catalog: Catalog,
        store: ObjectStore | None,
        spool: Spool,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.index = index
        self.settings = settings
        self.catalog = catalog
        self.store = store
        self.spool = spool
        self.clock = clock
        w = settings.workers
        self.opts = WorkerOptions(
            segment_s=settings.recording.segment_seconds,
            backoff_initial_s=w.backoff_initial_s,
            backoff_max_s=w.backoff_max_s,
            connect_timeout_s=w.connect_timeout_s,
            read_timeout_s=w.read_timeout_s,
            read_coalesce_s=w.read_coalesce_s,
            watched_read_coalesce_s=w.watched_pause_s,
            low_delay_live=w.low_delay_live,
            node_id=settings.node_id or None,
            schemes=tuple(settings.security.camera_url_schemes),
        )
        from ingest.health.monitor import shared_pool
        from ingest.health.writer import StatusWriter

        # One writer for every camera of this process: their statuses go in one transaction per flush.
        self.status_writer = StatusWriter(catalog, shared_pool())
        self.leases = LeaseTable()
        self.cameras: dict[str, _Running] = {}
        self._lock = threading.Lock()  # `cameras`: changed by the pipe loop, read by the watchdog

    # ---- messages -------------------------------------------------------------------------------
    def handle(self, msg: Message) -> bool:
        """Apply one message; False when it asks the process to stop."""
        if isinstance(msg, SetLeases):
            self.leases.replace(msg.leases)
        elif isinstance(msg, SetCameras):
            self.apply(msg.cameras)
        elif isinstance(msg, Stop):
            return False
        return True

    def apply(self, cams: list[Camera]) -> None:
        """Record exactly these cameras: stop the ones gone or changed, start the new ones."""
        wanted = {c.id: c for c in cams if c.enabled}
        with self._lock:
            stopping = [
                self.cameras.pop(cid)
                for cid, r in list(self.cameras.items())
                if cid not in wanted or r.fingerprint != _fingerprint(wanted[cid])
            ]
        for r in stopping:
            r.stop()
        for r in stopping:
            r.finish(self.opts.read_timeout_s + 2)
        started = [self._start(cam) for cid, cam in wanted.items() if cid not in self.cameras]
        with self._lock:
            self.cameras.update((r.camera.id, r) for r in started)
            n = sum(r.worker is not None for r in self.cameras.values())
        log.info("worker %d: recording %d camera(s), %d refused", self.index, n, len(self.cameras) - n)

    def _start(self, cam: Camera) -> _Running:
        """A recorder for `cam`, or — if its settings cannot be used — a refusal that says why."""
        from ingest.health.monitor import HealthMonitor
        from ingest.refused_camera import RefusedCamera

        running = _Running(cam, fingerprint=_fingerprint(cam))
        why = cam.options_error
        monitor: HealthMonitor | None = None
        try:
            if not why:
                cfg = self.settings.health.with_overrides(cam.options.health)
                monitor = HealthMonitor(
                    cam.id,
                    cfg,
                    catalog=self.catalog,
                    store=self.store,
                    clock=self.clock,
                    node_id=self.settings.node_id,
                    writer=self.status_writer,
                )
                running.worker = CameraWorker(
                    cam,
                    self.spool,
                    monitor,
                    self.opts,
                    clock=self.clock,
                    lease_epoch=self.leases.epoch_of(cam.id),
                    lease_valid=self.leases.valid_for(cam.id),
                )
        except ValidationError as e:
            why = describe_errors(e.errors())
        except Exception as e:  # noqa: BLE001 - one camera's settings never stop the others
            why = scrub_text(f"{type(e).__name__}: {e}")
        if running.worker is None:
            if monitor is not None:
                monitor.close()
            running.refused = RefusedCamera(
                cam.id, f"settings refused: {why}", writer=self.status_writer, clock=self.clock, node_id=self.settings.node_id
            )
            return running
        running.worker.start()
        return running

    # ---- the watchdog ---------------------------------------------------------------------------
    def tick(self) -> None:
        """One pass over the cameras: stall checks, status refreshes, one flush."""
        with self._lock:
            current = list(self.cameras.values())
        with self.status_writer.batch():
            for r in current:
                try:
                    r.tick()
                except Exception:  # noqa: BLE001
                    log.exception("%s: health tick failed", r.camera.id)

    def stop_all(self, drain_s: float = WORKER_DRAIN_S) -> None:
        """Stop every camera; each closes its open segment within the drain time."""
        with self._lock:
            stopping = list(self.cameras.values())
            self.cameras.clear()
        for r in stopping:
            r.stop()
        deadline = self.clock.monotonic() + drain_s
        for r in stopping:
            r.finish(max(0.1, deadline - self.clock.monotonic()))


def worker_process_main(index: int, settings_json: str, conn: Connection) -> None:
    """Entry point of one worker process: runs the cameras the supervisor sends it until told to stop."""
    settings = Settings.model_validate_json(settings_json)
    setup_logging(os.environ.get("VIGIL_LOG_LEVEL", "INFO"))
    try:
        store: ObjectStore | None = open_store(settings.storage)
    except Exception as e:  # noqa: BLE001 - snapshots are optional; recording is not
        log.error("worker %d: object store unavailable for snapshots: %s", index, e)
        store = None
    proc = WorkerProcess(
        index, settings, catalog=Catalog(settings.catalog, create=False, pool=POOL_WORKER), store=store, spool=Spool(settings.spool.path)
    )
    closed = threading.Event()
    done = threading.Event()
    parent = os.getppid()

    def watchdog() -> None:
        while not done.wait(WATCHDOG_S):
            proc.tick()
            if os.getppid() != parent:  # the supervisor is gone: stop rather than record unsupervised
                log.error("worker %d: supervisor died; stopping", index)
                closed.set()

    # Ctrl-C reaches the whole process group: the supervisor decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: closed.set())
    threading.Thread(target=watchdog, name="watchdog", daemon=True).start()
    # Everything imported so far lives as long as the process: keep it out of the collector's
    # full passes, which otherwise walk ~100k objects (SQLAlchemy, pydantic, numpy) every few
    # seconds while packets allocate (the API process measured 100–320 ms per pass).
    gc.freeze()
    try:
        while not closed.is_set():
            if not conn.poll(0.5):
                continue
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                break
            if not proc.handle(msg):
                break
    finally:
        proc.stop_all()
        done.set()
        log.info("worker %d: stopped", index)
