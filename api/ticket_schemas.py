"""Request and response models of the tickets and notifications routes (api/routers/tickets.py,
api/routers/notifications.py). Times: µs since the epoch in `*_us`, the same instant in `*_utc`."""

from __future__ import annotations

from pydantic import BaseModel, Field

from core.validation import StrictModel

from api.timeparse import iso_utc
from storage.tickets import Ticket

__all__ = ["AckIn", "NoteIn", "NotificationsOut", "ResolveIn", "TicketCameraOut", "TicketList", "TicketNoteOut",
           "TicketOut", "WebhookOut", "ticket_out"]


class AckIn(StrictModel):
    by: str | None = Field(default=None, max_length=100, description="who acknowledges; default: the key's name")


class NoteIn(StrictModel):
    text: str = Field(min_length=1, max_length=4000)
    by: str | None = Field(default=None, max_length=100, description="the author; default: the key's name")


class ResolveIn(StrictModel):
    by: str | None = Field(default=None, max_length=100, description="who resolves; default: the key's name")
    note: str | None = Field(default=None, max_length=4000, description="what was done")


class TicketCameraOut(BaseModel):
    camera_id: str
    name: str
    state: str = Field(description="the fault it had when it joined the ticket")
    district: str | None
    since_us: int
    since_utc: str
    recovered_us: int | None
    recovered_utc: str | None
    recovered_reason: str | None = Field(description="null: back online; camera_removed: deleted while in its fault")


class TicketNoteOut(BaseModel):
    id: int
    at_us: int
    at_utc: str
    author: str
    text: str


class TicketOut(BaseModel):
    id: int
    status: str = Field(description="open | closed")
    fault: str
    title: str
    element: dict[str, str] | None = Field(description="what correlated cameras hang on: {tag, value}")
    districts: list[str]
    cameras: list[TicketCameraOut]
    detected_us: int = Field(description="when the earliest camera's fault began")
    detected_utc: str
    opened_us: int
    acked_us: int | None
    acked_utc: str | None
    acked_by: str | None
    closed_us: int | None = Field(
        description="repaired: every camera back, or resolved by hand; or its last camera in a fault removed"
    )
    closed_utc: str | None
    closed_by: str | None = Field(description="null when the cameras' recovery closed it; who removed the camera")
    close_reason: str | None = Field(description="recovered | resolved | camera_removed")
    notes: list[TicketNoteOut] = []


class TicketList(BaseModel):
    tickets: list[TicketOut]


class WebhookOut(BaseModel):
    name: str
    url: str = Field(description="redacted: no user info, no secret-looking query values")
    states: list[str]
    tags: dict[str, str | list[str]]
    pending: int = Field(description="deliveries waiting in the outbox")
    oldest_pending_s: float | None = Field(description="age of the oldest waiting delivery")
    delivered: int
    failures: int = Field(description="failed attempts")
    last_ok_utc: str | None
    last_error: str | None
    last_error_utc: str | None


class NotificationsOut(BaseModel):
    webhooks: list[WebhookOut]


def _utc(us: int | None) -> str | None:
    return None if us is None else iso_utc(us)


def ticket_out(t: Ticket) -> TicketOut:
    return TicketOut(
        id=t.id,
        status=t.status,
        fault=t.fault,
        title=t.title,
        element={"tag": t.element_tag, "value": t.element_value or ""} if t.element_tag else None,
        districts=t.districts,
        cameras=[
            TicketCameraOut(
                camera_id=c.camera_id,
                name=c.name or c.camera_id,
                state=c.state,
                district=c.tags.get("district"),
                since_us=c.since_us,
                since_utc=iso_utc(c.since_us),
                recovered_us=c.recovered_us,
                recovered_utc=_utc(c.recovered_us),
                recovered_reason=c.recovered_reason,
            )
            for c in t.cameras
        ],
        detected_us=t.detected_us,
        detected_utc=iso_utc(t.detected_us),
        opened_us=t.opened_us,
        acked_us=t.acked_us,
        acked_utc=_utc(t.acked_us),
        acked_by=t.acked_by,
        closed_us=t.closed_us,
        closed_utc=_utc(t.closed_us),
        closed_by=t.closed_by,
        close_reason=t.close_reason,
        notes=[TicketNoteOut(id=n.id, at_us=n.at_us, at_utc=iso_utc(n.at_us), author=n.author, text=n.text) for n in t.notes],
    )
