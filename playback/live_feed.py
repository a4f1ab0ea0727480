"""Fan-out of a camera's live frames to the viewers of one API process (asyncio).

Why: the worker sends each frame once per API process (storage/live_channel.py); this packages it
once (playback/live_fmp4.py) and hands the same bytes to every viewer. Nobody is waited for: each
viewer has a bounded queue, and a viewer whose queue overflows loses what is queued and starts
again at the next keyframe (a jump to the live edge, never a growing delay).

A viewer may ask for low delay (a single view): while one does, the feed asks the worker for each
frame as it arrives (`LOW_DELAY`, storage/live_channel.py); otherwise for its bursts (`BURSTS`),
which cost the recording nothing.

A feed exists while it has viewers, plus `LINGER_S` (a viewer switching tiles finds the GOP cached:
it starts at the latest keyframe at once). Without a channel (the camera is reconnecting, or is
recorded elsewhere) the feed retries every `RETRY_S` and tells its viewers why they see nothing.

What viewers receive (`Viewer.get`): text messages (JSON: `hello`, `codec`, `state`) and binary
ones: `u8 kind (1 init, 2 frame, 3 keyframe) | f64 arrival ms (wall clock, when the worker read it)
| f64 decode time s | payload (init segment or moof + mdat)`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from playback.live_fmp4 import TIMESCALE, AvcConfig, UnsupportedCodec, avc_config, init_segment, media_fragment, to_avcc
from storage.live_channel import BURSTS, LOW_DELAY, ChannelConfig, ChannelEnd, ChannelFrame, FrameReader

__all__ = ["LiveFeed", "LiveFeeds", "Viewer", "STALL_S"]

log = logging.getLogger("vigil.live")

STALL_S = 2.0  # no frame for this long: viewers are told "stalled" and why
LINGER_S = 10.0
RETRY_S = 0.25  # while viewers wait, the channel is asked again this often (a local connect)
VIEWER_QUEUE = 50  # frames (2 s at 25 fps) a viewer may have queued before it jumps ahead
_HEAD = struct.Struct(">Bdd")

Opener = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


@dataclass(eq=False)
class Viewer:
    """One browser's queue of messages (bytes: media, str: JSON)."""

    queue: deque[bytes | str] = field(default_factory=deque)
    event: asyncio.Event = field(default_factory=asyncio.Event)
    frames_queued: int = 0
    waiting_key: bool = True
    jumps: int = 0
    closed: bool = False
    low_delay: bool = False  # asks for each frame as it arrives (LiveFeed.want)

    def put(self, msg: bytes | str, *, frame: bool = False, key: bool = False) -> None:
        if isinstance(msg, bytes) and msg[0] == 1:
            self.waiting_key = True  # a new init segment: the decoder starts again at a keyframe
        if frame:
            if self.waiting_key and not key:
                return
            if self.frames_queued >= VIEWER_QUEUE:
                # too slow: drop what waits, restart at the next keyframe (the live edge)
                self.queue = deque(m for m in self.queue if isinstance(m, str) or m[0] == 1)
                self.frames_queued = 0
                self.waiting_key = True
                self.jumps += 1
                if not key:
                    return
            self.waiting_key = False
            self.frames_queued += 1
        self.queue.append(msg)
        self.event.set()

    async def get(self) -> bytes | str:
        while not self.queue:
            if self.closed:
                raise EOFError
            self.event.clear()
            await self.event.wait()
        msg = self.queue.popleft()
        if isinstance(msg, bytes) and msg[0] != 1:
            self.frames_queued -= 1
        return msg

    def close(self) -> None:
        self.closed = True
        self.event.set()


