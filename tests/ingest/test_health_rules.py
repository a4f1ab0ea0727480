"""The verdict state machine, driven by synthetic sample sequences (no decoding, no clock)."""

from __future__ import annotations

import re
from collections.abc import Iterable

import pytest

from ingest.health.rules import (
    BASELINE_MIN_SAMPLES,
    REPEAT_MEMORY,
    ConnectFailed,
    Figures,
    HealthRules,
    LinkCheck,
    Sample,
    Verdict,
)
from core.settings import HealthConfig

GOP_S = 2.0
CFG = HealthConfig(
    freeze_after_s=10, black_after_s=5, tamper_after_s=20, stall_timeout_s=5, recover_after_s=2,
    freeze_diff=0.4, freeze_p_ratio=0.1, black_luma=32, black_fraction=0.98, tamper_ratio=0.2,
)  # fmt: skip

# Figures as measured by bench/health_thresholds.py (640×360 and 1280×720, GOP 50).
MOVING = Figures(diff=28.0, repeat=27.0, luma=130, dark_fraction=0.001, sharpness=0.36, contrast=45, p_ratio=0.024)
QUIET = Figures(diff=1.14, repeat=1.12, luma=126, dark_fraction=0.001, sharpness=0.33, contrast=44, p_ratio=0.005)
QUIET_CBR = Figures(diff=0.9, repeat=0.88, luma=126, dark_fraction=0.001, sharpness=0.33, contrast=44, p_ratio=0.07)
NIGHT = Figures(diff=0.51, repeat=0.50, luma=38, dark_fraction=0.11, sharpness=0.25, contrast=9, p_ratio=0.005)
FROZEN_CLOCK = Figures(
    diff=0.03, repeat=0.03, luma=128, dark_fraction=0.001, sharpness=0.33, contrast=45, p_ratio=0.002
)
FROZEN_NOISY_CBR = Figures(
    diff=0.29, repeat=0.2, luma=126, dark_fraction=0.0, sharpness=0.38, contrast=44, p_ratio=0.029
)
# A bitrate-mode x264 without a QP floor re-quantising a frozen noisy 720p picture: (diff, repeat).
ERRATIC = [(0.4, 0.4), (0.61, 0.6), (0.02, 0.02), (0.4, 0.4), (0.55, 0.55), (0.37, 0.37), (0.0, 0.0), (0.3, 0.14),
           (0.25, 0.25), (0.14, 0.14), (0.59, 0.57), (0.58, 0.08), (0.0, 0.0), (0.59, 0.11), (0.6, 0.6), (0.65, 0.15),
           (0.02, 0.02), (0.1, 0.06)]  # fmt: skip
BLACK = Figures(diff=0.5, luma=18, dark_fraction=0.996, sharpness=0.0, contrast=1.2, p_ratio=0.06)
BLURRED = Figures(diff=25.0, luma=130, dark_fraction=0.001, sharpness=0.018, contrast=40, p_ratio=0.1)


class Feed:
    """Drives HealthRules with samples one GOP apart and collects the transitions."""

    def __init__(self, cfg: HealthConfig = CFG) -> None:
        self.rules = HealthRules(cfg, start_t=0.0)
        self.t = 0.0
        self.verdicts: list[Verdict] = []

    def samples(self, figures: Figures, seconds: float, step: float = GOP_S) -> Feed:
        end = self.t + seconds
        while self.t < end - 1e-9:
            self.t += step
            self.feed(Sample(self.t, figures))
        return self

    def feed(self, obs: Sample | LinkCheck | ConnectFailed) -> Verdict | None:
        v = self.rules.feed(obs)
        if v is not None:
            self.verdicts.append(v)
        return v

    @property
    def path(self) -> list[str]:
        return [v.state for v in self.verdicts]


def test_starting_goes_online_at_the_first_clear_picture() -> None:
    f = Feed().samples(MOVING, GOP_S)
    assert f.path == ["online"]
    v = f.verdicts[0]
    assert (v.previous, v.at, v.detected, v.reason) == ("starting", 2.0, 2.0, "first picture")
    assert v.figures["diff"] == 28.0


