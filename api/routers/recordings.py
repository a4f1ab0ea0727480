"""Recordings: what is stored between two times, and an HLS VOD playlist over it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from api.dependencies import CameraDep, Principal, ServicesDep, TimeRange, now_us, require, time_range
from api.links import media_path, signed_url
from api.schemas import GapOut, RecordingSegment, RecordingsOut, SignedUrl
from api.signing import MAX_TTL_S
from api.timeparse import iso_utc
from storage.audit_log import add_audit
from playback.hls import MediaSource, render_vod, run_shifts_us, vod_entries
from storage.timeline import Span, gaps, merge, total_us

router = APIRouter(prefix="/api/cameras/{camera_id}", tags=["recordings"])
Investigator = Annotated[Principal, Depends(require("investigator"))]
InvestigatorOrSigned = Annotated[Principal, Depends(require("investigator", signed=True))]

PLAYLIST = "application/vnd.apple.mpegurl"
MAX_LISTING_S = 31 * 86_400.0
MAX_PLAYBACK_S = 86_400.0


@router.get("/recordings", response_model=RecordingsOut)
def recordings(
    _: Investigator,
    cam: CameraDep,
    svc: ServicesDep,
    span: Annotated[TimeRange, Depends(time_range(MAX_LISTING_S, "listing range"))],
) -> RecordingsOut:
    segs = svc.ctx.catalog.segments_between(cam.id, span.start_us, span.end_us, stored_only=True)
    covered = [Span(s.start_us, s.end_us) for s in segs]
    inside = [c for s in covered if (c := s.clip(span.start_us, span.end_us)) is not None]
    holes = gaps(covered, span.start_us, span.end_us)
    return RecordingsOut(
        camera_id=cam.id,
        start_us=span.start_us,
        end_us=span.end_us,
        recorded_s=total_us(merge(inside, 0)) / 1e6,
        gap_s=total_us(holes) / 1e6,
        segments=[
            RecordingSegment(
                id=int(s.id or 0),
                run_id=s.run_id,
                seq=s.seq,
                start_us=s.start_us,
                end_us=s.end_us,
                start_utc=iso_utc(s.start_us),
                end_utc=iso_utc(s.end_us),
                duration_s=s.duration_us / 1e6,
                bytes=s.bytes,
                frames=s.frames,
                video_codec=s.video_codec,
                audio_codec=s.audio_codec,
                width=s.width,
                height=s.height,
                recovered=s.recovered,
            )
            for s in segs
        ],
        gaps=[
            GapOut(
                start_us=g.start_us,
                end_us=g.end_us,
                start_utc=iso_utc(g.start_us),
                end_utc=iso_utc(g.end_us),
                duration_s=g.duration_us / 1e6,
            )
            for g in holes
        ],
    )


def _epoch(us: int) -> str:
    """Exact epoch seconds text for µs (no float rounding)."""
    return f"{us // 1_000_000}.{us % 1_000_000:06d}"


def _media_ttl_s(span: TimeRange) -> float:
    """Long enough to play the whole range at normal speed, with room to pause; never past the
    signed-URL bound (api/signing.py)."""
    return min(float(MAX_TTL_S), max(3600.0, 2 * span.duration_s))


@router.get(
    "/playback.m3u8",
    response_class=Response,
    responses={200: {"content": {PLAYLIST: {}}, "description": "HLS VOD playlist"}},
)
def playback(
    who: InvestigatorOrSigned,
    cam: CameraDep,
    request: Request,
    svc: ServicesDep,
    span: Annotated[TimeRange, Depends(time_range(MAX_PLAYBACK_S, "playback range"))],
) -> Response:
    segs = svc.ctx.catalog.segments_between(cam.id, span.start_us, span.end_us, stored_only=True)
    ttl = _media_ttl_s(span)
    shifts = run_shifts_us(segs)
    sources = []
    for s in segs:
        params = {"shift_us": str(shifts[s.run_id])} if shifts[s.run_id] else {}
        sources.append(MediaSource(s, signed_url(svc, request, who, media_path(s.object_key), params, ttl)[0]))
    entries = vod_entries(sources, span.start_us, span.end_us)
    if not entries:
        raise HTTPException(404, f"nothing recorded for camera {cam.id!r} in the requested range")
    add_audit(
        svc.ctx.catalog,
        "playback.view",
        key=who.key,
        at_us=now_us(svc),
        camera_id=cam.id,
        start_us=span.start_us,
        end_us=span.end_us,
        detail={"via": who.via},
    )
    return Response(render_vod(entries), media_type=PLAYLIST, headers={"Cache-Control": "private, no-cache"})


@router.get("/playback-url", response_model=SignedUrl)
def playback_url(
    who: Investigator,
    cam: CameraDep,
    request: Request,
    svc: ServicesDep,
    span: Annotated[TimeRange, Depends(time_range(MAX_PLAYBACK_S, "playback range"))],
    ttl_s: Annotated[float, Query(gt=0, le=86_400, description="how long the URL works")] = 3600.0,
) -> SignedUrl:
    params = {"start": _epoch(span.start_us), "end": _epoch(span.end_us)}
    url, exp_us = signed_url(svc, request, who, f"/api/cameras/{cam.id}/playback.m3u8", params, ttl_s)
    return SignedUrl(url=url, expires_us=exp_us)
