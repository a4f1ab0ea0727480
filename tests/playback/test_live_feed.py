"""A slow viewer never holds the feed back: it loses what waits and starts again at a keyframe."""

from __future__ import annotations

import asyncio
import socket

from playback.live_feed import VIEWER_QUEUE, LiveFeed, Viewer


def frame(key: bool) -> bytes:
    return bytes([3 if key else 2]) + bytes(16) + b"moof"


def feed_on(sock: socket.socket) -> LiveFeed:
    """A feed whose channel is one end of a socket pair (in a running event loop)."""

    async def opener():  # type: ignore[no-untyped-def]
        return await asyncio.open_unix_connection(sock=sock)

    async def why(err: str) -> str:
        return "camera offline"

    return LiveFeed("cam", opener, lambda f: None, why)


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


def test_feed_packages_once_and_a_late_viewer_starts_at_the_cached_keyframe() -> None:
    """A real channel byte stream (storage/live_channel.py) of real H.264 frames, over a socket."""
    import json

    from storage.live_channel import ChannelConfig, encode_config, encode_end, encode_frame_header
    from tests.playback.test_live_fmp4 import encoded_frames

    pkts = encoded_frames(12)
    ours, theirs = socket.socketpair()

    def send_frame(i: int) -> None:
        data = bytes(pkts[i])
        ours.sendall(encode_frame_header(pkts[i].is_keyframe, i * 3600, i * 3600, 0, 1_000_000 + i, len(data)) + data)

    async def scenario() -> tuple[list[bytes | str], list[bytes | str], list[bytes | str]]:
        feed = feed_on(theirs)
        first, late = Viewer(), Viewer()
        feed.join(first)
        ours.sendall(encode_config(ChannelConfig("h264", b"", 160, 96, (1, 90000))))
        for i in range(3):  # keyframe + two
            send_frame(i)
        while feed.frames < 3:
            await asyncio.sleep(0.01)
        feed.join(late)
        ours.sendall(encode_end("stream ended"))
        while feed.state != "offline":
            await asyncio.sleep(0.01)
        feed.close()
        return list(first.queue), list(late.queue), [feed.reason]

    first, late, reason = asyncio.run(scenario())
    kinds = lambda q: [m[0] for m in q if isinstance(m, bytes)]  # noqa: E731
    assert kinds(first) == [1, 3, 2, 2], "init, then each frame as it came"
    assert kinds(late) == [1, 3, 2, 2], "a late viewer: the init and the GOP from its keyframe"
    assert late[[i for i, m in enumerate(late) if isinstance(m, bytes)][1]] == first[[i for i, m in enumerate(first) if isinstance(m, bytes)][1]], "packaged once, the same bytes"
    states = [json.loads(m)["state"] for m in first if isinstance(m, str) and '"state"' in m]
    assert states[-2:] == ["live", "offline"] and reason == ["camera disconnected: stream ended"]


def test_the_feed_tells_the_worker_when_a_viewer_wants_low_delay() -> None:
    """Nothing said while bursts will do (where a subscriber starts), one `LOW_DELAY` while any
    viewer wants it (however often it asks), one `BURSTS` when none does any more."""
    from storage.live_channel import BURSTS, LOW_DELAY

    ours, theirs = socket.socketpair()
    ours.setblocking(False)

    async def heard(n: int) -> bytes:
        got = b""
        for _ in range(200):
            try:
                got += ours.recv(100)
            except BlockingIOError:
                pass
            if len(got) >= n:
                break
            await asyncio.sleep(0.01)
        return got

    async def scenario() -> list[bytes]:
        feed = feed_on(theirs)
        wall, single = Viewer(), Viewer()
        feed.join(wall)
        feed.join(single)
        while feed._writer is None:
            await asyncio.sleep(0.01)
        said = [await heard(0)]  # bursts are where a subscriber starts: nothing to say
        feed.want(wall, False)
        feed.want(single, True)
        feed.want(single, True)
        said.append(await heard(1))
        feed.leave(single)
        said.append(await heard(1))
        feed.close()
        return said

    assert asyncio.run(scenario()) == [b"", LOW_DELAY, BURSTS]
