"""The network's condition per camera (ingest/network.py), driven with explicit times."""

from __future__ import annotations

import pytest

from ingest.network import STALL_GAP_S, ArrivalTiming, LinkMeter, rtp_missed


def play(m: LinkMeter, t0: float, seconds: float, fps: float = 25.0, size: int = 5000, media0: float = 0.0) -> float:
    """Frames at `fps` from t0 for `seconds` (media time from media0); returns the time after the last."""
    n = int(round(seconds * fps))
    for i in range(n):
        m.frame(t0 + i / fps, size, media0 + i / fps)
    return t0 + n / fps


def test_reconnects_per_hour_count_the_last_hour_over_at_least_ten_minutes() -> None:
    m = LinkMeter(0.0)
    m.connected(0.0, 25.0, reconnect=False)
    t = 0.0
    for _ in range(3):
        t = play(m, t, 60)
        m.disconnected(t)
        t += 2.0
        m.connected(t, 25.0, reconnect=True)
    f = m.figures(t + 1)
    assert f.reconnects == 3 and f.reconnects_per_hour == pytest.approx(3 * 3600 / 600)  # 3 in 3 min → over 10 min
    f = m.figures(t + 2 * 3600)
    assert f.reconnects == 3 and f.reconnects_per_hour == 0.0  # an hour later they are history


def test_stalled_seconds_are_the_gaps_longer_than_a_second_and_the_silence_now() -> None:
    m = LinkMeter(0.0)
    m.connected(0.0, 25.0, reconnect=False)
    t = play(m, 0.0, 10)
    t = play(m, t + 0.6, 10)  # a 0.64 s gap: jitter, not a stall
    t = play(m, t + 5.0, 10)  # a 5.04 s gap
    assert m.figures(t).stalled_s == pytest.approx(5.04, abs=0.01)
    later = m.figures(t + 3.0)  # silent for 3 s now
    assert later.stalled_s == pytest.approx(5.04 + 3.0 + 1 / 25, abs=0.01)  # since the last frame
    assert later.stalled_total_s == pytest.approx(later.stalled_s)
    assert STALL_GAP_S == 1.0


def test_delivery_against_the_declared_or_the_timestamped_rate() -> None:
    m = LinkMeter(0.0)
    m.connected(0.0, 25.0, reconnect=False)
    for i in range(60 * 25):
        if i % 2 == 0:  # every other frame lost on the way
            m.frame(i / 25, 5000, i / 25)
    f = m.figures(60.0)
    assert f.nominal_fps == 25.0 and f.delivery_ratio == pytest.approx(0.5, abs=0.03)
    undeclared = LinkMeter(0.0)
    undeclared.connected(0.0, None, reconnect=False)
    play(undeclared, 0.0, 60, fps=15)
    g = undeclared.figures(60.0)
    assert g.nominal_fps == pytest.approx(15.0) and g.delivery_ratio == pytest.approx(1.0, abs=0.03)


def test_bitrate_against_the_cameras_own_baseline() -> None:
    m = LinkMeter(0.0)
    m.connected(0.0, 25.0, reconnect=False)
    t = play(m, 0.0, 600, size=5000)  # 1000 kbit/s for ten minutes
    assert m.figures(t).bitrate_ratio == pytest.approx(1.0, abs=0.02)
    t = play(m, t, 60, size=2500, media0=t)  # then half of it for a minute
    f = m.figures(t)
    assert f.bitrate_baseline_kbps == pytest.approx(1000, rel=0.02)
    assert f.bitrate_kbps == pytest.approx(500, rel=0.05) and f.bitrate_ratio == pytest.approx(0.5, abs=0.05)


def test_figures_read_every_two_seconds_follow_the_camera() -> None:
    """The watchdog reads the figures every 2 s; the slow ones (the hour's baseline, the nominal
    rate) are worked out again only as buckets close — they must still follow the camera."""
    m = LinkMeter(0.0)
    m.connected(0.0, None, reconnect=False)
    t, media = 0.0, 0.0

    def run(seconds: float, fps: float, size: int) -> None:
        nonlocal t, media
        for _ in range(int(seconds / 2)):
            end = play(m, t, 2.0, fps=fps, size=size, media0=media)
            media += end - t
            t = end
            m.figures(t)

    run(600, 25, 5000)  # 1000 kbit/s at 25 fps for ten minutes
    first = m.figures(t)
    assert first.nominal_fps == pytest.approx(25.0) and first.bitrate_baseline_kbps == pytest.approx(1000, rel=0.02)
    run(3000, 15, 4000)  # reconfigured: 15 fps, 480 kbit/s, for the next 50 minutes
    f = m.figures(t)
    assert f.nominal_fps == pytest.approx(15.0)
    assert f.bitrate_baseline_kbps == pytest.approx(480, rel=0.02)  # the hour's median minute
    assert f.bitrate_ratio == pytest.approx(1.0, abs=0.02)


def test_jitter_over_frames_the_reader_waited_for_only() -> None:
    steady = ArrivalTiming("tcp")
    for i in range(200):
        steady.frame(10 + i * 0.04, i * 0.04, waited_s=0.03)
    assert steady.jitter_s == pytest.approx(0.0, abs=1e-9)
    shaky = ArrivalTiming("udp")
    for i in range(400):
        late = 0.02 if i % 2 else 0.0  # every other frame 20 ms late: |D| = 20 ms each step
        shaky.frame(10 + i * 0.04 + late, i * 0.04, waited_s=0.03)
        shaky.frame(99 + i, i * 0.04, waited_s=0.0)  # read from the backlog: not the network's time
    assert shaky.jitter_s == pytest.approx(0.02, abs=0.001)


def test_rtp_loss_is_read_from_ffmpegs_messages_over_udp_only() -> None:
    assert rtp_missed("RTP: missed 12 packets") == 12 and rtp_missed("max delay reached.") == 0
    udp, tcp = ArrivalTiming("udp"), ArrivalTiming("tcp")
    for t in (udp, tcp):
        t.log("RTP: missed 3 packets\n")
        t.log("RTP: missed 4 packets\n")
    assert udp.rtp_loss == 7 and tcp.rtp_loss is None
