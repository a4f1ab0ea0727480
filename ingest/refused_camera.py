"""A camera the worker cannot record because of its own settings: kept, alone, in an error state.

A worker process runs many cameras; one camera's bad settings (a catalog row written past the
API's and the config's checks) must not stop the others, nor restart the process in a loop. Such a
camera gets this stand-in instead of a recorder: its feed status says `offline` with the reason,
refreshed like a monitor's, until its settings change.
"""

from __future__ import annotations

import logging
import threading

from ingest.health.writer import StatusWriter, Write, WriteQueue
from storage.catalog import Event, FeedStatus
from core.clock import Clock
from core.states import OFFLINE, STATUS_REFRESH_S

__all__ = ["REFUSED_STATE", "RefusedCamera"]

log = logging.getLogger("vigil.worker")

REFUSED_STATE = OFFLINE  # not recorded; the reason says it is the camera's settings, not its link


class RefusedCamera:
    """The feed status of one camera not recorded: a state-change event once, then refreshes."""

    def __init__(self, camera_id: str, reason: str, *, writer: StatusWriter, clock: Clock, node_id: str = "") -> None:
        self.camera_id = camera_id
        self.reason = reason
        self._writer = writer
        self._clock = clock
        self._node_id = node_id or None
        self._lock = threading.Lock()
        self._since_us = self._now_us()
        self._queue = WriteQueue()
        self._queue.add(self._status(), self._event())
        self._last_t = clock.monotonic()
        self._closed = False
        log.error("%s: not recorded: %s", camera_id, reason)
        writer.register(self)
        writer.request()

    def _now_us(self) -> int:
        return int(self._clock.now() * 1_000_000)

    def _status(self) -> FeedStatus:
        return FeedStatus(
            camera_id=self.camera_id,
            state=REFUSED_STATE,
            since_us=self._since_us,
            updated_us=self._now_us(),
            reason=self.reason,
            node_id=self._node_id,
        )

    def _event(self) -> Event:
        return Event(camera_id=self.camera_id, at_us=self._since_us, kind="state", to_state=REFUSED_STATE, reason=self.reason)

    # ---- what the worker's watchdog and the status writer call --------------------------------
    def tick(self) -> None:
        """Refresh the status every STATUS_REFRESH_S, so it never reads as stale."""
        now = self._clock.monotonic()
        with self._lock:
            if self._closed or now - self._last_t < STATUS_REFRESH_S:
                return
            self._last_t = now
            self._queue.add(self._status(), None)
        self._writer.request()

    def take_writes(self) -> list[Write]:
        with self._lock:
            return self._queue.take()

    def put_back(self, writes: list[Write]) -> None:
        with self._lock:
            self._queue.put_back(writes)

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._writer.flush(only=self)
        self._writer.unregister(self)
