"""The status document of every feed, rebuilt in the background and served as ready-made bytes.

Why: with 4,470 cameras the document is 1.2 MB of JSON (39-88 kB gzipped) and monitoring systems
and command-center pages poll it every second, 50 at a time. A per-request build (a 4,470-row
query, ~1 MB of JSON) costs tens of ms, and even a once-a-second build on the request path stalls
every request queued behind it. So:
- a refresher thread (`start()`/`stop()`, run by the app's lifespan) rebuilds the document every
  `interval_s`; a poll only picks ready bytes (`Encoded`: JSON, its gzip, a weak ETag) and never
  touches the catalog or encodes anything;
- the build itself (api/status_builder.py: incremental, only changed cameras re-encoded) runs in a
  child process when the board is made with `child=True` and the catalog can be opened from
  another process (api/status_child.py): its ~30 ms of CPU per refresh at 1,000 status writes/s
  then holds this process's GIL for nothing but a socket read. The first document is built here
  (ready before the first poll, while the child starts); if the child fails, the board logs it and
  builds here again;
- camera changes made through the API (`invalidate()`) reload the metadata at once, so the next
  poll sees them;
- filtered variants (`state=`, `tag=`) are built on their first request, then rebuilt by the
  refresher while they keep being asked for (at most `_HOT_FILTERS`), so a dashboard's filter is
  also ready bytes from its second poll on.
Without a running refresher (a bare app in a test, a script), `current()` refreshes on demand, in
this process, at most every `interval_s`, as before.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from api.status_builder import (
    Encoded,
    FilterKey,
    StatusBuilder,
    StatusDocument,
    Variants,
    count_states,
    filter_key,
)
from api.status_child import BuilderGone, BuilderProcess, can_open_elsewhere
from storage.catalog import Catalog
from core.clock import Clock

__all__ = [
    "Encoded",
    "ServedDocument",
    "StatusBoard",
    "StatusDocument",
]

log = logging.getLogger(__name__)

# The child builds only for a document this big: below it a refresh costs ~1 ms here (at 100
# cameras), less than the child's ~35 MB of memory is worth (benchmark 1 counts memory per camera).
CHILD_MIN_CAMERAS = 1000
# After the child process failed: builds here, and a new child no sooner than this.
_CHILD_RETRY_S = 60.0
# Filters rebuilt by the refresher: those asked for during the last `_HOT_TTL_S`, at most this many.
_HOT_FILTERS = 32
_HOT_TTL_S = 60.0


class ServedDocument(Variants):
    """A document built by the child: its encoded variants only. `cameras` (for /metrics and
    tools) is parsed from the whole document's JSON on first use; a filter nobody asked for
    before is built by the child (`make`)."""

    __slots__ = ("_cameras", "_lock", "_make", "built_mono", "generated_us", "variants")

    def __init__(
        self, generated_us: int, built_mono: float, variants: dict[FilterKey, Encoded],
        make: Callable[[FilterKey], Encoded],
    ) -> None:
        self.generated_us = generated_us
        self.built_mono = built_mono
        self.variants = variants
        self._make = make
        self._cameras: list[dict[str, Any]] | None = None
        self._lock = threading.Lock()

    @property
    def cameras(self) -> list[dict[str, Any]]:
        if self._cameras is None:
            self._cameras = json.loads(self.variants[((), ())].plain)["cameras"]
        return self._cameras

    def counts(self, cams: Sequence[dict[str, Any]] | None = None) -> dict[str, int]:
        return count_states(self.cameras if cams is None else cams)

    def _new_variant(self, key: FilterKey) -> Encoded:
        return self._make(key)


Document = StatusDocument | ServedDocument


class StatusBoard:
    def __init__(
        self, catalog: Catalog, clock: Clock, interval_s: float = 1.0, full_every_s: float = 30.0,
        *, child: bool = False, child_min_cameras: int = CHILD_MIN_CAMERAS,
    ) -> None:
        self.catalog = catalog
        self.clock = clock
        self.interval_s = interval_s
        self.full_every_s = full_every_s
        self.child = child and can_open_elsewhere(catalog.url)  # build in a child process while running…
        self.child_min_cameras = child_min_cameras  # …once the document has this many cameras
        self._doc: Document | None = None
        self._build_lock = threading.Lock()
        self._builder: StatusBuilder | None = StatusBuilder(catalog)  # None while the child builds
        self._proc: BuilderProcess | None = None
        self._reload = False  # the child reloads cameras at its next build (`invalidate()`)
        self._child_after = float("-inf")  # monotonic time from which a (new) child may be started
        self._hot: dict[FilterKey, float] = {}  # filter → monotonic time it was last asked for
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._refreshed = threading.Condition()  # notified after each refresh (see `wait_for`)
        self.refreshes = 0  # refreshes done, their total and longest wall time: for benchmarks, debugging
        self.refresh_s_total = 0.0
        self.refresh_s_max = 0.0
        self.refresh_cpu_s_total = 0.0  # CPU time of those refreshes in this process (≈ its GIL time)
        self.reloads = 0  # full reloads (metadata and every status read again), here or in the child

    # ---- the refresher -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def builder_pid(self) -> int | None:
        """The child process's id while the child builds (benchmarks meter it with the server)."""
        proc = self._proc
        return proc.pid if proc is not None else None

    def start(self) -> None:
        """Build the first document here, start the child (if any), then refresh every
        `interval_s` in a thread."""
        if self._thread is not None:
            return
        self.refresh()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="status-board", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        t, self._thread = self._thread, None
        if t is not None:
            self._stop.set()
            self._wake.set()
            t.join(10)
        with self._build_lock:
            self._drop_child()

    def _run(self) -> None:
        failing = False
        while not self._stop.is_set():
            self._wake.wait(self.interval_s)  # a real-time tick; the document's times use the clock
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.refresh()
                failing = False
            except Exception:  # noqa: BLE001 - keep serving the last document, retry next tick
                if not failing:
                    log.exception("status board refresh failed; serving the previous document")
                failing = True

    # ---- what handlers and /metrics call -------------------------------------------------------

    def current(self) -> Document:
        """The latest document. With the refresher running this never touches the catalog."""
        doc = self._doc
        if self._thread is not None and doc is not None:
            return doc
        if doc is not None and self.clock.monotonic() - doc.built_mono < self.interval_s:
            return doc
        # On demand: one thread refreshes; the others keep answering from the previous document.
        if self._build_lock.acquire(blocking=doc is None):
            try:
                doc = self._doc
                if doc is None or self.clock.monotonic() - doc.built_mono >= self.interval_s:
                    self._refresh_locked()
            finally:
                self._build_lock.release()
        return self._doc or doc  # type: ignore[return-value]

    def variant(self, states: Sequence[str] = (), tags: Sequence[str] = ()) -> Encoded:
        """The ready bytes for a filter (the whole document without one); a filter's first
        request builds it (in the child while it builds, which may mean waiting for a refresh)."""
        doc, key = self._asked(states, tags)
        return doc.variant(*key)

    def ready(self, states: Sequence[str] = (), tags: Sequence[str] = ()) -> Encoded | None:
        """`variant()` when its bytes are already built, else None: nothing blocks (the event loop
        calls this and hands a None to a worker thread's `variant()`)."""
        doc, key = self._asked(states, tags)
        return doc.variants.get(key)

    def _asked(self, states: Sequence[str], tags: Sequence[str]) -> tuple[Document, FilterKey]:
        """The current document and the filter's key, the filter kept hot (rebuilt each refresh)."""
        doc = self.current()
        key = filter_key(states, tags)
        if key != ((), ()):
            self._hot[key] = self.clock.monotonic()
        return doc, key

    def invalidate(self) -> None:
        """Cameras changed through the API: reload everything now, so the next poll shows it."""
        with self._build_lock:
            if self._builder is not None:
                self._builder.forget_cameras()
            self._reload = True
        if self._thread is None:
            self._doc = None
        else:
            self.refresh()

    def refresh(self) -> Document:
        with self._build_lock:
            return self._refresh_locked()

    # ---- building -------------------------------------------------------------------------------

    def _hot_keys(self, mono: float) -> list[FilterKey]:
        hot = sorted(((t, k) for k, t in list(self._hot.items()) if mono - t < _HOT_TTL_S), reverse=True)
        self._hot = {k: t for t, k in hot[:_HOT_FILTERS]}
        return [k for _, k in hot[:_HOT_FILTERS]]

    def _refresh_locked(self) -> Document:
        t0, c0 = time.perf_counter(), time.thread_time()
        doc = self._build()
        dt = time.perf_counter() - t0
        self.refresh_cpu_s_total += time.thread_time() - c0
        self.refreshes += 1
        self.refresh_s_total += dt
        self.refresh_s_max = max(self.refresh_s_max, dt)
        with self._refreshed:
            self._refreshed.notify_all()
        return doc

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Wait until `predicate()` holds, checking it now and after each refresh (tests, tools:
        waiting on the refresher without polling); False after `timeout_s`."""
        with self._refreshed:
            return self._refreshed.wait_for(predicate, timeout_s)

    def _build(self) -> Document:
        mono = self.clock.monotonic()
        now_us = int(self.clock.now() * 1_000_000)
        hot = self._hot_keys(mono)
        if (
            self._proc is None and self.child and self._thread is not None
            and len(self._doc.cameras if self._doc is not None else ()) >= self.child_min_cameras
            and time.monotonic() >= self._child_after
        ):
            # The refresher's first tick (the first document was built here, ready for the first
            # poll), the first with enough cameras, or a minute after a failed child: from now on
            # the child builds.
            self._proc = BuilderProcess(self.catalog.url)
            self._builder = None
        if self._proc is not None:
            try:
                return self._build_in_child(now_us, mono, hot)
            except BuilderGone:
                log.exception("status builder process failed; building in the API process for %.0f s", _CHILD_RETRY_S)
                self._drop_child()
                self._child_after = time.monotonic() + _CHILD_RETRY_S
        if self._builder is None:
            self._builder = StatusBuilder(self.catalog)
        reloads = self._builder.reloads
        self._reload = False
        self._doc = self._builder.build(now_us, mono, hot, self.full_every_s)
        self.reloads += self._builder.reloads - reloads
        return self._doc

    def _build_in_child(self, now_us: int, mono: float, hot: list[FilterKey]) -> ServedDocument:
        assert self._proc is not None
        generated_us, built, reloaded = self._proc.build(now_us, mono, hot, self.full_every_s, self._reload)
        self._reload = False
        self.reloads += reloaded
        prev = self._doc
        variants: dict[FilterKey, Encoded] = {}
        for key, enc in built.items():
            old = prev.variants.get(key) if prev is not None else None
            # unchanged feeds keep their bytes (and generated_us), as a build here keeps them
            variants[key] = old if old is not None and old.listing_hash == enc.listing_hash else enc
        doc = ServedDocument(generated_us, mono, variants, self._variant_from_child)
        self._doc = doc
        return doc

    def _variant_from_child(self, key: FilterKey) -> Encoded:
        proc = self._proc
        if proc is not None:
            try:
                return proc.variant(key)
            except BuilderGone:
                log.exception("status builder process failed; building in the API process for %.0f s", _CHILD_RETRY_S)
                with self._build_lock:
                    if self._proc is proc:
                        self._drop_child()
                        self._child_after = time.monotonic() + _CHILD_RETRY_S
        return self.refresh().variant(*key)

    def _drop_child(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.close()
