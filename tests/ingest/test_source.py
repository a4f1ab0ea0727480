"""The RTSP packet source against the real GStreamer RTSP server: coalesced reads."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from ingest.source import AvSource, LiveEdge, SourceError, SourceOptions, open_source
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

def _arrivals(seconds: float, *, clock_rate: float = 1.0, late_s: float = 0.0, fps: int = FPS) -> list[tuple[float, float]]:
    """(arrival on our clock, camera media time) of each frame of a camera whose clock runs at
    `clock_rate` of ours, each frame arriving `late_s` after it was due."""
    return [(i / fps / clock_rate + late_s, i / fps) for i in range(int(seconds * fps))]


def test_a_camera_whose_clock_runs_slow_stays_at_the_live_edge() -> None:
    # 100 ppm slow: after ~17 min every packet sat more than half a pause from the edge seen at
    # the start, and the reader stopped pausing until a re-base 30 s later
    edge = LiveEdge(near_s=0.1)
    verdicts = [edge.at_edge(t, m) for t, m in _arrivals(3600, clock_rate=1 - 100e-6)]
    assert all(verdicts)


def test_a_reader_behind_the_edge_does_not_pause_until_it_has_caught_up() -> None:
    edge = LiveEdge(near_s=0.1)
    live = _arrivals(60)
    for t, m in live:
        assert edge.at_edge(t, m)
    # the machine stalls 2 s; the backlog is then read fast (10 frames per 10 ms)
    t0, m0 = live[-1][0] + 2.0, live[-1][1]
    backlog = [(t0 + i * 0.001, m0 + (i + 1) / FPS) for i in range(50)]
    verdicts = [edge.at_edge(t, m) for t, m in backlog]
    assert not any(verdicts[:45])  # ≥ 0.2 s behind: read on without pausing
    assert verdicts[-1]  # caught up: the last frame of the backlog is fresh


def test_a_clock_that_steps_back_is_re_based_after_30_s() -> None:
    edge = LiveEdge(near_s=0.1)
    for t, m in _arrivals(10):
        edge.at_edge(t, m)
    # the camera's clock steps 5 s back (NTP, a restart of its encoder): every packet looks behind
    after = [(10 + t, m - 5 + 10) for t, m in _arrivals(40)]
    verdicts = [edge.at_edge(t, m) for t, m in after]
    first_fresh = next(i for i, v in enumerate(verdicts) if v)
    assert 29.5 <= after[first_fresh][0] - 10 <= 31.0
    assert all(verdicts[first_fresh:])


def test_the_recorder_opens_only_allowed_schemes(tmp_path: Path) -> None:
    """A row written before the rule (or by hand) is refused by the recorder too, before FFmpeg."""
    clip = tmp_path / "local.mp4"
    clip.write_bytes(b"\0" * 16)
    for url in (str(clip), f"file://{clip}", f"concat:{clip}|{clip}"):
        with pytest.raises(SourceError, match="is not allowed"):
            open_source(url, SourceOptions())
