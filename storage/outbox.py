"""The webhook outbox: the notifier's place in the event log, the deliveries waiting, their figures.

Why in the catalog: a change is written to the outbox in the same transaction that moves the cursor
past its event, so a crash, a restart or a receiver down for an hour loses nothing (at least once;
the body's `id` is the same on every retry). The cursor row is also a lease: one node of a cluster
runs the notifier at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from storage.catalog import Catalog
from storage.catalog.tables import events, notify_cursor, notify_outbox, notify_webhooks

__all__ = ["CURSOR", "Delivery", "OutboxRow", "WebhookFigures", "claim_cursor", "enqueue", "hold_notifier", "mark_delivered",
           "mark_failed", "move_cursor", "pending", "prune_delivered", "release_cursor", "webhook_figures"]

CURSOR = "notifier"


@dataclass(frozen=True, slots=True)
class OutboxRow:
    webhook: str
    order_key: str
    delivery_id: str
    body: str


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    webhook: str
    order_key: str
    delivery_id: str
    body: str
    attempts: int
    next_us: int


@dataclass(frozen=True, slots=True)
class WebhookFigures:
    name: str
    pending: int
    oldest_pending_us: int | None
    delivered: int
    failures: int
    last_ok_us: int | None
    last_error: str | None
    last_error_us: int | None


def _insert(c: sa.Connection) -> sa.Insert:
    return (postgresql.insert if c.dialect.name == "postgresql" else sqlite.insert)(notify_cursor)


def claim_cursor(c: sa.Connection, holder: str, now_us: int, ttl_us: int) -> int | None:
    """Inside a transaction: take or renew the notifier lease; the cursor (last event id handled)
    if this node holds it, else None. A first start begins at the log's end (no history is sent).

    Writes first: on SQLite a transaction that reads and then writes may be refused its write lock
    when another writer committed meanwhile; one that starts with a write waits its turn instead."""
    take = (
        sa.update(notify_cursor)
        .where(notify_cursor.c.name == CURSOR)
        .where(sa.or_(notify_cursor.c.holder == holder, notify_cursor.c.holder.is_(None), notify_cursor.c.expires_us < now_us))
        .values(holder=holder, expires_us=now_us + ttl_us)
    )
    if not c.execute(take).rowcount:
        if c.execute(sa.select(notify_cursor.c.name).where(notify_cursor.c.name == CURSOR)).first() is not None:
            return None  # another node holds it
        last = c.execute(sa.select(sa.func.coalesce(sa.func.max(events.c.id), 0))).scalar_one()
        c.execute(
            _insert(c)
            .values(name=CURSOR, event_id=int(last), holder=None, expires_us=0)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        if not c.execute(take).rowcount:
            return None
    return int(c.execute(sa.select(notify_cursor.c.event_id).where(notify_cursor.c.name == CURSOR)).scalar_one())


def move_cursor(c: sa.Connection, event_id: int) -> None:
    c.execute(sa.update(notify_cursor).where(notify_cursor.c.name == CURSOR).values(event_id=event_id))


def hold_notifier(c: sa.Connection) -> None:
    """Inside a transaction that changes tickets beside the notifier (a hand resolution, a camera
    removed): wait for a notifier step in progress to commit, and keep the next one from starting
    until this transaction ends — a step decides from the open tickets it read at its start. A
    no-op write of the cursor row, whose lock every step takes first (claim_cursor); on SQLite,
    the transaction's first write, which waits its turn."""
    c.execute(sa.update(notify_cursor).where(notify_cursor.c.name == CURSOR).values(event_id=notify_cursor.c.event_id))


def release_cursor(catalog: Catalog, holder: str) -> None:
    with catalog.engine.begin() as c:
        c.execute(
            sa.update(notify_cursor)
            .where(notify_cursor.c.name == CURSOR, notify_cursor.c.holder == holder)
            .values(holder=None, expires_us=0)
        )


def enqueue(c: sa.Connection, rows: Sequence[OutboxRow], now_us: int) -> None:
    if rows:
        c.execute(
            sa.insert(notify_outbox),
            [{"webhook": r.webhook, "order_key": r.order_key, "delivery_id": r.delivery_id, "body": r.body,
              "created_us": now_us, "attempts": 0, "next_us": 0} for r in rows],
        )


