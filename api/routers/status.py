"""Feed status: every feed in one shared document (ETag/304), and one feed in detail."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from api.dependencies import CameraDep, Principal, ServicesDep, require
from api.schemas import CameraStatusDetail, StatusOut
from api.status_board import accepts_gzip, etag_matches
from api.status_builder import FEED_STATES

router = APIRouter(tags=["status"])
Viewer = Annotated[Principal, Depends(require("viewer"))]


@router.get(
    "/api/status",
    response_model=StatusOut,
    responses={
        200: {"description": "gzip-encoded when Accept-Encoding allows it (Content-Encoding, Vary)"},
        304: {"description": "unchanged since the ETag sent in If-None-Match (either encoding)"},
    },
)
async def status(
    _: Viewer,
    request: Request,
    svc: ServicesDep,
    state: Annotated[list[str] | None, Query(description="only feeds in these states")] = None,
    tag: Annotated[list[str] | None, Query(description="`key:value`, or `key` for any value")] = None,
) -> Response:
    # Ready bytes from the board's refresher: no catalog access and no encoding here. Most polls
    # never get here: api/fast_status.py answers them in front of FastAPI, byte for byte as below
    # (keep the two in step; tests/api/test_api_status.py compares them).
    bad = sorted(set(state or ()) - set(FEED_STATES) - {""})  # `state=` (blank) stays as it was
    if bad:
        raise HTTPException(422, f"state: unknown {', '.join(map(repr, bad))}; one of {', '.join(FEED_STATES)}")
    enc = svc.board.variant(state or (), tag or ())
    headers = {"ETag": enc.etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
    if etag_matches(request.headers.get("if-none-match"), enc.etag):
        return Response(status_code=304, headers=headers)
    if accepts_gzip(request.headers.get("accept-encoding")):
        headers["Content-Encoding"] = "gzip"
        return Response(enc.gzip, media_type="application/json", headers=headers)
    return Response(enc.plain, media_type="application/json", headers=headers)


@router.get("/api/cameras/{camera_id}/status", response_model=CameraStatusDetail)
def camera_status(_: Viewer, cam: CameraDep, svc: ServicesDep) -> CameraStatusDetail:
    catalog = svc.ctx.catalog
    st = catalog.get_status(cam.id)
    latest = catalog.latest_segments(cam.id, 1)
    state = "disabled" if not cam.enabled else (st.state if st else "unknown")
    return CameraStatusDetail(
        id=cam.id,
        name=cam.name,
        state=state,
        since_us=st.since_us if st else None,
        reason=st.reason if st else "",
        fps=st.fps if st else None,
        bitrate_kbps=st.bitrate_kbps if st else None,
        last_packet_us=st.last_packet_us if st else None,
        reconnects=st.reconnects if st else 0,
        updated_us=st.updated_us if st else None,
        enabled=cam.enabled,
        tags=dict(cam.tags or {}),
        figures=dict(st.figures or {}) if st else {},
        run_id=st.run_id if st else None,
        node_id=st.node_id if st else None,
        latest_recording_end_us=latest[-1].end_us if latest else None,
    )
