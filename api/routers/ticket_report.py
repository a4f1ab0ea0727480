"""`GET /api/report/tickets`: MTTA and MTTR, detect → acknowledge → repair (reports/tickets.py),
JSON or CSV by `Accept`; for anyone who reads tickets."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from api.dependencies import Principal, ServicesDep, check_range, now_us, optional_time, require
from api.timeparse import iso_utc
from reports.tickets import TicketReportRow, ticket_report, to_csv

router = APIRouter(tags=["report"])
Reader = Annotated[Principal, Depends(require("tickets"))]

DEFAULT_SPAN_S = 7 * 86_400.0
MAX_SPAN_S = 366 * 86_400.0


class TicketReportOut(BaseModel):
    start_us: int
    end_us: int
    by: str | None = Field(description="the tag rows are grouped by; null: one row per camera")
    rows: list[TicketReportRow]


@router.get(
    "/api/report/tickets",
    response_model=TicketReportOut,
    responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with `Accept: text/csv`"}},
)
def tickets_report(
    _: Reader,
    request: Request,
    svc: ServicesDep,
    from_: Annotated[str | None, Query(alias="from", description="default: 7 days before `to`", max_length=64)] = None,
    to: Annotated[str | None, Query(description="default: now", max_length=64)] = None,
    by: Annotated[str | None, Query(description="group rows by this tag name (district, uplink, …)", max_length=64)] = None,
) -> Response | TicketReportOut:
    end_us = optional_time("to", to)
    end_us = now_us(svc) if end_us is None else end_us
    start_us = optional_time("from", from_)
    start_us = end_us - int(DEFAULT_SPAN_S * 1_000_000) if start_us is None else start_us
    span = check_range(start_us, end_us, MAX_SPAN_S, "report range")
    rows = ticket_report(svc.ctx.catalog, span.start_us, span.end_us, by=by)
    if "text/csv" in request.headers.get("accept", ""):
        name = f"tickets_{iso_utc(span.start_us)}_{iso_utc(span.end_us)}".replace(":", "")
        return Response(
            to_csv(rows), media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}.csv"'}
        )
    return TicketReportOut(start_us=span.start_us, end_us=span.end_us, by=by, rows=rows)
