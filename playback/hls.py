"""HLS playlists over stored fMP4 segments: pure functions, no I/O.

Why here: what a player needs (which byte ranges, where a run breaks, what wall-clock time a
fragment shows) follows from the segment index alone, so playlist building is a pure function of
segments + URIs, testable without a server. The API only decides the URIs (signed links).

Facts it relies on (docs/design/platform.md §1.6–1.8): every segment object is `header_bytes` of ftyp+moov then one
moof+mdat per GOP; the segments of one run share the header and continue its decode times, so a run
plays as one stream under one `EXT-X-MAP`; a new run restarts decode times and needs
`EXT-X-DISCONTINUITY` and its own map.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from storage.catalog import Fragment, Segment
from storage.timeline import MIN_GAP_US

__all__ = [
    "Entry",
    "MediaSource",
    "fragments_in",
    "live_entries",
    "live_media_sequence_base",
    "render_live",
    "render_vod",
    "run_shifts_us",
    "target_duration_s",
    "vod_entries",
]

VOD_ENTRY_US = 6_000_000  # group fragments into ~6 s entries: short seeks, short playlists
HLS_VERSION = 7


@dataclass(frozen=True, slots=True)
class MediaSource:
    """A segment and the URI a player fetches it at: `uri` returns the whole object (ranges inside)."""

    segment: Segment
    uri: str


@dataclass(frozen=True, slots=True)
class Entry:
    """One playlist entry: a byte range of consecutive fragments of one object."""

    uri: str
    offset: int
    size: int
    start_us: int  # wall clock of its first frame
    duration_us: int
    run_id: str
    header_bytes: int
    first_in_object: bool
    # Set: `uri` is this entry's bytes alone and `map_uri` its object's header (a viewer's live
    # playlist, one signed URL per fragment: api/routers/live.py); unset: byte ranges of `uri`.
    map_uri: str | None = None

    @property
    def end_us(self) -> int:
        return self.start_us + self.duration_us


def run_shifts_us(segments: Iterable[Segment]) -> dict[str, int]:
    """Per run, what to add to its decode times so a VOD playlist's runs form one increasing
    timeline: the offset of the run's media zero from the first run's, in wall-clock µs (served
    by rewriting tfdt, see playback/fmp4.py). The first run's shift is 0."""
    out: dict[str, int] = {}
    origin: int | None = None
    for s in sorted(segments, key=lambda x: x.start_us):
        zero = s.start_us - s.media_start_us
        if origin is None:
            origin = zero
        out.setdefault(s.run_id, max(0, zero - origin))
    return out


def fragments_in(seg_start_us: int, fragments: Iterable[Fragment], start_us: int, end_us: int) -> list[Fragment]:
    """Fragments overlapping [start_us, end_us): the first one holds the keyframe at or before start."""
    return [
        f
        for f in fragments
        if seg_start_us + f.start_off_us < end_us and seg_start_us + f.start_off_us + f.duration_us > start_us
    ]


def _group(src: MediaSource, frags: Sequence[Fragment], target_us: int, first: bool) -> list[Entry]:
    seg = src.segment
    out: list[Entry] = []
    i = 0
    while i < len(frags):
        j = i
        dur = 0
        while j < len(frags) and (j == i or dur < target_us):
            if j > i and frags[j].offset != frags[j - 1].offset + frags[j - 1].size:
                break  # not contiguous in the object: cannot share one byte range
            dur += frags[j].duration_us
            j += 1
        head, tail = frags[i], frags[j - 1]
        out.append(
            Entry(
                uri=src.uri,
                offset=head.offset,
                size=tail.offset + tail.size - head.offset,
                start_us=seg.start_us + head.start_off_us,
                duration_us=tail.start_off_us + tail.duration_us - head.start_off_us,
                run_id=seg.run_id,
                header_bytes=seg.header_bytes,
                first_in_object=first and i == 0,
            )
        )
        i = j
    return out


def vod_entries(
    sources: Iterable[MediaSource], start_us: int, end_us: int, target_us: int = VOD_ENTRY_US
) -> list[Entry]:
    """Entries covering [start_us, end_us) from segments in time order (keyframe-aligned at start)."""
    out: list[Entry] = []
    for src in sorted(sources, key=lambda s: s.segment.start_us):
        frags = fragments_in(src.segment.start_us, src.segment.fragments, start_us, end_us)
        if frags:
            out.extend(_group(src, frags, target_us, first=True))
    return out


