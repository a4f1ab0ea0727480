"""The live window of a camera: the newest fragments of its newest run, from spool and catalog.

Why: the live playlist must show media seconds old, so it reads the segment still being recorded
from the spool (its journal lists the fragments already written), plus earlier segments of the
same run (closed in the spool or stored) to fill the window. Playlist rendering is in
`playback/hls.py`; this module only finds the segments and numbers the fragments.

Numbering: a live playlist's media sequence must stay the same for a fragment across reloads and
never go back. A fragment's number is `live_media_sequence_base(run start)` + its index in the run.
The index needs the fragment counts of the run's earlier segments; `LiveIndex` caches the running
total per run, so steady state costs one small catalog query per camera per closed segment.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from storage.catalog import Catalog, Fragment, Segment
from playback.hls import live_media_sequence_base
from storage.keys import segment_key
from storage.spool import Spool, SpooledSegment, read_journal

__all__ = ["LiveIndex", "LiveSegment", "LiveWindow", "find_spooled", "spool_segments"]


@dataclass(frozen=True, slots=True)
class LiveSegment:
    run_id: str
    seq: int
    start_us: int
    media_start_us: int
    header_bytes: int
    fragments: tuple[Fragment, ...]
    object_key: str
    recording: bool  # still being written

    @property
    def end_us(self) -> int:
        if not self.fragments:
            return self.start_us
        f = self.fragments[-1]
        return self.start_us + f.start_off_us + f.duration_us

    @property
    def run_start_us(self) -> int:
        return self.start_us - self.media_start_us


@dataclass(frozen=True, slots=True)
class LiveWindow:
    """Segments of one run, oldest first; `fragments_before` = fragments of the run before them."""

    camera_id: str
    run_id: str
    run_start_us: int
    segments: tuple[LiveSegment, ...]
    fragments_before: int
    min_window_us: int  # what the playlist should cover: at least 4 of the longest fragments

    @property
    def first_sequence(self) -> int:
        return live_media_sequence_base(self.run_start_us) + self.fragments_before


def _from_spool(sp: SpooledSegment) -> LiveSegment:
    m = sp.meta
    return LiveSegment(
        run_id=m.run_id,
        seq=m.seq,
        start_us=m.start_us,
        media_start_us=m.media_start_us,
        header_bytes=sp.header_bytes,
        fragments=tuple(sp.fragments),
        object_key=segment_key(m.camera_id, m.start_us),
        recording=not sp.closed,
    )


def _from_catalog(s: Segment) -> LiveSegment:
    return LiveSegment(
        run_id=s.run_id,
        seq=s.seq,
        start_us=s.start_us,
        media_start_us=s.media_start_us,
        header_bytes=s.header_bytes,
        fragments=tuple(s.fragments),
        object_key=s.object_key,
        recording=False,
    )


def spool_segments(spool: Spool, camera_id: str) -> list[SpooledSegment]:
    """Every segment of a camera in the spool (open or closed, awaiting upload), oldest first."""
    d = spool.camera_dir(camera_id)
    if not d.is_dir():
        return []
    out = []
    for j in sorted(d.glob("*.jsonl")):
        sp = read_journal(j)
        if sp is not None:
            out.append(sp)
    out.sort(key=lambda s: s.meta.start_us)
    return out


def find_spooled(spool: Spool, camera_id: str, start_us: int) -> SpooledSegment | None:
    """The spooled segment of a camera starting at `start_us` (its object key's time), if any."""
    for sp in spool_segments(spool, camera_id):
        if sp.meta.start_us == start_us:
            return sp
    return None


class LiveIndex:
    """Finds live windows; caches per run the number of fragments before a known segment."""

    MAX_RUNS = 20_000

    def __init__(self, catalog: Catalog, spool: Spool | None) -> None:
        self.catalog = catalog
        self.spool = spool
        self._lock = threading.Lock()
        # (camera, run) -> (seq k, start_us of seq k, fragments in seqs < k)
        self._prefix: dict[tuple[str, str], tuple[int, int, int]] = {}

    def _candidates(self, camera_id: str) -> list[LiveSegment]:
        by_key: dict[tuple[str, int], LiveSegment] = {}
        if self.spool is not None:
            for sp in spool_segments(self.spool, camera_id):
                if sp.fragments:
                    seg = _from_spool(sp)
                    by_key[(seg.run_id, seg.seq)] = seg
        for s in self.catalog.latest_segments(camera_id, 4):
            by_key.setdefault((s.run_id, s.seq), _from_catalog(s))
        return sorted(by_key.values(), key=lambda s: s.start_us)

    def window(self, camera_id: str, min_window_us: int, now_us: int, stale_after_us: int) -> LiveWindow | None:
        """The newest run's newest segments covering ≥ min_window_us; None if nothing is recent."""
        cands = self._candidates(camera_id)
        if not cands:
            return None
        newest = cands[-1]
        if newest.end_us < now_us - stale_after_us:
            return None
        longest = max((f.duration_us for f in newest.fragments), default=0)
        min_window_us = max(min_window_us, 4 * longest)
        run = [s for s in cands if s.run_id == newest.run_id]
        picked = [run[-1]]
        covered = run[-1].end_us - run[-1].start_us
        for s in reversed(run[:-1]):
            if covered >= min_window_us or s.seq != picked[0].seq - 1:
                break
            picked.insert(0, s)
            covered += s.end_us - s.start_us
        before = self._fragments_before(camera_id, picked[0], cands)
        return LiveWindow(
            camera_id=camera_id,
            run_id=newest.run_id,
            run_start_us=newest.run_start_us,
            segments=tuple(picked),
            fragments_before=before,
            min_window_us=min_window_us,
        )

    def _fragments_before(self, camera_id: str, first: LiveSegment, known: Sequence[LiveSegment]) -> int:
        """Fragments of the run in segments with seq < first.seq (cached running total)."""
        key = (camera_id, first.run_id)
        if first.seq == 0:
            return 0
        with self._lock:
            cached = self._prefix.get(key)
        if cached is not None and cached[0] == first.seq:
            return cached[2]
        if cached is not None and cached[0] < first.seq:
            from_seq, from_us, base = cached
        else:
            from_seq, from_us, base = 0, first.run_start_us, 0
        counts: dict[int, int] = {}
        for s in self.catalog.segments_between(camera_id, from_us, first.start_us, stored_only=False):
            if s.run_id == first.run_id and from_seq <= s.seq < first.seq:
                counts[s.seq] = len(s.fragments)
        for k in known:
            if k.run_id == first.run_id and from_seq <= k.seq < first.seq and not k.recording:
                counts[k.seq] = len(k.fragments)
        if self.spool is not None and len(counts) < first.seq - from_seq:
            for sp in spool_segments(self.spool, camera_id):
                m = sp.meta
                if m.run_id == first.run_id and from_seq <= m.seq < first.seq and sp.closed:
                    counts[m.seq] = len(sp.fragments)
        total = base + sum(counts.values())
        if len(counts) == first.seq - from_seq:  # complete: remember it
            with self._lock:
                if len(self._prefix) >= self.MAX_RUNS:
                    self._prefix.clear()
                self._prefix[key] = (first.seq, first.start_us, total)
        return total
