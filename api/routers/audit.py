"""`GET /api/audit` (admin): who exported or viewed what, when, with which digest."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.dependencies import Principal, ServicesDep, require
from api.schemas import AuditEntryOut, AuditList
from api.timeparse import iso_utc
from storage.audit_log import list_audit

router = APIRouter(tags=["audit"])
Admin = Annotated[Principal, Depends(require("admin"))]


@router.get("/api/audit", response_model=AuditList)
def audit(
    _: Admin,
    svc: ServicesDep,
    since: Annotated[int, Query(ge=0, le=2**62, description="cursor: entries with a larger id")] = 0,
    camera: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=32, description="e.g. clip.export")] = None,
    key_id: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditList:
    rows = list_audit(svc.ctx.catalog, since=since, limit=limit, camera_id=camera, action=action, key_id=key_id)
    return AuditList(
        entries=[
            AuditEntryOut(
                id=r.id,
                at_us=r.at_us,
                at_utc=iso_utc(r.at_us),
                key_id=r.key_id,
                key_name=r.key_name,
                action=r.action,
                camera_id=r.camera_id,
                start_us=r.start_us,
                end_us=r.end_us,
                sha256=r.sha256,
                bytes=r.bytes,
                detail=r.detail,
                prev_sha256=r.prev_sha256,
                row_sha256=r.row_sha256,
            )
            for r in rows
        ],
        next_cursor=rows[-1].id if rows else since,
    )
