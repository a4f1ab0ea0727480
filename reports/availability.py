"""Availability report: per camera or per tag, over any period, from the state-change events.

Why from events: every transition is an event dated when the fault began (ingest/health/rules.py),
so the history alone gives each camera's state at every instant. The current status only fills in
a camera that has no event yet (it is still `starting`, say). A report reads only its window's
events plus, per camera, the one or two events before it that fix its state at the window's start
(`Catalog.states_before`), so its cost is the window's, however long the history.

Definitions (all times half-open, [start_us, end_us), clipped to `now_us` when given):

- **state at an instant**: the `to_state` of the camera's latest `state` event at or before it; before
  a camera's first event nothing was watching it and that time is left out of its period.
- **unknown_s**: time after the camera's last status report when, at `now_us`, that report is stale
  (not refreshed within 3× the refresh interval: core/states.py): its worker stopped reporting, so
  its last state says nothing of the time since. That time is in the period but is not uptime.
- **period_s**: the window's time from the camera's first event on; **uptime_pct** = online_s / period_s.
- **outage**: a stretch that begins when the camera leaves `online` for a fault (frozen, black,
  tampered, offline) and ends when it is next `online`; moving between faults (frozen → offline) stays
  within one outage. `starting` (a restart) and `unknown` (no report) neither begin nor end one (they
  still are not uptime).
- **outages**: outages that *begin* inside the window.
- **mttr_s**: mean duration of those outages that also end inside the window (None if none did).
- **longest_outage_s**: the longest outage overlapping the window, clipped to it (one still open at
  the end counts up to the end; one open at the start counts from the start).
- grouped rows (`by="district"`) add up the seconds of their cameras; their MTTR is the mean over all
  their outages and their longest outage the longest of any camera. Cameras without that tag are
  grouped under "(none)".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from core.states import (
    BLACK,
    FROZEN,
    OFFLINE,
    ONLINE,
    STARTING,
    TAMPERED,
    UNKNOWN,
    VERDICTS,
    is_stale,
)
from reports.tabular import rows_to_csv, rows_to_json
from storage.catalog import Camera, Catalog, Event, FeedStatus

__all__ = ["Outage", "ReportRow", "Timeline", "availability", "camera_timeline", "to_csv", "to_json"]

_COUNTED = (*VERDICTS, UNKNOWN)  # the states whose seconds a row adds up


@dataclass(frozen=True, slots=True)
class Outage:
    start_us: int  # when the camera left online (may be before the window)
    end_us: int | None  # when it was online again (None: still out at the window's end)


@dataclass(slots=True)
class Timeline:
    """One camera's states inside the window: seconds per state and its outages."""

    camera_id: str
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(_COUNTED, 0.0))
    outages: list[Outage] = field(default_factory=list)


@dataclass(slots=True)
class ReportRow:
    key: str  # camera id, or the tag value for grouped rows
    cameras: int
    period_s: float
    uptime_pct: float | None
    online_s: float
    starting_s: float
    frozen_s: float
    black_s: float
    tampered_s: float
    offline_s: float
    unknown_s: float  # no report from the camera's worker (see the module doc)
    outages: int
    mttr_s: float | None
    longest_outage_s: float


def camera_timeline(
    camera_id: str,
    events: Sequence[Event],
    start_us: int,
    end_us: int,
    status: FeedStatus | None = None,
    now_us: int | None = None,
) -> Timeline:
    """Pure: a camera's `state` events (any order, any period) → its timeline inside [start_us, end_us).

    Events are taken in the order they were written (id), their times made non-decreasing, so a
    wall-clock step on the recording node cannot reorder transitions. With `now_us`, a `status`
    stale at that time makes the camera `unknown` from its last report on.
    """
    evs = sorted((e for e in events if e.kind == "state" and e.to_state), key=lambda e: (e.id or 0, e.at_us))
    points: list[tuple[int, str]] = []
    last = -(2**63)
    for e in evs:
        last = max(last, e.at_us)
        points.append((last, str(e.to_state)))
    if status is not None and (not points or (status.since_us >= points[-1][0] and status.state != points[-1][1])):
        points.append((max(status.since_us, points[-1][0] if points else status.since_us), status.state))
    if status is not None and now_us is not None and points and is_stale(status.updated_us, now_us):
        points.append((max(status.updated_us, points[-1][0]), UNKNOWN))
    tl = Timeline(camera_id)
    if end_us <= start_us:
        return tl
    ever_online = False
    out_since: int | None = None
    for i, (at, state) in enumerate(points):
        nxt = points[i + 1][0] if i + 1 < len(points) else end_us
        lo, hi = max(at, start_us), min(nxt, end_us)
        if hi > lo:
            tl.seconds[state] = tl.seconds.get(state, 0.0) + (hi - lo) / 1e6
        if state == ONLINE:
            if out_since is not None:
                tl.outages.append(Outage(out_since, at))
                out_since = None
            ever_online = True
        elif ever_online and out_since is None and state not in (STARTING, UNKNOWN):  # a restart, no report: not outages
            out_since = at
        if at >= end_us:
            break
    if out_since is not None:
        tl.outages.append(Outage(out_since, None))
    return tl


