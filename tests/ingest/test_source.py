"""The RTSP packet source against the real GStreamer RTSP server: coalesced reads."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from ingest.source import AvSource, SourceError, SourceOptions, open_source
from harness.servers import RtspServer

pytestmark = pytest.mark.e2e  # long RTSP runs against the real server

FPS = 25


@pytest.fixture(scope="module")
def rtsp() -> Iterator[RtspServer]:
    srv = RtspServer({"/live": f"synthetic:?w=320&h=240&fps={FPS}&gop=25"})
    try:
        yield srv
    finally:
        srv.stop()


def _read(src: AvSource, seconds: float, work_s: float = 0.0) -> list[tuple[float, float]]:
    """(receipt, media time) of each timed video packet for `seconds`; `work_s` of work per packet."""
    out: list[tuple[float, float]] = []
    tb = float(src.video.time_base)
    t_end = time.monotonic() + seconds
    for pkt in src.packets():
        if pkt.stream_index != src.video.index or pkt.dts is None:
            continue
        out.append((time.monotonic(), pkt.dts * tb))
        if work_s:
            time.sleep(work_s)
        if out[-1][0] >= t_end:
            break
    return out


def _lags(recv: list[tuple[float, float]]) -> list[float]:
    """How far behind the live edge (the best arrival − media time seen) each packet was read."""
    d = [r - m for r, m in recv]
    edge = min(d)
    return [x - edge for x in d]


def _assert_bursts(recv: list[tuple[float, float]], at_least: int) -> None:
    """Every frame in order, read in bursts (`at_least` gaps of 0.12 s or more), none left waiting
    much over a 0.2 s pause."""
    frame = 1 / FPS
    steps = [b[1] - a[1] for a, b in zip(recv, recv[1:])]
    assert all(abs(s - frame) < frame / 2 for s in steps), "every frame, in order, none skipped"
    gaps = [b[0] - a[0] for a, b in zip(recv, recv[1:])]
    # The thread pauses ~0.2 s at the live edge, so packets reach it in bursts (~5 a second);
    # read one by one, a 25 fps stream's packets are 40 ms apart.
    assert sum(g >= 0.12 for g in gaps) >= at_least, sorted(gaps)[-10:]
    assert max(_lags(recv)) <= 0.2 + 0.25, "a packet waits at most about one pause"


def test_coalesced_reads_come_in_bursts_lose_nothing_and_stay_near_the_live_edge(rtsp: RtspServer) -> None:
    src = open_source(rtsp.url("/live"), SourceOptions(coalesce_s=0.2))
    try:
        recv = _read(src, 4.0)
    finally:
        src.close()
    _assert_bursts(recv, 5)


def test_coalescing_stops_while_the_reader_is_behind(rtsp: RtspServer) -> None:
    """A slow consumer (30 ms per 40 ms frame) pausing after every packet would fall ~5 s behind in
    6 s; reading at the live edge only, it keeps up."""
    src = open_source(rtsp.url("/live"), SourceOptions(coalesce_s=0.2))
    try:
        recv = _read(src, 6.0, work_s=0.03)
    finally:
        src.close()
    assert len(recv) >= 6.0 * FPS * 0.8
    assert _lags(recv)[-1] <= 1.0, _lags(recv)[-5:]


def test_a_low_delay_viewer_makes_the_reader_take_each_frame_as_it_arrives(
    rtsp: RtspServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a subscriber asks for low delay the reader waits on the socket, never on a timer: a
    pause shorter than a frame woke it twice per frame (the timer, then the socket). Watched in
    bursts, or unwatched, it pauses as before."""
    import threading

    import ingest.source

    reader = threading.get_ident()
    slept: list[float] = []
    real_sleep = time.sleep

    def sleep(s: float) -> None:  # the clock's sleep, counted for the reader's thread only
        if threading.get_ident() == reader:
            slept.append(s)
        real_sleep(s)

    monkeypatch.setattr(ingest.source.time, "sleep", sleep)
    src = open_source(rtsp.url("/live"), SourceOptions(coalesce_s=0.2))
    live = SimpleNamespace(active=True, low_delay=True)
    src.live = live
    try:
        watched = _read(src, 3.0)
        assert slept == [], f"slept while watched with low delay: {slept[:5]}"
        live.low_delay = False  # the single view closed, a wall tile still watches
        _read(src, 1.5)
        assert slept and all(s == 0.2 for s in slept), "watched in bursts, the reader pauses at the live edge"
        slept.clear()
        live.active = False
        _read(src, 1.5)
    finally:
        src.close()
    gaps = [b[0] - a[0] for a, b in zip(watched, watched[1:])]
    assert len(watched) >= 3.0 * FPS * 0.8
    assert sum(g >= 0.12 for g in gaps) <= 2, "frame by frame, not in bursts"
    assert slept and all(s == 0.2 for s in slept), "unwatched, the reader pauses at the live edge again"


