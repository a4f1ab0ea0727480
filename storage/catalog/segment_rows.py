"""Segments: registration by the uploader, range queries for playback, totals for metrics.

Every read of a time range is bounded on `start_us` from both sides (a segment is never longer
than MAX_SEGMENT_US), so its cost is that of the range, not of the camera's history; on PostgreSQL
the bounds also prune the day partitions. Stored totals per camera live in `segment_totals`,
changed in the same transaction as the rows they count.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from storage.catalog.base import CatalogBase
from storage.catalog.fragment_index import pack_fragments, unpack_fragments
from storage.catalog.models import Segment, _shallow
from storage.catalog.partitions import MAX_SEGMENT_US, day_of, ensure_days
from storage.catalog.tables import segment_totals, segments
from storage.keys import parse_segment_key

__all__ = ["SegmentRows", "add_totals", "latest_query", "segment_from_row"]

# Statements the recorder runs for every segment, built once: constructing them per call cost more
# CPU than SQLite's work.
_SEGMENT_AT = sa.select(segments.c.id).where(
    segments.c.camera_id == sa.bindparam("cam"), segments.c.start_us == sa.bindparam("start")
)
_INSERT_NEW: dict[str, Any] = {}


def _insert_new(c: Connection) -> Any:
    """INSERT … ON CONFLICT (camera_id, start_us) DO NOTHING RETURNING id, built once per dialect."""
    name = c.dialect.name
    if name not in _INSERT_NEW:
        if name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        _INSERT_NEW[name] = (
            insert(segments)
            .on_conflict_do_nothing(index_elements=[segments.c.camera_id, segments.c.start_us])
            .returning(segments.c.id)
        )
    return _INSERT_NEW[name]


def segment_from_row(r: Any) -> Segment:
    m = dict(r._mapping)
    m["fragments"] = unpack_fragments(m["fragments"])
    return Segment(**m)



def latest_query(camera_id: str, limit: int, ended_after_us: int | None = None) -> sa.Select[Any]:
    """`latest_segments`'s query (apart, so a test can EXPLAIN it)."""
    q = (
        sa.select(segments)
        .where(segments.c.camera_id == camera_id, segments.c.state == "stored")
        .order_by(segments.c.start_us.desc())
        .limit(limit)
    )
    if ended_after_us is not None:
        q = q.where(segments.c.start_us > ended_after_us - MAX_SEGMENT_US, segments.c.end_us > ended_after_us)
    return q

