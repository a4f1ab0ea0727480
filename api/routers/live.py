"""Live view: the HLS live playlist of a camera, a signed URL for it, and its latest snapshot."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from api.dependencies import CameraDep, Principal, ServicesDep, require
from api.links import media_path, signed_url
from api.schemas import SignedUrl
from playback.hls import MediaSource, live_entries, render_live
from storage.keys import snapshot_key
from storage.object_store import ObjectStoreError

router = APIRouter(prefix="/api/cameras/{camera_id}", tags=["live"])
Viewer = Annotated[Principal, Depends(require("viewer"))]
ViewerOrSigned = Annotated[Principal, Depends(require("viewer", signed=True))]

PLAYLIST = "application/vnd.apple.mpegurl"
MEDIA_TTL_S = 600.0
MIN_WINDOW_US = 12_000_000


@router.get(
    "/live.m3u8",
    response_class=Response,
    responses={200: {"content": {PLAYLIST: {}}, "description": "HLS live playlist"}},
)
def live_playlist(who: ViewerOrSigned, cam: CameraDep, request: Request, svc: ServicesDep) -> Response:
    ctx = svc.ctx
    index = svc.live
    now_us = int(ctx.clock.now() * 1_000_000)
    stale_us = int((3 * ctx.settings.recording.segment_seconds + 10) * 1_000_000)
    win = index.window(cam.id, MIN_WINDOW_US, now_us, stale_us)
    if win is None:
        raise HTTPException(404, f"camera {cam.id!r} has no recent media (is it recording?)")
    sources = [
        MediaSource(s, s.object_key) for s in win.segments
    ]
    entries, skipped = live_entries(sources, win.min_window_us)
    # One signed URL per fragment, and one per object header (`part`: the bytes it is): a viewer
    # reaches the window's fragments and nothing else of the object — not the up to
    # `segment_seconds` of past footage before them (api/routers/media.py). Each URL stays the same
    # across reloads (the expiry is rounded to the minute), as players expect of a live playlist:
    # one per object that changed as the window slid made Chromium's HLS player fail at a reload.
    def url(key: str, first: int, size: int) -> str:
        return signed_url(svc, request, who, media_path(key), {"part": f"{first}-{first + size - 1}"}, MEDIA_TTL_S)[0]

    entries = [replace(e, uri=url(e.uri, e.offset, e.size), map_uri=url(e.uri, 0, e.header_bytes)) for e in entries]
    text = render_live(entries, win.first_sequence + skipped, win.run_start_us // 1_000_000)
    return Response(text, media_type=PLAYLIST, headers={"Cache-Control": "no-cache"})


@router.get("/live-url", response_model=SignedUrl)
def live_url(
    who: Viewer,
    cam: CameraDep,
    request: Request,
    svc: ServicesDep,
    ttl_s: Annotated[float, Query(gt=0, le=86_400, description="how long the URL works")] = 3600.0,
) -> SignedUrl:
    url, exp_us = signed_url(svc, request, who, f"/api/cameras/{cam.id}/live.m3u8", {}, ttl_s)
    return SignedUrl(url=url, expires_us=exp_us)


@router.get(
    "/snapshot.jpg",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}, "description": "latest health sample"}, 304: {}},
)
def snapshot(_: Viewer, cam: CameraDep, request: Request, svc: ServicesDep) -> Response:
    try:
        data = svc.ctx.store.get_range(snapshot_key(cam.id))
    except KeyError:
        raise HTTPException(404, f"no snapshot of camera {cam.id!r} yet") from None
    except ObjectStoreError as e:
        raise HTTPException(503, f"object store unavailable: {e}") from None
    etag = f'"{hashlib.blake2b(data, digest_size=12).hexdigest()}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(data, media_type="image/jpeg", headers=headers)
