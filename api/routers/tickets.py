"""Fault tickets: list and read (any role that sees status), acknowledge, annotate, resolve
(technician, admin). The notifier opens and closes them (notify/); this only reads and works them.
An acknowledgement and a resolution write their webhook rows (`ticket_acked`, `ticket_resolved`)
in the outbox with the change; the notifier delivers them."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query

from api.dependencies import Principal, Services, ServicesDep, now_us, require
from api.ticket_schemas import AckIn, NoteIn, ResolveIn, TicketList, TicketOut, ticket_out
from core.settings import WebhookConfig
from storage.audit_log import add_audit
from storage.tickets import Ticket, TicketError, ack_ticket, add_note, get_ticket, list_tickets, resolve_ticket

router = APIRouter(prefix="/api/tickets", tags=["tickets"])
Reader = Annotated[Principal, Depends(require("tickets"))]
Worker = Annotated[Principal, Depends(require("ticket_work"))]
TicketId = Annotated[int, Path(ge=1, le=2**53, description="the ticket's number")]


def _found(t: Ticket | None, ticket_id: int) -> TicketOut:
    if t is None:
        raise HTTPException(404, f"no ticket {ticket_id}")
    return ticket_out(t)


@router.get("", response_model=TicketList)
def tickets(
    _: Reader,
    svc: ServicesDep,
    status: Annotated[Literal["open", "closed"] | None, Query(description="open or closed; default: both")] = None,
    district: Annotated[str | None, Query(max_length=200, description="a camera of the ticket is in this district")] = None,
    tag: Annotated[str | None, Query(max_length=200, description="`name:value`: a camera of the ticket has this tag")] = None,
    camera: Annotated[str | None, Query(max_length=64, description="tickets this camera was in")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> TicketList:
    pair: tuple[str, str] | None = None
    if tag is not None:
        key, sep, value = tag.partition(":")
        if not sep or not key or not value:
            raise HTTPException(422, "tag: expected name:value, e.g. uplink:sw-12")
        pair = (key, value)
    found = list_tickets(svc.ctx.catalog, status=status, district=district, tag=pair, camera_id=camera, limit=limit)
    return TicketList(tickets=[ticket_out(t) for t in found])


@router.get("/{ticket_id}", response_model=TicketOut)
def ticket(_: Reader, svc: ServicesDep, ticket_id: TicketId) -> TicketOut:
    return _found(get_ticket(svc.ctx.catalog, ticket_id), ticket_id)


def _hooks(svc: Services) -> list[WebhookConfig]:
    """The webhooks `ticket_acked` / `ticket_resolved` are written for (delivered by the notifier)."""
    return svc.ctx.settings.notifications.webhooks


def _work(fn, *args):  # type: ignore[no-untyped-def]
    try:
        return fn(*args)
    except TicketError as e:
        raise HTTPException(409, str(e)) from None
    except ValueError as e:
        raise HTTPException(422, str(e)) from None


@router.post("/{ticket_id}/ack", response_model=TicketOut)
def ack(who: Worker, svc: ServicesDep, ticket_id: TicketId, body: AckIn | None = None) -> TicketOut:
    by = (body.by if body and body.by else None) or who.name
    t = _work(ack_ticket, svc.ctx.catalog, ticket_id, by, now_us(svc), _hooks(svc))
    if t is not None:
        add_audit(svc.ctx.catalog, "ticket.ack", key=who.key, detail={"ticket_id": ticket_id, "by": by})
    return _found(t, ticket_id)


@router.post("/{ticket_id}/notes", response_model=TicketOut, status_code=201)
def note(who: Worker, svc: ServicesDep, ticket_id: TicketId, body: NoteIn) -> TicketOut:
    by = body.by or who.name
    return _found(_work(add_note, svc.ctx.catalog, ticket_id, by, body.text, now_us(svc)), ticket_id)


@router.post("/{ticket_id}/resolve", response_model=TicketOut)
def resolve(who: Worker, svc: ServicesDep, ticket_id: TicketId, body: ResolveIn | None = None) -> TicketOut:
    by = (body.by if body and body.by else None) or who.name
    t = _work(resolve_ticket, svc.ctx.catalog, ticket_id, by, now_us(svc), body.note if body else None, _hooks(svc))
    if t is not None:
        add_audit(svc.ctx.catalog, "ticket.resolve", key=who.key, detail={"ticket_id": ticket_id, "by": by})
    return _found(t, ticket_id)
