"""Live video over a WebSocket: each frame as fragmented MP4, for Media Source Extensions.

The browser asks `/live-ws-url` for a signed URL (a WebSocket cannot send an Authorization
header), then opens it. The frames come from the worker recording the camera on this node, through
the process's `LiveFeeds` (playback/live_feed.py): one channel per camera, whatever the number of
viewers. See docs/design/live.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Annotated, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Query, Request, WebSocket, WebSocketDisconnect

from api.dependencies import CameraDep, NeedsCatalog, Principal, Services, ServicesDep, authenticate, require, route_path
from api.links import signed_url
from api.live_relay import NODE_KID_PREFIX, open_remote
from api.schemas import SignedUrl
from core.ids import CAMERA_ID
from playback.live_feed import LiveFeeds, Viewer
from storage.catalog import leases
from storage.live_channel import BURSTS, LOW_DELAY, channel_address, substream_channel

__all__ = ["router", "live_feeds"]

router = APIRouter(prefix="/api/cameras/{camera_id}", tags=["live"])
ViewerKey = Annotated[Principal, Depends(require("viewer"))]
SEND_TIMEOUT_S = 10.0  # a browser (or node) that takes no message for this long is disconnected
Stream = Literal["main", "sub"]


def _channel(camera_id: str, stream: str) -> str:
    """The live channel's name: the camera's, or its substream's."""
    return substream_channel(camera_id) if stream == "sub" else camera_id


@router.get("/live-ws-url", response_model=SignedUrl)
def live_ws_url(
    who: ViewerKey,
    cam: CameraDep,
    request: Request,
    svc: ServicesDep,
    ttl_s: Annotated[float, Query(gt=0, le=86_400, description="how long the URL works")] = 3600.0,
    stream: Annotated[Stream, Query(description="main: the recorded stream; sub: the H.264 substream (health_url)")] = "main",
) -> SignedUrl:
    """A signed URL of the camera's live WebSocket (relative: use the page's host, ws: or wss:)."""
    if stream == "sub" and not cam.health_url:
        raise HTTPException(404, f"camera {cam.id!r} has no substream (health_url)")
    params = {"stream": stream} if stream != "main" else {}
    url, exp_us = signed_url(svc, request, who, f"/api/cameras/{cam.id}/live.ws", params, ttl_s)
    return SignedUrl(url=url, expires_us=exp_us)


def _delay_wish(text: str | None) -> bool | None:
    """A viewer's `{"type": "delay", "low": true|false}`: True/False, None for anything else."""
    if not text or len(text) > 200:
        return None
    try:
        m = json.loads(text)
    except ValueError:
        return None
    if isinstance(m, dict) and m.get("type") == "delay" and isinstance(m.get("low"), bool):
        return bool(m["low"])
    return None


def _why_offline(svc: Services, camera_id: str, err: str) -> str:
    """What a viewer is told while the camera's channel cannot be had."""
    cat = svc.ctx.catalog
    with cat.engine.connect() as c:
        holder = c.execute(sa.select(leases.c.node_id).where(leases.c.camera_id == camera_id)).scalar()
    me = svc.ctx.settings.node_id
    if holder and me and holder != me and err:
        return err  # the recording node's relay failed: the opener said why
    st = cat.get_status(camera_id)
    if st is None:
        return "the camera has not been connected yet"
    if st.state == "offline":
        return f"camera offline: {st.reason}" if st.reason else "camera offline"
    return "the camera is (re)connecting"


def live_feeds(svc: Services) -> LiveFeeds:
    """This process's feeds (made on first use, in the event loop)."""
    feeds = svc.extra.get("live_feeds")
    if feeds is None:
        spool = svc.ctx.spool

        def opener_for(channel: str):  # type: ignore[no-untyped-def]
            camera_id, sub, _ = channel.partition("~")  # "~": the substream (storage/live_channel.py)
            async def open_():  # type: ignore[no-untyped-def]
                if spool is not None:
                    try:
                        return await asyncio.open_unix_connection(channel_address(spool.root, channel))
                    except OSError:
                        pass  # not connected on this node: maybe another node records it
                return await open_remote(svc, camera_id, "sub" if sub else "main")

            return open_

        async def why(channel: str, err: str) -> str:
            return await asyncio.to_thread(_why_offline, svc, channel.partition("~")[0], err)

        feeds = LiveFeeds(opener_for, why)
        svc.extra["live_feeds"] = feeds
    return feeds  # type: ignore[return-value]


