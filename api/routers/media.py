"""`GET|HEAD /api/media/{key}`: segment objects with HTTP Range, for playlists' byte ranges.

A key is served from the spool while its segment is there (being recorded, or waiting for the
uploader), else from the object store. Playlists link here with signed URLs. With `shift_us`, the
fragments' decode times are moved (playback/fmp4.py) so a VOD playlist's runs form one timeline."""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path as FsPath
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from api.dependencies import Principal, ServicesDep, require, route_path
from api.ranges import Unsatisfiable, parse_range
from core.roles import role_allows
from playback.fmp4 import shift_decode_times, track_timescales
from storage.keys import parse_segment_key
from playback.live import find_spooled
from storage.object_store import ObjectStoreError
from storage.spool import SpooledSegment

router = APIRouter(prefix="/api/media", tags=["media"])
log = logging.getLogger("vigil.api.media")
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
_CHUNK = 1 << 18


def _file_chunks(path: FsPath, first: int, length: int) -> Iterator[bytes]:
    with open(path, "rb") as f:
        f.seek(first)
        left = length
        while left > 0:
            chunk = f.read(min(_CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            yield chunk


def _skip(chunks: Iterator[bytes], n: int) -> Iterator[bytes]:
    """Drop the first n bytes of a chunk stream."""
    for chunk in chunks:
        if n >= len(chunk):
            n -= len(chunk)
            continue
        yield chunk[n:] if n else chunk
        n = 0


def _shifted(
    read: Callable[[int, int], Iterator[bytes]], first: int, length: int, layout: tuple[int, list[int]], shift_us: int
) -> Iterator[bytes]:
    """Bytes [first, first+length) with every fragment's decode time moved by shift_us.

    Parsing must start at a box boundary, so reading starts at the fragment holding `first`."""
    header_bytes, offsets = layout
    end = first + length
    header = b"".join(read(0, header_bytes))
    if first < header_bytes:
        yield header[first : min(end, header_bytes)]
    if end <= header_bytes:
        return
    start = max(first, header_bytes)
    boundary = max(o for o in [header_bytes, *offsets] if o <= start)
    chunks = shift_decode_times(read(boundary, end - boundary), track_timescales(header), shift_us)
    yield from _skip(iter(chunks), start - boundary)


def _layout(key: str, spooled: SpooledSegment | None, svc: ServicesDep) -> tuple[int, list[int]] | None:
    """(header bytes, fragment offsets) of a segment object, from the spool journal or the catalog."""
    if spooled is not None:
        return spooled.header_bytes, [f.offset for f in spooled.fragments]
    seg = svc.ctx.catalog.get_segment_by_key(key)
    return (seg.header_bytes, [f.offset for f in seg.fragments]) if seg else None


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
    try:
        sk = parse_segment_key(key)
    except ValueError:
        raise HTTPException(404, "no such media object") from None
    spooled = None
    if svc.ctx.spool is not None:
        spooled = find_spooled(svc.ctx.spool, sk.camera, sk.start_us)
    path: FsPath | None = None
    if spooled is not None:
        try:
            size = os.stat(spooled.data_path).st_size
            path = spooled.data_path
        except FileNotFoundError:  # uploaded and removed meanwhile: the store has it
            spooled = None
    if path is None:
        try:
            st = svc.ctx.store.stat(key)
        except ObjectStoreError as e:
            raise HTTPException(503, f"object store unavailable: {e}") from None
        if st is None:
            raise HTTPException(404, "no such media object")
        size = st.size
    headers = {
        "Accept-Ranges": "bytes",
        "Cache-Control": "no-cache" if path is not None else "private, max-age=3600",
    }
    try:
        rng = parse_range(request.headers.get("range"), size)
    except Unsatisfiable:
        raise HTTPException(416, "range not satisfiable", headers={"Content-Range": f"bytes */{size}"}) from None
    status = 200
    first, length = 0, size
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
    if rng is not None:
        first, last = rng
        length = last - first + 1
        status = 206
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    headers["Content-Length"] = str(length)
    if head:
        return Response(status_code=status, headers=headers, media_type="video/mp4")
    layout = _layout(key, spooled, svc) if shift_us else None
    if layout is not None:
        if path is not None:
            fs_path = path

            def read(offset: int, n: int) -> Iterator[bytes]:
                return _file_chunks(fs_path, offset, n)

        else:

            def read(offset: int, n: int) -> Iterator[bytes]:
                return iter(svc.ctx.store.iter_range(key, offset, n))

        body: Iterator[bytes] = _shifted(read, first, length, layout, shift_us)
        try:  # start now, so a failing store is a 503 rather than a cut-off body
            head_chunk = next(body, b"")
        except (KeyError, ObjectStoreError) as e:
            raise HTTPException(503, f"object store unavailable: {e}") from None
        body = itertools.chain((head_chunk,), body)
    elif path is not None:
        body = _file_chunks(path, first, length)
    else:
        it = iter(svc.ctx.store.iter_range(key, first, length))
        try:  # start the read now, so a failing store is a 503 rather than a cut-off body
            head_chunk = next(it, b"")
        except KeyError:
            raise HTTPException(404, "no such media object") from None
        except ObjectStoreError as e:
            raise HTTPException(503, f"object store unavailable: {e}") from None
        body = itertools.chain((head_chunk,), it)
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
