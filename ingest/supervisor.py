"""The supervisor: starts worker processes, shares cameras among them, restarts a process that
dies (and recovers the segments it left open), picks up camera changes from the catalog."""

from __future__ import annotations

import logging
import multiprocessing as mp
import threading
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Callable

from ingest.worker_process import Lease, SetCameras, SetLeases, Stop, worker_process_main
from storage.catalog import Catalog
from storage.leases import LeaseKeeper
from storage.spool import Spool
from core.clock import SYSTEM_CLOCK, Clock
from core.drain import DRAIN_S
from core.settings import Settings

__all__ = ["Supervisor", "assign"]

log = logging.getLogger("vigil.supervisor")


def assign(camera_ids: list[str], current: dict[str, int], processes: int) -> dict[str, int]:
    """Sticky least-loaded placement: a camera stays where it is; new ones go where there is room.

    Rebalances only when a process holds more than its fair share + 1, so a change to one camera
    never reconnects the others.
    """
    keep = {c: p for c, p in current.items() if c in set(camera_ids) and 0 <= p < processes}
    load = [0] * processes
    for p in keep.values():
        load[p] += 1
    fair = -(-len(camera_ids) // processes) if camera_ids else 0
    for c in sorted(keep, reverse=True):
        p = keep[c]
        if load[p] > fair:
            load[p] -= 1
            del keep[c]
    for c in sorted(camera_ids):
        if c not in keep:
            p = min(range(processes), key=lambda i: (load[i], i))
            keep[c] = p
            load[p] += 1
    return keep


@dataclass(slots=True)
class _Proc:
    index: int
    process: BaseProcess
    conn: Connection
    cameras: list[str] = field(default_factory=list)
    sent: str = ""


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        spool: Spool,
        *,
        clock: Clock = SYSTEM_CLOCK,
        on_recovered: Callable[[int], None] | None = None,
        leases: LeaseKeeper | None = None,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.spool = spool
        self.clock = clock
        self.on_recovered = on_recovered
        self.leases = leases
        self.ttl_s = settings.cluster.lease_ttl_s
        self.margin_s = settings.cluster.clock_margin_s
        self._next_heartbeat = 0.0
        self._lease_deadlines: dict[str, Lease] = {}
        self.n = settings.workers.processes
        self.procs: list[_Proc | None] = [None] * self.n
        self.placement: dict[str, int] = {}
        self.restarts = 0
        self._ctx = mp.get_context("spawn")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._version: tuple[int, int] | None = None
        self._settings_json = settings.model_dump_json()

    # ---- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        for i in range(self.n):
            self._spawn(i)
        self.reconcile(force=True)
        self._thread = threading.Thread(target=self._loop, name="supervisor", daemon=True)
        self._thread.start()

    def _spawn(self, i: int) -> None:
        parent, child = self._ctx.Pipe()
        p = self._ctx.Process(
            target=worker_process_main, args=(i, self._settings_json, child), name=f"vigil-worker-{i}", daemon=False
        )
        p.start()
        child.close()
        self.procs[i] = _Proc(i, p, parent)
        log.info("supervisor: worker %d started (pid %d)", i, p.pid)

    def pids(self) -> list[int]:
        return [p.process.pid for p in self.procs if p is not None and p.process.pid is not None]

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.check_processes()
                self.reconcile()
            except Exception:
                log.exception("supervisor: check failed")

    def check_processes(self) -> None:
        died = False
        for i, p in enumerate(self.procs):
            if p is None or p.process.is_alive() or self._stop.is_set():
                continue
            log.error("supervisor: worker %d (pid %s) died with exit code %s; restarting", i, p.process.pid, p.process.exitcode)
            p.conn.close()
            self.restarts += 1
            died = True
            self._spawn(i)
        if died:
            n = len(self.spool.recover())  # its open segments' locks died with it
            if self.on_recovered:
                self.on_recovered(n)
            self.reconcile(force=True)

    def _heartbeat(self) -> bool:
        """Renew/claim leases; True if the set of held cameras changed."""
        if self.leases is None:
            return False
        started = self.clock.monotonic()
        before = set(self._lease_deadlines)
        held = self.leases.heartbeat()
        deadline = started + self.ttl_s - self.margin_s
        self._lease_deadlines = {cid: Lease(lease.epoch, deadline) for cid, lease in held.items()}
        self._next_heartbeat = started + self.ttl_s / 3
        msg = SetLeases(self._lease_deadlines)
        for p in self.procs:
            if p is not None:
                try:
                    p.conn.send(msg)
                except (OSError, BrokenPipeError):
                    pass
        return set(held) != before

    def reconcile(self, *, force: bool = False) -> None:
        """Send every process its cameras when the catalog or the leases changed (or after a restart)."""
        version = self.catalog.cameras_version()
        changed = version != self._version
        due = self.leases is not None and self.clock.monotonic() >= self._next_heartbeat
        if changed or due or force:
            if self._heartbeat():
                force = True
        if not force and not changed:
            return
        self._version = version
        enabled = self.catalog.list_cameras(enabled_only=True, unseal=True)  # the recorders log in
        cams = {c.id: c for c in enabled if self.leases is None or c.id in self._lease_deadlines}
        self.placement = assign(list(cams), self.placement, self.n)
        for i, p in enumerate(self.procs):
            if p is None:
                continue
            mine = sorted(c for c, pi in self.placement.items() if pi == i)
            payload = [cams[c] for c in mine]
            fingerprint = repr([asdict(c) for c in payload])  # repr(Camera) hides the URL's credentials
            if fingerprint == p.sent and not force:
                continue
            try:
                if force:
                    p.conn.send(SetLeases(self._lease_deadlines))
                p.conn.send(SetCameras(payload))
                p.sent = fingerprint
                p.cameras = mine
            except (OSError, BrokenPipeError):
                log.warning("supervisor: worker %d is not listening; it will be restarted", i)

    def stop(self, timeout_s: float = DRAIN_S) -> None:
        """Ask every worker to close its open segments and exit; kill what does not, then recover."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        for p in self.procs:
            if p is None:
                continue
            try:
                p.conn.send(Stop())
            except (OSError, BrokenPipeError):
                pass
        deadline = self.clock.monotonic() + timeout_s
        for p in self.procs:
            if p is None:
                continue
            p.process.join(max(0.1, deadline - self.clock.monotonic()))
            if p.process.is_alive():
                log.error("supervisor: worker %d did not stop in time; killing it", p.index)
                p.process.kill()
                p.process.join(2)
        self.spool.recover()
        if self.leases is not None:
            try:
                self.leases.release_all()
            except Exception as e:  # the catalog being down must not block shutdown; leases expire
                log.warning("supervisor: could not release leases: %s", e)
