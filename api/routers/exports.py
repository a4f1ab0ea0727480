"""Evidence exports: their state, and the bundle (Range requests; a signed URL for downloads too
big for a browser's memory). Every download is audited."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from api.dependencies import Principal, ServicesDep, require
from api.links import signed_url
from api.schemas import SignedUrl
from evidence.exports import ExportJob, get_export
from storage.audit_log import add_audit

router = APIRouter(prefix="/api/exports", tags=["exports"])
Investigator = Annotated[Principal, Depends(require("investigator"))]
InvestigatorOrSigned = Annotated[Principal, Depends(require("investigator", signed=True))]
_ID = re.compile(r"^[0-9a-f]{24}$")


class ExportOut(BaseModel):
    id: str
    incident_id: int
    state: str = Field(description="queued | running | done | failed")
    progress: float = Field(description="0–1")
    bytes: int | None = Field(description="the bundle's size, when done")
    sha256: str | None = Field(description="the bundle's SHA-256 (hex), when done")
    manifest_sha256: str | None
    error: str
    created_by: str | None
    created_us: int
    finished_us: int | None
    bundle: str = Field(description="download path (Bearer key), when done")


def export_out(j: ExportJob) -> ExportOut:
    return ExportOut(id=j.id, incident_id=j.incident_id, state=j.state, progress=j.progress, bytes=j.bytes,
                     sha256=j.sha256, manifest_sha256=j.manifest_sha256, error=j.error, created_by=j.created_by,
                     created_us=j.created_us, finished_us=j.finished_us, bundle=f"/api/exports/{j.id}/bundle.zip")


def _job(svc: ServicesDep, export_id: str) -> ExportJob:
    job = get_export(svc.ctx.catalog, export_id) if _ID.match(export_id) else None
    if job is None:
        raise HTTPException(404, f"no export {export_id!r}")
    return job


def _file(svc: ServicesDep, export_id: str) -> tuple[ExportJob, Path]:
    job = _job(svc, export_id)
    if job.state != "done" or not job.path:
        raise HTTPException(409, f"export {export_id} is {job.state}, not done")
    path = Path(job.path)
    if not path.is_file():
        raise HTTPException(404, f"the bundle of export {export_id} is not on this node ({job.node_id or 'unnamed'})")
    return job, path


@router.get("/{export_id}", response_model=ExportOut)
def get_one(_: Investigator, svc: ServicesDep, export_id: str) -> ExportOut:
    return export_out(_job(svc, export_id))


@router.get(
    "/{export_id}/bundle.zip",
    response_class=FileResponse,
    responses={200: {"content": {"application/zip": {}}}, 206: {"description": "the requested byte range"},
               409: {"description": "not done yet"}, 416: {"description": "unsatisfiable range"}},
)
def bundle(who: InvestigatorOrSigned, svc: ServicesDep, export_id: str, request: Request) -> FileResponse:
    job, path = _file(svc, export_id)
    add_audit(svc.ctx.catalog, "export.download", key=who.key, sha256=job.manifest_sha256, bytes=job.bytes,
              detail={"export_id": job.id, "incident_id": job.incident_id, "range": request.headers.get("range", "")[:100],
                      "via": who.via})
    return FileResponse(path, media_type="application/zip", filename=f"incident-{job.incident_id}-{job.id}.zip",
                        headers={"Cache-Control": "no-store"})


@router.get("/{export_id}/bundle-url", response_model=SignedUrl)
def bundle_url(
    who: Investigator,
    svc: ServicesDep,
    export_id: str,
    request: Request,
    ttl_s: Annotated[float, Query(gt=0, le=86_400, description="how long the URL works")] = 3600.0,
) -> SignedUrl:
    job, _ = _file(svc, export_id)
    url, exp_us = signed_url(svc, request, who, f"/api/exports/{job.id}/bundle.zip", {}, ttl_s)
    return SignedUrl(url=url, expires_us=exp_us)


@router.get("/{export_id}/manifest.json", response_class=Response,
            responses={200: {"content": {"application/json": {}}, "description": "manifest.json's exact bytes"},
                       409: {"description": "not done yet"}})
def manifest(_: Investigator, svc: ServicesDep, export_id: str) -> Response:
    """The bundle's manifest, byte for byte as signed (the page shows its digests and re-hashes it)."""
    _, path = _file(svc, export_id)
    with zipfile.ZipFile(path) as z:
        raw = z.read("manifest.json")
    return Response(raw, media_type="application/json", headers={"Cache-Control": "no-store"})
