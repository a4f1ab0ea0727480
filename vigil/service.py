"""`vigil run`: wires the real objects together — catalog, spool, uploader, supervisor, API.

Order of shutdown on SIGTERM/Ctrl-C: the API stops taking requests, workers close their open
segments, whatever a killed worker left is recovered, and the uploader drains what it can.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path

from ingest.supervisor import Supervisor
from notify.notifier import Notifier
from storage.catalog import Camera, Catalog
from storage.catalog.camera_rows import split_camera
from storage.sealing import load_sealer
from storage.server_secrets import reseal_server_secrets
from storage.leases import LeaseKeeper
from storage.object_store import ObjectStore, open_store
from storage.retention import apply_retention
from storage.spool import Spool
from storage.uploader import Uploader
from core.clock import SYSTEM_CLOCK
from core.drain import DRAIN_S, WORKER_DRAIN_S
from core.settings import Settings

__all__ = ["Service", "seed_cameras"]

log = logging.getLogger("vigil.service")


def seed_cameras(settings: Settings, catalog: Catalog) -> None:
    """Cameras from the config file are written to the catalog; the API may add more at run time."""
    now_us = int(SYSTEM_CLOCK.now() * 1e6)
    for c in settings.cameras:
        cam = Camera(
            id=c.id,
            url=c.url,
            name=c.name or c.id,
            transport=c.transport,
            tags=dict(c.tags),
            enabled=c.enabled,
            health_url=c.health_url,
            username=c.username,
            password=c.password,
            options=c.options,
        )
        split_camera(cam)  # compared in the form the catalog stores
        existing = catalog.get_camera(c.id, unseal=True)

        def shape(x: Camera) -> tuple[object, ...]:
            return (x.url, x.name, x.transport, x.tags, x.enabled, x.health_url, x.options, x.username, x.password)

        if existing is None or existing.options_error or shape(existing) != shape(cam):
            catalog.upsert_camera(cam, now_us)


def _private_dir(path: Path) -> None:
    """Made 0700 (and, when ours, set to it): recordings, catalog and keys are nobody else's."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_uid == os.getuid():
        path.chmod(0o700)


class Service:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        if not settings.node_id:
            settings.node_id = os.uname().nodename
        # every file this process and its workers make (catalog, WAL, spool, keys) is 0600, every
        # directory 0700: recordings and credentials are nobody else's on this machine
        os.umask(0o077)
        _private_dir(Path(settings.data_dir))
        self.catalog = Catalog(settings.catalog, sealer=load_sealer(settings))
        # what an older version stored in clear is split and sealed; a rotated key reseals all
        self.catalog.seal_credentials()
        reseal_server_secrets(self.catalog)
        _private_dir(Path(settings.spool.path))
        self.spool = Spool(settings.spool.path)
        self.store: ObjectStore = open_store(settings.storage)
        self.uploader = Uploader(
            self.spool,
            self.store,
            self.catalog,
            max_spool_bytes=settings.spool.max_bytes,
            backoff_max_s=10.0,
        )
        self.leases = LeaseKeeper(
            self.catalog,
            settings.node_id,
            capacity=settings.cluster.capacity or 1_000_000,
            ttl_s=settings.cluster.lease_ttl_s,
            api_url=settings.cluster.api_url or f"http://{settings.api.host}:{settings.api.port}",
        )
        self._stopping = threading.Event()
        # tickets and webhooks from the event log: here, beside the recorders, not in the API
        self.notifier = Notifier(settings, self.catalog, settings.node_id)
        self.supervisor = Supervisor(
            settings, self.catalog, self.spool, on_recovered=lambda n: self.uploader.wake(), leases=self.leases
        )

    def stats(self) -> dict[str, float]:
        s = self.uploader.stats
        return {
            "spool_bytes": float(s.spool_bytes),
            "upload_lag_s": float(s.lag_s),
            "uploaded_total": float(s.uploaded),
            "upload_failures_total": float(s.failures),
            "spool_dropped_total": float(s.dropped),
            "worker_restarts_total": float(self.supervisor.restarts),
        }

    def build_app(self):  # type: ignore[no-untyped-def]
        """The app the API process serves, built here around this process's objects (tests and
        tools that want it in-process; `serve` runs it in a process of its own)."""
        from vigil.api_process import build_app

        return build_app(self.settings, self.catalog, self.store, self.spool, self.stats)

    def _retention_loop(self) -> None:
        r = self.settings.retention
        while not self._stopping.wait(r.interval_s):
            try:
                apply_retention(self.catalog, self.store, default_days=r.days, max_bytes=r.max_bytes, batch=r.batch)
                self.catalog.prune_events(int((time.time() - r.event_days * 86_400) * 1_000_000))
            except Exception:  # a failed pass is retried at the next interval
                log.exception("retention pass failed")

    def start_recording(self) -> None:
        seed_cameras(self.settings, self.catalog)
        recovered = self.spool.recover()
        if recovered:
            log.info("recovered %d segment(s) left open by a previous run", len(recovered))
        self.uploader.start()
        self.supervisor.start()
        self.notifier.start()
        threading.Thread(target=self._retention_loop, name="retention", daemon=True).start()

    def stop_recording(self, drain_s: float = DRAIN_S) -> None:
        self._stopping.set()
        t0 = time.monotonic()
        self.supervisor.stop(timeout_s=min(WORKER_DRAIN_S, drain_s))
        self.notifier.stop(timeout_s=1.0)
        left = max(1.0, drain_s - (time.monotonic() - t0))
        self.uploader.stop(drain_timeout_s=left)
        pending = len(self.spool.closed_segments())
        if pending:
            log.warning("%d segment(s) stay in the spool; they upload at the next start", pending)
        log.info("stopped")

    def serve(self) -> None:
        """Record, and serve the API from a process of its own (vigil/api_process.py), until
        SIGTERM/SIGINT; then stop the API and drain the recorders."""
        from vigil.api_process import ApiProcess

        received: list[int] = []
        stop = threading.Event()

        def _note(signum: int, _frame: object) -> None:
            received.append(signum)
            stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, _note)
        self.start_recording()
        api = ApiProcess(self.settings, self.stats).start()
        scheme = "https" if self.settings.api.tls_cert else "http"
        log.info("API and web page on %s://%s:%d", scheme, self.settings.api.host, self.settings.api.port)
        try:
            while not stop.wait(1.0):
                pass
        finally:
            log.info("shutting down (signal %s): draining recorders", received[0] if received else "none")
            api.stop(timeout_s=3.0)
            self.stop_recording()