class SegmentRows(CatalogBase):
    _partition_days: set[int]

    def add_segment(self, seg: Segment) -> int:
        """Insert (or, for a retried upload, find) the row of a segment; returns its id."""
        return self.add_segments([seg])[0]

    def add_segments(self, segs: Sequence[Segment]) -> list[int]:
        """`add_segment` for many, in one transaction (the uploader registers a pass's worth)."""
        if not self.is_sqlite:
            self._ensure_partitions(day_of(s.start_us) for s in segs)
        try:
            return self._add_segments(segs)
        except sa.exc.IntegrityError:
            if self.is_sqlite:
                raise
            # retention on another node dropped a day this process thought it had: make it again
            self._partition_days = set()
            self._ensure_partitions(day_of(s.start_us) for s in segs)
            return self._add_segments(segs)

    def _add_segments(self, segs: Sequence[Segment]) -> list[int]:
        ids: list[int] = []
        with self._begin() as c:
            insert = _insert_new(c)
            for seg in segs:
                row = _shallow(seg)  # `asdict` deep-copied every Fragment only to pack it
                row.pop("id")
                row["fragments"] = pack_fragments(seg.fragments)
                # one round trip for a new segment; a retried upload finds its row
                new = c.execute(insert, row).scalar_one_or_none()
                if new is None:
                    new = c.execute(_SEGMENT_AT, {"cam": seg.camera_id, "start": seg.start_us}).scalar_one()
                elif seg.state == "stored":
                    add_totals(c, {seg.camera_id: (1, seg.bytes)})
                seg.id = int(new)
                ids.append(seg.id)
        return ids

    def _ensure_partitions(self, days: Iterable[int]) -> None:
        known = self.__dict__.setdefault("_partition_days", set())
        missing = set(days) - known
        if missing:
            with self._begin() as c:
                ensure_days(c, missing)
            known |= missing

    def mark_stored(self, segment_id: int, now_us: int) -> None:
        self.mark_stored_many([segment_id], now_us)

    def mark_stored_many(self, segment_ids: Sequence[int], now_us: int) -> None:
        if not segment_ids:
            return
        with self._begin() as c:
            rows = c.execute(
                sa.update(segments)
                .where(segments.c.id.in_(list(segment_ids)), segments.c.state == "spooled")
                .values(state="stored", stored_us=now_us)
                .returning(segments.c.camera_id, segments.c.bytes)
            ).all()
            add_totals(c, _sums(rows, 1))

    def mark_deleting(self, segment_ids: Sequence[int]) -> None:
        """Retention's first phase: the rows leave playback and the totals, their objects go next."""
        if not segment_ids:
            return
        with self._begin() as c:
            rows = c.execute(
                sa.select(segments.c.camera_id, segments.c.bytes).where(
                    segments.c.id.in_(list(segment_ids)), segments.c.state == "stored"
                )
            ).all()
            c.execute(sa.update(segments).where(segments.c.id.in_(list(segment_ids))).values(state="deleting"))
            add_totals(c, _sums(rows, -1))

    def get_segment_by_key(self, key: str) -> Segment | None:
        try:
            k = parse_segment_key(key)
        except ValueError:
            return None
        q = sa.select(segments).where(segments.c.camera_id == k.camera, segments.c.start_us == k.start_us)
        with self.engine.connect() as c:
            r = c.execute(q).first()
        return segment_from_row(r) if r else None

    def segments_between(
        self, camera_id: str, start_us: int, end_us: int, *, stored_only: bool = True
    ) -> list[Segment]:
        """Segments overlapping [start_us, end_us), oldest first."""
        q = (
            sa.select(segments)
            .where(segments.c.camera_id == camera_id)
            .where(segments.c.start_us < end_us, segments.c.start_us > start_us - MAX_SEGMENT_US)
            .where(segments.c.end_us > start_us)
            .order_by(segments.c.start_us)
        )
        if stored_only:
            q = q.where(segments.c.state == "stored")
        with self.engine.connect() as c:
            return [segment_from_row(r) for r in c.execute(q)]

    def segments_for(self, camera_id: str | None = None, *, stored_only: bool = False) -> list[Segment]:
        q = sa.select(segments).order_by(segments.c.camera_id, segments.c.start_us)
        if camera_id is not None:
            q = q.where(segments.c.camera_id == camera_id)
        if stored_only:
            q = q.where(segments.c.state == "stored")
        with self.engine.connect() as c:
            return [segment_from_row(r) for r in c.execute(q)]

    def latest_segments(self, camera_id: str, limit: int, *, ended_after_us: int | None = None) -> list[Segment]:
        """The camera's newest stored segments, oldest first. With `ended_after_us` only those that
        ended after it — and start_us is bounded from below too (MAX_SEGMENT_US), so on PostgreSQL
        only the last day or two's partitions are probed, not one per day of history (live view)."""
        q = latest_query(camera_id, limit, ended_after_us)
        with self.engine.connect() as c:
            rows = [segment_from_row(r) for r in c.execute(q)]
        return rows[::-1]

    def pending_segments(self) -> list[Segment]:
        with self.engine.connect() as c:
            q = sa.select(segments).where(segments.c.state != "stored").order_by(segments.c.start_us)
            return [segment_from_row(r) for r in c.execute(q)]

    def delete_segments(self, ids: Iterable[int]) -> int:
        ids = list(ids)
        if not ids:
            return 0
        with self._begin() as c:
            stored = c.execute(
                sa.select(segments.c.camera_id, segments.c.bytes).where(
                    segments.c.id.in_(ids), segments.c.state == "stored"
                )
            ).all()
            n = int(c.execute(sa.delete(segments).where(segments.c.id.in_(ids))).rowcount)
            add_totals(c, _sums(stored, -1))
            return n

    def segment_totals(self) -> dict[str, tuple[int, int]]:
        """Per camera: (stored segments, stored bytes), from the running totals (one small table)."""
        q = sa.select(segment_totals).where(segment_totals.c.segments > 0)
        with self.engine.connect() as c:
            return {r.camera_id: (int(r.segments), int(r.bytes)) for r in c.execute(q)}

    def recorded_cameras(self) -> list[str]:
        """Cameras with stored segments, without touching `segments`."""
        return sorted(self.segment_totals())


def _sums(rows: Iterable[Any], sign: int) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for cam, nbytes in rows:
        n, b = out.get(cam, (0, 0))
        out[cam] = (n + sign, b + sign * int(nbytes))
    return out


def add_totals(c: Connection, deltas: dict[str, tuple[int, int]]) -> None:
    """Add (segments, bytes) per camera to `segment_totals`, in camera order (no lock cycles);
    retention uses it too, to subtract a whole day in the transaction that detaches it."""
    if not deltas:
        return
    if c.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    rows = [{"camera_id": cam, "segments": n, "bytes": b} for cam, (n, b) in sorted(deltas.items()) if n or b]
    if not rows:
        return
    stmt = insert(segment_totals).values(rows)  # one statement for every camera of the transaction
    stmt = stmt.on_conflict_do_update(
        index_elements=[segment_totals.c.camera_id],
        set_={"segments": segment_totals.c.segments + stmt.excluded.segments,
              "bytes": segment_totals.c.bytes + stmt.excluded.bytes},
    )
    c.execute(stmt)

