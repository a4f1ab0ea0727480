"""`GET /api/notifications`: each configured webhook and its delivery state, read from the catalog
(the notifier runs in the recording process; any API node answers the same)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from api.dependencies import Principal, ServicesDep, now_us, require
from api.ticket_schemas import NotificationsOut, WebhookOut
from api.timeparse import iso_utc
from core.redact import redact_url
from storage.outbox import webhook_figures

router = APIRouter(tags=["notifications"])
Viewer = Annotated[Principal, Depends(require("viewer"))]


@router.get("/api/notifications", response_model=NotificationsOut)
def notifications(_: Viewer, svc: ServicesDep) -> NotificationsOut:
    hooks = svc.ctx.settings.notifications.webhooks
    figures = {f.name: f for f in webhook_figures(svc.ctx.catalog, [h.key for h in hooks])}
    now = now_us(svc)
    out = []
    for h in hooks:
        f = figures[h.key]
        out.append(
            WebhookOut(
                name=h.key,
                url=redact_url(h.url),
                states=list(h.states),
                tags=dict(h.tags),
                pending=f.pending,
                oldest_pending_s=None if f.oldest_pending_us is None else round(max(0, now - f.oldest_pending_us) / 1e6, 3),
                delivered=f.delivered,
                failures=f.failures,
                last_ok_utc=None if f.last_ok_us is None else iso_utc(f.last_ok_us),
                last_error=f.last_error,
                last_error_utc=None if f.last_error_us is None else iso_utc(f.last_error_us),
            )
        )
    return NotificationsOut(webhooks=out)
