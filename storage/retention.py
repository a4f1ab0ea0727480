"""Retention: oldest segments go first — by age per camera, then by the store's byte budget —
except what an investigator has placed on hold. Object and catalog row go together.

Deletion is two-phase so a crash or a store outage never leaves a row pointing at nothing:
rows are first marked `deleting` (invisible to playback), then objects are deleted, then rows.
A later pass finishes whatever a failed pass left `deleting`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from storage.catalog import Catalog, holds, segments
from storage.object_store import ObjectStore, ObjectStoreError
from storage.timeline import overlaps
from core.clock import SYSTEM_CLOCK, Clock

__all__ = ["Hold", "RetentionResult", "Candidate", "apply_retention", "add_hold", "list_holds", "release_hold", "unheld"]

log = logging.getLogger("vigil.retention")
DAY_US = 86_400 * 1_000_000


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
    object_key: str


@dataclass(slots=True)
class RetentionResult:
    deleted: int = 0
    deleted_bytes: int = 0
    spared_by_holds: int = 0
    failed: int = 0


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
    return [Candidate(int(r.id), r.camera_id, int(r.start_us), int(r.end_us), int(r.bytes), r.object_key) for r in c.execute(q)]


def _cols() -> sa.Select:  # type: ignore[type-arg]
    return sa.select(
        segments.c.id, segments.c.camera_id, segments.c.start_us, segments.c.end_us, segments.c.bytes, segments.c.object_key
    )


def _delete(catalog: Catalog, store: ObjectStore, doomed: list[Candidate], res: RetentionResult) -> None:
    if not doomed:
        return
    ids = [d.id for d in doomed]
    with catalog.engine.begin() as c:
        c.execute(sa.update(segments).where(segments.c.id.in_(ids)).values(state="deleting"))
    gone: list[int] = []
    for d in doomed:
        try:
            store.delete(d.object_key)
        except ObjectStoreError as e:
            res.failed += 1
            log.warning("retention: cannot delete %s yet: %s", d.object_key, e)
            continue
        gone.append(d.id)
        res.deleted += 1
        res.deleted_bytes += d.bytes
    catalog.delete_segments(gone)


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
        cams = [r[0] for r in c.execute(sa.select(segments.c.camera_id).distinct())]
    days = {cam.id: cam.options.retention_days for cam in catalog.list_cameras()}
    _delete(catalog, store, leftovers, res)

    # by age, per camera; keyset pages so held segments at the front never block the rest
    for cam in cams:
        cutoff = now_us - int(float(days.get(cam) or default_days) * DAY_US)
        after = (-1, -1)
        while True:
            with catalog.engine.connect() as c:
                cands = _candidates(
                    c,
                    _cols()
                    .where(segments.c.camera_id == cam, segments.c.state == "stored", segments.c.end_us <= cutoff)
                    .where(sa.tuple_(segments.c.start_us, segments.c.id) > sa.tuple_(*after))
                    .order_by(segments.c.start_us, segments.c.id)
                    .limit(batch),
                )
            if not cands:
                break
            after = (cands[-1].start_us, cands[-1].id)
            doomed, spared = unheld(cands, active)
            res.spared_by_holds += spared
            _delete(catalog, store, doomed, res)
            if len(cands) < batch:
                break

    # by bytes, oldest first across cameras
    if max_bytes is not None:
        spared_ids: set[int] = set()
        while True:
            with catalog.engine.connect() as c:
                total = int(
                    c.execute(
                        sa.select(sa.func.coalesce(sa.func.sum(segments.c.bytes), 0)).where(segments.c.state == "stored")
                    ).scalar_one()
                )
                if total <= max_bytes:
                    break
                q = _cols().where(segments.c.state == "stored").order_by(segments.c.start_us).limit(batch + len(spared_ids))
                cands = [x for x in _candidates(c, q) if x.id not in spared_ids]
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
            "retention: deleted %d segment(s), %.1f MB; %d spared by holds; %d to retry",
            res.deleted,
            res.deleted_bytes / 1e6,
            res.spared_by_holds,
            res.failed,
        )
    return res