def test_moving_scene_never_alarms() -> None:
    f = Feed().samples(MOVING, 600)
    assert f.path == ["online"]


@pytest.mark.parametrize("quiet", [QUIET, QUIET_CBR, NIGHT], ids=["crf", "cbr", "night"])
def test_static_noisy_scene_stays_online(quiet: Figures) -> None:
    f = Feed().samples(MOVING, 10).samples(quiet, 600)
    assert f.path == ["online"]


def test_frozen_with_ticking_clock_is_frozen_within_freeze_after_plus_one_gop() -> None:
    f = Feed().samples(MOVING, 20)
    freeze_at = f.t + 1.0  # the picture stops between two keyframes…
    f.samples(MOVING, GOP_S)  # …so the next keyframe still differs from the one before the freeze
    f.samples(FROZEN_CLOCK, 30)
    assert f.path == ["online", "frozen"]
    v = f.verdicts[1]
    assert v.detected - freeze_at <= CFG.freeze_after_s + GOP_S
    # dated from the first keyframe that already showed the frozen picture, at most one GOP late
    assert 0 <= v.at - freeze_at <= GOP_S
    assert v.detected - v.at == pytest.approx(CFG.freeze_after_s)
    assert "unchanged for 10.0 s" in v.reason and "P-frames" in v.reason
    assert v.figures["diff"] == 0.03 and v.figures["p_ratio"] == 0.002


def test_frozen_noisy_picture_from_a_bitrate_mode_encoder_is_frozen() -> None:
    f = Feed().samples(MOVING, 20).samples(FROZEN_NOISY_CBR, 30)
    assert f.path == ["online", "frozen"]


def test_large_p_frames_veto_a_freeze() -> None:
    """A low difference alone is not enough when the encoder keeps spending bits on change."""
    low_diff_busy_encoder = Figures(diff=0.2, repeat=0.2, luma=120, dark_fraction=0.0, sharpness=0.3, p_ratio=0.25)
    f = Feed().samples(MOVING, 10).samples(low_diff_busy_encoder, 120)
    assert f.path == ["online"]


def test_freeze_without_p_frame_figures_uses_the_difference_alone() -> None:
    intra_only = Figures(diff=0.02, repeat=0.02, luma=120, dark_fraction=0.0, sharpness=0.3, p_ratio=None)
    f = Feed().samples(MOVING, 10).samples(intra_only, 20)
    assert f.path == ["online", "frozen"]


def test_erratic_keyframes_of_a_frozen_picture_still_read_as_frozen() -> None:
    """Exact repeats keep turning up, so differences up to 2 × freeze_diff count as unchanged."""
    f = Feed().samples(MOVING, 10)
    for diff, rep in ERRATIC:
        f.samples(Figures(diff=diff, repeat=rep, luma=126, dark_fraction=0.0, sharpness=0.38, p_ratio=0.03), GOP_S)
    assert f.path == ["online", "frozen"]
    assert f.verdicts[1].detected - 10 <= CFG.freeze_after_s + 3 * GOP_S


def test_without_exact_repeats_the_band_does_not_apply() -> None:
    """The same differences from a live scene (no exact repeat ever) stay online."""
    f = Feed().samples(MOVING, 10)
    for diff, _ in ERRATIC * 3:
        d = max(diff, 0.45)
        f.samples(Figures(diff=d, repeat=d, luma=126, dark_fraction=0.0, sharpness=0.38, p_ratio=0.03), GOP_S)
    assert f.path == ["online"]


