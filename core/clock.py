"""Time as a dependency: logic takes a `Clock`, so tests can replay time instead of sleeping."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol

__all__ = ["Clock", "SystemClock", "SYSTEM_CLOCK", "iso_utc"]


class Clock(Protocol):
    def now(self) -> float:
        """Wall-clock time, seconds since the epoch (UTC)."""
        ...

    def monotonic(self) -> float:
        """A clock that never goes backwards, for durations and timeouts."""
        ...

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        """Wait; returns True early if `stop` was set."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        if stop is None:
            time.sleep(seconds)
            return False
        return stop.wait(seconds)


SYSTEM_CLOCK = SystemClock()


def iso_utc(us: int) -> str:
    """Microseconds since the epoch as ISO 8601 in UTC with a `Z` (how the API writes times)."""
    t = datetime.fromtimestamp(us // 1_000_000, tz=UTC).replace(microsecond=us % 1_000_000)
    return t.isoformat().replace("+00:00", "Z")
