"""`GET /api/cameras/{id}/clip.mp4`: one MP4 for a range, stream copy, with its SHA-256.

The file is finished (faststart rewrites it) and hashed before the response starts, so the digest
can be a header; the body is then streamed from disk and the file removed."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from api.dependencies import CameraDep, Principal, ServicesDep, TimeRange, now_us, require, time_range
from api.timeparse import iso_utc
from storage.audit_log import add_audit
from playback.clips import ClipError, IncompatibleRuns, NothingRecorded, export_clip
from storage.object_store import ObjectStoreError

router = APIRouter(prefix="/api/cameras/{camera_id}", tags=["clips"])
Investigator = Annotated[Principal, Depends(require("investigator"))]

WAIT_FOR_SLOT_S = 30.0


def _tmp_dir(data_dir: Path) -> Path:
    d = data_dir / "tmp"
    try:
        d.mkdir(parents=True, exist_ok=True)
        return d
    except OSError:
        return Path(tempfile.gettempdir())


def _stamp(us: int) -> str:
    return iso_utc(us)[:19].replace("-", "").replace(":", "") + "Z"


@router.get(
    "/clip.mp4",
    response_class=FileResponse,
    responses={
        200: {
            "content": {"video/mp4": {}},
            "description": "the clip; `Repr-Digest` holds its SHA-256 (RFC 9530)",
        },
        503: {"description": "too many exports at once, or the object store is unavailable"},
    },
)
def clip(
    who: Investigator,
    cam: CameraDep,
    svc: ServicesDep,
    span: Annotated[TimeRange, Depends(time_range(lambda s: s.api.max_clip_seconds, "clip"))],
    exact: Annotated[bool, Query(description="start presentation exactly at `start` (edit list)")] = False,
) -> FileResponse:
    ctx = svc.ctx
    if not svc.clip_slots.acquire(timeout=WAIT_FOR_SLOT_S):
        raise HTTPException(503, "too many clip exports are running; try again shortly")
    path: Path | None = None
    try:
        fd, name = tempfile.mkstemp(prefix=f"clip-{cam.id}-", suffix=".mp4", dir=_tmp_dir(ctx.settings.data_dir))
        os.close(fd)
        path = Path(name)
        result = export_clip(ctx.catalog, ctx.store, cam.id, span.start_us, span.end_us, path, exact=exact)
    except BaseException as e:
        if path is not None:
            path.unlink(missing_ok=True)
        if isinstance(e, NothingRecorded):
            raise HTTPException(404, str(e)) from None
        if isinstance(e, (IncompatibleRuns, ClipError)):
            raise HTTPException(422, str(e)) from None
        if isinstance(e, ObjectStoreError):
            raise HTTPException(503, f"object store unavailable: {e}") from None
        raise
    finally:
        svc.clip_slots.release()
    add_audit(
        ctx.catalog,
        "clip.export",
        key=who.key,
        at_us=now_us(svc),
        camera_id=cam.id,
        start_us=result.first_us,
        end_us=result.end_us,
        sha256=result.sha256,
        bytes=result.bytes,
        detail={
            "requested_start_us": span.start_us,
            "requested_end_us": span.end_us,
            "exact": exact,
            "frames": result.frames,
            "gaps": [[g.start_us, g.end_us] for g in result.gaps],
            "segments": result.segment_keys,
            "via": who.via,
        },
    )
    filename = f"{cam.id}_{_stamp(span.start_us)}_{_stamp(span.end_us)}.mp4"
    return FileResponse(
        path,
        media_type="video/mp4",
        filename=filename,
        headers={
            "Repr-Digest": result.repr_digest,
            "Vigil-First-Frame-Us": str(result.first_us),
            "Vigil-End-Us": str(result.end_us),
            "Vigil-Frames": str(result.frames),
            "Vigil-Gaps": str(len(result.gaps)),
            "Cache-Control": "no-store",
        },
        background=BackgroundTask(path.unlink, missing_ok=True),
    )
