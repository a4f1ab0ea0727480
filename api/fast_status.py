"""`GET /api/status` answered in front of FastAPI: the status poll's raw ASGI fast path.

Why: at 4,470 cameras the document is ready bytes (api/status_board.py), yet a closed-loop poll
still spent about half its CPU in FastAPI's routing, dependency solving and middleware. This layer
(added in api/app.py, just inside the metrics middleware) answers the common poll itself — a
cached key, `state=`/`tag=` filters, gzip, If-None-Match — with the same status, headers and bytes
as the route in api/routers/status.py, which stays the documented (OpenAPI) and fallback path.

It hands the request to FastAPI, unchanged, whenever it would not answer identically or cheaply:
- any other path or method (HEAD included: the route is GET only, FastAPI answers 405);
- a query parameter other than `state` and `tag`;
- a key that is not in the key cache (unknown, revoked, or not verified in the last `KEY_TTL_S`):
  the route's dependency looks it up in a worker thread and fills the cache for the next poll.
A filter's first poll (its bytes not built yet) waits for the board in a worker thread, so the
event loop never waits on a build. Refusals it can decide from the header and the cache (no key, a
malformed header, a cached key whose role is too low) are built by the same code
(`bearer_principal`) and the same response class as FastAPI's HTTPException handler.

Middleware: the app has only `MetricsMiddleware`, which stays outside this layer (the request is
counted under the route's template, `scope["route"]` being set as the router would). There is no
CORS, request-id, audit or credential-scrubbing middleware in the app; the status document holds
no camera URL (api/status_board.py reads names, tags and statuses only) and the route is not
audited (reads are not; see docs/design/api.md).
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qsl

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from api.dependencies import NeedsCatalog, Services, bearer_principal
from api.status_board import accepts_gzip, etag_matches
from api.status_builder import FEED_STATES

__all__ = ["PATH", "FastStatus", "FastStatusSwitch"]

PATH = "/api/status"
_FILTERS = ("state", "tag")
_JSON = (b"content-type", b"application/json")
_GZIP = (b"content-encoding", b"gzip")
_CACHE = (b"cache-control", b"no-cache")
_VARY = (b"vary", b"Accept-Encoding")


class FastStatusSwitch:
    """The fast path's handle (`app.state.fast_status`): off sends every poll through FastAPI (the
    tests compare the two); `served` counts polls answered by the fast path."""

    __slots__ = ("enabled", "served")

    def __init__(self) -> None:
        self.enabled = True
        self.served = 0


class FastStatus:
    """ASGI middleware: `GET /api/status` from the board's ready bytes, else the wrapped app."""

    def __init__(self, app: ASGIApp, services: Services, switch: FastStatusSwitch, route: Any = None) -> None:
        self.app = app
        self.svc = services
        self.switch = switch
        self.route = route  # the FastAPI route, for the metrics middleware's label

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or not self._ours(scope) or not self.switch.enabled:
            await self.app(scope, receive, send)
            return
        states: list[str] = []
        tags: list[str] = []
        qs: bytes = scope.get("query_string", b"")
        if qs:
            # as Starlette parses it (QueryParams): latin-1, blank values kept
            for k, v in parse_qsl(qs.decode("latin-1"), keep_blank_values=True):
                if k == "state":
                    if v and v not in FEED_STATES:  # the route words the 422
                        await self.app(scope, receive, send)
                        return
                    states.append(v)
                elif k == "tag":
                    tags.append(v)
                else:
                    await self.app(scope, receive, send)
                    return
        auth = inm = ae = None
        for name, value in scope["headers"]:  # ASGI: lower-case names; the first of each wins
            if name == b"authorization" and auth is None:
                auth = value.decode("latin-1")
            elif name == b"if-none-match" and inm is None:
                inm = value.decode("latin-1")
            elif name == b"accept-encoding" and ae is None:
                ae = value.decode("latin-1")
        try:
            bearer_principal(self.svc, auth, "viewer", lookup=False)
        except NeedsCatalog:
            await self.app(scope, receive, send)  # the route's dependency asks the catalog
            return
        except HTTPException as e:
            self._routed(scope)
            self.switch.served += 1
            # as FastAPI's http_exception_handler answers it
            await JSONResponse({"detail": e.detail}, status_code=e.status_code, headers=e.headers)(scope, receive, send)
            return
        self._routed(scope)
        self.switch.served += 1
        enc = self.svc.board.ready(states, tags)
        if enc is None:  # a filter's first poll: built (by the child, or here) off the event loop
            enc = await asyncio.to_thread(self.svc.board.variant, states, tags)
        # Headers in the order Starlette's Response writes them for the route (its own, then
        # content-length, then content-type), so the two paths give the same bytes.
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

    @staticmethod
    def _ours(scope: Scope) -> bool:
        path: str = scope["path"]
        if path == PATH:
            return True
        root: str = scope.get("root_path", "")  # mounted: the path may carry the mount prefix
        return bool(root) and path == root + PATH

    def _routed(self, scope: Scope) -> None:
        if self.route is not None:
            scope["route"] = self.route

