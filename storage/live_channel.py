"""The live channel: how a worker hands a camera's frames, as they arrive, to the API on its node.

Why here: the worker (ingest) writes it and the API (playback/api) reads it, and the two never
import each other. One local stream socket per camera, in Linux's abstract namespace, named from
the node's spool directory and the camera id: no file to clean up after a killed worker (the name
goes with the process), and two nodes on one machine (tests) do not collide.

The socket exists only while the worker holds a connection to the camera; a subscriber (the API
process, one per node per camera, whatever its number of viewers) connects, gets a `Config`, then
every packet as a `Frame`, then an `End` when the camera connection ends.

The subscriber sends back only single bytes, the latest of which stands: `L` (`LOW_DELAY`) while
one of its viewers wants each frame as it arrives (a single view, a fullscreen tile), `B`
(`BURSTS`, the state a subscriber starts in) while bursts will do (wall tiles; the reader keeps
its pause and the recording costs what it costs unwatched: docs/design/live.md).

Messages, each `u32 length (of what follows) | u8 kind | body`:
- kind `C`: JSON `{"codec", "extradata" (hex), "width", "height", "time_base": [num, den]}`
- kind `F`: `u8 flags (1 = keyframe, 2 = no timestamps) | i64 dts | i64 pts | i64 duration |
  i64 arrival µs (wall clock) | packet bytes` (time base: the config's; bytes as demuxed)
- kind `E`: JSON `{"reason"}`
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ChannelConfig",
    "ChannelEnd",
    "BURSTS",
    "ChannelFrame",
    "FrameReader",
    "KEYFRAME",
    "LOW_DELAY",
    "NO_TIMESTAMPS",
    "channel_address",
    "connect",
    "decode",
    "encode_config",
    "encode_end",
    "encode_frame_header",
    "node_key",
    "substream_channel",
]

KEYFRAME = 1
NO_TIMESTAMPS = 2
LOW_DELAY = b"L"  # subscriber → worker: a viewer wants each frame as it arrives
BURSTS = b"B"  # subscriber → worker: bursts at the reader's pause will do (the default)
_HEAD = struct.Struct(">IB")
_FRAME = struct.Struct(">Bqqqq")
MAX_MESSAGE = 64 << 20  # a frame larger than this is a broken peer, not a picture


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    codec: str  # FFmpeg's name: h264, hevc, …
    extradata: bytes
    width: int
    height: int
    time_base: tuple[int, int]


@dataclass(frozen=True, slots=True)
class ChannelFrame:
    keyframe: bool
    dts: int | None
    pts: int | None
    duration: int
    arrival_us: int
    data: bytes


@dataclass(frozen=True, slots=True)
class ChannelEnd:
    reason: str


def node_key(spool_root: str | os.PathLike[str]) -> str:
    """A short name for a node's spool directory (one node per spool)."""
    return hashlib.blake2b(str(Path(spool_root).resolve()).encode(), digest_size=6).hexdigest()


def substream_channel(camera_id: str) -> str:
    """The channel name of a camera's H.264 substream (`health_url`): not a valid camera id, so it
    never collides with one. The fallback for browsers that cannot decode the main stream."""
    return f"{camera_id}~sub"


def channel_address(spool_root: str | os.PathLike[str], camera_id: str) -> str:
    """The abstract socket address of a camera's live channel on this node."""
    return f"\0vigil-live/{node_key(spool_root)}/{camera_id}"


def _message(kind: bytes, body: bytes) -> bytes:
    return _HEAD.pack(len(body) + 1, kind[0]) + body


def encode_config(c: ChannelConfig) -> bytes:
    body = json.dumps(
        {"codec": c.codec, "extradata": c.extradata.hex(), "width": c.width, "height": c.height,
         "time_base": list(c.time_base)}  # fmt: skip
    ).encode()
    return _message(b"C", body)


def encode_end(reason: str) -> bytes:
    return _message(b"E", json.dumps({"reason": reason}).encode())


def encode_frame_header(keyframe: bool, dts: int | None, pts: int | None, duration: int, arrival_us: int, size: int) -> bytes:
    """The bytes before a frame's packet data (sent as two buffers: no copy of the packet)."""
    flags = (KEYFRAME if keyframe else 0) | (NO_TIMESTAMPS if dts is None else 0)
    d = dts if dts is not None else 0
    p = pts if pts is not None else d
    return _HEAD.pack(_FRAME.size + size + 1, ord("F")) + _FRAME.pack(flags, d, p, duration or 0, arrival_us)


def decode(kind: int, body: bytes) -> ChannelConfig | ChannelFrame | ChannelEnd:
    if kind == ord("F"):
        flags, dts, pts, duration, arrival = _FRAME.unpack_from(body, 0)
        none = bool(flags & NO_TIMESTAMPS)
        return ChannelFrame(bool(flags & KEYFRAME), None if none else dts, None if none else pts, duration, arrival,
                            body[_FRAME.size :])  # fmt: skip
    doc = json.loads(body)
    if kind == ord("C"):
        tb = doc["time_base"]
        return ChannelConfig(doc["codec"], bytes.fromhex(doc["extradata"]), int(doc["width"]), int(doc["height"]),
                             (int(tb[0]), int(tb[1])))  # fmt: skip
    if kind == ord("E"):
        return ChannelEnd(str(doc.get("reason", "")))
    raise ValueError(f"live channel: unknown message kind {kind}")


class FrameReader:
    """Splits the channel's byte stream into messages (feed bytes, take what is complete)."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[ChannelConfig | ChannelFrame | ChannelEnd]:
        buf = self._buf
        buf += data
        out: list[ChannelConfig | ChannelFrame | ChannelEnd] = []
        pos = 0
        while len(buf) - pos >= _HEAD.size:
            length, kind = _HEAD.unpack_from(buf, pos)
            if length < 1 or length > MAX_MESSAGE:
                raise ValueError(f"live channel: bad message length {length}")
            end = pos + 4 + length
            if len(buf) < end:
                break
            out.append(decode(kind, bytes(buf[pos + _HEAD.size : end])))
            pos = end
        if pos:
            del buf[:pos]
        return out


def connect(spool_root: str | os.PathLike[str], camera_id: str) -> socket.socket:
    """A blocking connection to a camera's channel; ConnectionRefusedError/FileNotFoundError when
    no worker on this node holds the camera's connection right now."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(channel_address(spool_root, camera_id))
    except BaseException:
        s.close()
        raise
    return s