def test_unfreezing_into_a_dark_quiet_scene_recovers() -> None:
    f = Feed().samples(MOVING, 10).samples(FROZEN_CLOCK, 20)
    thaw = f.t + GOP_S
    f.samples(NIGHT, 60)
    assert f.path == ["online", "frozen", "online"]
    # a frozen feed remembers the frozen spell's exact repeats for REPEAT_MEMORY × freeze_after_s;
    # a night scene's noise (0.51) is inside the band, so it takes that long to be believed
    late = f.verdicts[2].detected - thaw
    assert late <= REPEAT_MEMORY * CFG.freeze_after_s + CFG.recover_after_s + GOP_S


def test_unfreezing_into_motion_recovers_at_once() -> None:
    f = Feed().samples(MOVING, 10).samples(FROZEN_CLOCK, 20)
    thaw = f.t + GOP_S
    f.samples(MOVING, 10)
    assert f.path == ["online", "frozen", "online"]
    assert f.verdicts[2].detected - thaw == pytest.approx(CFG.recover_after_s)


def test_freeze_recovers_after_recover_after_s_dated_at_the_first_moving_sample() -> None:
    f = Feed().samples(MOVING, 10).samples(FROZEN_CLOCK, 30)
    motion_back = f.t + GOP_S
    f.samples(MOVING, 10)
    assert f.path == ["online", "frozen", "online"]
    v = f.verdicts[2]
    assert v.at == motion_back
    assert v.detected == motion_back + CFG.recover_after_s
    assert v.reason.startswith("picture changing again")


def test_flicker_around_the_threshold_does_not_flap() -> None:
    """Alternating frozen/moving samples: no fault holds long enough, no clear streak either."""
    f = Feed().samples(MOVING, 10)
    for _ in range(60):
        f.samples(FROZEN_CLOCK, GOP_S).samples(MOVING, GOP_S)
    assert f.path == ["online"]


def test_a_fault_that_flickers_keeps_its_state_until_clear_for_recover_after_s() -> None:
    f = Feed().samples(MOVING, 10).samples(FROZEN_CLOCK, 20)
    assert f.path == ["online", "frozen"]
    for _ in range(30):  # one moving sample between frozen ones: never clear for 2 s
        f.samples(MOVING, GOP_S).samples(FROZEN_CLOCK, GOP_S)
    assert f.path == ["online", "frozen"]
    f.samples(MOVING, 4)
    assert f.path == ["online", "frozen", "online"]


def test_hysteresis_zero_recovers_on_the_first_clear_sample() -> None:
    f = Feed(CFG.model_copy(update={"recover_after_s": 0.0})).samples(MOVING, 10).samples(FROZEN_CLOCK, 20)
    t = f.t
    f.samples(MOVING, GOP_S)
    assert f.path[-1] == "online" and f.verdicts[-1].detected == t + GOP_S


def test_black_after_black_after_s_and_recovery() -> None:
    f = Feed().samples(MOVING, 10)
    cover_at = f.t + GOP_S
    f.samples(BLACK, 12)
    assert f.path == ["online", "black"]
    v = f.verdicts[1]
    assert v.at == cover_at and v.detected == pytest.approx(cover_at + 6)  # 5 s, seen at the next GOP
    assert "dark picture" in v.reason and v.figures["dark_fraction"] == 0.996
    f.samples(MOVING, 6)
    assert f.path == ["online", "black", "online"]
    assert f.verdicts[2].reason.startswith("picture no longer dark")


def test_black_wins_over_frozen_when_a_black_picture_also_stands_still() -> None:
    frozen_black = Figures(
        diff=0.01, repeat=0.01, luma=17, dark_fraction=1.0, sharpness=0.0, contrast=0.5, p_ratio=0.001
    )
    f = Feed().samples(MOVING, 10).samples(frozen_black, 30)
    assert f.path == ["online", "black"]


def test_frozen_then_black_switches_to_the_more_specific_fault() -> None:
    frozen_black = Figures(
        diff=0.01, repeat=0.01, luma=17, dark_fraction=1.0, sharpness=0.0, contrast=0.5, p_ratio=0.001
    )
    f = Feed().samples(MOVING, 10).samples(FROZEN_CLOCK, 20).samples(frozen_black, 10)
    assert f.path == ["online", "frozen", "black"]
    f.samples(FROZEN_CLOCK, 4)  # light again, still frozen: the frozen streak has run all along
    assert f.path == ["online", "frozen", "black", "frozen"]


