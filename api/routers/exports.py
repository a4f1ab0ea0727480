"""Evidence exports: their state, and the bundle (Range requests; a signed URL for downloads too
big for a browser's memory). Every download is audited.

A done bundle is read from the object store, so any node of a cluster serves it; one the store
refused (or made before bundles went there) is read from its node's disk, and elsewhere the answer
is a 503 naming that node and why (evidence/exports.py uploads it later)."""

from __future__ import annotations

import io
import itertools
import re
import zipfile
from email.utils import formatdate
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from api.dependencies import Principal, ServicesDep, require
from api.links import signed_url
from api.ranges import framed, range_or_416
from api.schemas import SignedUrl
from evidence.exports import ExportJob, get_export
from storage.audit_log import add_audit
from storage.object_store import LocalStore, ObjectStore, ObjectStoreError

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
    node_id: str | None = Field(default=None, description="the node that made it")
    stored: bool = Field(default=False, description="in the object store: every node serves it")
    local_only: str | None = Field(
        default=None, description="done but on its node's disk only: why (that node retries the upload)")
    served_here: bool | None = Field(
        default=None, description="GET /api/exports/{id} only: the answering node can serve the bundle (in the "
                                  "store, or local only and on this node's disk)")


def export_out(j: ExportJob) -> ExportOut:
    return ExportOut(id=j.id, incident_id=j.incident_id, state=j.state, progress=j.progress, bytes=j.bytes,
                     sha256=j.sha256, manifest_sha256=j.manifest_sha256, error=j.error, created_by=j.created_by,
                     created_us=j.created_us, finished_us=j.finished_us, bundle=f"/api/exports/{j.id}/bundle.zip",
                     node_id=j.node_id, stored=j.object_key is not None,
                     local_only=(j.store_error or "made before bundles were kept in the object store")
                     if j.state == "done" and j.object_key is None else None)


def _job(svc: ServicesDep, export_id: str) -> ExportJob:
    job = get_export(svc.ctx.catalog, export_id) if _ID.match(export_id) else None
    if job is None:
        raise HTTPException(404, f"no export {export_id!r}")
    return job


class _Source:
    """Where this node reads a done bundle: the object store, or its own disk (a `LocalStore` on the
    file's folder, so both are read alike)."""

    def __init__(self, job: ExportJob, store: ObjectStore, key: str) -> None:
        self.job, self.store, self.key, self.size = job, store, key, int(job.bytes or 0)

    def chunks(self, first: int, length: int) -> itertools.chain[bytes]:
        """The bytes, the first chunk already read, so a store that is down is a 503, not a cut stream."""
        it = self.store.iter_range(self.key, first, length)
        try:
            head = next(it, b"")
        except ObjectStoreError as e:
            raise HTTPException(503, f"object store unavailable: {e}") from None
        except KeyError:
            raise HTTPException(404, f"the object store has no bundle for export {self.job.id}") from None
        return itertools.chain((head,), it)

    def member(self, name: str) -> bytes:
        """One file of the zip, read by ranges (the central directory, then the member), never the whole bundle."""
        try:
            with zipfile.ZipFile(io.BufferedReader(_Ranges(self), 64 << 10)) as z:
                return z.read(name)
        except ObjectStoreError as e:
            raise HTTPException(503, f"object store unavailable: {e}") from None
        except KeyError:  # the object, or the member, is missing
            raise HTTPException(404, f"no {name} in the bundle of export {self.job.id}") from None


class _Ranges(io.RawIOBase):
    """A seekable read-only file over a `_Source`, for `zipfile`."""

    def __init__(self, src: _Source) -> None:
        self.src, self.pos = src, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self.pos = max(0, offset + (0, self.pos, self.src.size)[whence])
        return self.pos

    def readinto(self, buf: memoryview) -> int:  # type: ignore[override]
        n = min(len(buf), self.src.size - self.pos)
        if n <= 0:
            return 0
        data = self.src.store.get_range(self.src.key, self.pos, n)
        buf[: len(data)] = data
        self.pos += len(data)
        return len(data)


