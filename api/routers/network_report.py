"""`GET /api/reports/network`: the weakest links (reports/weakest_links.py), JSON or CSV by `Accept`.

Who may read it: those who see recordings (investigators, admins) or work fault tickets
(technicians: the people who fix the links); viewers may not (it names the network's weak points).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from api.dependencies import Principal, ServicesDep, now_us, require
from core.roles import role_allows
from reports.weakest_links import LinkRow, to_csv, weakest_links

__all__ = ["READER_PERMISSIONS", "router"]

router = APIRouter(tags=["report"])
READER_PERMISSIONS = ("recordings", "ticket_work")  # any one of them (core/roles.py)


async def _network_reader(p: Annotated[Principal, Depends(require("viewer"))]) -> Principal:
    if any(role_allows(p.role, perm) for perm in READER_PERMISSIONS):
        return p
    raise HTTPException(403, f"this needs the investigator or technician role; the key {p.name!r} is {p.role}")


Reader = Annotated[Principal, Depends(_network_reader)]


class NetworkReportOut(BaseModel):
    generated_us: int
    by: str | None = Field(description="the tag rows are grouped by (district, uplink…); null: one row per camera")
    rows: list[LinkRow] = Field(description="weakest first")


@router.get(
    "/api/reports/network",
    response_model=NetworkReportOut,
    responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with `Accept: text/csv`"}},
)
def network_report(
    _: Reader,
    request: Request,
    svc: ServicesDep,
    by: Annotated[
        str | None, Query(description="group rows by this tag name, e.g. district or uplink", max_length=64)
    ] = None,
    limit: Annotated[int | None, Query(ge=1, le=100_000, description="the first (weakest) rows only")] = None,
) -> Response | NetworkReportOut:
    rows = weakest_links(svc.ctx.catalog, by=by or None, limit=limit)
    if "text/csv" in request.headers.get("accept", ""):
        name = f"weakest_links_{by}" if by else "weakest_links"
        return Response(
            to_csv(rows), media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}.csv"'}
        )
    return NetworkReportOut(generated_us=now_us(svc), by=by or None, rows=rows)