def _row(key: str, timelines: Sequence[Timeline], start_us: int, end_us: int) -> ReportRow:
    secs = dict.fromkeys(_COUNTED, 0.0)
    durations: list[float] = []
    begun = 0
    longest = 0.0
    for tl in timelines:
        for s, v in tl.seconds.items():
            secs[s] = secs.get(s, 0.0) + v
        for o in tl.outages:
            end = o.end_us if o.end_us is not None else end_us
            if end <= start_us or o.start_us >= end_us:
                continue
            longest = max(longest, (min(end, end_us) - max(o.start_us, start_us)) / 1e6)
            if o.start_us >= start_us:
                begun += 1
                if o.end_us is not None and o.end_us <= end_us:
                    durations.append((o.end_us - o.start_us) / 1e6)
    period = sum(secs.values())
    return ReportRow(
        key=key,
        cameras=len(timelines),
        period_s=round(period, 3),
        uptime_pct=round(100.0 * secs[ONLINE] / period, 3) if period > 0 else None,
        online_s=round(secs[ONLINE], 3),
        starting_s=round(secs[STARTING], 3),
        frozen_s=round(secs[FROZEN], 3),
        black_s=round(secs[BLACK], 3),
        tampered_s=round(secs[TAMPERED], 3),
        offline_s=round(secs[OFFLINE], 3),
        unknown_s=round(secs[UNKNOWN], 3),
        outages=begun,
        mttr_s=round(sum(durations) / len(durations), 3) if durations else None,
        longest_outage_s=round(longest, 3),
    )


def _state_events(catalog: Catalog, start_us: int, end_us: int, cameras: Iterable[str] | None) -> dict[str, list[Event]]:
    """What the window needs, by camera: the state events inside it plus each camera's state at its
    start (`Catalog.states_before`) — never the history before the window."""
    wanted = set(cameras) if cameras is not None else None
    by_cam: dict[str, list[Event]] = defaultdict(list)
    for cam, evs in catalog.states_before(start_us, sorted(wanted) if wanted is not None else None).items():
        by_cam[cam].extend(evs)
    for e in catalog.state_events_between(start_us, end_us):
        if wanted is None or e.camera_id in wanted:
            by_cam[e.camera_id].append(e)
    return by_cam


def _watched(cam: Camera | None) -> bool:
    return cam is None or cam.enabled


def availability(
    catalog: Catalog,
    start_us: int,
    end_us: int,
    *,
    by: str | None = None,
    now_us: int | None = None,
    cameras: Iterable[str] | None = None,
) -> list[ReportRow]:
    """Availability per camera (or per value of tag `by`) over [start_us, end_us); see module doc.

    `now_us` clips the window so time that has not happened yet is not counted, and judges whether
    each camera's current status is stale (`unknown_s`); `cameras` limits the report to those ids.
    """
    if now_us is not None:
        end_us = min(end_us, now_us)
    cameras = list(cameras) if cameras is not None else None
    events = _state_events(catalog, start_us, end_us, cameras)
    status = {s.camera_id: s for s in catalog.all_status()}
    known = {c.id: c for c in catalog.list_cameras()}
    ids = sorted(set(known) | set(events) | set(status))
    if cameras is not None:
        wanted = set(cameras)
        ids = [i for i in ids if i in wanted]
    timelines = {
        # a camera switched off has no worker to report on it: its last status is not stale
        i: camera_timeline(i, events.get(i, []), start_us, end_us, status.get(i), now_us if _watched(known.get(i)) else None)
        for i in ids
    }
    if by is None:
        return [_row(i, [timelines[i]], start_us, end_us) for i in ids]
    groups: dict[str, list[Timeline]] = defaultdict(list)
    for i in ids:
        cam = known.get(i)
        groups[(cam.tags.get(by) if cam else None) or "(none)"].append(timelines[i])
    return [_row(k, groups[k], start_us, end_us) for k in sorted(groups)]


def to_csv(rows: Sequence[ReportRow]) -> str:
    """One header line and one line per row; empty cells for unknown values."""
    return rows_to_csv(rows, ReportRow)


def to_json(rows: Sequence[ReportRow]) -> str:
    return rows_to_json(rows)