def _local_file(svc: ServicesDep, job: ExportJob) -> Path | None:
    """The bundle on this node's disk, when this node made it and still has it."""
    path = Path(job.path) if job.path and job.node_id == svc.ctx.settings.node_id else None  # its disk only
    return path if path is not None and path.is_file() else None


def _source(svc: ServicesDep, export_id: str) -> _Source:
    job = _job(svc, export_id)
    if job.state != "done":
        raise HTTPException(409, f"export {export_id} is {job.state}, not done")
    if job.object_key:
        return _Source(job, svc.ctx.store, job.object_key)
    path = _local_file(svc, job)
    if path is not None:  # the store refused it, or it predates bundles there
        return _Source(job, LocalStore(path.parent), path.name)
    why = job.store_error or "it was made before bundles were kept in the object store"
    retry_s = svc.ctx.settings.evidence.upload_retry_s
    raise HTTPException(
        503, f"the bundle of export {export_id} is only on node {job.node_id or 'unnamed'!r}, not in the object "
             f"store: {why}; that node retries the upload every {retry_s:g} s while it runs",
        headers={"Retry-After": str(max(1, round(retry_s)))})


@router.get("/{export_id}", response_model=ExportOut)
def get_one(_: Investigator, svc: ServicesDep, export_id: str) -> ExportOut:
    """With `served_here`: the page offers a download only where it would not be a 503."""
    job = _job(svc, export_id)
    out = export_out(job)
    if job.state == "done":
        out.served_here = job.object_key is not None or _local_file(svc, job) is not None
    return out


@router.get(
    "/{export_id}/bundle.zip",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}}, 206: {"description": "the requested byte range"},
               409: {"description": "not done yet"}, 416: {"description": "unsatisfiable range"},
               503: {"description": "the object store is down, or the bundle is only on the node that made it"}},
)
def bundle(who: InvestigatorOrSigned, svc: ServicesDep, export_id: str, request: Request) -> Response:
    src = _source(svc, export_id)
    job = src.job
    add_audit(svc.ctx.catalog, "export.download", key=who.key, sha256=job.manifest_sha256, bytes=job.bytes,
              detail={"export_id": job.id, "incident_id": job.incident_id, "range": request.headers.get("range", "")[:100],
                      "via": who.via})
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "no-store", "ETag": f'"{job.sha256}"',
               "Content-Disposition": f'attachment; filename="incident-{job.incident_id}-{job.id}.zip"'}
    if job.finished_us:
        headers["Last-Modified"] = formatdate(job.finished_us / 1e6, usegmt=True)
    status, first, length = framed(range_or_416(request.headers.get("range"), src.size), src.size, headers)
    return StreamingResponse(src.chunks(first, length), status_code=status, headers=headers,
                             media_type="application/zip")


@router.get("/{export_id}/bundle-url", response_model=SignedUrl)
def bundle_url(
    who: Investigator,
    svc: ServicesDep,
    export_id: str,
    request: Request,
    ttl_s: Annotated[float, Query(gt=0, le=86_400, description="how long the URL works")] = 3600.0,
) -> SignedUrl:
    job = _source(svc, export_id).job
    url, exp_us = signed_url(svc, request, who, f"/api/exports/{job.id}/bundle.zip", {}, ttl_s)
    return SignedUrl(url=url, expires_us=exp_us)


@router.get("/{export_id}/manifest.json", response_class=Response,
            responses={200: {"content": {"application/json": {}}, "description": "manifest.json's exact bytes"},
                       409: {"description": "not done yet"}})
def manifest(_: Investigator, svc: ServicesDep, export_id: str) -> Response:
    """The bundle's manifest, byte for byte as signed (the page shows its digests and re-hashes it)."""
    raw = _source(svc, export_id).member("manifest.json")
    return Response(raw, media_type="application/json", headers={"Cache-Control": "no-store"})
