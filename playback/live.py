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

from playback.hls import live_media_sequence_base
from storage.catalog import Catalog, Segment
from storage.catalog.partitions import MAX_SEGMENT_US
from storage.spool import Spool

__all__ = ["LiveIndex", "LiveWindow"]


@dataclass(frozen=True, slots=True)
class LiveWindow:
    """Segments of one run, oldest first; `fragments_before` = fragments of the run before them."""

    camera_id: str
    run_id: str
    run_start_us: int
    segments: tuple[Segment, ...]  # the newest may still be recording (state `recording`)
    fragments_before: int
    min_window_us: int  # what the playlist should cover: at least 4 of the longest fragments

    @property
    def first_sequence(self) -> int:
        return live_media_sequence_base(self.run_start_us) + self.fragments_before


class LiveIndex:
    """Finds live windows; caches per run the number of fragments before a known segment."""

    MAX_RUNS = 20_000

    def __init__(self, catalog: Catalog, spool: Spool | None) -> None:
        self.catalog = catalog
        self.spool = spool
        self._lock = threading.Lock()
        # (camera, run) -> (seq k, start_us of seq k, fragments in seqs < k)
        self._prefix: dict[tuple[str, str], tuple[int, int, int]] = {}

    def _candidates(self, camera_id: str, ended_after_us: int) -> list[Segment]:
        by_key: dict[tuple[str, int], Segment] = {}
        if self.spool is not None:
            for sp in self.spool.camera_segments(camera_id):
                if sp.segment.fragments:
                    by_key[(sp.segment.run_id, sp.segment.seq)] = sp.segment
        # only stored segments recent enough to matter: the catalog then reads the newest
        # partitions, not one per day of the camera's history
        for s in self.catalog.latest_segments(camera_id, 4, ended_after_us=ended_after_us):
            by_key.setdefault((s.run_id, s.seq), s)
        return sorted(by_key.values(), key=lambda s: s.start_us)

    def window(self, camera_id: str, min_window_us: int, now_us: int, stale_after_us: int) -> LiveWindow | None:
        """The newest run's newest segments covering ≥ min_window_us; None if nothing is recent."""
        cands = self._candidates(camera_id, now_us - stale_after_us - 2 * MAX_SEGMENT_US)  # the newest and the one before
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

    def _fragments_before(self, camera_id: str, first: Segment, known: Sequence[Segment]) -> int:
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
            if k.run_id == first.run_id and from_seq <= k.seq < first.seq and k.state != "recording":
                counts[k.seq] = len(k.fragments)
        if self.spool is not None and len(counts) < first.seq - from_seq:
            for sp in self.spool.camera_segments(camera_id):
                m = sp.segment
                if m.run_id == first.run_id and from_seq <= m.seq < first.seq and sp.closed:
                    counts[m.seq] = len(m.fragments)
        total = base + sum(counts.values())
        if len(counts) == first.seq - from_seq:  # complete: remember it
            with self._lock:
                if len(self._prefix) >= self.MAX_RUNS:
                    self._prefix.clear()
                self._prefix[key] = (first.seq, first.start_us, total)
        return total