@router.websocket("/live.ws")
async def live_ws(ws: WebSocket, camera_id: str) -> None:
    svc: Services = ws.app.state.services
    try:
        try:
            authenticate(ws, svc, "viewer", signed=True, lookup=False)  # type: ignore[arg-type]
        except NeedsCatalog:
            await asyncio.to_thread(authenticate, ws, svc, "viewer", signed=True)  # type: ignore[arg-type]
        cam = await asyncio.to_thread(svc.ctx.catalog.get_camera, camera_id) if CAMERA_ID.match(camera_id) else None
        if cam is None:
            raise HTTPException(404, f"unknown camera {camera_id!r}")
        stream = ws.query_params.get("stream", "main")
        if stream not in ("main", "sub") or (stream == "sub" and not cam.health_url):
            raise HTTPException(404, f"camera {camera_id!r} has no stream {stream!r}")
    except HTTPException as e:
        await ws.close(code=4000 + e.status_code, reason=str(e.detail)[:120])
        return
    await ws.accept()
    feed = live_feeds(svc).feed(_channel(camera_id, stream))
    viewer = Viewer()
    viewer.put(json.dumps({"type": "camera", "stream": stream, "substream": bool(cam.health_url)}))
    feed.join(viewer)

    async def watch_close() -> None:
        with contextlib.suppress(Exception):
            while True:
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    break
                low = _delay_wish(msg.get("text"))
                if low is not None:
                    feed.want(viewer, low)
        viewer.close()

    closer = asyncio.create_task(watch_close())
    try:
        while True:
            msg = await viewer.get()
            if isinstance(msg, str):
                await asyncio.wait_for(ws.send_text(msg), SEND_TIMEOUT_S)
            else:
                await asyncio.wait_for(ws.send_bytes(msg), SEND_TIMEOUT_S)
    except (EOFError, WebSocketDisconnect, asyncio.TimeoutError, RuntimeError, OSError):
        pass
    finally:
        closer.cancel()
        feed.leave(viewer)
        with contextlib.suppress(Exception):
            await ws.close()


@router.websocket("/live-channel.ws")
async def live_channel_ws(ws: WebSocket, camera_id: str) -> None:
    """Node to node: this node's live channel of a camera, relayed byte for byte (api/live_relay.py)."""
    svc: Services = ws.app.state.services
    if svc.ctx.settings.api.auth:
        kid = svc.signer.verify(route_path(ws), ws.query_params.multi_items(), svc.ctx.clock.now())  # type: ignore[arg-type]
        if kid is None or not kid.startswith(NODE_KID_PREFIX):
            await ws.close(code=4401, reason="a node's signature is required")
            return
    spool = svc.ctx.spool
    if not CAMERA_ID.match(camera_id) or spool is None:
        await ws.close(code=4404, reason="no such camera here")
        return
    stream = ws.query_params.get("stream", "main")
    try:
        reader, writer = await asyncio.open_unix_connection(channel_address(spool.root, _channel(camera_id, stream)))
    except OSError:
        await ws.close(code=4404, reason="this node has no connection to the camera")
        return
    await ws.accept()

    async def watch_close() -> None:
        with contextlib.suppress(Exception):
            while (msg := await ws.receive())["type"] != "websocket.disconnect":
                wish = (msg.get("bytes") or b"")[-1:]
                if wish in (LOW_DELAY, BURSTS):  # the viewing node's delay wish, passed on
                    writer.write(wish)
        writer.close()

    closer = asyncio.create_task(watch_close())
    try:
        while data := await reader.read(1 << 16):
            await asyncio.wait_for(ws.send_bytes(data), SEND_TIMEOUT_S)
    except (OSError, asyncio.TimeoutError, WebSocketDisconnect, RuntimeError):
        pass
    finally:
        closer.cancel()
        writer.close()
        with contextlib.suppress(Exception):
            await ws.close()
