"""Fault tickets as the API and the report read and work them: list, one, acknowledge, note, resolve,
and what a camera's removal does to its open tickets.

The notifier (notify/) opens and closes tickets from the event log; people acknowledge, annotate and
resolve them here. An acknowledgement, a hand resolution and a close by removal write their webhook
rows (storage/webhook_rows.py) into the outbox in the same transaction as the change, so a crash
loses none; the notifier delivers them. Times are µs since the epoch; a ticket's
`detected_us → acked_us → closed_us` are the detect → acknowledge → repair stages the report
measures (reports/tickets.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from core.settings import WebhookConfig
from storage.catalog import Catalog
from storage.catalog.tables import camera_faults, cameras, ticket_cameras, ticket_notes, tickets
from storage.outbox import OutboxRow, enqueue, hold_notifier
from storage.webhook_rows import ticket_rows

__all__ = ["CAMERA_REMOVED", "Ticket", "TicketCamera", "TicketError", "TicketNote", "ack_ticket", "add_note",
           "close_for_removed_camera", "get_ticket", "list_tickets", "resolve_ticket"]

MAX_TEXT = 4000
CAMERA_REMOVED = "camera_removed"  # a ticket camera's recovered_reason, and a ticket's close_reason
Hooks = Sequence[WebhookConfig]


class TicketError(Exception):
    """A request the ticket's state refuses (already closed, …), worded for a person."""


@dataclass(slots=True)
class TicketCamera:
    camera_id: str
    state: str
    since_us: int
    recovered_us: int | None = None
    tags: dict[str, str] = field(default_factory=dict)
    name: str = ""
    recovered_reason: str | None = None  # None: back online; CAMERA_REMOVED


@dataclass(slots=True)
class TicketNote:
    id: int
    at_us: int
    author: str
    text: str


@dataclass(slots=True)
class Ticket:
    id: int
    status: str  # open | closed
    fault: str
    title: str
    detected_us: int
    opened_us: int
    element_tag: str | None = None
    element_value: str | None = None
    acked_us: int | None = None
    acked_by: str | None = None
    closed_us: int | None = None
    closed_by: str | None = None
    close_reason: str | None = None
    cameras: list[TicketCamera] = field(default_factory=list)
    notes: list[TicketNote] = field(default_factory=list)

    @property
    def districts(self) -> list[str]:
        return sorted({c.tags["district"] for c in self.cameras if c.tags.get("district")})

    def has_tag(self, key: str, value: str) -> bool:
        return any(c.tags.get(key) == value for c in self.cameras) or (
            self.element_tag == key and self.element_value == value
        )


def _load(c: sa.Connection, rows: list[sa.Row], *, notes: bool) -> list[Ticket]:
    out = [
        Ticket(**{k: v for k, v in r._mapping.items()})  # columns are the dataclass's scalar fields
        for r in rows
    ]
    if not out:
        return out
    by_id = {t.id: t for t in out}
    ids = list(by_id)
    cams: dict[int, list[TicketCamera]] = defaultdict(list)
    q = (
        sa.select(ticket_cameras, cameras.c.tags, cameras.c.name)
        .select_from(ticket_cameras.outerjoin(cameras, cameras.c.id == ticket_cameras.c.camera_id))
        .where(ticket_cameras.c.ticket_id.in_(ids))
        .order_by(ticket_cameras.c.since_us, ticket_cameras.c.camera_id)
    )
    for r in c.execute(q):
        cams[int(r.ticket_id)].append(
            TicketCamera(
                r.camera_id, r.state, int(r.since_us), r.recovered_us, dict(r.tags or {}), r.name or "", r.recovered_reason
            )
        )
    for tid, cs in cams.items():
        by_id[tid].cameras = cs
    if notes:
        q2 = sa.select(ticket_notes).where(ticket_notes.c.ticket_id.in_(ids)).order_by(ticket_notes.c.id)
        for r in c.execute(q2):
            by_id[int(r.ticket_id)].notes.append(TicketNote(int(r.id), int(r.at_us), r.author, r.text))
    return out


