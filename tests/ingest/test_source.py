"""The RTSP packet source against the real GStreamer RTSP server: coalesced reads."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from ingest.source import AvSource, SourceOptions, open_source
from tests.servers import RtspServer

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


def test_coalesced_reads_come_in_bursts_lose_nothing_and_stay_near_the_live_edge(rtsp: RtspServer) -> None:
    src = open_source(rtsp.url("/live"), SourceOptions(coalesce_s=0.2))
    try:
        recv = _read(src, 4.0)
    finally:
        src.close()
    frame = 1 / FPS
    steps = [b[1] - a[1] for a, b in zip(recv, recv[1:])]
    assert all(abs(s - frame) < frame / 2 for s in steps), "every frame, in order, none skipped"
    gaps = [b[0] - a[0] for a, b in zip(recv, recv[1:])]
    # The thread pauses ~0.2 s at the live edge, so packets reach it in bursts (~20 in 4 s);
    # read one by one, a 25 fps stream's packets are 40 ms apart.
    assert sum(g >= 0.12 for g in gaps) >= 5, sorted(gaps)[-10:]
    assert max(_lags(recv)) <= 0.2 + 0.25, "a packet waits at most about one pause"


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


def test_udp_transport_is_never_paused(rtsp: RtspServer) -> None:
    src = open_source(rtsp.url("/live"), SourceOptions(transport="udp", coalesce_s=0.2))
    try:
        assert src.coalesce_s == 0.0
    finally:
        src.close()
