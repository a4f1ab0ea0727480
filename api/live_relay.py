"""Live video of a camera recorded by another node: that node's live channel, over a WebSocket.

Why: any node serves any camera, and a camera takes one RTSP session (the recording node's). The
viewer's node asks the recording node (the leases say which; `nodes.api_url` says where) for the
camera's channel bytes — relayed as they are (storage/live_channel.py) — and fans them out to its
own viewers like a local channel. One relay per camera per node, whatever the number of viewers.
The request is signed with the nodes' shared secret under the key id `node:<node id>`.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import sqlalchemy as sa
import websockets

from api.dependencies import Services
from storage.catalog import leases, nodes

__all__ = ["NODE_KID_PREFIX", "RelayReader", "channel_path", "open_remote", "recording_node"]

NODE_KID_PREFIX = "node:"
CONNECT_TIMEOUT_S = 3.0


@dataclass(frozen=True, slots=True)
class RecordingNode:
    node_id: str
    api_url: str | None


def channel_path(camera_id: str) -> str:
    return f"/api/cameras/{camera_id}/live-channel.ws"


def recording_node(svc: Services, camera_id: str) -> RecordingNode | None:
    """The node holding the camera's lease (None: nobody records it now), with its API address."""
    now_us = int(svc.ctx.clock.now() * 1_000_000)
    with svc.ctx.catalog.engine.connect() as c:
        r = c.execute(
            sa.select(leases.c.node_id, nodes.c.api_url)
            .select_from(leases.outerjoin(nodes, nodes.c.node_id == leases.c.node_id))
            .where(leases.c.camera_id == camera_id, leases.c.expires_us > now_us)
        ).first()
    if r is None or not r.node_id:
        return None
    return RecordingNode(r.node_id, r.api_url)


class RelayReader:
    """The (reader, writer) pair a `LiveFeed` expects, over a WebSocket client connection."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws

    async def read(self, _n: int = -1) -> bytes:
        try:
            msg = await self.ws.recv()
        except websockets.ConnectionClosed:
            return b""
        return msg if isinstance(msg, bytes) else msg.encode()

    def write(self, data: bytes) -> None:
        """The subscriber's delay wish (storage/live_channel.py), passed on to the recording node."""
        asyncio.get_running_loop().create_task(self._send(data))

    async def _send(self, data: bytes) -> None:
        with contextlib.suppress(websockets.ConnectionClosed, OSError):
            await self.ws.send(data)

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().create_task(self.ws.close())


async def open_remote(svc: Services, camera_id: str, stream: str = "main") -> tuple[RelayReader, RelayReader]:
    """Connect to the recording node's relay; OSError (with a reason a viewer may read) if none."""
    node = await asyncio.to_thread(recording_node, svc, camera_id)
    me = svc.ctx.settings.node_id
    if node is None:
        raise OSError("no node records the camera right now")
    if node.node_id == me:
        raise OSError("this node records the camera but has no connection to it right now")
    if not node.api_url:
        raise OSError(f"node {node.node_id} records the camera but published no API address")
    path = channel_path(camera_id)
    exp = int(svc.ctx.clock.now()) + 300
    params = {"stream": stream} if stream != "main" else {}
    if svc.ctx.settings.api.auth:
        signed = svc.signer.sign(path, params, f"{NODE_KID_PREFIX}{me}", exp)
    else:
        signed = f"{path}?stream={stream}"
    url = "ws" + node.api_url.rstrip("/").removeprefix("http") + signed
    try:
        ws = await websockets.connect(url, open_timeout=CONNECT_TIMEOUT_S, max_size=None, compression=None)
    except (OSError, asyncio.TimeoutError, websockets.InvalidHandshake) as e:
        raise OSError(f"node {node.node_id}, which records the camera, cannot be reached ({type(e).__name__}: {e})") from None
    r = RelayReader(ws)
    return r, r