def list_tickets(
    catalog: Catalog,
    *,
    status: str | None = None,
    district: str | None = None,
    tag: tuple[str, str] | None = None,
    camera_id: str | None = None,
    detected_from_us: int | None = None,
    detected_to_us: int | None = None,
    limit: int = 500,
) -> list[Ticket]:
    """Tickets, open first then newest first; filters on status, a camera's district or tag."""
    q = sa.select(tickets)
    if status is not None:
        q = q.where(tickets.c.status == status)
    if detected_from_us is not None:
        q = q.where(tickets.c.detected_us >= detected_from_us)
    if detected_to_us is not None:
        q = q.where(tickets.c.detected_us < detected_to_us)
    if camera_id is not None:
        q = q.where(tickets.c.id.in_(sa.select(ticket_cameras.c.ticket_id).where(ticket_cameras.c.camera_id == camera_id)))
    q = q.order_by(sa.case((tickets.c.status == "open", 0), else_=1), tickets.c.detected_us.desc(), tickets.c.id.desc())
    filtered = district is not None or tag is not None
    if not filtered:
        q = q.limit(limit)
    with catalog.engine.connect() as c:
        out = _load(c, list(c.execute(q)), notes=False)
    if district is not None:
        out = [t for t in out if district in t.districts]
    if tag is not None:
        out = [t for t in out if t.has_tag(*tag)]
    return out[:limit]


def _some(c: sa.Connection, ids: Sequence[int], *, notes: bool = False) -> list[Ticket]:
    return _load(c, list(c.execute(sa.select(tickets).where(tickets.c.id.in_(list(ids))).order_by(tickets.c.id))), notes=notes)


def get_ticket(catalog: Catalog, ticket_id: int) -> Ticket | None:
    with catalog.engine.connect() as c:
        found = _some(c, [ticket_id], notes=True)
    return found[0] if found else None


def _rows(
    hooks: Hooks, kind: str, t: Ticket, at_us: int, to_state: str | None, extra: Mapping[str, Any], reason: str = ""
) -> list[OutboxRow]:
    """A person's change to a ticket, for the webhooks that want its fault on one of its cameras."""
    return ticket_rows(
        hooks,
        kind,
        ticket_id=t.id,
        fault=t.fault,
        element=(t.element_tag, t.element_value),
        cameras={x.camera_id: (x.name, x.tags) for x in t.cameras},
        at_us=at_us,
        reason=reason or t.title,
        from_state=t.fault,
        to_state=to_state,
        extra=extra,
    )


def _text(text: str, what: str) -> str:
    text = text.strip()
    if not text:
        raise TicketError(f"{what} must not be empty")
    if len(text) > MAX_TEXT:
        raise TicketError(f"{what} is too long: at most {MAX_TEXT} characters")
    return text


def _exists(c: sa.Connection, ticket_id: int) -> bool:
    return c.execute(sa.select(tickets.c.id).where(tickets.c.id == ticket_id)).first() is not None


# Each change starts with its write (see storage/outbox.claim_cursor on SQLite's write lock).


def ack_ticket(catalog: Catalog, ticket_id: int, by: str, now_us: int, hooks: Hooks = ()) -> Ticket | None:
    """Acknowledge (once: a second acknowledgement keeps the first name and time, and sends nothing).
    None: no such ticket. The first one writes `ticket_acked` for `hooks` that want it."""
    by = _text(by, "the name")[:100]
    with catalog.engine.begin() as c:
        acked = c.execute(
            sa.update(tickets).where(tickets.c.id == ticket_id, tickets.c.acked_us.is_(None)).values(acked_us=now_us, acked_by=by)
        ).rowcount
        if not acked and not _exists(c, ticket_id):
            return None
        if acked and hooks:
            for t in _some(c, [ticket_id]):  # the cameras still in a fault keep it: to_state is the fault
                enqueue(c, _rows(hooks, "ticket_acked", t, now_us, t.fault, {"acked_by": by}), now_us)
    return get_ticket(catalog, ticket_id)


def add_note(catalog: Catalog, ticket_id: int, author: str, text: str, now_us: int) -> Ticket | None:
    author, text = _text(author, "the author")[:100], _text(text, "the note")
    row = sa.select(
        tickets.c.id, sa.literal(now_us, sa.BigInteger), sa.literal(author, sa.String), sa.literal(text, sa.Text)
    ).where(tickets.c.id == ticket_id)
    with catalog.engine.begin() as c:
        added = c.execute(sa.insert(ticket_notes).from_select(["ticket_id", "at_us", "author", "text"], row)).rowcount
    return get_ticket(catalog, ticket_id) if added else None


