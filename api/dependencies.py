"""What handlers receive through `Depends`: the context, the caller, the camera, the time range.

Why: handlers stay thin (parse nothing, authorize nothing); tests override these to swap parts.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.auth_throttle import FailedKeyThrottle
from api.event_watch import EventWatcher
from api.signing import UrlSigner
from api.status_board import StatusBoard
from api.timeparse import parse_time_us
from core.roles import ALL_ROLES, Permission, Role, role_allows
from storage.api_keys import KeyInfo, get_key, verify_key
from storage.catalog import Camera, Catalog
from playback.live import LiveIndex
from storage.object_store import ObjectStore
from storage.spool import Spool
from core.clock import SYSTEM_CLOCK, Clock
from core.ids import CAMERA_ID
from core.settings import Settings

__all__ = [
    "ApiContext",
    "CameraDep",
    "Principal",
    "Services",
    "TimeRange",
    "authenticate",
    "bearer_principal",
    "get_camera",
    "get_services",
    "now_us",
    "require",
    "route_path",
    "time_range",
]

# How long a verified key is trusted without asking the catalog again: a key revoked outside this
# process (another API node, `vigil keys revoke`) stops working within this bound; revoking through
# this process's API clears the cache at once.
KEY_TTL_S = 2.0
KNOWN_TTL_S = 600.0


@dataclass(slots=True)
class ApiContext:
    """Everything the API needs from the process that serves it (`vigil run`, tests, bench)."""

    settings: Settings
    catalog: Catalog
    store: ObjectStore
    spool: Spool | None = None
    clock: Clock = SYSTEM_CLOCK
    # uploader/spool figures for /metrics: spool_bytes, upload_lag_s, uploaded_total,
    # upload_failures_total, spool_dropped_total
    stats: Callable[[], dict[str, float]] | None = None


class KeyCache:
    """Verified keys for `KEY_TTL_S`, so a poller's every request is not a catalog query.

    Only successes are kept (an unknown or revoked key asks the catalog every time), keyed by the
    SHA-256 of the whole token, so a hit means the very same secret was verified — with
    `verify_key`'s constant-time compare — less than `ttl_s` ago."""

    def __init__(self, catalog: Catalog, clock: Clock, ttl_s: float = KEY_TTL_S) -> None:
        self.catalog, self.clock, self.ttl_s = catalog, clock, ttl_s
        self._tokens: dict[str, tuple[float, KeyInfo]] = {}
        self._ids: dict[str, tuple[float, KeyInfo | None]] = {}
        # digests of keys verified in the last KNOWN_TTL_S: they pass the failed-key limit
        # (api/auth_throttle.py), still checked against the catalog when the cache expires
        self._known: dict[str, float] = {}
        self._lock = threading.Lock()

    def _fresh(self, entry: tuple[float, object] | None) -> bool:
        return entry is not None and entry[0] > self.clock.monotonic()

    @staticmethod
    def _digest(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def cached(self, token: str) -> KeyInfo | None:
        """The key if it was verified less than `ttl_s` ago; None means: ask `verify`."""
        with self._lock:
            hit = self._tokens.get(self._digest(token))
        return hit[1] if hit is not None and self._fresh(hit) else None

    def verify(self, token: str) -> KeyInfo | None:
        """`cached`, else the catalog (blocking: call it from a worker thread)."""
        h = self._digest(token)
        with self._lock:
            hit = self._tokens.get(h)
        if hit is not None and self._fresh(hit):
            return hit[1]
        info = verify_key(self.catalog, token)
        if info is not None:
            with self._lock:
                if len(self._tokens) > 10_000:
                    self._tokens.clear()
                if len(self._known) > 10_000:
                    self._known.clear()
                self._tokens[h] = (self.clock.monotonic() + self.ttl_s, info)
                self._known[h] = self.clock.monotonic() + KNOWN_TTL_S
        return info

    def known(self, token: str) -> bool:
        """Verified in the last `KNOWN_TTL_S` (a poller's key, not a guess)."""
        with self._lock:
            until = self._known.get(self._digest(token))
        return until is not None and until > self.clock.monotonic()

    def cached_id(self, key_id: str) -> tuple[bool, KeyInfo | None]:
        """(hit, key) for a signing key id looked up less than `ttl_s` ago."""
        with self._lock:
            hit = self._ids.get(key_id)
        return (True, hit[1]) if hit is not None and self._fresh(hit) else (False, None)

    def by_id(self, key_id: str) -> KeyInfo | None:
        with self._lock:
            hit = self._ids.get(key_id)
        if hit is not None and self._fresh(hit):
            return hit[1]
        info = get_key(self.catalog, key_id)
        if info is not None and info.revoked:
            info = None
        with self._lock:
            if len(self._ids) > 10_000:
                self._ids.clear()
            self._ids[key_id] = (self.clock.monotonic() + self.ttl_s, info)
        return info

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()
            self._ids.clear()


@dataclass(slots=True)
class Services:
    """Per-app shared state built from the context (see api/app.py)."""

    ctx: ApiContext
    keys: KeyCache
    signer: UrlSigner
    board: StatusBoard
    events: EventWatcher
    live: LiveIndex
    clip_slots: threading.BoundedSemaphore
    extra: dict[str, object] = field(default_factory=dict)
    throttle: FailedKeyThrottle | None = None  # failed keys per client address (api/auth_throttle.py)


async def get_services(request: Request) -> Services:  # async: no worker-thread hop per request
    return request.app.state.services  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(get_services)]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a key (Bearer or the signer of a signed URL), or anyone when auth is off."""

    role: Role
    key: KeyInfo | None
    via: Literal["bearer", "signature", "open"]

    @property
    def name(self) -> str:
        return self.key.name if self.key else "anonymous"


_OPEN = Principal("admin", None, "open")


def route_path(request: Request) -> str:
    """The request path without the mount prefix (what signatures cover)."""
    path: str = request.scope["path"]
    root = request.scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path


# Declares the scheme in OpenAPI (the "Authorize" button of /docs); the header is parsed below so
# that every failure gets a precise message.
_bearer = HTTPBearer(auto_error=False, description="an API key: `vgl_…`")
BearerDoc = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


class NeedsCatalog(Exception):
    """The decision needs a catalog query: retry from a worker thread."""


def bearer_principal(
    svc: Services, header: str | None, role: Role | Permission, *, lookup: bool = True, client: str | None = None
) -> Principal:
    """The caller named by an `Authorization` header (None: there is none), if their key admits
    `role`; else 401/403, or 429 when `client` (an address) failed too often to be looked up.
    Without `lookup`, a key missing from the cache raises `NeedsCatalog`.
    Also what `GET /api/status` calls (api/routers/status.py), so it decides and words refusals alike."""
    if not svc.ctx.settings.api.auth:
        return _OPEN
    if not header:
        raise _unauthorized("an API key is required: 'Authorization: Bearer KEY'")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("send the API key as 'Authorization: Bearer KEY'")
    token = token.strip()
    info = svc.keys.cached(token)
    if info is None:
        if not lookup:
            raise NeedsCatalog
        wait_s = svc.throttle.retry_after_s(client) if svc.throttle and not svc.keys.known(token) else 0.0
        if wait_s > 0:
            raise HTTPException(
                429, "too many failed API keys from this address; try again later",
                headers={"Retry-After": str(max(1, round(wait_s)))},
            )
        info = svc.keys.verify(token)
    if info is None:
        if svc.throttle:
            svc.throttle.failed(client)
        raise _unauthorized("unknown or revoked API key")
    if not role_allows(info.role, role):
        what = f"the {role} role" if role in ALL_ROLES else f"the {role!r} permission"
        raise HTTPException(403, f"this needs {what}; the key {info.name!r} is {info.role}")
    return Principal(info.role, info, "bearer")


def authenticate(
    request: Request, svc: Services, role: Role | Permission, *, signed: bool = False, lookup: bool = True
) -> Principal:
    """The caller, if their key (or signed URL) admits `role`; else 401/403. With `lookup`
    (blocking: a worker thread or a sync handler) a key missing from the cache is looked up in the
    catalog; without, `NeedsCatalog` is raised instead."""
    if not svc.ctx.settings.api.auth:
        return _OPEN
    header = request.headers.get("authorization")
    if header or not (signed and "sig" in request.query_params):
        return bearer_principal(svc, header, role, lookup=lookup, client=request.client.host if request.client else None)
    kid = svc.signer.verify(route_path(request), request.query_params.multi_items(), svc.ctx.clock.now())
    if kid is None:
        raise _unauthorized("the signed URL is invalid or has expired")
    hit, info = svc.keys.cached_id(kid)
    if not hit:
        if not lookup:
            raise NeedsCatalog
        info = svc.keys.by_id(kid)
    if info is None:
        raise _unauthorized("the key that signed this URL was revoked")
    if not role_allows(info.role, role):  # a URL signed for a viewer never opens more than a viewer may
        what = f"the {role} role" if role in ALL_ROLES else f"the {role!r} permission"
        raise HTTPException(403, f"this needs {what}; the key that signed this URL is {info.role}")
    return Principal(info.role, info, "signature")


def require(role: Role | Permission, *, signed: bool = False) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting callers whose key has at least `role`; with `signed`, a valid
    signed URL (see api/signing.py) is accepted in place of the header.

    Async, deciding in the event loop when the key cache answers: a poller's request costs no
    worker-thread hop and no catalog query; only a cache miss goes to a thread. (A sync handler
    that needs the caller itself calls `authenticate`.)"""

    async def dependency(request: Request, svc: ServicesDep, _doc: BearerDoc = None) -> Principal:
        try:
            return authenticate(request, svc, role, signed=signed, lookup=False)
        except NeedsCatalog:
            return await asyncio.to_thread(authenticate, request, svc, role, signed=signed)

    dependency.__name__ = f"require_{role}{'_or_signed' if signed else ''}"
    return dependency


