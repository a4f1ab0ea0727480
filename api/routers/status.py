"""Feed status: every feed in one shared document (ETag/304), and one feed in detail.

`GET /api/status` is what every wall page and monitoring system polls, 50 at a time, every second.
Its document is ready bytes (api/status_board.py), so the cost of a poll is the request handling
itself. One function answers it, `serve_status`, a raw ASGI handler: FastAPI's request handling
(dependency solving, validation, a Response object) was about half of a poll's CPU, and FastAPI's
router alone costs ~25 µs a request (17 → 43 µs for a whole poll through the app, measured), so
`StatusFront`, in front of the router (inside the metrics middleware), hands the poll straight to
it. The route is still declared to FastAPI (`StatusRoute`): OpenAPI gets its parameters, answer
and security from the declaration; the router answers the other methods (405); and a GET that
reaches the router anyway (an app without the front door) is answered by the same `serve_status`.
Refusals come from `bearer_principal`, the check every route's dependency makes, answered as the
app's handler answers an `HTTPException`.
"""

from __future__ import annotations

import asyncio
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.routing import APIRoute
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from api.dependencies import CameraDep, NeedsCatalog, Principal, Services, ServicesDep, bearer_principal, require
from api.schemas import CameraStatusDetail, StatusOut
from core.states import DISABLED, FEED_STATES, UNKNOWN, is_stale, stale_reason

__all__ = ["PATH", "STATUS_ROUTE", "StatusFront", "StatusRoute", "accepts_gzip", "etag_matches", "router", "serve_status"]

router = APIRouter(tags=["status"])
PATH = "/api/status"
Viewer = Annotated[Principal, Depends(require("viewer"))]

_JSON = (b"content-type", b"application/json")
_GZIP = (b"content-encoding", b"gzip")
_CACHE = (b"cache-control", b"no-cache")
_VARY = (b"vary", b"Accept-Encoding")


def accepts_gzip(header: str | None) -> bool:
    """True when an Accept-Encoding header admits gzip (`gzip`, `x-gzip` or `*`, not with q=0)."""
    if not header:
        return False
    star = False
    for part in header.split(","):
        coding, _, params = part.partition(";")
        coding = coding.strip().lower()
        q = 1.0
        for p in params.split(";"):
            name, _, value = p.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if coding in ("gzip", "x-gzip"):
            return q > 0
        if coding == "*":
            star = q > 0
    return star