class LiveFeed:
    """One camera's channel in this process and the viewers it feeds."""

    def __init__(self, camera_id: str, opener: Opener, on_idle: Callable[["LiveFeed"], None], why_offline: Callable[[str], Awaitable[str]]) -> None:
        self.camera_id = camera_id
        self.opener = opener
        self.on_idle = on_idle
        self.why_offline = why_offline
        self.viewers: set[Viewer] = set()
        self.state = "connecting"
        self.reason = ""
        self.codec_msg: str | None = None
        self.init: bytes | None = None
        self.gop: list[tuple[bytes, bool]] = []  # fragments since the latest keyframe
        self.last_frame = 0.0
        self.frames = 0
        self._cfg: AvcConfig | None = None
        self._chan: ChannelConfig | None = None
        self._offset: int | None = None  # added to the channel's dts: decode times never go back
        self._next = 0  # decode time the next frame should have (ticks)
        self._last_dts = -1
        self._dur = TIMESCALE // 25
        self._avg = float(self._dur)
        self._seq = 0
        self._need_key = True
        self._idle_since: float | None = None
        self._writer: Any = None  # the channel's open connection: where the delay wish goes
        self._told: bytes | None = None
        self._task = asyncio.create_task(self._run(), name=f"live-{camera_id}")
        self._watch = asyncio.create_task(self._watchdog(), name=f"live-watch-{camera_id}")

    # ---- viewers ------------------------------------------------------------------------------
    def join(self, v: Viewer) -> None:
        self.viewers.add(v)
        self._idle_since = None
        v.put(json.dumps({"type": "hello", "server_ms": time.time() * 1000, "camera": self.camera_id}))
        v.put(self._state_msg())
        if self.codec_msg and self.init:
            v.put(self.codec_msg)
            v.put(_HEAD.pack(1, 0.0, 0.0) + self.init)
            for frag, key in self.gop:
                v.put(frag, frame=True, key=key)

    def leave(self, v: Viewer) -> None:
        self.viewers.discard(v)
        v.close()
        if not self.viewers:
            self._idle_since = time.monotonic()
        self._tell()

    def want(self, v: Viewer, low_delay: bool) -> None:
        """A viewer asks for low delay (each frame as it arrives) or says bursts will do."""
        v.low_delay = low_delay
        self._tell()

    def _tell(self) -> None:
        """Tell the worker (or the recording node) what this process's viewers want, on change."""
        mode = LOW_DELAY if any(v.low_delay for v in self.viewers) else BURSTS
        if self._writer is not None and mode != self._told:
            try:
                self._writer.write(mode)
                self._told = mode
            except (OSError, RuntimeError):
                pass  # the channel is closing: the next connection is told again

    def _broadcast(self, msg: bytes | str, *, frame: bool = False, key: bool = False) -> None:
        for v in self.viewers:
            v.put(msg, frame=frame, key=key)

    def _state_msg(self) -> str:
        return json.dumps({"type": "state", "state": self.state, "reason": self.reason})

    def _set_state(self, state: str, reason: str = "") -> None:
        if (state, reason) != (self.state, self.reason):
            self.state, self.reason = state, reason
            self._broadcast(self._state_msg())

    # ---- the channel --------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            try:
                reader, writer = await self.opener()
            except (OSError, asyncio.TimeoutError) as e:
                if self.state != "offline" or not self.reason:
                    self._set_state("offline", await self._offline_reason(str(e)))
                await asyncio.sleep(RETRY_S)
                continue
            end_reason = ""
            self._writer, self._told = writer, BURSTS  # a new subscriber starts in bursts
            self._tell()
            try:
                parser = FrameReader()
                while not end_reason:
                    data = await reader.read(1 << 16)
                    if not data:
                        break
                    for msg in parser.feed(data):
                        if isinstance(msg, ChannelFrame):
                            self._frame(msg)
                        elif isinstance(msg, ChannelConfig):
                            self._config(msg)
                        elif isinstance(msg, ChannelEnd):
                            end_reason = msg.reason or "the camera connection ended"
                            break
            except (OSError, ValueError) as e:
                end_reason = end_reason or f"live channel failed: {e}"
            except Exception as e:  # a bug here must not end live video for good
                log.exception("%s: live feed failed", self.camera_id)
                end_reason = end_reason or f"live feed failed: {type(e).__name__}"
            finally:
                self._writer = None
                writer.close()
            self._cfg = None
            self._chan = None
            self._offset = None
            self.gop = []
            self._set_state("offline", f"camera disconnected: {end_reason}" if end_reason else await self._offline_reason(""))
            await asyncio.sleep(RETRY_S)

    async def _offline_reason(self, err: str) -> str:
        try:
            return await self.why_offline(err)
        except Exception:
            return f"no connection to the camera on this node ({err})" if err else "no connection to the camera"

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            now = time.monotonic()
            if self.state == "live" and now - self.last_frame > STALL_S:
                self._set_state("stalled", f"no frame from the camera for {now - self.last_frame:.1f} s (connection open)")
            if self._idle_since is not None and now - self._idle_since > LINGER_S and not self.viewers:
                self.close()
                self.on_idle(self)
                return

    def close(self) -> None:
        self._task.cancel()
        if asyncio.current_task() is not self._watch:
            self._watch.cancel()
        for v in list(self.viewers):
            v.close()

    # ---- packaging ----------------------------------------------------------------------------
    def _config(self, c: ChannelConfig) -> None:
        self._chan = c
        try:
            self._cfg = avc_config(c.codec, c.extradata)
        except UnsupportedCodec as e:
            self._cfg = None
            self.codec_msg = json.dumps({"type": "codec", "codec": c.codec, "supported": False, "reason": str(e)})
            self.init = None
            self._broadcast(self.codec_msg)
            self._set_state("unsupported", str(e))
            return
        if self._cfg is not None:
            self._new_init(self._cfg)
        self._need_key = True
        self._set_state("connecting", "waiting for the next keyframe")

    def _new_init(self, cfg: AvcConfig) -> None:
        assert self._chan is not None
        self._cfg = cfg
        self.init = init_segment(cfg, self._chan.width, self._chan.height)
        self.codec_msg = json.dumps(
            {"type": "codec", "codec": "h264", "mime": f'video/mp4; codecs="{cfg.codec}"', "supported": True,
             "width": self._chan.width, "height": self._chan.height}  # fmt: skip
        )
        self.gop = []
        self._broadcast(self.codec_msg)
        self._broadcast(_HEAD.pack(1, 0.0, 0.0) + self.init)

    def _ticks(self, t: int) -> int:
        assert self._chan is not None
        num, den = self._chan.time_base
        return t * num * TIMESCALE // den

    def _frame(self, f: ChannelFrame) -> None:
        chan = self._chan
        if chan is None or self.state == "unsupported":
            return
        if self._need_key and not f.keyframe:
            return  # a connection may start mid-GOP: nothing before its first keyframe decodes
        self._need_key = False
        sample, new_cfg = to_avcc(f.data, self._cfg, self._cfg.avcc_input if self._cfg else False)
        if new_cfg is not None:
            self._new_init(new_cfg)
        if self._cfg is None or not sample:
            return
        if f.dts is None:
            dts = self._next
            cts = 0
        else:
            raw = self._ticks(f.dts)
            if self._offset is None or raw + self._offset < self._last_dts or raw + self._offset > self._next + 10 * TIMESCALE:
                self._offset = self._next - raw  # a new connection, or a jump: continue from here
            dts = raw + self._offset
            if dts <= self._last_dts:
                dts = self._last_dts + 1
            cts = max(0, self._ticks(f.pts if f.pts is not None else f.dts) - raw)
        if self._last_dts >= 0 and 0 < dts - self._last_dts < 5 * TIMESCALE:
            step = dts - self._last_dts
            self._avg += (step - self._avg) / 16
            # A frame's duration is a guess (the next one has not arrived): MSE takes a next frame
            # more than twice that late for a discontinuity and drops all until the next keyframe
            # (measured: 1 s holes under jitter), so guess long — an overlap costs nothing.
            self._dur = max(step, int(1.5 * self._avg))
        self._last_dts = dts
        self._next = dts + self._dur
        self._seq += 1
        frag = media_fragment(self._seq, dts, self._dur, cts, f.keyframe, sample)
        msg = _HEAD.pack(3 if f.keyframe else 2, f.arrival_us / 1000.0, dts / TIMESCALE) + frag
        if f.keyframe:
            self.gop = []
        if self.gop or f.keyframe:
            self.gop.append((msg, f.keyframe))
        self.last_frame = time.monotonic()
        self.frames += 1
        if self.state != "live":
            self._set_state("live")
        self._broadcast(msg, frame=True, key=f.keyframe)


class LiveFeeds:
    """The feeds of this API process, by camera."""

    def __init__(self, opener_for: Callable[[str], Opener], why_offline: Callable[[str, str], Awaitable[str]]) -> None:
        self.opener_for = opener_for
        self.why_offline = why_offline
        self.feeds: dict[str, LiveFeed] = {}

    def feed(self, camera_id: str) -> LiveFeed:
        f = self.feeds.get(camera_id)
        if f is None:
            f = LiveFeed(camera_id, self.opener_for(camera_id), self._idle, lambda err: self.why_offline(camera_id, err))
            self.feeds[camera_id] = f
        return f

    def _idle(self, f: LiveFeed) -> None:
        if self.feeds.get(f.camera_id) is f:
            del self.feeds[f.camera_id]

    def close(self) -> None:
        for f in list(self.feeds.values()):
            f.close()
        self.feeds.clear()
