"""Segments: registration by the uploader, range queries for playback, totals for metrics."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa

from storage.catalog.base import CatalogBase
from storage.catalog.models import (
    Segment,
    _fragments_to_json,
    _segment_from_row,
    _shallow,
)
from storage.catalog.tables import segments

__all__ = ["SegmentRows"]

# Statements the recorder runs for every segment, built once: constructing them per call cost more
# CPU than SQLite's work.
_SEGMENT_BY_KEY = sa.select(segments.c.id).where(segments.c.object_key == sa.bindparam("key"))
_SEGMENT_INSERT = segments.insert()
_SEGMENT_STORED = (
    sa.update(segments)
    .where(segments.c.id == sa.bindparam("sid"))
    .values(state="stored", stored_us=sa.bindparam("now"))
)


class SegmentRows(CatalogBase):
    def add_segment(self, seg: Segment) -> int:
        """Insert (or, for a retried upload, find) the row of a segment; returns its id."""
        return self.add_segments([seg])[0]

    def add_segments(self, segs: Sequence[Segment]) -> list[int]:
        """`add_segment` for many, in one transaction (the uploader registers a pass's worth)."""
        ids: list[int] = []
        with self._begin() as c:
            for seg in segs:
                existing = c.execute(_SEGMENT_BY_KEY, {"key": seg.object_key}).scalar_one_or_none()
                if existing is None:
                    row = _shallow(seg)  # `asdict` deep-copied every Fragment only to make JSON of it
                    row.pop("id")
                    row["fragments"] = _fragments_to_json(seg.fragments)
                    existing = c.execute(_SEGMENT_INSERT, row).inserted_primary_key[0]
                seg.id = int(existing)
                ids.append(seg.id)
        return ids

    def mark_stored(self, segment_id: int, now_us: int) -> None:
        self.mark_stored_many([segment_id], now_us)

    def mark_stored_many(self, segment_ids: Sequence[int], now_us: int) -> None:
        if not segment_ids:
            return
        with self._begin() as c:
            c.execute(_SEGMENT_STORED, [{"sid": sid, "now": now_us} for sid in segment_ids])

    def get_segment_by_key(self, key: str) -> Segment | None:
        with self.engine.connect() as c:
            r = c.execute(sa.select(segments).where(segments.c.object_key == key)).first()
        return _segment_from_row(r) if r else None

    def segments_between(
        self, camera_id: str, start_us: int, end_us: int, *, stored_only: bool = True
    ) -> list[Segment]:
        """Segments overlapping [start_us, end_us), oldest first."""
        q = (
            sa.select(segments)
            .where(segments.c.camera_id == camera_id)
            .where(segments.c.start_us < end_us)
            .where(segments.c.end_us > start_us)
            .order_by(segments.c.start_us)
        )
        if stored_only:
            q = q.where(segments.c.state == "stored")
        with self.engine.connect() as c:
            return [_segment_from_row(r) for r in c.execute(q)]

    def segments_for(self, camera_id: str | None = None, *, stored_only: bool = False) -> list[Segment]:
        q = sa.select(segments).order_by(segments.c.camera_id, segments.c.start_us)
        if camera_id is not None:
            q = q.where(segments.c.camera_id == camera_id)
        if stored_only:
            q = q.where(segments.c.state == "stored")
        with self.engine.connect() as c:
            return [_segment_from_row(r) for r in c.execute(q)]

    def latest_segments(self, camera_id: str, limit: int) -> list[Segment]:
        q = (
            sa.select(segments)
            .where(segments.c.camera_id == camera_id, segments.c.state == "stored")
            .order_by(segments.c.start_us.desc())
            .limit(limit)
        )
        with self.engine.connect() as c:
            rows = [_segment_from_row(r) for r in c.execute(q)]
        return rows[::-1]

    def pending_segments(self) -> list[Segment]:
        with self.engine.connect() as c:
            q = sa.select(segments).where(segments.c.state != "stored").order_by(segments.c.start_us)
            return [_segment_from_row(r) for r in c.execute(q)]

    def delete_segments(self, ids: Iterable[int]) -> int:
        ids = list(ids)
        if not ids:
            return 0
        with self._begin() as c:
            return int(c.execute(sa.delete(segments).where(segments.c.id.in_(ids))).rowcount)

    def segment_totals(self) -> dict[str, tuple[int, int]]:
        """Per camera: (stored segments, stored bytes)."""
        q = (
            sa.select(segments.c.camera_id, sa.func.count(), sa.func.coalesce(sa.func.sum(segments.c.bytes), 0))
            .where(segments.c.state == "stored")
            .group_by(segments.c.camera_id)
        )
        with self.engine.connect() as c:
            return {r[0]: (int(r[1]), int(r[2])) for r in c.execute(q)}