def live_entries(sources: Sequence[MediaSource], min_window_us: int) -> tuple[list[Entry], int]:
    """The newest fragments of one run's segments (oldest first in `sources`), one entry each,
    covering at least `min_window_us` when there is that much. Returns (entries, fragments before
    the window within `sources`), which the caller adds to the run's earlier fragment count."""
    flat: list[Entry] = []
    for src in sources:
        seg = src.segment
        for k, f in enumerate(seg.fragments):
            flat.append(
                Entry(
                    uri=src.uri,
                    offset=f.offset,
                    size=f.size,
                    start_us=seg.start_us + f.start_off_us,
                    duration_us=f.duration_us,
                    run_id=seg.run_id,
                    header_bytes=seg.header_bytes,
                    first_in_object=k == 0,
                )
            )
    covered = 0
    first = len(flat)
    while first > 0 and covered < min_window_us:
        first -= 1
        covered += flat[first].duration_us
    return flat[first:], first


def live_media_sequence_base(run_start_us: int) -> int:
    """Media sequence of a run's first fragment: 10 ms ticks of its start, so a later run always
    numbers above an earlier one (fragments are longer than 10 ms) with no stored counter."""
    return run_start_us // 10_000


def target_duration_s(entries: Iterable[Entry]) -> int:
    """EXT-X-TARGETDURATION: every EXTINF rounded to the nearest integer must fit (RFC 8216 4.3.3.1)."""
    longest = max((e.duration_us for e in entries), default=1_000_000)
    return max(1, math.ceil(longest / 1_000_000 - 1e-9))


def _pdt(us: int) -> str:
    t = datetime.fromtimestamp(us // 1_000_000, tz=UTC).replace(microsecond=us % 1_000_000)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _breaks(prev: Entry, cur: Entry) -> bool:
    """A discontinuity: another run (new header, decode times from zero) or media missing."""
    return cur.run_id != prev.run_id or abs(cur.start_us - prev.end_us) >= MIN_GAP_US


def _body(entries: Sequence[Entry]) -> list[str]:
    lines: list[str] = []
    prev: Entry | None = None
    for e in entries:
        new_map = prev is None
        if prev is not None and _breaks(prev, e):
            lines.append("#EXT-X-DISCONTINUITY")
            new_map = True
        if new_map:
            if e.map_uri is not None:
                lines.append(f'#EXT-X-MAP:URI="{e.map_uri}"')
            else:
                lines.append(f'#EXT-X-MAP:URI="{e.uri}",BYTERANGE="{e.header_bytes}@0"')
        if new_map or e.first_in_object:
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{_pdt(e.start_us)}")
        lines.append(f"#EXTINF:{e.duration_us / 1e6:.6f},")
        if e.map_uri is None:
            lines.append(f"#EXT-X-BYTERANGE:{e.size}@{e.offset}")
        lines.append(e.uri)
        prev = e
    return lines


def render_vod(entries: Sequence[Entry]) -> str:
    """A VOD playlist (complete, `EXT-X-ENDLIST`)."""
    head = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{HLS_VERSION}",
        f"#EXT-X-TARGETDURATION:{target_duration_s(entries)}",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-INDEPENDENT-SEGMENTS",
    ]
    return "\n".join(head + _body(entries) + ["#EXT-X-ENDLIST", ""])


def render_live(entries: Sequence[Entry], media_sequence: int, discontinuity_sequence: int = 0) -> str:
    """A live playlist window (no end tag); the caller keeps `media_sequence` stable per fragment."""
    head = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{HLS_VERSION}",
        f"#EXT-X-TARGETDURATION:{target_duration_s(entries)}",
        f"#EXT-X-MEDIA-SEQUENCE:{media_sequence}",
        f"#EXT-X-DISCONTINUITY-SEQUENCE:{discontinuity_sequence}",
        "#EXT-X-INDEPENDENT-SEGMENTS",
    ]
    return "\n".join(head + _body(entries) + [""])
