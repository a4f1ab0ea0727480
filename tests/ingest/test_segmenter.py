"""The cut rule and timestamp repair, driven by synthetic packet sequences (no server)."""

from ingest.segmenter import Cut, SegmentCutter, TimestampRepair, Verdict


def test_cut_at_first_keyframe_after_target() -> None:
    c = SegmentCutter(10_000_000)
    gop_us = 2_000_000
    cuts = [c.on_keyframe(i * gop_us) for i in range(12)]
    assert cuts[0] is Cut.FIRST
    assert [i for i, k in enumerate(cuts) if k is Cut.SEGMENT] == [5, 10]


def test_cut_waits_for_a_keyframe_when_gop_does_not_divide_target() -> None:
    c = SegmentCutter(10_000_000)
    gop_us = 3_000_000  # keyframes at 0, 3, 6, 9, 12 …: 10 s reached only at 12 s
    cuts = [c.on_keyframe(i * gop_us) for i in range(9)]
    assert [i * 3 for i, k in enumerate(cuts) if k is Cut.SEGMENT] == [12, 24]


def test_repair_keeps_dts_monotonic_and_pts_not_before_dts() -> None:
    r = TimestampRepair(max_gap_ticks=900_000, max_back_ticks=90_000)
    assert r.check(0, 0).verdict is Verdict.OK
    v = r.check(0, 3600)  # duplicate dts
    assert v.verdict is Verdict.REPAIRED and v.stamp and v.stamp.dts == 1 and v.stamp.pts == 3600
    v = r.check(3600, 100)  # pts before dts
    assert v.verdict is Verdict.REPAIRED and v.stamp and v.stamp.pts == 3600
    v = r.check(None, None)
    assert v.verdict is Verdict.REPAIRED and v.stamp and v.stamp.dts == 3601


def test_big_jumps_start_a_new_run_instead_of_being_papered_over() -> None:
    r = TimestampRepair(max_gap_ticks=900_000, max_back_ticks=90_000)
    r.check(1_000_000, 1_000_000)
    assert r.check(1_000_000 + 900_001, None).verdict is Verdict.NEW_RUN
    assert r.check(1_000_000 - 90_001, None).verdict is Verdict.NEW_RUN
    assert r.check(1_000_000 - 10, None).verdict is Verdict.REPAIRED  # small disorder is repaired


def test_no_timestamp_before_anything_is_dropped() -> None:
    assert TimestampRepair(10, 10).check(None, None).verdict is Verdict.DROP


def test_accept_takes_only_what_needs_no_repair() -> None:
    """The session's short path: `accept` must refuse whatever `check` would repair or cut."""
    r = TimestampRepair(max_gap_ticks=900_000, max_back_ticks=90_000)
    assert not r.accept(0, 0)  # nothing before it: the full check decides
    assert r.check(0, 0).verdict is Verdict.OK
    assert r.accept(3600, 3600) and r.last_dts == 3600
    assert not r.accept(3600, 7200)  # duplicate DTS
    assert not r.accept(7200, 3600)  # PTS before DTS
    assert not r.accept(7200, None)
    assert not r.accept(3600 + 900_001, 3600 + 900_001)  # a jump ends the run
    assert r.last_dts == 3600  # refusals change nothing
    assert r.accept(3600 + 900_000, 3600 + 900_000)
