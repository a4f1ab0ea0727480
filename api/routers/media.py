"""`GET|HEAD /api/media/{key}`: segment objects with HTTP Range, for playlists' byte ranges.

A key is served from the spool while its segment is there (being recorded, or waiting for the
uploader), else from the object store (playback/media.py decides). Playlists link here with signed
URLs. With `shift_us`, the fragments' decode times are moved so a VOD playlist's runs form one timeline."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from api.dependencies import Principal, ServicesDep, require, route_path
from api.ranges import framed, range_or_416
from core.roles import role_allows
from playback.media import MediaNotFound, locate
from storage.object_store import ObjectStoreError

router = APIRouter(prefix="/api/media", tags=["media"])
# investigators by key or signed URL; viewers only through a live playlist's signed URLs (live_scope)
ViewerOrSigned = Annotated[Principal, Depends(require("viewer", signed=True))]

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


def live_scope(who: Principal, request: Request, svc: ServicesDep) -> tuple[int, int] | None:
    """None: the caller may have the whole object (an investigator). A viewer comes only through a
    live playlist's signed URL, whose `part` (covered by the signature) names the bytes it is: one
    fragment of the live window, or the object's header. Returns (first, last) byte."""
    if role_allows(who.role, "recordings"):
        return None
    q = request.query_params
    # the page may send its Bearer key with the signed URL: the signature still vouches for them
    signed = who.via == "signature" or (
        "sig" in q and svc.signer.verify(route_path(request), q.multi_items(), svc.ctx.clock.now()) is not None
    )
    if not signed or "part" not in q:
        raise HTTPException(403, f"this needs the 'recordings' permission; the key {who.name!r} is {who.role}")
    first, _, last = q["part"].partition("-")
    try:
        a, b = int(first), int(last)
    except ValueError:
        raise HTTPException(422, "part must be a byte range: first-last") from None
    if not 0 <= a <= b:
        raise HTTPException(422, "part must be a byte range: first-last")
    return a, b


def _serve(
    key: str, request: Request, svc: ServicesDep, head: bool, shift_us: int = 0, live: tuple[int, int] | None = None
) -> Response:
    ctx = svc.ctx
    try:
        obj = locate(key, spool=ctx.spool, store=ctx.store, catalog=ctx.catalog)
    except MediaNotFound:
        raise HTTPException(404, "no such media object") from None
    except ObjectStoreError as e:
        raise HTTPException(503, f"object store unavailable: {e}") from None
    size = obj.size
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "no-cache" if obj.in_spool else "private, max-age=3600"}
    base = 0
    if live is not None:  # a live viewer: the part its URL names is the whole resource
        base, last = live
        if last >= size:
            raise HTTPException(404, "no such part of the media object")
        size = last - base + 1
    rng = range_or_416(request.headers.get("range"), size)
    status, first, length = framed(rng, size, headers)
    if head:
        return Response(status_code=status, headers=headers, media_type="video/mp4")
    try:
        body = obj.read(base + first, length, shift_us)
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
    who: ViewerOrSigned, key: KeyParam, request: Request, svc: ServicesDep, shift_us: ShiftParam = 0
) -> Response:
    return _serve(key, request, svc, head=False, shift_us=shift_us, live=live_scope(who, request, svc))


@router.head("/{key:path}", response_class=Response, responses=_DOC)  # type: ignore[arg-type]
def head_media(
    who: ViewerOrSigned, key: KeyParam, request: Request, svc: ServicesDep, shift_us: ShiftParam = 0
) -> Response:
    return _serve(key, request, svc, head=True, shift_us=shift_us, live=live_scope(who, request, svc))
