"""The outermost layer of the app: what a request may cost before anything reads its body.

Why: a hostile client must not be able to make the server read, buffer or wait for a body it will
refuse anyway. In front of routing, for every request that carries a body (Content-Length > 0, or
any Transfer-Encoding):
- the API key is checked first (auth on): no valid key → 401, the body never read;
- a declared Content-Length above `max_body_bytes` → 413, the body never read; a chunked body is
  counted as it arrives and cut off at the same cap (413);
- the whole body must arrive within `body_timeout_s` of the headers (408).
Each refusal closes the connection (`Connection: close`), so the server does not drain the rest
of the upload either; so does any answer given before its request's body was read whole. Slow *headers* are timed out by the HTTP protocol (api/serving.py).
The numbers are in docs/design/security.md.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.dependencies import NeedsCatalog, Services, bearer_principal

__all__ = ["GuardLimits", "RequestGuard"]


@dataclass(frozen=True, slots=True)
class GuardLimits:
    max_body_bytes: int = 1 << 20
    body_timeout_s: float = 30.0


class _Refused(HTTPException):
    """Raised from `receive`: FastAPI passes an HTTPException through its body parsing, and the
    app's handler answers it (closing the connection: the rest of the body is never read)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(status, detail, headers={"Connection": "close"})


async def _refuse(send: Send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"connection", b"close")]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", ()):
        if k == name:
            return v.decode("latin-1")
    return None


class RequestGuard:
    """Pure ASGI middleware (no body buffering of its own); see the module docstring."""

    def __init__(self, app: ASGIApp, services: Services, limits: GuardLimits) -> None:
        self.app, self.services, self.limits = app, services, limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length_text = _header(scope, b"content-length")
        chunked = _header(scope, b"transfer-encoding") is not None
        if length_text is None and not chunked:
            await self.app(scope, receive, send)
            return
        try:
            length = int(length_text) if length_text is not None else None
            if length is not None and length < 0:
                raise ValueError
        except ValueError:
            await _refuse(send, 400, "Content-Length must be a non-negative integer")
            return
        if length == 0 and not chunked:
            await self.app(scope, receive, send)
            return
        # the key before the body: nothing is read for a caller who will be refused anyway
        header = _header(scope, b"authorization")
        client = scope["client"][0] if scope.get("client") else None
        try:
            try:
                bearer_principal(self.services, header, "viewer", lookup=False)
            except NeedsCatalog:
                await asyncio.to_thread(bearer_principal, self.services, header, "viewer", client=client)
        except HTTPException as e:
            if e.status_code in (401, 429):
                await _refuse(send, e.status_code, str(e.detail), dict(e.headers or {}))
                return
            # 403 and the like are the route's to word (it knows the role it needs)
        cap = self.limits.max_body_bytes
        if length is not None and length > cap:
            await _refuse(send, 413, f"the request body is too large: at most {cap} bytes")
            return
        await self._guarded(scope, receive, send, cap)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send, cap: int) -> None:
        deadline = time.monotonic() + self.limits.body_timeout_s
        got = 0
        complete = False
        started = False

        async def guarded_receive() -> Message:
            nonlocal got, complete
            if complete:  # after the body: the app listens for a disconnect, with no deadline
                return await receive()
            left = deadline - time.monotonic()
            try:
                msg = await asyncio.wait_for(receive(), timeout=max(left, 0.001))
            except asyncio.TimeoutError:
                raise _Refused(408, f"the request body did not arrive within {self.limits.body_timeout_s:g} s") from None
            if msg["type"] == "http.request":
                got += len(msg.get("body", b""))
                if got > cap:
                    raise _Refused(413, f"the request body is too large: at most {cap} bytes")
                if not msg.get("more_body", False):
                    complete = True
            else:
                complete = True
            return msg

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if not complete:
                    # answered before its body was read (a GET with a body, an early refusal): close
                    # after the answer, or the server would read and discard the rest for as long as
                    # the client sends it — no deadline covers a body nobody reads
                    headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"connection"]
                    message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        try:
            await self.app(scope, guarded_receive, tracking_send)
        except _Refused as r:
            if not started:
                await _refuse(send, r.status_code, str(r.detail))