def resolve_ticket(
    catalog: Catalog, ticket_id: int, by: str, now_us: int, note: str | None = None, hooks: Hooks = ()
) -> Ticket | None:
    """Close by hand. An unacknowledged ticket is acknowledged at the same moment by the same person.
    Writes `ticket_resolved` for `hooks` that want it; waits for a notifier step in progress, so
    the step does not also close the ticket (and send `ticket_closed`) from what it read before."""
    by = _text(by, "the name")[:100]
    note = _text(note, "the note") if note and note.strip() else None
    with catalog.engine.begin() as c:
        hold_notifier(c)
        done = c.execute(
            sa.update(tickets)
            .where(tickets.c.id == ticket_id, tickets.c.status == "open")
            .values(status="closed", closed_us=now_us, closed_by=by, close_reason="resolved")
        ).rowcount
        if not done:
            if not _exists(c, ticket_id):
                return None
            raise TicketError(f"ticket {ticket_id} is closed already")
        c.execute(
            sa.update(tickets).where(tickets.c.id == ticket_id, tickets.c.acked_us.is_(None)).values(acked_us=now_us, acked_by=by)
        )
        if note:
            c.execute(sa.insert(ticket_notes).values(ticket_id=ticket_id, at_us=now_us, author=by, text=note))
        if hooks:
            for t in _some(c, [ticket_id]):
                extra = {"resolved_by": by, "note": note, "acked_by": t.acked_by}
                enqueue(c, _rows(hooks, "ticket_resolved", t, now_us, t.fault, extra), now_us)
    return get_ticket(catalog, ticket_id)


def close_for_removed_camera(c: sa.Connection, camera_id: str, now_us: int, by: str, hooks: Hooks = ()) -> list[int]:
    """Inside the transaction that deletes a camera, before its row goes (its name and tags still
    match the webhook filters): the camera leaves `camera_faults` (so no ticket opens later for a
    camera that is gone), its place in every open ticket is marked recovered now with
    `recovered_reason = camera_removed`, and each of those tickets with no camera left in a fault
    closes (`close_reason = camera_removed`, `closed_by` = who removed it), sending `ticket_closed`.
    A ticket whose other cameras are still in a fault stays open and closes when they are back.
    Returns the ids of the tickets closed."""
    hold_notifier(c)  # the first statement a write (SQLite's lock), and no notifier step meanwhile
    c.execute(sa.delete(camera_faults).where(camera_faults.c.camera_id == camera_id))
    mine = (
        sa.select(ticket_cameras.c.ticket_id)
        .join(tickets, tickets.c.id == ticket_cameras.c.ticket_id)
        .where(ticket_cameras.c.camera_id == camera_id, ticket_cameras.c.recovered_us.is_(None), tickets.c.status == "open")
    )
    ids = [int(r[0]) for r in c.execute(mine)]
    if not ids:
        return []
    c.execute(
        sa.update(ticket_cameras)
        .where(ticket_cameras.c.camera_id == camera_id, ticket_cameras.c.ticket_id.in_(ids), ticket_cameras.c.recovered_us.is_(None))
        .values(recovered_us=now_us, recovered_reason=CAMERA_REMOVED)
    )
    left = sa.select(ticket_cameras.c.ticket_id).where(ticket_cameras.c.ticket_id.in_(ids), ticket_cameras.c.recovered_us.is_(None))
    still = {int(r[0]) for r in c.execute(left)}
    closed = [i for i in ids if i not in still]
    if closed:
        c.execute(
            sa.update(tickets)
            .where(tickets.c.id.in_(closed), tickets.c.status == "open")
            .values(status="closed", closed_us=now_us, closed_by=by[:100], close_reason=CAMERA_REMOVED)
        )
        for t in _some(c, closed) if hooks else []:
            extra = {"close_reason": CAMERA_REMOVED, "closed_by": by[:100]}
            enqueue(c, _rows(hooks, "ticket_closed", t, now_us, None, extra, f"camera {camera_id} removed"), now_us)
    return closed
