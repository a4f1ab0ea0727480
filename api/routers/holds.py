"""Holds: an investigator keeps a range of a camera's recording out of retention's reach."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path
from pydantic import BaseModel, Field

from api.dependencies import CameraDep, Principal, ServicesDep, check_range, now_us, optional_time, require
from api.timeparse import iso_utc
from core.validation import StrictModel
from storage.audit_log import add_audit
from storage.retention import Hold, add_hold, list_holds, release_hold

router = APIRouter(prefix="/api/cameras/{camera_id}/holds", tags=["holds"])
Investigator = Annotated[Principal, Depends(require("investigator"))]


class HoldIn(StrictModel):
    start: str | float = Field(description="ISO 8601 or epoch seconds")
    end: str | float = Field(description="ISO 8601 or epoch seconds (exclusive)")
    reason: str = Field(min_length=1, max_length=500, description="case number or why")


class HoldOut(BaseModel):
    id: int
    camera_id: str
    start_us: int
    end_us: int
    start_utc: str
    end_utc: str
    reason: str
    created_by: str | None
    created_us: int
    released_us: int | None


def _out(h: Hold) -> HoldOut:
    return HoldOut(
        id=h.id,
        camera_id=h.camera_id,
        start_us=h.start_us,
        end_us=h.end_us,
        start_utc=iso_utc(h.start_us),
        end_utc=iso_utc(h.end_us),
        reason=h.reason,
        created_by=h.created_by,
        created_us=h.created_us,
        released_us=h.released_us,
    )


@router.post("", response_model=HoldOut, status_code=201)
def create_hold(who: Investigator, cam: CameraDep, svc: ServicesDep, body: HoldIn) -> HoldOut:
    start, end = optional_time("start", str(body.start)[:64]), optional_time("end", str(body.end)[:64])
    assert start is not None and end is not None
    span = check_range(start, end, None, "hold")
    h = add_hold(svc.ctx.catalog, cam.id, span.start_us, span.end_us, body.reason, who.name, now_us(svc))
    add_audit(
        svc.ctx.catalog, "hold.create", key=who.key, camera_id=cam.id, start_us=h.start_us, end_us=h.end_us,
        detail={"hold_id": h.id, "reason": h.reason},
    )
    return _out(h)


@router.get("", response_model=list[HoldOut])
def get_holds(_: Investigator, cam: CameraDep, svc: ServicesDep, released: bool = False) -> list[HoldOut]:
    return [_out(h) for h in list_holds(svc.ctx.catalog, cam.id, active_only=not released)]


@router.delete("/{hold_id}", status_code=204)
def delete_hold(
    who: Investigator, cam: CameraDep, svc: ServicesDep, hold_id: Annotated[int, Path(ge=1, le=2**62)]
) -> None:
    if not release_hold(svc.ctx.catalog, hold_id, now_us(svc), camera_id=cam.id):
        raise HTTPException(404, f"no active hold {hold_id} on camera {cam.id!r}")
    add_audit(svc.ctx.catalog, "hold.release", key=who.key, camera_id=cam.id, detail={"hold_id": hold_id})
