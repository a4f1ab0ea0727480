"""Workers that stop reporting: `unknown` written to the event log, and its end.

Why: `/api/status` shows a camera whose worker has not refreshed its status for `STALE_AFTER_S`
(core/states.py) as `unknown` when it is read, but nothing else saw it: no event, so no webhook and
no ticket for a recorder that hung or lost the catalog, and the availability history later showed
the silence as whatever state came before it. The notifier's leader (one node of a cluster at a
time) runs this watch every `STATUS_REFRESH_S`; its events go through the same log as the workers'
(webhooks, tickets, the page's event stream, the report).

- A camera (enabled) whose status went stale gets `<its state> → unknown`, dated at its last report,
  once: a second check finds its latest event already says so (that also holds across leaders).
- When its status is fresh again and the latest event by date is still that `unknown` (the worker
  has said nothing newer), `unknown → <its state now>`, dated at the first fresh report seen.
- For `grace_s` after a node becomes the leader it only looks: at a restart every camera's status
  from before is stale until its worker starts it again, and 4,470 `unknown` alarms then are noise.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa

from core.clock import SYSTEM_CLOCK, Clock
from core.states import STALE_AFTER_US, UNKNOWN, stale_reason
from storage.catalog import Catalog, Event
from storage.catalog.tables import cameras, events, feed_status

__all__ = ["SilenceWatch"]

log = logging.getLogger("vigil.notify")

BACK_REASON = "its worker reports again"
_LOOK_BACK_US = 30 * 86_400 * 1_000_000  # a return missed while no node led: `unknown` events this recent


def _latest_state(c: sa.Connection, camera_id: str) -> Any:
    """The camera's latest `state` event by date (the one its state at the present follows)."""
    return c.execute(
        sa.select(events.c.to_state, events.c.at_us)
        .where(events.c.camera_id == camera_id, events.c.kind == "state")
        .order_by(events.c.at_us.desc(), events.c.id.desc())
        .limit(1)
    ).first()


class SilenceWatch:
    """Not thread-safe: the notifier's log reader calls `check` while it holds the cursor's lease."""

    def __init__(self, catalog: Catalog, *, clock: Clock = SYSTEM_CLOCK, grace_s: float = 15.0) -> None:
        self.catalog = catalog
        self.clock = clock
        self.grace_us = int(grace_s * 1_000_000)
        self._marked: dict[str, int] = {}  # camera id → at_us of the `unknown` it is in
        self._since_us: int | None = None  # when this node began watching (None: not leading)

    def stop_leading(self) -> None:
        self._since_us = None
        self._marked.clear()

    def _now_us(self) -> int:
        return int(self.clock.now() * 1_000_000)

    def _begin(self, now_us: int) -> None:
        """On becoming the leader: the cameras whose latest event is an `unknown` still to end."""
        self._since_us = now_us
        self._marked.clear()
        with self.catalog.engine.connect() as c:
            ids = c.execute(
                sa.select(events.c.camera_id)
                .where(events.c.kind == "state", events.c.to_state == UNKNOWN, events.c.at_us >= now_us - _LOOK_BACK_US)
                .distinct()
            ).scalars().all()
            for cid in ids:
                last = _latest_state(c, cid)
                if last is not None and last.to_state == UNKNOWN:
                    self._marked[cid] = int(last.at_us)

    def check(self) -> list[Event]:
        """One look; returns the events it wrote."""
        now = self._now_us()
        if self._since_us is None:
            self._begin(now)
        assert self._since_us is not None
        watching = now - self._since_us >= self.grace_us
        cutoff = now - STALE_AFTER_US
        live = sa.select(feed_status.c.camera_id, feed_status.c.state, feed_status.c.updated_us).join(
            cameras, cameras.c.id == feed_status.c.camera_id
        ).where(cameras.c.enabled)
        out: list[Event] = []
        with self.catalog.engine.connect() as c:
            stale = {r.camera_id: r for r in c.execute(live.where(feed_status.c.updated_us < cutoff))}
            back = {}
            if self._marked:
                ids = [k for k in self._marked if k not in stale]
                for k in range(0, len(ids), 500):
                    back.update({r.camera_id: r for r in c.execute(live.where(feed_status.c.camera_id.in_(ids[k : k + 500])))})
            if watching:
                for cid, r in stale.items():
                    if cid in self._marked:
                        continue
                    last = _latest_state(c, cid)
                    if last is not None and last.to_state == UNKNOWN and last.at_us >= r.updated_us:
                        self._marked[cid] = int(last.at_us)  # written before (another leader)
                        continue
                    out.append(
                        Event(cid, int(r.updated_us), "state", r.state, UNKNOWN, stale_reason(int(r.updated_us)),
                              {"last_report_us": int(r.updated_us)})
                    )
            for cid in [k for k in self._marked if k not in stale]:
                at = self._marked.pop(cid)
                r = back.get(cid)
                if r is None:
                    continue  # disabled or removed since: nothing to end
                last = _latest_state(c, cid)
                if last is None or last.to_state != UNKNOWN:
                    continue  # the worker said something newer itself
                out.append(Event(cid, max(int(r.updated_us), at + 1), "state", UNKNOWN, r.state, BACK_REASON, {}))
        for ev in out:
            self.catalog.add_event(ev)
            if ev.to_state == UNKNOWN:
                self._marked[ev.camera_id] = ev.at_us
        # One line per look, not per camera: a recorder node that dies silences hundreds at once.
        went = [e.camera_id for e in out if e.to_state == UNKNOWN]
        came = [e.camera_id for e in out if e.to_state != UNKNOWN]
        if went:
            log.warning("%d camera(s) unknown, no report from their worker: %s", len(went), _names(went))
        if came:
            log.info("%d camera(s) reported again: %s", len(came), _names(came))
        return out


def _names(ids: list[str], most: int = 8) -> str:
    return ", ".join(ids[:most]) + (f" and {len(ids) - most} more" if len(ids) > most else "")
