"""Feed statuses and health events, written together so an event never outlives its status."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from storage.catalog.base import CatalogBase
from storage.catalog.models import Event, FeedStatus, _shallow
from storage.catalog.tables import events, feed_status

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
