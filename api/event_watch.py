"""One poller per process watches the catalog for new events; SSE streams wait on it.

Why: each SSE client polling the catalog itself would be N queries every 0.25 s; one shared poller
asks once for the newest event id and wakes every waiting stream, which then reads only its own
events past its cursor. The poller runs only while someone waits.
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.concurrency import run_in_threadpool

from storage.catalog import Catalog

__all__ = ["EventWatcher"]


class EventWatcher:
    def __init__(self, catalog: Catalog, poll_s: float = 0.25, idle_stop_s: float = 5.0) -> None:
        self.catalog = catalog
        self.poll_s = poll_s
        self.idle_stop_s = idle_stop_s
        self.latest = -1  # newest event id seen by the poller (-1: not polled yet)
        self._changed: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._waiters = 0

    def _ensure_running(self) -> None:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._changed = asyncio.Event()
            self._task = loop.create_task(self._run())

    async def _run(self) -> None:
        idle = 0.0
        while idle < self.idle_stop_s:
            try:
                latest = await run_in_threadpool(self.catalog.last_event_id)
            except Exception:  # noqa: BLE001 - a catalog hiccup: keep the streams open, try again
                latest = self.latest
            if latest != self.latest:
                self.latest = latest
                assert self._changed is not None
                self._changed.set()
                self._changed = asyncio.Event()
            idle = idle + self.poll_s if self._waiters == 0 else 0.0
            await asyncio.sleep(self.poll_s)

    async def wait_beyond(self, seen: int, timeout_s: float) -> int:
        """Wait until the newest event id is above `seen` (or the timeout); returns the newest id."""
        self._ensure_running()
        self._waiters += 1
        try:
            if self.latest < 0 or self.latest <= seen:
                assert self._changed is not None
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout_s)
        finally:
            self._waiters -= 1
        return self.latest

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await self._task
