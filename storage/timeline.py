"""Half-open time spans [start_us, end_us): the one overlap/gap helper for recordings and clips.

Why: "what was recorded between two times, and where are the holes" is asked by the recordings
listing, the playback playlist and the clip exporter; one pure function answers it for all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Span", "gaps", "merge", "overlaps", "total_us"]

# Within a run, segments abut exactly; across rounding of media time to µs they may miss by a few
# µs. Anything shorter than half a frame at 25 fps is not a gap a person could see.
MIN_GAP_US = 20_000


@dataclass(frozen=True, slots=True)
class Span:
    start_us: int
    end_us: int

    @property
    def duration_us(self) -> int:
        return self.end_us - self.start_us

    def clip(self, start_us: int, end_us: int) -> Span | None:
        s, e = max(self.start_us, start_us), min(self.end_us, end_us)
        return Span(s, e) if s < e else None


def overlaps(a_start: int, a_end: int, b_start: int, b_end: int) -> bool:
    """Half-open overlap: touching ends do not overlap."""
    return a_start < b_end and b_start < a_end


def merge(spans: Iterable[Span], min_gap_us: int = MIN_GAP_US) -> list[Span]:
    """Sorted union; touching spans, and spans closer than `min_gap_us`, are joined."""
    out: list[Span] = []
    for s in sorted(spans, key=lambda x: x.start_us):
        if out and (s.start_us <= out[-1].end_us or s.start_us - out[-1].end_us < min_gap_us):
            if s.end_us > out[-1].end_us:
                out[-1] = Span(out[-1].start_us, s.end_us)
        else:
            out.append(s)
    return out


def gaps(covered: Iterable[Span], start_us: int, end_us: int, min_gap_us: int = MIN_GAP_US) -> list[Span]:
    """The parts of [start_us, end_us) not covered, each at least `min_gap_us` long."""
    clipped = [c for s in covered if (c := s.clip(start_us, end_us)) is not None]
    holes: list[Span] = []
    cursor = start_us
    for s in merge(clipped, min_gap_us):
        if s.start_us - cursor >= min_gap_us:
            holes.append(Span(cursor, s.start_us))
        cursor = max(cursor, s.end_us)
    if end_us - cursor >= min_gap_us:
        holes.append(Span(cursor, end_us))
    return holes


def total_us(spans: Iterable[Span]) -> int:
    return sum(s.duration_us for s in spans)
