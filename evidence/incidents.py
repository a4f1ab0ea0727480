"""Incidents: the cameras that could have seen something, over one window, held from retention.

Why: a report names a place and a time, not camera ids. An incident resolves a selector — camera
ids, tags (`district: x`), and/or a distance from a point — to cameras once, when it is created,
and places an evidence hold on exactly [start, end) of each, so retention never deletes what the
investigation may need. The resolved list is stored: a camera moved or re-tagged later does not
change what the incident covered.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from storage.catalog import Camera, Catalog, Segment, incidents
from storage.retention import add_hold
from storage.timeline import Span, gaps, merge, total_us

__all__ = [
    "CameraCoverage",
    "Incident",
    "IncidentCamera",
    "IncidentError",
    "Near",
    "Selector",
    "coverage",
    "create_incident",
    "distance_m",
    "get_incident",
    "list_incidents",
    "resolve",
]

EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG)
MAX_CAMERAS = 500  # an incident is a place and a time, not the city: a hold and an audit row each


class IncidentError(Exception):
    """The incident cannot be made as asked; the message is for the person who asked."""


@dataclass(frozen=True, slots=True)
class Near:
    lat: float
    lon: float
    radius_m: float


@dataclass(frozen=True, slots=True)
class Selector:
    """Cameras chosen by any of: ids, tags (every given tag must match), distance from a point."""

    cameras: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    near: Near | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "cameras": list(self.cameras),
            "tags": dict(self.tags),
            "near": None if self.near is None else {"lat": self.near.lat, "lon": self.near.lon, "radius_m": self.near.radius_m},
        }

    @staticmethod
    def from_json(d: dict[str, Any]) -> Selector:
        n = d.get("near")
        return Selector(
            tuple(d.get("cameras") or ()),
            tuple(sorted((d.get("tags") or {}).items())),
            Near(float(n["lat"]), float(n["lon"]), float(n["radius_m"])) if n else None,
        )


@dataclass(frozen=True, slots=True)
class IncidentCamera:
    camera_id: str
    hold_id: int
    distance_m: float | None = None  # from `near`'s point, when the selector had one


@dataclass(frozen=True, slots=True)
class Incident:
    id: int
    name: str
    description: str
    start_us: int
    end_us: int
    selector: Selector
    cameras: tuple[IncidentCamera, ...]
    created_by: str | None
    key_id: str | None
    created_us: int


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine) in metres: ≤ 0.5 % from the ellipsoid, ample for a street."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def _location(cam: Camera) -> dict[str, Any] | None:
    loc = cam.options.location
    return loc.model_dump() if loc is not None else None


def resolve(cameras: Sequence[Camera], sel: Selector) -> list[tuple[Camera, float | None]]:
    """The cameras the selector names (union of its parts), by id, with their distance from the
    point when `near` is given (pure). Raises IncidentError for unknown ids or an empty result."""
    if not sel.cameras and not sel.tags and sel.near is None:
        raise IncidentError("choose cameras by at least one of: cameras (ids), tags, near")
    by_id = {c.id: c for c in cameras}
    unknown = [i for i in sel.cameras if i not in by_id]
    if unknown:
        raise IncidentError(f"unknown camera(s): {', '.join(sorted(unknown))}")
    chosen: dict[str, float | None] = {i: None for i in sel.cameras}
    if sel.tags:
        for c in cameras:
            if all((c.tags or {}).get(k) == v for k, v in sel.tags):
                chosen.setdefault(c.id, None)
    if sel.near is not None:
        for c in cameras:
            loc = _location(c)
            if loc is None:
                continue
            d = distance_m(sel.near.lat, sel.near.lon, float(loc["lat"]), float(loc["lon"]))
            if d <= sel.near.radius_m:
                chosen[c.id] = d
    if sel.near is not None:  # report the distance of every camera that has a location
        for cid in chosen:
            loc = _location(by_id[cid])
            if loc is not None:
                chosen[cid] = distance_m(sel.near.lat, sel.near.lon, float(loc["lat"]), float(loc["lon"]))
    if not chosen:
        raise IncidentError("no camera matches the selection")
    if len(chosen) > MAX_CAMERAS:
        raise IncidentError(f"{len(chosen)} cameras match; at most {MAX_CAMERAS} per incident: narrow the selection")
    return [(by_id[i], chosen[i]) for i in sorted(chosen)]


def _from_row(r: Any) -> Incident:
    return Incident(
        id=int(r.id),
        name=r.name,
        description=r.description,
        start_us=int(r.start_us),
        end_us=int(r.end_us),
        selector=Selector.from_json(r.selector or {}),
        cameras=tuple(IncidentCamera(c["camera_id"], int(c["hold_id"]), c.get("distance_m")) for c in r.cameras or []),
        created_by=r.created_by,
        key_id=r.key_id,
        created_us=int(r.created_us),
    )


def create_incident(
    catalog: Catalog,
    *,
    name: str,
    description: str,
    start_us: int,
    end_us: int,
    selector: Selector,
    created_by: str | None,
    key_id: str | None,
    now_us: int,
) -> Incident:
    """Resolve the cameras, hold [start, end) on each, store the incident. Raises IncidentError."""
    if start_us >= end_us:
        raise IncidentError("start must be before end (ranges are half-open: [start, end))")
    chosen = resolve(catalog.list_cameras(), selector)
    with catalog.engine.begin() as c:
        iid = int(c.execute(sa.insert(incidents).values(
            name=name, description=description, start_us=start_us, end_us=end_us, selector=selector.as_json(),
            cameras=[], created_by=created_by, key_id=key_id, created_us=now_us,
        )).inserted_primary_key[0])
    members = []
    for cam, dist in chosen:
        h = add_hold(catalog, cam.id, start_us, end_us, f"incident {iid}: {name}"[:500], created_by, now_us)
        members.append(IncidentCamera(cam.id, h.id, None if dist is None else round(dist, 1)))
    with catalog.engine.begin() as c:
        c.execute(sa.update(incidents).where(incidents.c.id == iid).values(
            cameras=[{"camera_id": m.camera_id, "hold_id": m.hold_id, "distance_m": m.distance_m} for m in members]))
    got = get_incident(catalog, iid)
    assert got is not None
    return got


def get_incident(catalog: Catalog, incident_id: int) -> Incident | None:
    with catalog.engine.connect() as c:
        r = c.execute(sa.select(incidents).where(incidents.c.id == incident_id)).first()
    return _from_row(r) if r is not None else None


def list_incidents(catalog: Catalog, *, limit: int = 100, before: int | None = None) -> list[Incident]:
    """Newest first."""
    q = sa.select(incidents).order_by(incidents.c.id.desc()).limit(limit)
    if before is not None:
        q = q.where(incidents.c.id < before)
    with catalog.engine.connect() as c:
        return [_from_row(r) for r in c.execute(q)]


@dataclass(slots=True)
class CameraCoverage:
    """What one camera recorded inside the incident's window."""

    camera: Camera | None  # None: removed since the incident was made
    member: IncidentCamera
    segments: list[Segment] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    gaps: list[Span] = field(default_factory=list)

    @property
    def recorded_us(self) -> int:
        return total_us(self.spans)

    @property
    def bytes(self) -> int:
        return sum(s.bytes for s in self.segments)


def coverage(catalog: Catalog, incident: Incident) -> list[CameraCoverage]:
    out = []
    for m in incident.cameras:
        segs = catalog.segments_between(m.camera_id, incident.start_us, incident.end_us, stored_only=True)
        spans = merge(c for s in segs if (c := Span(s.start_us, s.end_us).clip(incident.start_us, incident.end_us)))
        out.append(CameraCoverage(
            camera=catalog.get_camera(m.camera_id), member=m, segments=segs, spans=spans,
            gaps=gaps(spans, incident.start_us, incident.end_us),
        ))
    return out
