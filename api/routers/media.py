"""`GET|HEAD /api/media/{key}`: segment objects with HTTP Range, for playlists' byte ranges.

A key is served from the spool while its segment is there (being recorded, or waiting for the
uploader), else from the object store (playback/media.py decides). Playlists link here with signed
URLs. With `shift_us`, the fragments' decode times are moved so a VOD playlist's runs form one timeline."""

from __future__ import annotations

import logging
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
log = logging.getLogger("vigil.api.media")

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
    live playlist's signed URL, whose `live_from` and `init` (covered by the signature) are the
    first byte of the live window in this object and the size of its header: it gets the header
    and the bytes from `live_from` on. Returns (live_from, init)."""
    if role_allows(who.role, "recordings"):
        return None
    q = request.query_params
    # the page may send its Bearer key with the signed URL: the signature still vouches for them
    signed = who.via == "signature" or (
        "sig" in q and svc.signer.verify(route_path(request), q.multi_items(), svc.ctx.clock.now()) is not None
    )
    if not signed or "live_from" not in q or "init" not in q:
        raise HTTPException(403, f"this needs the 'recordings' permission; the key {who.name!r} is {who.role}")
    try:
        return int(q["live_from"]), int(q["init"])
    except ValueError:
        raise HTTPException(422, "live_from and init must be byte offsets") from None


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
    rng = range_or_416(request.headers.get("range"), size)
    if live is not None:  # a live viewer: the header, or bytes of the live window, never between
        live_from, header_bytes = live
        first, last = rng if rng is not None else (0, size - 1)  # no Range: as `bytes=0-`
        if first < header_bytes:
            last = min(last, header_bytes - 1)  # a player probing `bytes=0-` gets the header first
        elif first < live_from:
            first = live_from  # older footage is skipped: what follows is the window's
        if first > last:
            log.info("live media refused: range %r outside [0, %d) ∪ [%d, …)", request.headers.get("range"), header_bytes, live_from)
            raise HTTPException(403, "a live view reaches only the live window: ask for its byte ranges")
        rng = (first, last)
    status, first, length = framed(rng, size, headers)
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
    who: ViewerOrSigned, key: KeyParam, request: Request, svc: ServicesDep, shift_us: ShiftParam = 0
) -> Response:
    return _serve(key, request, svc, head=False, shift_us=shift_us, live=live_scope(who, request, svc))


@router.head("/{key:path}", response_class=Response, responses=_DOC)  # type: ignore[arg-type]
def head_media(
    who: ViewerOrSigned, key: KeyParam, request: Request, svc: ServicesDep, shift_us: ShiftParam = 0
) -> Response:
    return _serve(key, request, svc, head=True, shift_us=shift_us, live=live_scope(who, request, svc))
