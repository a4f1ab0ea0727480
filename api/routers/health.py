"""`GET /health`: open, for load balancers — 200 while the process and its catalog answer."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.dependencies import ServicesDep
from api.schemas import HealthOut

router = APIRouter(tags=["health"])

_STORE_CHECK_S = 10.0  # the store is pinged at most this often (an S3 ping is a request)


@router.get("/health", response_model=HealthOut, responses={503: {"model": HealthOut}})
def health(svc: ServicesDep) -> JSONResponse:
    ctx = svc.ctx
    try:
        ctx.catalog.cameras_version()
        catalog = "ok"
    except Exception as e:  # noqa: BLE001 - any failure of the catalog is the answer, not a 500
        catalog = f"unavailable: {type(e).__name__}"
    now = ctx.clock.monotonic()
    checked = svc.extra.get("store_check")
    if not isinstance(checked, tuple) or now - checked[0] >= _STORE_CHECK_S:
        try:
            ctx.store.ping()
            store = "ok"
        except Exception as e:  # noqa: BLE001 - a store being down does not fail the check (the spool holds)
            store = f"unavailable: {type(e).__name__}"
        svc.extra["store_check"] = (now, store)
    else:
        store = checked[1]
    ok = catalog == "ok"
    body = HealthOut(status="ok" if ok else "degraded", catalog=catalog, store=store)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