def test_a_low_delay_wish_is_ignored_when_the_node_refuses_it(rtsp: RtspServer) -> None:
    """`workers.low_delay_live: false`: a single view gets the bursts too (the recording's cost
    stays the unwatched one whatever viewers ask)."""
    src = open_source(rtsp.url("/live"), SourceOptions(coalesce_s=0.2, low_delay=False))
    src.live = SimpleNamespace(active=True, low_delay=True)
    try:
        recv = _read(src, 3.0)
    finally:
        src.close()
    _assert_bursts(recv, 9)


def test_a_source_watched_from_wall_tiles_keeps_its_pause(rtsp: RtspServer) -> None:
    """By default (`watched_coalesce_s` equal to the pause) a camera watched by viewers content with
    bursts keeps the unwatched cadence (the recording's cost unchanged); the bursts are the player's
    to absorb. Nothing is lost."""
    src = open_source(rtsp.url("/live"), SourceOptions(coalesce_s=0.2))
    src.live = SimpleNamespace(active=True, low_delay=False)
    try:
        recv = _read(src, 3.0)
    finally:
        src.close()
    _assert_bursts(recv, 9)  # ~15 pauses in 3 s, as unwatched


def test_udp_transport_is_never_paused(rtsp: RtspServer) -> None:
    src = open_source(rtsp.url("/live"), SourceOptions(transport="udp", coalesce_s=0.2, watched_coalesce_s=0.2))
    try:
        assert src.coalesce_s == 0.0 and src.watched_coalesce_s == 0.0
    finally:
        src.close()


# ---- the live-edge rule alone, on synthetic timelines (no network) -------------------------------

def test_the_recorder_opens_only_allowed_schemes(tmp_path: Path) -> None:
    """A row written before the rule (or by hand) is refused by the recorder too, before FFmpeg."""
    clip = tmp_path / "local.mp4"
    clip.write_bytes(b"\0" * 16)
    for url in (str(clip), f"file://{clip}", f"concat:{clip}|{clip}"):
        with pytest.raises(SourceError, match="is not allowed"):
            open_source(url, SourceOptions())


class _SimulatedSocket:
    """A camera's frames reaching a socket every 40 ms on a simulated clock; a read returns a frame
    already there at once (0.1 ms) and otherwise waits for the next one, as libavformat's does."""

    def __init__(self) -> None:
        self.now = 0.0
        self.read_lags: list[tuple[float, float]] = []  # (read time, how long the frame waited)

    def monotonic(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s

    def demux(self, _streams: object) -> Iterator[SimpleNamespace]:
        k = 0
        while True:
            arrived = k / FPS
            if arrived > self.now:
                self.now = arrived  # the read waits on the network
            self.now += 0.0001
            self.read_lags.append((self.now, self.now - arrived))
            yield SimpleNamespace(dts=k * 3600, pts=k * 3600, size=1000, stream_index=0)
            k += 1


BOUND_S = 0.2 + 0.1 + 0.01  # a pause, half a pause (frames it may leave waiting), a read


def test_a_pausing_reader_never_drifts_behind_the_camera(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ten simulated minutes of a pausing reader (0.2 s): a frame never waits in the socket more
    than a pause and half a pause. The live edge used to rise 1 ms a second from any read (for slow
    camera clocks): pausing after a frame within half a pause of it left the newest frames unread,
    the edge rose with them, and the lag grew ~1 ms a second (a wall tile 0.37 s behind in its
    first minute, 0.84 s over ten). Now only a read that waited on the network moves the edge."""
    import ingest.source

    sock = _SimulatedSocket()
    monkeypatch.setattr(ingest.source.time, "monotonic", sock.monotonic)
    monkeypatch.setattr(ingest.source.time, "sleep", sock.sleep)
    src = object.__new__(AvSource)
    src.coalesce_s, src.watched_coalesce_s, src.low_delay, src.live = 0.2, 0.2, True, None
    src.video = SimpleNamespace(index=0, time_base=1 / 90000)
    src.container = sock
    src._streams = []
    src.timing = SimpleNamespace(frame=lambda *a: None, log=lambda *a: None)
    stalled = False
    for _ in src._network_packets([]):
        if sock.now >= 600:
            break
        if not stalled and sock.now >= 300:
            stalled, sock.now = True, sock.now + 2.0  # the machine stalls 2 s: a backlog of 50 frames
    caught_up = [lag for t, lag in sock.read_lags if 303 <= t < 360]
    assert max(caught_up) <= BOUND_S, "behind, the reader read on without pausing and caught up within a second"
    last_minute = [lag for t, lag in sock.read_lags if t >= 540]
    assert max(last_minute) <= BOUND_S, f"frames waited up to {max(last_minute):.2f} s in the tenth minute"
    first_minute = [lag for t, lag in sock.read_lags if t < 60]
    assert max(first_minute) <= BOUND_S
    waits = sum(1 for a, b in zip(sock.read_lags, sock.read_lags[1:]) if b[1] < 0.001 and b[0] - a[0] > 0.005)
    assert waits < 600 * 0.5, f"{waits} reads waited on the socket in 600 s: the reader pauses without draining it first"