def etag_matches(header: str | None, etag: str) -> bool:
    """Weak comparison (RFC 9110 §13.1.2), as If-None-Match uses."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(t.strip().removeprefix("W/") == bare for t in header.split(","))


async def serve_status(scope: Scope, receive: Receive, send: Send) -> None:
    """`GET /api/status`: the board's ready bytes for the filter, plain or gzip, or 304."""
    svc: Services = scope["app"].state.services
    states: list[str] = []
    tags: list[str] = []
    qs: bytes = scope.get("query_string", b"")
    if qs:
        # as Starlette's QueryParams parse it: latin-1, blank values kept; other names ignored
        for k, v in parse_qsl(qs.decode("latin-1"), keep_blank_values=True):
            if k == "state":
                states.append(v)
            elif k == "tag":
                tags.append(v)
    auth = inm = ae = None
    for name, value in scope["headers"]:  # ASGI: lower-case names; the first of each wins
        if name == b"authorization" and auth is None:
            auth = value.decode("latin-1")
        elif name == b"if-none-match" and inm is None:
            inm = value.decode("latin-1")
        elif name == b"accept-encoding" and ae is None:
            ae = value.decode("latin-1")
    try:
        try:
            bearer_principal(svc, auth, "viewer", lookup=False)
        except NeedsCatalog:  # a key not in the cache: the catalog, off the event loop
            client = scope["client"][0] if scope.get("client") else None
            await asyncio.to_thread(bearer_principal, svc, auth, "viewer", client=client)
        bad = sorted(set(states) - set(FEED_STATES) - {""})  # `state=` (blank) stays as it was
        if bad:
            raise HTTPException(422, f"state: unknown {', '.join(map(repr, bad))}; one of {', '.join(FEED_STATES)}")
    except HTTPException as e:  # as FastAPI's http_exception_handler answers it
        await JSONResponse({"detail": e.detail}, status_code=e.status_code, headers=e.headers)(scope, receive, send)
        return
    enc = svc.board.ready(states, tags)
    if enc is None:  # a filter's first poll: built (by the child, or here) off the event loop
        enc = await asyncio.to_thread(svc.board.variant, states, tags)
    headers = [(b"etag", enc.etag.encode("latin-1")), _CACHE, _VARY]
    if etag_matches(inm, enc.etag):
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    if accepts_gzip(ae):
        body = enc.gzip
        headers.append(_GZIP)
    else:
        body = enc.plain
    headers.append((b"content-length", str(len(body)).encode()))
    headers.append(_JSON)
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class StatusRoute(APIRoute):
    """An APIRoute (documented, matched and counted like the others) answered by `serve_status`."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.methods and scope["method"] not in self.methods:
            raise HTTPException(405, headers={"Allow": ", ".join(self.methods)})  # as Starlette's routes do
        await serve_status(scope, receive, send)


async def status(
    _: Viewer,
    state: Annotated[list[str] | None, Query(description="only feeds in these states")] = None,
    tag: Annotated[list[str] | None, Query(description="`key:value`, or `key` for any value")] = None,
) -> StatusOut:
    # The declaration only (parameters, answer, security for OpenAPI): `serve_status` answers.
    raise NotImplementedError("answered by serve_status")


router.add_api_route(
    PATH,
    status,
    response_model=StatusOut,
    responses={
        200: {"description": "gzip-encoded when Accept-Encoding allows it (Content-Encoding, Vary)"},
        304: {"description": "unchanged since the ETag sent in If-None-Match (either encoding)"},
    },
    methods=["GET"],
    route_class_override=StatusRoute,
)
STATUS_ROUTE = next(r for r in router.routes if isinstance(r, StatusRoute))


class StatusFront:
    """ASGI middleware: `GET /api/status` to `serve_status` without FastAPI's router; the rest on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and _is_status(scope):
            scope["route"] = STATUS_ROUTE  # as the router would set it: the metrics middleware's label
            await serve_status(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def _is_status(scope: Scope) -> bool:
    path: str = scope["path"]
    if path == PATH:
        return True
    root: str = scope.get("root_path", "")  # mounted: the path may carry the mount prefix
    return bool(root) and path == root + PATH


@router.get("/api/cameras/{camera_id}/status", response_model=CameraStatusDetail)
def camera_status(_: Viewer, cam: CameraDep, svc: ServicesDep) -> CameraStatusDetail:
    catalog = svc.ctx.catalog
    st = catalog.get_status(cam.id)
    latest = catalog.latest_segments(cam.id, 1)
    state, reason, since = (st.state, st.reason, st.since_us) if st else (UNKNOWN, "", None)
    if not cam.enabled:
        state = DISABLED
    elif st is not None and is_stale(st.updated_us, int(svc.ctx.clock.now() * 1_000_000)):
        state, reason, since = UNKNOWN, stale_reason(st.updated_us), st.updated_us
    return CameraStatusDetail(
        id=cam.id,
        name=cam.name,
        state=state,
        since_us=since,
        reason=reason,
        fps=st.fps if st else None,
        bitrate_kbps=st.bitrate_kbps if st else None,
        last_packet_us=st.last_packet_us if st else None,
        reconnects=st.reconnects if st else 0,
        updated_us=st.updated_us if st else None,
        enabled=cam.enabled,
        tags=dict(cam.tags or {}),
        figures=dict(st.figures or {}) if st else {},
        run_id=st.run_id if st else None,
        node_id=st.node_id if st else None,
        latest_recording_end_us=latest[-1].end_us if latest else None,
    )
