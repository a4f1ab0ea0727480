"""Feed statuses and health events, written together so an event never outlives its status."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from storage.catalog.base import CatalogBase
from storage.catalog.models import Event, FeedStatus, _shallow
from storage.catalog.tables import cameras, events, feed_status

__all__ = ["StatusRows"]

# Built once: the status of every camera is written every couple of seconds
_STATUS_UPDATE = feed_status.update().where(feed_status.c.camera_id == sa.bindparam("_cid"))
_STATUS_INSERT = feed_status.insert()
# PostgreSQL hands out an event's id when the row is inserted, not when it commits: two writers can
# commit ids 11 then 10, and a reader paging by `id > cursor` (the SSE stream, /api/events) that
# saw 11 would never see 10. A transaction-scoped advisory lock, taken before a transaction's first
# event, makes ids commit in order: the lock goes only after the commit is visible. SQLite has one
# writer at a time already.
_EVENT_ORDER_LOCK = sa.text("SELECT pg_advisory_xact_lock(7391002)")
_EVENT_INSERT = events.insert()
_TRANSITION = (events.c.camera_id, events.c.at_us, events.c.kind, events.c.from_state, events.c.to_state, events.c.id)


def _transition(r: Any) -> Event:
    return Event(r[0], int(r[1]), r[2], r[3], r[4], id=int(r[5]))


class StatusRows(CatalogBase):
    def put_status(self, st: FeedStatus, conn: Connection | None = None) -> None:
        row = asdict(st)
        if conn is None:
            with self._begin() as c:
                self._put_status(c, row)
        else:
            self._put_status(conn, row)

    @staticmethod
    def _put_status(c: Connection, row: dict[str, Any]) -> None:
        done = c.execute(_STATUS_UPDATE, {**row, "_cid": row["camera_id"]}).rowcount
        if not done:
            c.execute(_STATUS_INSERT, row)

    def put_status_with_event(self, st: FeedStatus, ev: Event | None) -> int | None:
        """Status and its state-change event in one transaction: never one without the other."""
        with self._begin() as c:
            if ev is not None:
                self._order_events(c)
            self._put_status(c, asdict(st))
            if ev is None:
                return None
            row = asdict(ev)
            row.pop("id")
            ev.id = int(c.execute(sa.insert(events).values(**row)).inserted_primary_key[0])
            return ev.id

    def put_statuses_with_events(self, items: Sequence[tuple[FeedStatus, Event | None]]) -> None:
        """Many cameras' statuses, each with its event if any, in one transaction, in the order given.

        A worker process writes all its cameras' pending statuses this way every couple of seconds:
        one commit (one fsync on SQLite) instead of one per camera. All or nothing, so a status is
        never written without its event; events get their ids in list order.
        """
        if not items:
            return
        with self._begin() as c:
            if any(ev is not None for _st, ev in items):
                self._order_events(c)  # before any row lock: a writer waiting here holds none
            for st, ev in items:
                self._put_status(c, _shallow(st))
                if ev is not None:
                    row = _shallow(ev)
                    row.pop("id")
                    ev.id = int(c.execute(_EVENT_INSERT, row).inserted_primary_key[0])

    def get_status(self, camera_id: str) -> FeedStatus | None:
        with self.engine.connect() as c:
            r = c.execute(sa.select(feed_status).where(feed_status.c.camera_id == camera_id)).first()
        return FeedStatus(**dict(r._mapping)) if r else None

    def all_status(self) -> list[FeedStatus]:
        with self.engine.connect() as c:
            return [FeedStatus(**dict(r._mapping)) for r in c.execute(sa.select(feed_status))]

    def add_event(self, ev: Event) -> int:
        row = asdict(ev)
        row.pop("id")
        with self._begin() as c:
            self._order_events(c)
            ev.id = int(c.execute(sa.insert(events).values(**row)).inserted_primary_key[0])
        return ev.id

    def _order_events(self, c: Connection) -> None:
        """Call first in a transaction that inserts events (see `_EVENT_ORDER_LOCK`)."""
        if not self.is_sqlite:
            c.execute(_EVENT_ORDER_LOCK)

    def events_since(
        self,
        cursor: int = 0,
        *,
        camera_id: str | None = None,
        limit: int = 100,
        start_us: int | None = None,
        end_us: int | None = None,
    ) -> list[Event]:
        q = sa.select(events).where(events.c.id > cursor).order_by(events.c.id).limit(limit)
        if camera_id is not None:
            q = q.where(events.c.camera_id == camera_id)
        if start_us is not None:
            q = q.where(events.c.at_us >= start_us)
        if end_us is not None:
            q = q.where(events.c.at_us < end_us)
        with self.engine.connect() as c:
            return [Event(**dict(r._mapping)) for r in c.execute(q)]

    def last_event_id(self) -> int:
        with self.engine.connect() as c:
            return int(c.execute(sa.select(sa.func.coalesce(sa.func.max(events.c.id), 0))).scalar_one())

    # ---- reading by time: the availability report and event retention -----------------------

    def state_events_between(self, start_us: int, end_us: int) -> list[Event]:
        """`state` events dated in [start_us, end_us), in write order (by the `at_us` index).
        Transitions only: `reason` and `figures` are left empty (a city-day is ~54 k events, and
        decoding their JSON figures was most of a report's time)."""
        q = (
            sa.select(*_TRANSITION)
            .where(events.c.at_us >= start_us, events.c.at_us < end_us, events.c.kind == "state")
            .order_by(events.c.id)
        )
        with self.engine.connect() as c:
            return [_transition(r) for r in c.execute(q)]

    def states_before(self, at_us: int, camera_ids: Sequence[str] | None = None) -> dict[str, list[Event]]:
        """Per known camera, what its state at `at_us` depends on: its latest `state` event before
        `at_us` and, if that one is not `online`, its latest `online` one before (whether a fault
        open at `at_us` is an outage). Two index probes per camera, whatever the history.
        Transitions only, as `state_events_between`."""
        ids = sa.union(sa.select(cameras.c.id.label("cid")), sa.select(feed_status.c.camera_id.label("cid"))).subquery()
        e = events.alias("e")

        def latest(*extra: sa.ColumnElement[bool]) -> sa.ScalarSelect[int]:
            return (
                sa.select(e.c.id)
                .where(e.c.camera_id == ids.c.cid, e.c.at_us < at_us, e.c.kind == "state", *extra)
                .order_by(e.c.at_us.desc(), e.c.id.desc())
                .limit(1)
                .scalar_subquery()
            )

        q = sa.select(ids.c.cid, latest(), latest(e.c.to_state == "online"))
        if camera_ids is not None:
            q = q.where(ids.c.cid.in_(list(camera_ids)))
        out: dict[str, list[Event]] = {}
        with self.engine.connect() as c:
            wanted = sorted({i for _cid, a, b in c.execute(q) for i in (a, b) if i is not None})
            for k in range(0, len(wanted), 1000):
                chunk = wanted[k : k + 1000]
                for r in c.execute(sa.select(*_TRANSITION).where(events.c.id.in_(chunk)).order_by(events.c.id)):
                    out.setdefault(r.camera_id, []).append(_transition(r))
        return out

    def prune_events(self, before_us: int, *, batch: int = 10_000) -> int:
        """Delete events dated before `before_us`, keeping for each camera what `states_before`
        needs at `before_us` (so a report of any later window still knows the state at its start).
        Paged by the `at_us` index; returns how many went."""
        keep = {e.id for evs in self.states_before(before_us).values() for e in evs}
        after = (-(2**63), -1)
        gone = 0
        while True:
            with self._begin() as c:
                page = c.execute(
                    sa.select(events.c.id, events.c.at_us)
                    .where(events.c.at_us < before_us)
                    .where(sa.tuple_(events.c.at_us, events.c.id) > sa.tuple_(*after))
                    .order_by(events.c.at_us, events.c.id)
                    .limit(batch)
                ).all()
                doomed = [i for i, _at in page if i not in keep]
                if doomed:
                    gone += int(c.execute(sa.delete(events).where(events.c.id.in_(doomed))).rowcount)
            if len(page) < batch:
                return gone
            after = (page[-1][1], page[-1][0])