def pending(catalog: Catalog, webhook: str, limit: int = 200) -> list[Delivery]:
    """The oldest undelivered rows of one webhook, in the order they were written."""
    q = (
        sa.select(notify_outbox)
        .where(notify_outbox.c.webhook == webhook, notify_outbox.c.delivered_us.is_(None))
        .order_by(notify_outbox.c.id)
        .limit(limit)
    )
    with catalog.engine.connect() as c:
        return [
            Delivery(int(r.id), r.webhook, r.order_key, r.delivery_id, r.body, int(r.attempts), int(r.next_us))
            for r in c.execute(q)
        ]


def _figures_row(c: sa.Connection, webhook: str) -> None:
    ins = (postgresql.insert if c.dialect.name == "postgresql" else sqlite.insert)(notify_webhooks)
    c.execute(ins.values(name=webhook, delivered=0, failures=0).on_conflict_do_nothing(index_elements=["name"]))


def mark_delivered(catalog: Catalog, webhook: str, ids: Sequence[int], now_us: int) -> None:
    if not ids:
        return
    with catalog.engine.begin() as c:
        _figures_row(c, webhook)
        c.execute(sa.update(notify_outbox).where(notify_outbox.c.id.in_(list(ids))).values(delivered_us=now_us))
        c.execute(
            sa.update(notify_webhooks)
            .where(notify_webhooks.c.name == webhook)
            .values(delivered=notify_webhooks.c.delivered + len(ids), last_ok_us=now_us)
        )


def mark_failed(catalog: Catalog, webhook: str, row_id: int | None, error: str, now_us: int, next_us: int) -> None:
    """One failed attempt: counted for the webhook; `row_id` (a row the receiver refused) waits until `next_us`."""
    with catalog.engine.begin() as c:
        _figures_row(c, webhook)
        if row_id is not None:
            c.execute(
                sa.update(notify_outbox)
                .where(notify_outbox.c.id == row_id)
                .values(attempts=notify_outbox.c.attempts + 1, next_us=next_us, last_error=error[:500])
            )
        c.execute(
            sa.update(notify_webhooks)
            .where(notify_webhooks.c.name == webhook)
            .values(failures=notify_webhooks.c.failures + 1, last_error=error[:500], last_error_us=now_us)
        )


def prune_delivered(catalog: Catalog, before_us: int) -> int:
    with catalog.engine.begin() as c:
        return int(
            c.execute(
                sa.delete(notify_outbox).where(notify_outbox.c.delivered_us.is_not(None), notify_outbox.c.delivered_us < before_us)
            ).rowcount
        )


def webhook_figures(catalog: Catalog, names: Sequence[str]) -> list[WebhookFigures]:
    """Per webhook: deliveries waiting (and since when), delivered, failed attempts, last success and error."""
    with catalog.engine.connect() as c:
        waiting = {
            r.webhook: (int(r.n), r.oldest)
            for r in c.execute(
                sa.select(notify_outbox.c.webhook, sa.func.count().label("n"), sa.func.min(notify_outbox.c.created_us).label("oldest"))
                .where(notify_outbox.c.delivered_us.is_(None), notify_outbox.c.webhook.in_(list(names)))
                .group_by(notify_outbox.c.webhook)
            )
        }
        figures = {r.name: r for r in c.execute(sa.select(notify_webhooks).where(notify_webhooks.c.name.in_(list(names))))}
    out = []
    for n in names:
        f = figures.get(n)
        w = waiting.get(n, (0, None))
        out.append(
            WebhookFigures(
                name=n,
                pending=w[0],
                oldest_pending_us=int(w[1]) if w[1] is not None else None,
                delivered=int(f.delivered) if f else 0,
                failures=int(f.failures) if f else 0,
                last_ok_us=int(f.last_ok_us) if f and f.last_ok_us is not None else None,
                last_error=f.last_error if f else None,
                last_error_us=int(f.last_error_us) if f and f.last_error_us is not None else None,
            )
        )
    return out
