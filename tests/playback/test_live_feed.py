"""A slow viewer never holds the feed back: it loses what waits and starts again at a keyframe."""

from __future__ import annotations

import asyncio

from playback.live_feed import VIEWER_QUEUE, Viewer


def frame(key: bool) -> bytes:
    return bytes([3 if key else 2]) + bytes(16) + b"moof"


def test_slow_viewer_jumps_to_the_next_keyframe_with_a_bounded_queue() -> None:
    v = Viewer()
    v.put('{"type": "hello"}')
    v.put(b"\x01" + bytes(16) + b"init")
    v.put(frame(False), frame=True, key=False)
    assert v.frames_queued == 0, "nothing before the first keyframe"
    v.put(frame(True), frame=True, key=True)
    for _ in range(VIEWER_QUEUE + 10):  # the viewer takes nothing
        v.put(frame(False), frame=True, key=False)
    assert v.frames_queued <= VIEWER_QUEUE
    assert v.jumps == 1 and v.waiting_key
    v.put(frame(False), frame=True, key=False)
    assert v.frames_queued == 0, "after a jump, nothing until a keyframe"
    v.put(frame(True), frame=True, key=True)
    kept = list(v.queue)
    assert kept[0] == '{"type": "hello"}' and kept[1][0] == 1, "control messages and the init stay"
    assert [m[0] for m in kept[2:]] == [3], "then the live edge's keyframe"

    async def drain() -> list[bytes | str]:
        return [await v.get() for _ in range(3)]

    got = asyncio.run(drain())
    assert got == kept and v.frames_queued == 0