def test_tamper_is_judged_against_the_cameras_own_baseline() -> None:
    f = Feed().samples(MOVING, 60)
    assert f.rules.baseline == pytest.approx(0.36)
    blur_at = f.t + GOP_S
    f.samples(BLURRED, 30)
    assert f.path == ["online", "tampered"]
    v = f.verdicts[1]
    assert v.at == blur_at and v.detected - v.at == pytest.approx(CFG.tamper_after_s)
    assert v.figures["sharpness_baseline"] == 0.36
    assert "5% of the camera's baseline" in v.reason
    f.samples(MOVING, 4)
    assert f.path == ["online", "tampered", "online"]


def test_a_low_detail_camera_is_not_tampered_by_its_own_standards() -> None:
    """The same absolute sharpness is normal for a camera whose baseline is low."""
    low_detail = Figures(diff=5.0, luma=90, dark_fraction=0.0, sharpness=0.02, contrast=10, p_ratio=0.05)
    f = Feed().samples(low_detail, 300)
    assert f.path == ["online"]


def test_no_tamper_verdict_before_a_baseline_exists() -> None:
    f = Feed().samples(BLURRED, 60)
    assert f.path == ["online"]
    assert f.rules.baseline == pytest.approx(0.018)
    f2 = Feed().samples(MOVING, GOP_S * (BASELINE_MIN_SAMPLES - 1))
    assert f2.rules.baseline is None


def test_baseline_ignores_faulty_samples() -> None:
    f = Feed().samples(MOVING, 60).samples(BLURRED, 30).samples(MOVING, 10)
    assert f.rules.baseline == pytest.approx(0.36)


def test_stall_goes_offline_dated_at_the_last_packet() -> None:
    f = Feed().samples(MOVING, 10)
    last = f.t + 0.96  # the last packet of the stream
    assert f.feed(LinkCheck(last + 4.9, last)) is None
    v = f.feed(LinkCheck(last + 5.0, last, note="stream ended"))
    assert v is not None and (v.previous, v.state, v.at, v.detected) == ("online", "offline", last, last + 5.0)
    assert v.reason == "no video packets for 5.0 s (stream ended)"
    assert f.feed(LinkCheck(last + 9.0, last)) is None  # one event per transition


def test_connect_failure_goes_offline_at_once() -> None:
    f = Feed().samples(MOVING, 10)
    last = f.t + 0.5
    v = f.feed(ConnectFailed(last + 1.2, "connection refused", last))
    assert v is not None and (v.state, v.at, v.reason) == ("offline", last, "cannot connect: connection refused")
    assert f.feed(ConnectFailed(last + 3.0, "connection refused", last)) is None


def test_never_connected_camera_is_offline_from_the_failure() -> None:
    f = Feed()
    v = f.feed(ConnectFailed(0.3, "connection refused", None))
    assert v is not None and (v.previous, v.state, v.at) == ("starting", "offline", 0.3)


def test_recovery_from_offline_needs_recover_after_s_of_clear_pictures() -> None:
    f = Feed().samples(MOVING, 10)
    f.feed(LinkCheck(f.t + 6, f.t))
    f.t += 20  # reconnected 20 s later
    f.samples(MOVING, GOP_S)
    assert f.path == ["online", "offline"]
    back = f.t
    f.samples(MOVING, GOP_S)
    assert f.path == ["online", "offline", "online"]
    v = f.verdicts[-1]
    assert v.at == back and v.reason == "stream back for 2.0 s"


def test_reconnecting_to_a_still_frozen_picture_goes_from_offline_to_frozen() -> None:
    f = Feed().samples(MOVING, 10).samples(FROZEN_CLOCK, 20)
    f.feed(LinkCheck(f.t + 6, f.t))
    f.t += 10
    f.samples(FROZEN_CLOCK, 14)
    assert f.path == ["online", "frozen", "offline", "frozen"]