def get_camera(
    svc: ServicesDep,
    camera_id: Annotated[str, Path(description="camera id", max_length=64)],
) -> Camera:
    if not CAMERA_ID.match(camera_id):
        raise HTTPException(404, f"unknown camera {camera_id!r}")
    cam = svc.ctx.catalog.get_camera(camera_id)
    if cam is None:
        raise HTTPException(404, f"unknown camera {camera_id!r}")
    return cam


CameraDep = Annotated[Camera, Depends(get_camera)]

_TIME_DOC = "ISO 8601 with Z or an offset (2024-05-01T10:00:00Z), or epoch seconds"


@dataclass(frozen=True, slots=True)
class TimeRange:
    start_us: int
    end_us: int

    @property
    def duration_s(self) -> float:
        return (self.end_us - self.start_us) / 1e6


def _parse(name: str, text: str) -> int:
    try:
        return parse_time_us(text)
    except ValueError as e:
        raise HTTPException(422, f"{name}: {e}") from None


def check_range(start_us: int, end_us: int, max_s: float | None, what: str = "range") -> TimeRange:
    if start_us >= end_us:
        raise HTTPException(422, "start must be before end (ranges are half-open: [start, end))")
    if max_s is not None and end_us - start_us > max_s * 1e6:
        raise HTTPException(422, f"the {what} is too long: at most {max_s:g} s")
    return TimeRange(start_us, end_us)


def time_range(max_s: float | Callable[[Settings], float] | None, what: str = "range") -> Callable[..., TimeRange]:
    """A dependency parsing `start` and `end`; `max_s` may depend on the settings."""

    def dependency(
        svc: ServicesDep,
        start: Annotated[str, Query(description=f"range start (inclusive): {_TIME_DOC}", max_length=64)],
        end: Annotated[str, Query(description=f"range end (exclusive): {_TIME_DOC}", max_length=64)],
    ) -> TimeRange:
        limit = max_s(svc.ctx.settings) if callable(max_s) else max_s
        return check_range(_parse("start", start), _parse("end", end), limit, what)

    return dependency


def optional_time(name: str, text: str | None) -> int | None:
    return None if text is None else _parse(name, text)


def now_us(svc: Services) -> int:
    """The injected clock's now, in µs."""
    return int(svc.ctx.clock.now() * 1_000_000)
