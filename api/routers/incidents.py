"""Incidents: cameras chosen by id, tag or distance over one window, held, and exported.

`POST /api/incidents` resolves the cameras and places an evidence hold on [start, end) of each;
`GET /api/incidents/{id}` tells what each recorded there (and its gaps); `POST …/exports` starts a
signed bundle in the background (202)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from pydantic import BaseModel, Field, field_validator

from api.dependencies import Principal, ServicesDep, check_range, now_us, optional_time, require
from api.evidence_services import evidence_of
from api.routers.exports import ExportOut, export_out
from api.schemas import GapOut
from api.timeparse import iso_utc
from core.ids import CAMERA_ID
from core.settings import CameraLocation
from core.validation import StrictModel
from evidence.exports import create_export, list_exports
from evidence.incidents import Incident, IncidentError, Near, Selector, coverage, create_incident, get_incident, list_incidents
from storage.audit_log import add_audit
from storage.timeline import Span

router = APIRouter(prefix="/api/incidents", tags=["incidents"])
Investigator = Annotated[Principal, Depends(require("investigator"))]


class NearIn(StrictModel):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    radius_m: float = Field(gt=0, le=100_000, description="metres from the point")


class IncidentIn(StrictModel):
    name: str = Field(min_length=1, max_length=200, pattern=r"\S")
    description: str = Field("", max_length=5000)
    start: str | float = Field(description="ISO 8601 with a zone, or epoch seconds")
    end: str | float = Field(description="ISO 8601 with a zone, or epoch seconds (exclusive)")
    cameras: list[str] = Field(default_factory=list, max_length=5000, description="camera ids")
    tags: dict[str, str] = Field(default_factory=dict, description="every given tag must match, e.g. {district: north}")
    near: NearIn | None = Field(None, description="cameras with a location within radius_m of the point")

    @field_validator("cameras")
    @classmethod
    def _ids(cls, v: list[str]) -> list[str]:
        bad = [i for i in v if not CAMERA_ID.match(i)]
        if bad:
            raise ValueError(f"not a camera id: {bad[0][:70]!r}")
        return v

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: dict[str, str]) -> dict[str, str]:
        if len(v) > 20 or any(len(k) > 64 or len(x) > 256 for k, x in v.items()):
            raise ValueError("at most 20 tags of ≤ 64-character names and ≤ 256-character values")
        return v


class IncidentCameraOut(BaseModel):
    camera_id: str
    name: str
    location: CameraLocation | None
    tags: dict[str, str]
    distance_m: float | None = Field(description="from the `near` point, when one was given")
    hold_id: int = Field(description="the evidence hold on [start, end) of this camera")
    recorded_s: float
    gap_s: float
    bytes: int
    segments: int
    gaps: list[GapOut]


class IncidentOut(BaseModel):
    id: int
    name: str
    description: str
    start_us: int
    end_us: int
    start_utc: str
    end_utc: str
    selector: dict[str, object]
    created_by: str | None
    created_us: int
    cameras: list[IncidentCameraOut]
    exports: list[ExportOut]


class IncidentSummary(BaseModel):
    id: int
    name: str
    start_us: int
    end_us: int
    start_utc: str
    end_utc: str
    cameras: int
    created_by: str | None
    created_us: int


class IncidentList(BaseModel):
    incidents: list[IncidentSummary]


def _gap(g: Span) -> GapOut:
    return GapOut(start_us=g.start_us, end_us=g.end_us, start_utc=iso_utc(g.start_us), end_utc=iso_utc(g.end_us),
                  duration_s=g.duration_us / 1e6)


def _out(svc: ServicesDep, inc: Incident) -> IncidentOut:
    cams = []
    for c in coverage(svc.ctx.catalog, inc):
        cams.append(IncidentCameraOut(
            camera_id=c.member.camera_id,
            name=c.camera.name if c.camera else "",
            location=c.camera.options.location if c.camera else None,
            tags=dict(c.camera.tags or {}) if c.camera else {},
            distance_m=c.member.distance_m,
            hold_id=c.member.hold_id,
            recorded_s=c.recorded_us / 1e6,
            gap_s=sum(g.duration_us for g in c.gaps) / 1e6,
            bytes=c.bytes,
            segments=len(c.segments),
            gaps=[_gap(g) for g in c.gaps],
        ))
    return IncidentOut(
        id=inc.id, name=inc.name, description=inc.description, start_us=inc.start_us, end_us=inc.end_us,
        start_utc=iso_utc(inc.start_us), end_utc=iso_utc(inc.end_us), selector=inc.selector.as_json(),
        created_by=inc.created_by, created_us=inc.created_us, cameras=cams,
        exports=[export_out(j) for j in list_exports(svc.ctx.catalog, inc.id)],
    )


def _incident(svc: ServicesDep, incident_id: int) -> Incident:
    inc = get_incident(svc.ctx.catalog, incident_id) if 0 < incident_id < 2**62 else None
    if inc is None:
        raise HTTPException(404, f"no incident {incident_id}")
    return inc


@router.post("", response_model=IncidentOut, status_code=201)
def post_incident(who: Investigator, svc: ServicesDep, body: IncidentIn, response: Response) -> IncidentOut:
    start, end = optional_time("start", str(body.start)[:64]), optional_time("end", str(body.end)[:64])
    assert start is not None and end is not None
    span = check_range(start, end, svc.ctx.settings.evidence.max_incident_seconds, "incident window")
    sel = Selector(
        tuple(dict.fromkeys(body.cameras)), tuple(sorted(body.tags.items())),
        Near(body.near.lat, body.near.lon, body.near.radius_m) if body.near else None,
    )
    now = now_us(svc)
    try:
        inc = create_incident(svc.ctx.catalog, name=body.name.strip(), description=body.description,
                              start_us=span.start_us, end_us=span.end_us, selector=sel, created_by=who.name,
                              key_id=who.key.id if who.key else None, now_us=now)
    except IncidentError as e:
        raise HTTPException(422, str(e)) from None
    add_audit(svc.ctx.catalog, "incident.create", key=who.key, at_us=now, start_us=inc.start_us, end_us=inc.end_us,
              detail={"incident_id": inc.id, "name": inc.name, "selector": sel.as_json(),
                      "cameras": [m.camera_id for m in inc.cameras], "via": who.via})
    for m in inc.cameras:
        add_audit(svc.ctx.catalog, "hold.create", key=who.key, at_us=now, camera_id=m.camera_id,
                  start_us=inc.start_us, end_us=inc.end_us, detail={"hold_id": m.hold_id, "incident_id": inc.id})
    response.headers["Location"] = f"/api/incidents/{inc.id}"
    return _out(svc, inc)


@router.get("", response_model=IncidentList)
def get_incidents(
    _: Investigator,
    svc: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: Annotated[int | None, Query(ge=1, le=2**62, description="cursor: incidents with a smaller id")] = None,
) -> IncidentList:
    return IncidentList(incidents=[
        IncidentSummary(id=i.id, name=i.name, start_us=i.start_us, end_us=i.end_us, start_utc=iso_utc(i.start_us),
                        end_utc=iso_utc(i.end_us), cameras=len(i.cameras), created_by=i.created_by,
                        created_us=i.created_us)
        for i in list_incidents(svc.ctx.catalog, limit=limit, before=before)
    ])


@router.get("/{incident_id}", response_model=IncidentOut)
def get_one(_: Investigator, svc: ServicesDep, incident_id: int) -> IncidentOut:
    return _out(svc, _incident(svc, incident_id))


@router.post("/{incident_id}/exports", response_model=ExportOut, status_code=202)
def post_export(who: Investigator, svc: ServicesDep, incident_id: int, response: Response) -> ExportOut:
    inc = _incident(svc, incident_id)
    ev = evidence_of(svc)
    now = now_us(svc)
    job = create_export(svc.ctx.catalog, inc.id, created_by=who.name, key_id=who.key.id if who.key else None,
                        node_id=svc.ctx.settings.node_id, now_us=now)
    add_audit(svc.ctx.catalog, "export.create", key=who.key, at_us=now, start_us=inc.start_us, end_us=inc.end_us,
              detail={"export_id": job.id, "incident_id": inc.id, "via": who.via})
    ev.runner.submit(job, who.key)
    response.headers["Location"] = f"/api/exports/{job.id}"
    return export_out(job)
