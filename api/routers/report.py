"""`GET /api/report`: the availability report (reports.availability), JSON or CSV by `Accept`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from api.dependencies import Principal, ServicesDep, check_range, now_us, optional_time, require
from api.timeparse import iso_utc
from reports.availability import ReportRow, availability, to_csv

router = APIRouter(tags=["report"])
Investigator = Annotated[Principal, Depends(require("investigator"))]

DEFAULT_SPAN_S = 86_400.0
MAX_SPAN_S = 366 * 86_400.0


class ReportOut(BaseModel):
    start_us: int
    end_us: int = Field(description="the window's end (time after now is not counted)")
    by: str | None = Field(description="the tag rows are grouped by; null: one row per camera")
    rows: list[ReportRow]


@router.get(
    "/api/report",
    response_model=ReportOut,
    responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with `Accept: text/csv`"}},
)
def report(
    _: Investigator,
    request: Request,
    svc: ServicesDep,
    from_: Annotated[str | None, Query(alias="from", description="default: 24 h before `to`", max_length=64)] = None,
    to: Annotated[str | None, Query(description="default: now", max_length=64)] = None,
    by: Annotated[str | None, Query(description="group rows by this tag name", max_length=64)] = None,
) -> Response | ReportOut:
    now = now_us(svc)
    end_us = optional_time("to", to)
    end_us = now if end_us is None else end_us
    start_us = optional_time("from", from_)
    start_us = end_us - int(DEFAULT_SPAN_S * 1_000_000) if start_us is None else start_us
    span = check_range(start_us, end_us, MAX_SPAN_S, "report range")
    rows = availability(svc.ctx.catalog, span.start_us, span.end_us, by=by, now_us=now)
    if "text/csv" in request.headers.get("accept", ""):
        name = f"availability_{iso_utc(span.start_us)}_{iso_utc(span.end_us)}".replace(":", "")
        return Response(
            to_csv(rows), media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}.csv"'}
        )
    return ReportOut(start_us=span.start_us, end_us=min(span.end_us, now), by=by, rows=rows)
