"""The worker's live channel (ingest/live_publish.py): idle without subscribers, one send per frame
with them, and a subscriber that reads nothing is dropped — the camera's thread never waits."""

from __future__ import annotations

import socket
import time
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import av

from ingest.live_publish import MAX_PENDING, open_publisher
from storage.live_channel import ChannelConfig, ChannelEnd, ChannelFrame, FrameReader, connect
from harness.vigilproc import wait_until


def fake_video() -> SimpleNamespace:
    cc = SimpleNamespace(name="h264", extradata=b"\0\0\0\1gSPS\0\0\0\1hPPS", width=640, height=360)
    return SimpleNamespace(codec_context=cc, time_base=Fraction(1, 90000))


def packet(i: int, size: int = 1000, key: bool = False) -> av.Packet:
    p = av.Packet(bytes([i % 256]) * size)
    p.dts = p.pts = i * 3600
    p.is_keyframe = key
    return p


def read_messages(s: socket.socket, want: int, timeout: float = 5.0) -> list[object]:
    r = FrameReader()
    out: list[object] = []
    s.settimeout(timeout)
    while len(out) < want:
        data = s.recv(1 << 16)
        if not data:
            break
        out += r.feed(data)
    return out


def test_publisher_idle_until_subscribed_then_one_message_per_frame(tmp_path: Path) -> None:
    pub = open_publisher(tmp_path, "cam-live", fake_video())
    assert pub is not None and not pub.active, "no subscriber: the session skips publishing"
    assert open_publisher(tmp_path, "cam-live", fake_video()) is None, "one channel per camera connection"
    sub = connect(tmp_path, "cam-live")
    wait_until(lambda: pub.active, 5, 0.01, "the subscriber to be accepted")
    for i in range(3):
        pub.publish(packet(i, key=i == 0), 1_000_000 + i)
    pub.close("stream ended")
    msgs = read_messages(sub, 5)
    assert msgs[0] == ChannelConfig("h264", b"\0\0\0\1gSPS\0\0\0\1hPPS", 640, 360, (1, 90000))
    frames = [m for m in msgs if isinstance(m, ChannelFrame)]
    assert [(f.keyframe, f.dts, f.arrival_us, f.data[:1]) for f in frames] == [
        (True, 0, 1_000_000, b"\0"), (False, 3600, 1_000_001, b"\1"), (False, 7200, 1_000_002, b"\2")]  # fmt: skip
    assert msgs[-1] == ChannelEnd("stream ended")
    sub.close()
    again = open_publisher(tmp_path, "cam-live", fake_video())
    assert again is not None, "the name is free again once the connection ended"
    again.close("done")


def test_subscriber_that_reads_nothing_is_dropped_without_blocking(tmp_path: Path) -> None:
    pub = open_publisher(tmp_path, "cam-slow", fake_video())
    assert pub is not None
    stuck = connect(tmp_path, "cam-slow")  # never reads
    wait_until(lambda: pub.active, 5, 0.01, "the subscriber to be accepted")
    t0 = time.monotonic()
    sent = 0
    while pub.active and sent < 4 * MAX_PENDING:
        pub.publish(packet(0, 100_000), 0)
        sent += 100_000
    took = time.monotonic() - t0
    assert not pub.active and pub.dropped_subscribers == 1, "dropped once it fell MAX_PENDING behind"
    assert sent < 2 * MAX_PENDING + (8 << 20), f"dropped after {sent} bytes"
    assert took < 2.0, f"the camera thread never waited ({took:.2f} s for {sent} bytes)"
    stuck.close()
    pub.close("done")


def test_a_subscriber_asks_for_low_delay_and_the_last_wish_stands(tmp_path: Path) -> None:
    """`LOW_DELAY`/`BURSTS` from subscribers (storage/live_channel.py): low delay while any of them
    wants it; a subscriber leaving takes its wish with it."""
    from storage.live_channel import BURSTS, LOW_DELAY

    pub = open_publisher(tmp_path, "cam-wish", fake_video())
    assert pub is not None
    a, b = connect(tmp_path, "cam-wish"), connect(tmp_path, "cam-wish")
    wait_until(lambda: len(pub._subs) == 2, 5, 0.01, "both subscribers accepted")
    assert pub.active and not pub.low_delay, "a subscriber starts content with bursts"
    a.sendall(LOW_DELAY)
    wait_until(lambda: pub.low_delay, 5, 0.01, "a's wish heard")
    b.sendall(BURSTS + BURSTS)
    a.sendall(BURSTS + LOW_DELAY)  # the last byte stands
    time.sleep(0.05)  # nothing to wait on: the wish must stay what it is
    assert pub.low_delay
    a.close()
    wait_until(lambda: len(pub._subs) == 1, 5, 0.01, "a gone")
    assert pub.active and not pub.low_delay, "the wish left with its subscriber"
    b.sendall(LOW_DELAY)
    wait_until(lambda: pub.low_delay, 5, 0.01, "b's wish heard")
    pub.close("done")
    assert not pub.active and not pub.low_delay
    b.close()
