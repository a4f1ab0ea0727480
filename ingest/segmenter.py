"""Pure decisions about a run's packets: timestamp repair, and where segments are cut.

No I/O here, so tests drive it with lists of synthetic packets. See docs/design/segments.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["Cut", "SegmentCutter", "Stamp", "TimestampRepair", "TsVerdict", "Verdict"]


class Cut(Enum):
    NONE = 0
    FIRST = 1  # the run's first keyframe opens its first segment
    SEGMENT = 2  # this keyframe closes the previous segment and opens the next


class SegmentCutter:
    """A segment closes at the first keyframe at or after `target_us` of media time since it opened.

    This is the only place the rule lives (MediaMTX's rule: sync sample + target reached).
    """

    def __init__(self, target_us: int) -> None:
        if target_us <= 0:
            raise ValueError("target must be positive")
        self.target_us = target_us
        self.segment_start_us: int | None = None
        self.segments = 0

    def on_keyframe(self, media_us: int) -> Cut:
        if self.segment_start_us is None:
            self.segment_start_us = media_us
            self.segments = 1
            return Cut.FIRST
        if media_us - self.segment_start_us >= self.target_us:
            self.segment_start_us = media_us
            self.segments += 1
            return Cut.SEGMENT
        return Cut.NONE


class Verdict(Enum):
    OK = 0
    REPAIRED = 1  # timestamps nudged to stay monotonic
    NEW_RUN = 2  # a jump no repair can hide: the run must end here, explicitly
    DROP = 3  # nothing usable (no timestamp and nothing to derive one from)


@dataclass(frozen=True, slots=True)
class Stamp:
    dts: int
    pts: int


@dataclass(frozen=True, slots=True)
class TsVerdict:
    verdict: Verdict
    stamp: Stamp | None
    reason: str = ""


OK = TsVerdict(Verdict.OK, None)  # the common case, shared: one allocation less per packet


class TimestampRepair:
    """Keeps one stream's DTS strictly increasing and PTS ≥ DTS, in the stream's time base.

    Small disorder (B-frames, duplicate DTS, a missing PTS) is repaired; a jump backwards by more
    than `max_back_ticks` or forwards by more than `max_gap_ticks` ends the run instead, because
    papering over it would make segment durations lie.
    """

    def __init__(self, max_gap_ticks: int, max_back_ticks: int) -> None:
        self.max_gap = max_gap_ticks
        self.max_back = max_back_ticks
        self.last_dts: int | None = None

    def reset(self) -> None:
        self.last_dts = None

    def accept(self, dts: int | None, pts: int | None) -> bool:
        """The common case alone: in order, no repair needed (then the packet is taken as is)."""
        last = self.last_dts
        if last is None or dts is None or pts is None or pts < dts or not 0 < dts - last <= self.max_gap:
            return False
        self.last_dts = dts
        return True

    def check(self, dts: int | None, pts: int | None) -> TsVerdict:
        if dts is None and pts is None:
            if self.last_dts is None:
                return TsVerdict(Verdict.DROP, None, "no timestamp")
            d = self.last_dts + 1
            self.last_dts = d
            return TsVerdict(Verdict.REPAIRED, Stamp(d, d), "no timestamp")
        if dts is None:
            dts = pts
        assert dts is not None
        if pts is None:
            pts = dts
        if self.last_dts is None:
            self.last_dts = dts
            return OK if pts >= dts else TsVerdict(Verdict.REPAIRED, Stamp(dts, dts), "pts before dts")
        delta = dts - self.last_dts
        if 0 < delta <= self.max_gap and pts >= dts:
            self.last_dts = dts
            return OK
        if delta > self.max_gap:
            return TsVerdict(Verdict.NEW_RUN, None, f"timestamp jumped forward by {delta} ticks")
        if delta < -self.max_back:
            return TsVerdict(Verdict.NEW_RUN, None, f"timestamp jumped backward by {-delta} ticks")
        verdict = Verdict.OK
        reason = ""
        if delta <= 0:
            dts = self.last_dts + 1
            verdict, reason = Verdict.REPAIRED, "non-monotonic dts"
        if pts < dts:
            pts = dts
            verdict, reason = Verdict.REPAIRED, reason or "pts before dts"
        self.last_dts = dts
        return OK if verdict is Verdict.OK else TsVerdict(verdict, Stamp(dts, pts), reason)
