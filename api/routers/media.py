"""`GET|HEAD /api/media/{key}`: segment objects with HTTP Range, for playlists' byte ranges.

A key is served from the spool while its segment is there (being recorded, or waiting for the
uploader), else from the object store (playback/media.py decides). Playlists link here with signed
URLs. With `shift_us`, the fragments' decode times are moved so a VOD playlist's runs form one timeline."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from api.dependencies import Principal, ServicesDep, require
from api.ranges import Unsatisfiable, parse_range
from playback.media import MediaNotFound, locate
from storage.object_store import ObjectStoreError

router = APIRouter(prefix="/api/media", tags=["media"])
InvestigatorOrSigned = Annotated[Principal, Depends(require("investigator", signed=True))]

KeyParam = Annotated[str, Path(description="segment object key, e.g. cam1/2024/05/01/10/20240501T100000.000000Z.mp4")]
ShiftParam = Annotated[
    int,
    Query(
        ge=0,
        le=10**15,
        description="add this many µs to every fragment's decode time (tfdt): VOD playlists use it so "
        "their runs form one increasing timeline",
    ),
]


def _serve(key: str, request: Request, svc: ServicesDep, head: bool, shift_us: int = 0) -> Response:
    ctx = svc.ctx
    try:
        obj = locate(key, spool=ctx.spool, store=ctx.store, catalog=ctx.catalog)
    except MediaNotFound:
        raise HTTPException(404, "no such media object") from None
    except ObjectStoreError as e:
        raise HTTPException(503, f"object store unavailable: {e}") from None
    size = obj.size
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "no-cache" if obj.in_spool else "private, max-age=3600"}
    try:
        rng = parse_range(request.headers.get("range"), size)
    except Unsatisfiable:
        raise HTTPException(416, "range not satisfiable", headers={"Content-Range": f"bytes */{size}"}) from None
    status = 200
    first, length = 0, size
    if rng is not None:
        first, last = rng
        length = last - first + 1
        status = 206
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    headers["Content-Length"] = str(length)
    if head:
        return Response(status_code=status, headers=headers, media_type="video/mp4")
    try:
        body = obj.read(first, length, shift_us)
    except MediaNotFound:
        raise HTTPException(404, "no such media object") from None
    except ObjectStoreError as e:
        raise HTTPException(503, f"object store unavailable: {e}") from None
    return StreamingResponse(body, status_code=status, headers=headers, media_type="video/mp4")


_DOC = {
    200: {"content": {"video/mp4": {}}, "description": "the whole object"},
    206: {"content": {"video/mp4": {}}, "description": "the requested byte range"},
    416: {"description": "range not satisfiable"},
}


@router.get("/{key:path}", response_class=Response, responses=_DOC)  # type: ignore[arg-type]
def get_media(
    _: InvestigatorOrSigned, key: KeyParam, request: Request, svc: ServicesDep, shift_us: ShiftParam = 0
) -> Response:
    return _serve(key, request, svc, head=False, shift_us=shift_us)


@router.head("/{key:path}", response_class=Response, responses=_DOC)  # type: ignore[arg-type]
def head_media(
    _: InvestigatorOrSigned, key: KeyParam, request: Request, svc: ServicesDep, shift_us: ShiftParam = 0
) -> Response:
    return _serve(key, request, svc, head=True, shift_us=shift_us)