def test_pictures_without_figures_still_bring_a_feed_online() -> None:
    """Health decoding off (or undecodable keyframes): packet-level states only."""
    f = Feed().samples(Figures(keyframe_bytes=1000), 10)
    assert f.path == ["online"] and f.verdicts[0].reason == "packets flowing"


def test_transitions_are_never_dated_before_the_state_they_end() -> None:
    f = Feed().samples(MOVING, 10).samples(FROZEN_CLOCK, 20)
    f.feed(LinkCheck(f.t + 6, f.t))
    f.t += 3
    f.samples(FROZEN_CLOCK, 12)
    ats = [v.at for v in f.verdicts]
    assert ats == sorted(ats)
    assert all(v.at <= v.detected for v in f.verdicts)


def test_a_picture_judged_after_the_outage_it_predates_does_not_end_it() -> None:
    """Pictures are judged on their own thread: after a stall (a worker paused, then a burst), a
    keyframe that arrived before the last packet can be judged after the silence was. It says nothing
    about the stream since, so the feed stays offline until pictures from after the outage come."""
    f = Feed().samples(MOVING, 10)
    early = f.t + GOP_S  # a keyframe that arrived…
    last = early + 2.7  # …before the last packet of the stream
    f.feed(LinkCheck(last + 10, last))
    for k in range(4):  # the keyframes of that burst, judged late: clear for long enough, but old
        assert f.feed(Sample(early + k * 0.9, MOVING)) is None
    assert f.path == ["online", "offline"]
    f.t = last + 12
    f.samples(MOVING, 3 * GOP_S)
    assert f.path == ["online", "offline", "online"]
    ats = [v.at for v in f.verdicts]
    assert ats == sorted(ats) and f.verdicts[-1].at > last + 10


def _run(seq: Iterable[tuple[Figures, float]]) -> list[str]:
    f = Feed()
    for figs, secs in seq:
        f.samples(figs, secs)
    return f.path


def test_a_whole_day_in_the_life() -> None:
    assert _run(
        [
            (MOVING, 60),
            (QUIET, 120),
            (FROZEN_CLOCK, 30),
            (MOVING, 30),
            (BLACK, 20),
            (QUIET, 20),
            (BLURRED, 40),
            (MOVING, 20),
        ]
    ) == ["online", "frozen", "online", "black", "online", "tampered", "online"]


# ---- the demo's cameras (`vigil demo`), figures recorded from its events -----------------------
# Its live cameras loop a clip (camserver `loop:`, constant QP): the same keyframe comes back
# bit-identical once per loop. Between periodic samples (sample_interval_s 10) keyframes are skipped.
STREET_LOOP = Figures(diff=35.8147, repeat=0.0, luma=124.6, dark_fraction=0.001, sharpness=0.2965, contrast=36.5, p_ratio=0.0248)
NIGHT_LOOP = Figures(diff=1.5929, repeat=0.0, luma=122.1, dark_fraction=0.001, sharpness=0.458, contrast=29.9, p_ratio=0.0753)
GATE_MOVING = Figures(diff=29.2765, repeat=29.2765, luma=139.0, dark_fraction=0.0007, sharpness=0.3421, contrast=32.5, p_ratio=0.0493)
# The gate's clip loops every 10 s: a periodic sample 10 s after the last meets the same picture.
GATE_LOOP = Figures(diff=0.0, repeat=0.0, luma=137.1, dark_fraction=0.0007, sharpness=0.3391, contrast=31.4, p_ratio=0.0468)
GATE_FROZEN = Figures(diff=0.0, repeat=0.0, luma=139.2, dark_fraction=0.0007, sharpness=0.4129, contrast=32.9, p_ratio=0.0009)
_CLAIM = re.compile(r"(\d+(?:\.\d+)?)(%?)(?: of [a-z ]+)? (<|≥) (\d+(?:\.\d+)?)(%?)")


