"""Feed states: their names, which the health rules decide, and when a status is too old to trust.

Why one home: the health rules write states, the status document and /metrics show them, the
availability report adds up their time and the web page styles them; a name spelled in one place
and not another silently drops a camera out of a count.

- The health rules (ingest/health/rules.py) decide `VERDICTS`: `starting` (no verdict yet),
  `online`, the picture `FAULTS` (most specific first) and `offline`.
- Readers add two: `disabled` (recording switched off) and `unknown` — no status yet, or one its
  worker has not refreshed for `STALE_AFTER_S` (a worker stopped, hung or cut off from the catalog:
  its last word is not the camera's state now).
"""

from __future__ import annotations

from core.clock import iso_utc

__all__ = [
    "BLACK", "DISABLED", "FAULTS", "FEED_STATES", "FROZEN", "OFFLINE", "ONLINE", "STALE_AFTER_S", "STALE_AFTER_US",
    "STARTING", "STATUS_REFRESH_S", "TAMPERED", "UNKNOWN", "VERDICTS", "is_stale", "stale_reason",
]

STARTING = "starting"
ONLINE = "online"
FROZEN = "frozen"
BLACK = "black"
TAMPERED = "tampered"
OFFLINE = "offline"
UNKNOWN = "unknown"
DISABLED = "disabled"

FAULTS = (BLACK, TAMPERED, FROZEN)  # picture faults, most specific first
VERDICTS = (STARTING, ONLINE, FROZEN, BLACK, TAMPERED, OFFLINE)  # what the health rules decide
FEED_STATES = (*VERDICTS, UNKNOWN, DISABLED)  # what a reader may show, in the status document's order

# A worker rewrites every camera's status at least this often, fault or not (its watchdog ticks
# every 0.5 s; ingest/health/monitor.py), so a live worker's row is never older than this plus a flush.
STATUS_REFRESH_S = 2.0
# Three refreshes missed: the worker is not reporting (a flush retried once or twice is not that).
STALE_AFTER_S = 3 * STATUS_REFRESH_S
STALE_AFTER_US = int(STALE_AFTER_S * 1_000_000)


def is_stale(updated_us: int | None, now_us: int) -> bool:
    """True when a status written at `updated_us` has not been refreshed within `STALE_AFTER_S`."""
    return updated_us is not None and now_us - updated_us > STALE_AFTER_US


def stale_reason(updated_us: int) -> str:
    """Why a stale status shows as `unknown` (to the second: the exact time is in `updated_us`)."""
    return f"no report from its worker since {iso_utc(updated_us - updated_us % 1_000_000)}"
