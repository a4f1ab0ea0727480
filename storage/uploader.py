"""The uploader: moves closed segments from the spool to the object store, then marks them stored.

Order per segment: catalog row (`spooled`) → object put → row `stored` → spool files removed. A crash
anywhere in between repeats the step idempotently (same key, same row). When the store is down the
spool grows, bounded by `max_bytes`: past it the oldest closed segment is dropped, with a
`spool_drop` event — the only loss vigil permits.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from storage.catalog import Catalog, Event, Segment
from storage.object_store import ObjectStore, ObjectStoreError
from storage.spool import Spool, SpooledSegment
from core.backoff import Backoff
from core.clock import SYSTEM_CLOCK, Clock

__all__ = ["Uploader", "UploadStats"]

log = logging.getLogger("vigil.uploader")

# The spool's usage is a stat of every file in it. While the store takes uploads and the spool is
# under half its budget, measuring it this often is enough (and keeps /metrics' figure fresh).
USAGE_SCAN_S = 5.0


@dataclass(slots=True)
class UploadStats:
    uploaded: int = 0
    uploaded_bytes: int = 0
    failures: int = 0
    dropped: int = 0
    pending: int = 0
    spool_bytes: int = 0
    lag_s: float = 0.0  # age of the oldest closed segment still waiting
    store_ok: bool = True
    last_error: str = ""


class Uploader:
    def __init__(
        self,
        spool: Spool,
        store: ObjectStore,
        catalog: Catalog,
        *,
        max_spool_bytes: int,
        clock: Clock = SYSTEM_CLOCK,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 10.0,
        poll_s: float = 1.0,
        concurrency: int = 4,
    ) -> None:
        self.spool = spool
        self.store = store
        self.catalog = catalog
        self.max_spool_bytes = max_spool_bytes
        self.clock = clock
        self.backoff = Backoff(backoff_initial_s, backoff_max_s)  # after a pass the store failed
        self.poll_s = poll_s
        self.concurrency = max(1, concurrency)
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="upload")
        self.stats = UploadStats()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._ids: dict[str, int] = {}  # object key → catalog id, for segments registered but not stored
        self._usage_at = float("-inf")  # monotonic time of the last usage scan

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="uploader", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, drain_timeout_s: float = 0.0) -> None:
        """Stop after trying to drain for up to `drain_timeout_s` (what remains stays spooled)."""
        if drain_timeout_s > 0:
            deadline = self.clock.monotonic() + drain_timeout_s
            while self.clock.monotonic() < deadline and self.spool.closed_segments() and self.stats.store_ok:
                self.wake()
                self.clock.sleep(0.1)
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=30)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                ok = self.pass_once()
            except Exception:  # the uploader must outlive any single bad segment
                log.exception("uploader: unexpected error")
                ok = False
            if ok:
                self.backoff.reset()
                self._wake.wait(self.poll_s)
            else:
                self._wake.wait(self.backoff.next_delay())
            self._wake.clear()

    def pass_once(self) -> bool:
        """Upload everything closed; False if the store failed (caller backs off)."""
        self.enforce_budget()
        pending = self.spool.closed_segments()
        self.stats.pending = len(pending)
        now_us = int(self.clock.now() * 1e6)
        self.stats.lag_s = max(0.0, (now_us - pending[0].segment.end_us) / 1e6) if pending else 0.0
        # Register every closed segment first, in one transaction: the catalog knows what is
        # recorded (as `spooled`) even while the store is down.
        segs = [sp.segment for sp in pending]
        new = [seg for seg in segs if seg.object_key not in self._ids]
        for seg, sid in zip(new, self.catalog.add_segments(new) if new else []):
            self._ids[seg.object_key] = sid
        # A few PUTs in flight: one at a time, a busy store's latency (not our CPU) capped the
        # uploads per second below what 100 cameras with 10 s segments close. In windows, so a
        # dead store costs one window of timeouts, not one per waiting segment.
        k = self.concurrency
        for i in range(0, len(pending), k):
            if self._stop.is_set():
                return True
            window = list(zip(pending[i : i + k], segs[i : i + k]))
            results = list(self._pool.map(self._try_put, window)) if len(window) > 1 else [self._try_put(window[0])]
            # what the store holds is marked stored (one transaction) and leaves the spool, even
            # when another PUT of the window failed
            self._stored([w for w, e in zip(window, results) if e is None])
            failed = [e for e in results if e is not None]
            if failed:
                e = failed[0]
                self.stats.failures += len(failed)
                self.stats.store_ok = False
                if self.stats.last_error != str(e):
                    log.warning("uploader: store unavailable, %d segment(s) wait in the spool: %s", len(pending), e)
                self.stats.last_error = str(e)
                return False
        if not self.stats.store_ok:
            log.info("uploader: store is back; spool drained")
        self.stats.store_ok = True
        self.stats.last_error = ""
        self.stats.pending = 0
        self.stats.lag_s = 0.0
        return True

    def _try_put(self, item: tuple[SpooledSegment, Segment]) -> ObjectStoreError | None:
        sp, seg = item
        try:
            size = sp.data_path.stat().st_size
            if size != seg.bytes:  # the journal's index must describe the file that goes to the store
                raise ObjectStoreError(f"spool: {seg.object_key} holds {size} bytes, its journal {seg.bytes}")
            # A PUT answered 200 after a Content-Length body is the store's word that it holds
            # these bytes; a HEAD to re-check cost as much CPU as the PUT itself.
            self.store.put_file(seg.object_key, sp.data_path)
        except ObjectStoreError as e:
            return e
        return None

    def _stored(self, done: list[tuple[SpooledSegment, Segment]]) -> None:
        """Segments the store now holds: rows `stored`, then spool files removed (a crash between
        the two uploads them again, to the same key)."""
        if not done:
            return
        self.catalog.mark_stored_many([self._ids[seg.object_key] for _sp, seg in done], int(self.clock.now() * 1e6))
        for sp, seg in done:
            self.spool.remove(sp)
            self._ids.pop(seg.object_key, None)
            self.stats.uploaded += 1
            self.stats.uploaded_bytes += seg.bytes
            self.stats.spool_bytes = max(0, self.stats.spool_bytes - seg.bytes)  # until the next scan

    def enforce_budget(self) -> None:
        now = self.clock.monotonic()
        if (
            self.stats.store_ok
            and self.stats.spool_bytes <= self.max_spool_bytes // 2
            and now - self._usage_at < USAGE_SCAN_S
        ):
            return  # far from the budget, and the store drains the spool: the last figure will do
        usage = self.spool.usage_bytes()
        self._usage_at = now
        self.stats.spool_bytes = usage
        if usage <= self.max_spool_bytes:
            return
        for sp in self.spool.closed_segments():
            if usage <= self.max_spool_bytes:
                break
            seg = sp.segment
            self.spool.remove(sp)
            self._ids.pop(seg.object_key, None)
            usage -= seg.bytes
            self.stats.dropped += 1
            existing = self.catalog.get_segment_by_key(seg.object_key)
            if existing is not None and existing.id is not None:
                self.catalog.delete_segments([existing.id])
            log.error(
                "uploader: spool over budget (%d > %d bytes): dropped %s (%.1f s of video)",
                usage + seg.bytes,
                self.max_spool_bytes,
                seg.object_key,
                seg.duration_us / 1e6,
            )
            self.catalog.add_event(
                Event(
                    camera_id=seg.camera_id,
                    at_us=int(self.clock.now() * 1e6),
                    kind="spool_drop",
                    reason="spool over its disk budget while the object store was unavailable",
                    figures={"start_us": seg.start_us, "end_us": seg.end_us, "bytes": seg.bytes},
                )
            )
        self.stats.spool_bytes = usage