def claims_hold(reason: str) -> bool:
    """Every "x < y" / "x ≥ y" a reason states is true of its own numbers."""
    for a, pa, op, b, pb in _CLAIM.findall(reason):
        x, y = float(a) / (100 if pa else 1), float(b) / (100 if pb else 1)
        if (op == "<" and not x < y) or (op == "≥" and not x >= y):
            return False
    return True


def test_a_picture_that_moved_since_the_last_sample_is_not_frozen_whatever_an_older_one_says() -> None:
    """The street loop: 35.8 grey levels from the previous sample, identical to one 20 s back."""
    rules = HealthRules(CFG)
    for skipped in (0, 4):
        check = rules.freeze_check(STREET_LOOP, 10.0, skipped)
        assert not check.held and check.why == "difference 35.81 ≥ 1"
    f = Feed()
    for _ in range(60):  # ten minutes of periodic samples, every other one meeting the loop's start
        f.feed(Sample(f.t + 10, MOVING, skipped=4))
        f.t += 10
        f.feed(Sample(f.t + 10, STREET_LOOP, skipped=4))
        f.t += 10
    assert f.path == ["online"]


def test_a_noisy_loop_seen_again_after_skipped_keyframes_is_not_frozen() -> None:
    f = Feed()
    for _ in range(60):
        for figs in (QUIET, NIGHT_LOOP):
            f.t += 10
            f.feed(Sample(f.t, figs, skipped=4))
    assert f.path == ["online"]


def _periodic(f: Feed, figures: Figures, seconds: float, gop_s: float = 1.0, interval_s: float = 10.0) -> None:
    """As the decode cadence samples: every keyframe while a fault is pending, else every interval."""
    end = f.t + seconds
    while f.t < end - 1e-9:
        step = gop_s if f.rules.pending else interval_s
        f.t += step
        f.feed(Sample(f.t, figures, skipped=round(step / gop_s) - 1))


def test_a_loop_as_long_as_the_sample_interval_is_not_frozen() -> None:
    """The gate: each periodic sample meets the picture of the last one; the keyframes between moved."""
    f = Feed()
    f.samples(GATE_MOVING, 6, step=1.0)  # the sharpness baseline learnt, every keyframe
    for _ in range(60):
        f.t += 10
        f.feed(Sample(f.t, GATE_LOOP, skipped=9))  # held, but not dated back over the skipped keyframes
        _periodic(f, GATE_MOVING, 1)  # the next keyframe, judged at once, moved
        _periodic(f, GATE_MOVING, 9)
    assert f.path == ["online"]


def test_a_freeze_seen_at_a_periodic_sample_is_confirmed_on_the_keyframes_after_it() -> None:
    f = Feed()
    f.samples(GATE_MOVING, 6, step=1.0)
    _periodic(f, GATE_MOVING, 30)
    f.t += 10
    seen = f.t
    f.feed(Sample(f.t, GATE_FROZEN, skipped=9))
    _periodic(f, GATE_FROZEN, 25)
    assert f.path == ["online", "frozen"]
    assert f.verdicts[1].at == seen and f.verdicts[1].detected == pytest.approx(seen + CFG.freeze_after_s)


def test_the_gates_scheduled_freezes_are_one_frozen_interval_each() -> None:
    """Frozen 25 s of every 45 s, sampled as the cadence does, for ten minutes: frozen, online, …"""
    f = Feed()
    f.samples(GATE_MOVING, 6, step=1.0)
    for _ in range(13):
        _periodic(f, GATE_MOVING, 20)
        f.t += 1
        f.feed(Sample(f.t, GATE_MOVING, skipped=0))  # the first frozen keyframe differs from the last live one
        _periodic(f, GATE_FROZEN, 24)
    _periodic(f, GATE_MOVING, 20)
    assert f.path == ["online"] + ["frozen", "online"] * 13
    assert all(claims_hold(v.reason) for v in f.verdicts), [v.reason for v in f.verdicts]


