"""playback.hls (+ storage.timeline): playlists are a pure function of segments and URIs."""

from __future__ import annotations

import re

from storage.catalog import Fragment, Segment
from playback.hls import (
    MediaSource,
    fragments_in,
    live_entries,
    live_media_sequence_base,
    render_live,
    render_vod,
    target_duration_s,
    vod_entries,
)
from storage.timeline import Span, gaps, merge

T0 = 1_714_557_600_000_000
S = 1_000_000
HEADER = 700


def seg(run: str, seq: int, start_us: int, n: int, gop_us: int = 2 * S, media_start_us: int = 0) -> Segment:
    frags, off = [], HEADER
    for i in range(n):
        size = 10_000 + i
        frags.append(Fragment(off, size, i * gop_us, gop_us))
        off += size
    return Segment(
        camera_id="cam",
        run_id=run,
        seq=seq,
        start_us=start_us,
        end_us=start_us + n * gop_us,
        media_start_us=media_start_us,
        bytes=off,
        header_bytes=HEADER,
        video_codec="h264",
        frames=n * 50,
        fragments=frags,
        state="stored",
    )


def src(s: Segment) -> MediaSource:
    return MediaSource(s, f"/m/k/{s.run_id}/{s.seq}")


def tags(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("#")]


def test_fragments_in_starts_at_the_keyframe_at_or_before_start() -> None:
    s = seg("a", 0, T0, 5)  # fragments at 0,2,4,6,8 s
    picked = fragments_in(s.start_us, s.fragments, T0 + 3 * S, T0 + 6 * S)
    assert [f.start_off_us for f in picked] == [2 * S, 4 * S]  # [2,4) holds 3 s; 6 s is excluded (half-open)
    assert [f.start_off_us for f in fragments_in(s.start_us, s.fragments, T0 + 6 * S, T0 + 6 * S + 1)] == [6 * S]
    assert fragments_in(s.start_us, s.fragments, T0 + 10 * S, T0 + 11 * S) == []


def test_vod_one_run_one_map_byte_ranges_and_endlist() -> None:
    segs = [seg("a", 0, T0, 5), seg("a", 1, T0 + 10 * S, 5, media_start_us=10 * S)]
    entries = vod_entries([src(s) for s in segs], T0 + 3 * S, T0 + 17 * S)
    # 6 s entries: [2,8) [8,10) from seg 0 (ends at the object's end), [10,16) [16,18) from seg 1
    assert [(e.start_us - T0) // S for e in entries] == [2, 8, 10, 16]
    assert [e.duration_us // S for e in entries] == [6, 2, 6, 2]
    f = segs[0].fragments
    assert (entries[0].offset, entries[0].size) == (f[1].offset, f[4].offset - f[1].offset)
    text = render_vod(entries)
    assert text.startswith("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:6\n#EXT-X-PLAYLIST-TYPE:VOD\n")
    assert text.count("#EXT-X-MAP:") == 1
    assert '#EXT-X-MAP:URI="/m/k/a/0",BYTERANGE="700@0"' in text
    assert "#EXT-X-DISCONTINUITY\n" not in text
    assert text.rstrip().endswith("#EXT-X-ENDLIST")
    assert f"#EXT-X-BYTERANGE:{entries[0].size}@{entries[0].offset}" in text
    # program date-time at the start and at each object
    assert re.findall(r"#EXT-X-PROGRAM-DATE-TIME:(\S+)", text) == [
        "2024-05-01T10:00:02.000Z",
        "2024-05-01T10:00:10.000Z",
    ]


def test_vod_new_run_gets_discontinuity_and_its_own_map() -> None:
    segs = [seg("a", 0, T0, 3), seg("b", 0, T0 + 60 * S, 3)]
    text = render_vod(vod_entries([src(s) for s in segs], T0, T0 + 120 * S))
    lines = text.splitlines()
    i = lines.index("#EXT-X-DISCONTINUITY")
    assert lines[i + 1] == '#EXT-X-MAP:URI="/m/k/b/0",BYTERANGE="700@0"'
    assert lines[i + 2] == "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T10:01:00.000Z"
    assert text.count("#EXT-X-MAP:") == 2


def test_missing_media_inside_a_run_is_a_discontinuity() -> None:
    segs = [seg("a", 0, T0, 3), seg("a", 2, T0 + 12 * S, 3, media_start_us=12 * S)]  # seq 1 lost
    text = render_vod(vod_entries([src(s) for s in segs], T0, T0 + 60 * S))
    assert text.count("#EXT-X-DISCONTINUITY") == 1
    contiguous = [seg("a", 0, T0, 3), seg("a", 1, T0 + 6 * S, 3, media_start_us=6 * S)]
    assert "#EXT-X-DISCONTINUITY" not in render_vod(vod_entries([src(s) for s in contiguous], T0, T0 + 60 * S))


def test_target_duration_covers_every_extinf() -> None:
    segs = [seg("a", 0, T0, 4, gop_us=2_500_000)]
    entries = vod_entries([src(s) for s in segs], T0, T0 + 10 * S, target_us=1)  # one fragment each
    text = render_vod(entries)
    target = int(re.search(r"TARGETDURATION:(\d+)", text).group(1))  # type: ignore[union-attr]
    durations = [float(x) for x in re.findall(r"#EXTINF:([\d.]+),", text)]
    assert durations == [2.5] * 4
    assert all(round(d) <= target for d in durations) and target == 3
    assert target_duration_s([]) == 1


def test_live_window_and_sequence() -> None:
    segs = [seg("r", 0, T0, 5), seg("r", 1, T0 + 10 * S, 3, media_start_us=10 * S)]
    entries, skipped = live_entries([src(s) for s in segs], 8 * S)
    assert [(e.start_us - T0) // S for e in entries] == [8, 10, 12, 14]
    assert skipped == 4
    base = live_media_sequence_base(T0)
    text = render_live(entries, base + skipped, 7)
    assert f"#EXT-X-MEDIA-SEQUENCE:{base + 4}" in text
    assert "#EXT-X-DISCONTINUITY-SEQUENCE:7" in text
    assert "#EXT-X-ENDLIST" not in text and "PLAYLIST-TYPE" not in text
    assert text.count("#EXTINF:2.000000,") == 4
    # a later run always numbers above everything an earlier one could have used
    assert live_media_sequence_base(T0 + 60 * S) > base + 60 * S // 20_000
    # fewer fragments than the window: all of them
    assert len(live_entries([src(segs[1])], 60 * S)[0]) == 3


def test_timeline_gaps() -> None:
    spans = [Span(10, 20), Span(20, 30), Span(50, 60)]
    assert merge(spans, 0) == [Span(10, 30), Span(50, 60)]
    assert gaps(spans, 0, 100, min_gap_us=1) == [Span(0, 10), Span(30, 50), Span(60, 100)]
    assert gaps(spans, 12, 55, min_gap_us=1) == [Span(30, 50)]
    assert gaps([Span(0, 100)], 0, 100) == []
    assert gaps([], 0, 100, min_gap_us=1) == [Span(0, 100)]
    # rounding slivers inside a run are not gaps
    assert gaps([Span(0, 1_000_000), Span(1_000_003, 2_000_000)], 0, 2_000_000) == []
