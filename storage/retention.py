"""Retention: oldest segments go first — by age per camera, then by the store's byte budget —
except what an investigator has placed on hold. Object and catalog row go together.

Deletion is two-phase so a crash or a store outage never leaves a row pointing at nothing:
rows are first marked `deleting` (invisible to playback), then objects are deleted, then rows.
A later pass finishes whatever a failed pass left `deleting`.

Age goes by whole UTC days: a segment is deleted once every segment starting on its day is past its
camera's age limit (so video lives up to a day longer than `days`). On PostgreSQL a day nobody holds
is detached from `segments` in one transaction (its rows leave playback and the totals together),
its objects deleted from the detached table's keys, then the table dropped — a cost set by the day,
not by the history. A day with held ranges loses only its unheld rows, row by row. SQLite (one
node) deletes row by row, each query bounded by the day.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from storage.catalog import Catalog, cameras, holds, segments
from storage.catalog.partitions import DAY_US, MAX_SEGMENT_US, DayPartition, day_of, day_partitions, ensure_days
from storage.catalog.segment_rows import add_totals
from storage.keys import segment_key
from storage.object_store import ObjectStore, ObjectStoreError
from storage.timeline import overlaps
from core.clock import SYSTEM_CLOCK, Clock

__all__ = ["Candidate", "Hold", "RetentionResult", "add_hold", "apply_retention", "day_boundary", "list_holds",
           "oldest_stored", "release_hold", "unheld"]

log = logging.getLogger("vigil.retention")
_PASS_LOCK = 0x76726574  # one node at a time drops days
_STREAM = 10_000
DELETE_BATCH = 1000  # keys per object-store request (S3 DeleteObjects takes 1,000)


@dataclass(frozen=True, slots=True)
class Hold:
    id: int
    camera_id: str
    start_us: int
    end_us: int
    reason: str
    created_by: str | None
    created_us: int
    released_us: int | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    id: int
    camera_id: str
    start_us: int
    end_us: int
    bytes: int

    @property
    def object_key(self) -> str:
        return segment_key(self.camera_id, self.start_us)


@dataclass(slots=True)
class RetentionResult:
    deleted: int = 0
    deleted_bytes: int = 0
    spared_by_holds: int = 0
    failed: int = 0
    days_dropped: int = 0


def unheld(cands: Sequence[Candidate], active: Sequence[Hold]) -> tuple[list[Candidate], int]:
    """The candidates no active hold touches, and how many were spared (pure)."""
    by_cam: dict[str, list[Hold]] = {}
    for h in active:
        by_cam.setdefault(h.camera_id, []).append(h)
    keep = [c for c in cands if not any(overlaps(c.start_us, c.end_us, h.start_us, h.end_us) for h in by_cam.get(c.camera_id, ()))]
    return keep, len(cands) - len(keep)


# ---- holds -----------------------------------------------------------------------------------


def add_hold(catalog: Catalog, camera_id: str, start_us: int, end_us: int, reason: str, created_by: str | None, now_us: int) -> Hold:
    with catalog.engine.begin() as c:
        hid = c.execute(
            sa.insert(holds).values(
                camera_id=camera_id, start_us=start_us, end_us=end_us, reason=reason, created_by=created_by, created_us=now_us
            )
        ).inserted_primary_key[0]
    return Hold(int(hid), camera_id, start_us, end_us, reason, created_by, now_us)


def list_holds(catalog: Catalog, camera_id: str | None = None, *, active_only: bool = True) -> list[Hold]:
    q = sa.select(holds).order_by(holds.c.id)
    if camera_id is not None:
        q = q.where(holds.c.camera_id == camera_id)
    if active_only:
        q = q.where(holds.c.released_us.is_(None))
    with catalog.engine.connect() as c:
        return [Hold(**dict(r._mapping)) for r in c.execute(q)]


def release_hold(catalog: Catalog, hold_id: int, now_us: int, camera_id: str | None = None) -> bool:
    q = sa.update(holds).where(holds.c.id == hold_id, holds.c.released_us.is_(None)).values(released_us=now_us)
    if camera_id is not None:
        q = q.where(holds.c.camera_id == camera_id)
    with catalog.engine.begin() as c:
        return bool(c.execute(q).rowcount)


# ---- the pass --------------------------------------------------------------------------------


def _candidates(c: sa.Connection, q: sa.Select) -> list[Candidate]:  # type: ignore[type-arg]
    return [Candidate(int(r.id), r.camera_id, int(r.start_us), int(r.end_us), int(r.bytes)) for r in c.execute(q)]


def _cols() -> sa.Select:  # type: ignore[type-arg]
    return sa.select(segments.c.id, segments.c.camera_id, segments.c.start_us, segments.c.end_us, segments.c.bytes)


def _delete(catalog: Catalog, store: ObjectStore, doomed: list[Candidate], res: RetentionResult, *, marked: bool = False) -> None:
    if not doomed:
        return
    if not marked:
        catalog.mark_deleting([d.id for d in doomed])
    gone: list[int] = []
    for k in range(0, len(doomed), DELETE_BATCH):
        part = doomed[k : k + DELETE_BATCH]
        try:
            store.delete_many([d.object_key for d in part])
        except ObjectStoreError as e:  # left `deleting`: the next pass retries them
            res.failed += len(part)
            log.warning("retention: cannot delete %d object(s) from %s yet: %s", len(part), part[0].object_key, e)
            continue
        gone.extend(d.id for d in part)
        res.deleted += len(part)
        res.deleted_bytes += sum(d.bytes for d in part)
    catalog.delete_segments(gone)


def day_boundary(now_us: int, days: float) -> int:
    """Start of the oldest UTC day that still holds a segment younger than `days`: every segment
    starting before it has ended before `now - days`."""
    return day_of(now_us - int(days * DAY_US) - MAX_SEGMENT_US) * DAY_US


def _held(active: Sequence[Hold], start_us: int, end_us: int) -> bool:
    return any(overlaps(start_us, end_us, h.start_us, h.end_us) for h in active)


def _finish_detached(catalog: Catalog, store: ObjectStore, part: DayPartition, res: RetentionResult) -> bool:
    """Delete the objects of a detached day, then its table; False (table kept) if the store failed."""
    deleted = deleted_bytes = 0
    with catalog.engine.connect() as c:
        # the driver's own server-side cursor: a city-day is 6.4 M rows, and SQLAlchemy's row
        # objects cost more per row than deriving the key
        cur = c.connection.driver_connection.cursor(name=f"retention_{part.name}")  # type: ignore[union-attr]
        cur.itersize = _STREAM
        cur.execute(f'SELECT camera_id, start_us, bytes FROM "{part.name}"')
        while batch := cur.fetchmany(DELETE_BATCH):
            keys = [segment_key(cam, start_us) for cam, start_us, _b in batch]
            try:
                store.delete_many(keys)
            except ObjectStoreError as e:  # deletes are idempotent: the next pass starts this day over
                res.failed += len(keys)
                log.warning("retention: cannot delete objects of %s yet (kept for the next pass): %s", part.name, e)
                return False
            deleted += len(keys)
            deleted_bytes += sum(int(b) for _c, _s, b in batch)
        cur.close()
        c.rollback()
    with catalog.engine.begin() as c:
        c.execute(sa.text(f'DROP TABLE IF EXISTS "{part.name}"'))
    res.deleted += deleted
    res.deleted_bytes += deleted_bytes
    res.days_dropped += 1
    return True


def _drop_days(catalog: Catalog, store: ObjectStore, active: Sequence[Hold], boundary_us: int,
               boundary: dict[str, int], now_us: int, res: RetentionResult) -> list[DayPartition] | None:
    """PostgreSQL: detach and drop every whole day before `boundary_us` (the default age limit's)
    that no hold touches. Returns the old days kept because of a hold (their unheld rows go row by
    row), or None if the pass must stop (the store failed, or another node is detaching).

    The rows of cameras with a longer age limit (`boundary[cam]` before the day's end) are moved
    back into a fresh partition of that day in the detaching transaction — a cost set by those
    few rows — and go later by their own limit. Nodes may run passes at once: a day is detached
    under a transaction-scoped advisory lock (so this works behind PgBouncer in transaction mode)
    after checking it is still attached; finishing a detached day twice only repeats idempotent
    object deletes."""
    today = day_of(now_us)
    with catalog.engine.begin() as c:
        ensure_days(c, range(today - 1, today + 3))  # the recorders never wait on DDL
        parts = day_partitions(c)
    held: list[DayPartition] = []
    for p in parts:
        if not p.attached:  # left by a pass that stopped half-way
            if not _finish_detached(catalog, store, p, res):
                return None
            continue
        if p.end_us > boundary_us:
            break
        if _held(active, p.start_us, p.end_us + MAX_SEGMENT_US):
            held.append(p)  # the row pass deletes what is not held
            continue
        kept = sorted(cam for cam, b in boundary.items() if b < p.end_us)
        gone = f"{p.name}_gone"
        with catalog.engine.begin() as c:
            if not c.execute(sa.text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _PASS_LOCK}).scalar_one():
                return None  # another node is detaching a day right now
            if not any(q.name == p.name and q.attached for q in day_partitions(c)):
                continue
            others = sa.text(f'SELECT EXISTS (SELECT 1 FROM "{p.name}" WHERE camera_id <> ALL(CAST(:kept AS varchar[])))')
            if not c.execute(others, {"kept": kept}).scalar_one():
                if not c.execute(sa.text(f'SELECT EXISTS (SELECT 1 FROM "{p.name}")')).scalar_one():
                    c.execute(sa.text(f'DROP TABLE "{p.name}"'))  # an old day emptied row by row
                continue  # only longer-kept cameras' rows: their own limit takes them
            # the day's sums first, with only the day locked against writes (readers of `segments`
            # go on): the detach below holds the whole table exclusively, so it must be short
            c.execute(sa.text(f'LOCK TABLE "{p.name}" IN EXCLUSIVE MODE'))
            sums = c.execute(
                sa.text(f'SELECT camera_id, count(*), sum(bytes) FROM "{p.name}" WHERE state = \'stored\' '
                        "AND camera_id <> ALL(CAST(:kept AS varchar[])) GROUP BY camera_id"), {"kept": kept}
            ).all()
            c.execute(sa.text(f'ALTER TABLE segments DETACH PARTITION "{p.name}"'))
            c.execute(sa.text(f'ALTER TABLE "{p.name}" RENAME TO "{gone}"'))
            if kept:
                ensure_days(c, [p.day])
                c.execute(sa.text(f'INSERT INTO segments SELECT * FROM "{gone}" WHERE camera_id = ANY(CAST(:kept AS varchar[]))'),
                          {"kept": kept})
                c.execute(sa.text(f'DELETE FROM "{gone}" WHERE camera_id = ANY(CAST(:kept AS varchar[]))'), {"kept": kept})
            add_totals(c, {cam: (-int(n), -int(b)) for cam, n, b in sums})
        if not _finish_detached(catalog, store, DayPartition(gone, p.day, False), res):
            return None
    return held


def _row_pass(catalog: Catalog, store: ObjectStore, active: Sequence[Hold], res: RetentionResult, batch: int, *,
              camera: str | None, lo: int | None, hi: int, boundary: dict[str, int], default_us: int) -> None:
    """Delete, two-phase and in keyset pages of (camera, start), the stored rows with
    lo <= start_us < hi (of one camera, or all) that are past their camera's boundary and unheld."""
    after = ("", -(2**63))
    while True:
        q = _cols().where(segments.c.state == "stored", segments.c.start_us < hi)
        if lo is not None:
            q = q.where(segments.c.start_us >= lo)
        if camera is not None:
            q = q.where(segments.c.camera_id == camera)
        q = (q.where(sa.tuple_(segments.c.camera_id, segments.c.start_us) > sa.tuple_(*after))
             .order_by(segments.c.camera_id, segments.c.start_us).limit(batch))
        with catalog.engine.connect() as c:
            cands = _candidates(c, q)
        if not cands:
            return
        after = (cands[-1].camera_id, cands[-1].start_us)
        expired = [x for x in cands if x.start_us < boundary.get(x.camera_id, default_us)]
        doomed, spared = unheld(expired, active)
        res.spared_by_holds += spared
        _delete(catalog, store, doomed, res)
        if len(cands) < batch:
            return


def oldest_stored(limit: int) -> sa.Select:  # type: ignore[type-arg]
    """The byte budget's candidates: the oldest stored segments of any camera. Read in start order
    from `ix_segments_start` (one probe per day partition), never by sorting every stored row."""
    return _cols().where(segments.c.state == "stored").order_by(segments.c.start_us).limit(limit)


def apply_retention(
    catalog: Catalog,
    store: ObjectStore,
    *,
    default_days: float,
    max_bytes: int | None = None,
    batch: int = 500,
    clock: Clock = SYSTEM_CLOCK,
) -> RetentionResult:
    """One pass over the catalog; returns what it did."""
    now_us = int(clock.now() * 1_000_000)
    res = RetentionResult()
    active = list_holds(catalog)
    with catalog.engine.connect() as c:
        leftovers = _candidates(c, _cols().where(segments.c.state == "deleting"))
        days = {r.id: (r.options or {}).get("retention_days") for r in c.execute(sa.select(cameras.c.id, cameras.c.options))}
    _delete(catalog, store, leftovers, res, marked=True)
    # cameras with stored video, from the running totals (never a DISTINCT over `segments`)
    default_us = day_boundary(now_us, default_days)
    boundary = {cam: day_boundary(now_us, float(days.get(cam) or default_days)) for cam in catalog.recorded_cameras()}
    rows = dict(boundary=boundary, default_us=default_us)
    if catalog.is_sqlite:  # one node: row by row, each camera up to its own boundary
        for cam, hi in boundary.items():
            _row_pass(catalog, store, active, res, batch, camera=cam, lo=None, hi=hi, **rows)  # type: ignore[arg-type]
    else:
        held = _drop_days(catalog, store, active, default_us, boundary, now_us, res)
        for p in held or []:  # a held day: its unheld rows, all cameras at once
            _row_pass(catalog, store, active, res, batch, camera=None, lo=p.start_us, hi=p.end_us, **rows)  # type: ignore[arg-type]
        for cam, hi in boundary.items():  # cameras with their own limit: bounded by it
            if hi != default_us:
                _row_pass(catalog, store, active, res, batch, camera=cam, lo=None, hi=hi, **rows)  # type: ignore[arg-type]

    # by bytes, oldest first across cameras
    if max_bytes is not None:
        spared_ids: set[int] = set()
        while True:
            total = sum(b for _n, b in catalog.segment_totals().values())
            if total <= max_bytes:
                break
            with catalog.engine.connect() as c:
                cands = [x for x in _candidates(c, oldest_stored(batch + len(spared_ids))) if x.id not in spared_ids]
            if not cands:
                break
            doomed, _ = unheld(cands, active)
            spared_ids.update(x.id for x in cands if x not in doomed)
            over = total - max_bytes
            chosen: list[Candidate] = []
            for d in doomed:
                if over <= 0:
                    break
                chosen.append(d)
                over -= d.bytes
            if not chosen:
                if len(cands) < batch:
                    break
                continue
            _delete(catalog, store, chosen, res)
        res.spared_by_holds += len(spared_ids)
    if res.deleted or res.failed:
        log.info(
            "retention: deleted %d segment(s), %.1f MB (%d whole day(s)); %d spared by holds; %d to retry",
            res.deleted,
            res.deleted_bytes / 1e6,
            res.days_dropped,
            res.spared_by_holds,
            res.failed,
        )
    return res