def test_a_frozen_feed_does_not_recover_on_keyframes_it_could_not_compare() -> None:
    """Undecodable keyframes (no difference measured) in a freeze are no evidence of motion."""
    f = Feed().samples(GATE_MOVING, 6, step=1.0).samples(GATE_FROZEN, 12, step=1.0)
    assert f.path == ["online", "frozen"]
    f.samples(Figures(p_ratio=0.0009, keyframe_bytes=17069), 5, step=1.0)
    f.samples(GATE_FROZEN, 5, step=1.0)
    assert f.path == ["online", "frozen"]
    f.samples(GATE_MOVING, 3, step=1.0)
    assert f.path == ["online", "frozen", "online"]


def test_every_reason_quotes_the_figures_the_rule_used() -> None:
    f = Feed().samples(MOVING, 10)
    for diff, rep in ERRATIC:  # frozen on a come-back, then on an earlier keyframe's difference
        f.samples(Figures(diff=diff, repeat=rep, luma=126, dark_fraction=0.0, sharpness=0.38, p_ratio=0.03), GOP_S)
    f.samples(MOVING, 6).samples(BLACK, 10).samples(MOVING, 6)
    f.samples(MOVING, 20).samples(BLURRED, 30).samples(MOVING, 6)
    assert f.path == ["online", "frozen", "online", "black", "online", "tampered", "online"]
    for v in f.verdicts[1:]:
        assert claims_hold(v.reason), v.reason
        assert re.search(r"\d", v.reason), v.reason
    assert f.verdicts[2].reason == "picture changing again for 2.0 s: difference 28.00 ≥ 1"
    assert "< 98% of pixels below 32" in f.verdicts[4].reason and "sharpness 0.360" in f.verdicts[6].reason
    rules = HealthRules(CFG)
    came_back = rules.freeze_check(Figures(diff=0.58, repeat=0.08, p_ratio=0.03), 1.0)
    assert came_back.held and came_back.why.startswith("difference 0.08 to an earlier keyframe < 0.4 (to the last 0.58)")


def test_a_quiet_loop_coming_back_across_skipped_keyframes_is_only_a_suspicion() -> None:
    """A night scene looping every 20 s: its periodic samples differ by noise only (inside the
    come-back band) and meet an older one exactly. Held at that sample, but the consecutive
    keyframes after it never come back: no freeze."""
    f = Feed()
    f.samples(NIGHT, 10)
    for _ in range(30):
        f.t += 10
        f.feed(Sample(f.t, Figures(diff=0.6, repeat=0.0, luma=38, dark_fraction=0.11, sharpness=0.25, p_ratio=0.005), skipped=4))
        assert f.rules.pending  # suspected: the cadence now decodes every keyframe
        _periodic(f, NIGHT, 10, gop_s=GOP_S)
    assert f.path == ["online"]


def test_a_frozen_noisy_picture_sampled_periodically_is_confirmed_on_the_keyframes_after() -> None:
    """A bitrate-mode encoder's frozen noisy picture: the periodic sample comes back to an older one,
    the keyframes after it keep coming back among themselves: frozen, freeze_after_s later."""
    f = Feed()
    f.samples(MOVING, 20)
    f.t += 10
    seen = f.t
    f.feed(Sample(f.t, Figures(diff=0.58, repeat=0.08, luma=126, dark_fraction=0.0, sharpness=0.38, p_ratio=0.03), skipped=4))
    for diff, rep in ERRATIC:
        f.t += GOP_S
        f.feed(Sample(f.t, Figures(diff=diff, repeat=rep, luma=126, dark_fraction=0.0, sharpness=0.38, p_ratio=0.03)))
    assert f.path == ["online", "frozen"]
    # the suspicion carries no come-back memory: dated from the keyframes' own evidence, a GOP or two on
    assert seen <= f.verdicts[1].at <= seen + 2 * GOP_S
    assert f.verdicts[1].detected - seen <= CFG.freeze_after_s + 3 * GOP_S
