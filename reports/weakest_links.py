"""The weakest links: cameras, districts or uplinks ordered by how badly their connection behaves.

The list a network team works down, from the connection figures each camera's health monitor keeps
(ingest/network.py; written with the feed status as `figures.network`). It is the network's
condition now — rates over the last hour and minute — not a history (the availability report,
reports/availability.py, is the history).

**Score** (higher is weaker; docs/design/network.md), one point for each of:

| figure | points |
|---|---|
| reconnects per hour | 1 per reconnect an hour |
| stalled seconds in the last hour | 1 per 36 s (1 % of the hour) |
| frames delivered below the nominal rate | 1 per % missing |
| bitrate below the camera's own baseline | 0.5 per % below |
| packet arrival jitter | 1 per 10 ms |
| RTP packets lost (UDP) | 1 per 10 packets, at most 100 |

A camera with no figures yet (never connected since its node started) scores as a whole hour
stalled: 100. A group (`by` a tag: district, uplink…) scores the mean of its cameras, and names its
weakest camera; its figures are means (reconnects and losses: sums).
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from statistics import mean
from typing import Any

from storage.catalog import Catalog

__all__ = ["LinkRow", "NO_FIGURES_SCORE", "link_score", "to_csv", "to_json", "weakest_links"]

NO_FIGURES_SCORE = 100.0
NONE_KEY = "(none)"


@dataclass(frozen=True, slots=True)
class LinkRow:
    """One camera, or one group of cameras sharing a tag value; None: not measured."""

    key: str  # camera id, or the tag value
    cameras: int
    score: float
    reconnects_per_hour: float | None
    stalled_s: float | None  # last hour
    delivery_ratio: float | None  # frames delivered ÷ nominal rate, last minute
    bitrate_kbps: float | None
    bitrate_ratio: float | None  # last minute ÷ the camera's own baseline
    jitter_ms: float | None
    rtp_lost: int | None  # UDP cameras only
    state: str | None = None  # camera rows: the feed state
    tags: dict[str, str] | None = None  # camera rows
    worst_camera: str | None = None  # group rows


def link_score(n: dict[str, Any] | None) -> float:
    """Points for one camera's `figures.network` (see the module's table)."""
    if not n:
        return NO_FIGURES_SCORE
    points = float(n.get("reconnects_per_hour") or 0.0)
    points += float(n.get("stalled_s") or 0.0) / 36.0
    if n.get("delivery_ratio") is not None:
        points += max(0.0, 1.0 - float(n["delivery_ratio"])) * 100.0
    if n.get("bitrate_ratio") is not None:
        points += max(0.0, 1.0 - float(n["bitrate_ratio"])) * 50.0
    if n.get("jitter_ms") is not None:
        points += float(n["jitter_ms"]) / 10.0
    if n.get("rtp_lost") is not None:
        points += min(100.0, float(n["rtp_lost"]) / 10.0)
    return round(points, 2)


def _camera_row(cid: str, state: str | None, tags: dict[str, str], n: dict[str, Any] | None) -> LinkRow:
    n = n or {}
    return LinkRow(
        key=cid,
        cameras=1,
        score=link_score(n or None),
        reconnects_per_hour=n.get("reconnects_per_hour"),
        stalled_s=n.get("stalled_s"),
        delivery_ratio=n.get("delivery_ratio"),
        bitrate_kbps=n.get("bitrate_kbps"),
        bitrate_ratio=n.get("bitrate_ratio"),
        jitter_ms=n.get("jitter_ms"),
        rtp_lost=n.get("rtp_lost"),
        state=state,
        tags=dict(tags),
    )


def _mean(xs: Sequence[float | None]) -> float | None:
    known = [x for x in xs if x is not None]
    return round(mean(known), 3) if known else None


def _sum(xs: Sequence[float | int | None]) -> Any:
    known = [x for x in xs if x is not None]
    return sum(known) if known else None


def _group(key: str, rows: list[LinkRow]) -> LinkRow:
    worst = max(rows, key=lambda r: (r.score, r.key))
    return LinkRow(
        key=key,
        cameras=len(rows),
        score=round(mean(r.score for r in rows), 2),
        reconnects_per_hour=_sum([r.reconnects_per_hour for r in rows]),
        stalled_s=_mean([r.stalled_s for r in rows]),
        delivery_ratio=_mean([r.delivery_ratio for r in rows]),
        bitrate_kbps=_sum([r.bitrate_kbps for r in rows]),
        bitrate_ratio=_mean([r.bitrate_ratio for r in rows]),
        jitter_ms=_mean([r.jitter_ms for r in rows]),
        rtp_lost=_sum([r.rtp_lost for r in rows]),
        worst_camera=worst.key,
    )


def weakest_links(catalog: Catalog, *, by: str | None = None, limit: int | None = None) -> list[LinkRow]:
    """Rows ordered weakest first (ties by key). `by`: a tag name (district, uplink…); cameras
    without it are grouped under "(none)". Disabled cameras are left out."""
    cams = {c.id: c for c in catalog.list_cameras(enabled_only=True)}
    status = {st.camera_id: st for st in catalog.all_status() if st.camera_id in cams}
    rows = []
    for cid, cam in cams.items():
        st = status.get(cid)
        net = st.figures.get("network") if st is not None and isinstance(st.figures, dict) else None
        rows.append(_camera_row(cid, st.state if st is not None else None, cam.tags or {}, net))
    if by is not None:
        groups: dict[str, list[LinkRow]] = defaultdict(list)
        for r in rows:
            groups[(r.tags or {}).get(by) or NONE_KEY].append(r)
        rows = [_group(k, g) for k, g in groups.items()]
    rows.sort(key=lambda r: (-r.score, r.key))
    return rows[:limit] if limit is not None else rows


def to_json(rows: Sequence[LinkRow]) -> str:
    return json.dumps([asdict(r) for r in rows], ensure_ascii=False)


def to_csv(rows: Sequence[LinkRow]) -> str:
    names = [f.name for f in fields(LinkRow)]
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(names)
    for r in rows:
        d = asdict(r)
        d["tags"] = ";".join(f"{k}={v}" for k, v in sorted((r.tags or {}).items())) if r.tags is not None else ""
        w.writerow(["" if d[n] is None else d[n] for n in names])
    return out.getvalue()
