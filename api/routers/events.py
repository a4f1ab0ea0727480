"""Health events: a cursor for pollers, and the same as Server-Sent Events (resumable)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.dependencies import Principal, ServicesDep, optional_time, require
from api.schemas import EventList, EventOut
from api.timeparse import iso_utc
from storage.catalog import Event

router = APIRouter(prefix="/api/events", tags=["events"])
Viewer = Annotated[Principal, Depends(require("viewer"))]

KEEPALIVE_S = 15.0
_BATCH = 500


def event_out(ev: Event) -> EventOut:
    return EventOut(
        id=int(ev.id or 0),
        camera_id=ev.camera_id,
        at_us=ev.at_us,
        at_utc=iso_utc(ev.at_us),
        kind=ev.kind,
        from_state=ev.from_state,
        to_state=ev.to_state,
        reason=ev.reason,
        figures=dict(ev.figures or {}),
    )


@router.get("", response_model=EventList)
def list_events(
    _: Viewer,
    svc: ServicesDep,
    since: Annotated[int, Query(ge=0, le=2**62, description="cursor: events with a larger id")] = 0,
    camera: Annotated[str | None, Query(max_length=64)] = None,
    start: Annotated[str | None, Query(description="only events at or after this time", max_length=64)] = None,
    end: Annotated[str | None, Query(description="only events before this time", max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EventList:
    evs = svc.ctx.catalog.events_since(
        since,
        camera_id=camera,
        limit=limit,
        start_us=optional_time("start", start),
        end_us=optional_time("end", end),
    )
    return EventList(events=[event_out(e) for e in evs], next_cursor=int(evs[-1].id or since) if evs else since)


def _sse(ev: Event) -> bytes:
    data = json.dumps(event_out(ev).model_dump(), separators=(",", ":"))
    return f"id: {ev.id}\nevent: {ev.kind}\ndata: {data}\n\n".encode()


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}},
)
async def stream_events(
    request: Request,
    svc: ServicesDep,
    _: Viewer,
    since: Annotated[int | None, Query(ge=0, le=2**62, description="start after this event id")] = None,
    camera: Annotated[str | None, Query(max_length=64)] = None,
    last_event_id: Annotated[str | None, Header(description="resume after this event id")] = None,
    max_s: Annotated[
        float | None, Query(ge=0, le=86_400, description="end the stream after this long (resume with Last-Event-ID)")
    ] = None,
) -> StreamingResponse:
    catalog = svc.ctx.catalog
    watcher = svc.events
    if last_event_id is not None and last_event_id.strip():
        try:
            cursor = int(last_event_id)
        except ValueError:
            raise HTTPException(400, "Last-Event-ID must be an event id (an integer)") from None
        if not 0 <= cursor <= 2**62:
            raise HTTPException(422, "Last-Event-ID: an event id is between 0 and 2^62")
    elif since is not None:
        cursor = since
    else:
        cursor = await run_in_threadpool(catalog.last_event_id)

    clock = svc.ctx.clock
    deadline = None if max_s is None else clock.monotonic() + max_s

    async def gen() -> AsyncIterator[bytes]:
        nonlocal cursor
        yield b"retry: 1000\n\n"
        seen = -1  # newest global event id already read past
        while True:
            if await request.is_disconnected():
                return
            wait_s = KEEPALIVE_S
            if deadline is not None:
                wait_s = min(wait_s, deadline - clock.monotonic())
                if wait_s <= 0:
                    return
            latest = await watcher.wait_beyond(seen, wait_s)
            if latest <= seen:
                yield b": keepalive\n\n"
                continue
            evs = await run_in_threadpool(catalog.events_since, cursor, camera_id=camera, limit=_BATCH)
            for ev in evs:
                yield _sse(ev)
                cursor = int(ev.id or cursor)
            # a full batch means more may wait past it: read again without waiting
            seen = latest if len(evs) < _BATCH else seen

    return StreamingResponse(
        gen(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
