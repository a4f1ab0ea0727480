"""StatusWriter: every camera's pending statuses and events of one worker process, one transaction per flush.

Each HealthMonitor keeps its own queue of (status, event) writes, in order. The writer takes every
registered monitor's queue and writes them all with `Catalog.put_statuses_with_events`: with 50
cameras refreshing their status every 2 s that is one commit per flush instead of 25 a second.
Flushes run on a small I/O pool, one at a time (so each camera's events stay in order), never on a
session thread: a slow or dead catalog delays status lines, never the recording. When a flush
fails, every monitor gets its writes back (events kept, a status superseded by a newer one dropped)
and the next flush retries them.

The worker's watchdog ticks every monitor inside `batch()`, so one pass over the cameras makes one
flush; a transition between passes asks for a flush at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from typing import Protocol

from storage.catalog import Catalog, Event, FeedStatus

__all__ = ["StatusSource", "StatusWriter", "Write", "WriteQueue"]

log = logging.getLogger("vigil.health")

Write = tuple[FeedStatus, Event | None]


class WriteQueue:
    """One camera's writes not yet in the catalog, in order. Not thread-safe: its owner's lock guards it.

    A status not yet written is replaced by a newer one; events are never dropped. After a failed
    flush the writes come back in front of what was queued since (`put_back`).
    """

    def __init__(self) -> None:
        self._items: list[Write] = []

    def __bool__(self) -> bool:
        return bool(self._items)

    def add(self, st: FeedStatus, ev: Event | None) -> None:
        if ev is None and self._items and self._items[-1][1] is None:
            self._items[-1] = (st, None)
        else:
            self._items.append((st, ev))

    def take(self) -> list[Write]:
        out, self._items = self._items, []
        return out

    def put_back(self, writes: list[Write]) -> None:
        """Events are kept; a status only if it was the last taken and nothing newer is queued."""
        keep = [w for i, w in enumerate(writes) if w[1] is not None or (i == len(writes) - 1 and not self._items)]
        self._items = keep + self._items


class StatusSource(Protocol):
    """What the writer needs from a monitor."""

    camera_id: str

    def take_writes(self) -> list[Write]: ...
    def put_back(self, writes: list[Write]) -> None: ...


class StatusWriter:
    """Batches feed-status writes of many monitors; thread-safe."""

    def __init__(self, catalog: Catalog, executor: Executor) -> None:
        self.catalog = catalog
        self._io = executor
        self._lock = threading.Lock()
        self._io_lock = threading.Lock()  # one flush at a time: events in order
        self._sources: dict[int, StatusSource] = {}
        self._scheduled = False
        self._deferred = 0
        self._wanted = False
        self._errors = 0
        self.flushes = 0  # transactions attempted (tests and benches read it)

    def register(self, src: StatusSource) -> None:
        with self._lock:
            self._sources[id(src)] = src

    def unregister(self, src: StatusSource) -> None:
        with self._lock:
            self._sources.pop(id(src), None)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Requests made inside are held back and become one flush at the end."""
        with self._lock:
            self._deferred += 1
        try:
            yield
        finally:
            with self._lock:
                self._deferred -= 1
                go = self._deferred == 0 and self._wanted
            if go:
                self.request()

    def request(self) -> None:
        """Ask for a flush on the I/O pool soon (coalesced with one already waiting)."""
        with self._lock:
            if self._deferred:
                self._wanted = True
                return
            self._wanted = False
            if self._scheduled:
                return
            self._scheduled = True
        try:
            self._io.submit(self._task)
        except RuntimeError:  # the pool is shutting down (interpreter exit): write here
            self._task()

    def _task(self) -> None:
        with self._lock:
            self._scheduled = False
        self.flush()

    def flush(self, only: StatusSource | None = None) -> bool:
        """Write what is pending (every source's, or `only`'s) in one transaction; False if it failed."""
        with self._io_lock:
            with self._lock:
                sources = [only] if only is not None else list(self._sources.values())
            taken: list[tuple[StatusSource, list[Write]]] = [(s, w) for s in sources if (w := s.take_writes())]
            if not taken:
                return True
            self.flushes += 1
            try:
                self.catalog.put_statuses_with_events([w for _, ws in taken for w in ws])
            except Exception as e:  # noqa: BLE001 - the catalog may be down; recording goes on
                for s, ws in taken:
                    s.put_back(ws)
                self._errors += 1
                if self._errors <= 3 or self._errors % 100 == 0:
                    log.warning("cannot write %d feed status(es) (%s); will retry", len(taken), e)
                return False
            return True

