"""The command-center page: `/`, its static files (`api/web/`), hls.js from npm, and `/web/session`.

Why a session route here: the page must learn what the key's role allows without probing routes
that answer 403 (every 4xx a page fetches is a red line in the browser console), and whether the
server wants a key at all (`api.auth: false`). It answers 200 without a key, so the page can ask
before anyone signs in. Everything else the page shows comes from the documented API.

No build step: the files under `api/web/` are served as they are (ES modules). hls.js is taken
from `node_modules/` (installed by `npm ci` in `.ci/setup`): the page plays recordings with it (it
knows each frame's wall-clock time) and live video with the browser's native HLS where there is one
(api/web/js/player.js says why); without hls.js, native HLS plays both (Chromium, Safari)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

import core
from api.dependencies import BearerDoc, ServicesDep, authenticate
from api.schemas import ErrorOut
from core.roles import PERMISSIONS, Role

__all__ = ["router"]

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
REPO_DIR = WEB_DIR.parent.parent
VENDOR_DIRS = {"hls.js": REPO_DIR / "node_modules" / "hls.js" / "dist"}
HLS_JS = "hls.light.min.mjs"  # ES module build without subtitles/alternate audio (cameras have neither)

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".map": "application/json",
}

# The page talks only to its own origin; media come as blob: URLs (snapshots) or same-origin HLS;
# hls.js runs its transmuxer in a worker made from a blob: URL.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "media-src 'self' blob:; worker-src 'self' blob:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
)
_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(tags=["web"])


class SessionOut(BaseModel):
    """What the page needs to know about the server and the key it holds."""

    auth_required: bool = Field(description="false when the server runs with api.auth: false")
    signed_in: bool = Field(description="a valid key was sent (or no key is needed)")
    role: Role | None = Field(description="the key's role: viewer < investigator < admin; technician")
    permissions: list[str] = Field(default=[], description="what the role may do (core/roles.py)")
    key_id: str | None = Field(description="the key's public id (as in the audit log)")
    key_name: str | None
    max_clip_s: float = Field(description="longest clip the server exports")
    hls_js_url: str | None = Field(description="where hls.js is served, or null when it is not installed")
    version: str


def _static(path: Path, request: Request, extra: dict[str, str] | None = None) -> Response:
    """A file with a weak validator, so a reload costs a 304 per file."""
    st = path.stat()
    etag = 'W/"' + hashlib.blake2b(f"{st.st_mtime_ns}:{st.st_size}".encode(), digest_size=8).hexdigest() + '"'
    headers = dict(_HEADERS, ETag=etag, **(extra or {}))
    if path.suffix == ".html":
        headers["Content-Security-Policy"] = _CSP
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    media_type = _TYPES.get(path.suffix, "application/octet-stream")
    return FileResponse(path, media_type=media_type, headers=headers)


def _inside(base: Path, rel: str) -> Path:
    """`base/rel` if it is a file under `base` with a type we serve; 404 otherwise (no `..` escapes)."""
    try:
        path = (base / rel).resolve()
        path.relative_to(base.resolve())
    except (ValueError, OSError):
        raise HTTPException(404, "no such file") from None
    if path.suffix not in _TYPES or not path.is_file():
        raise HTTPException(404, "no such file")
    return path


@router.get("/", include_in_schema=False)
def index(request: Request) -> Response:
    return _static(WEB_DIR / "index.html", request)


@router.get(
    "/web/session",
    response_model=SessionOut,
    responses={401: {"model": ErrorOut, "description": "the key sent is unknown or revoked"}},
)
def session(request: Request, svc: ServicesDep, _doc: BearerDoc = None) -> SessionOut:
    """The caller's role (401 for a bad key); without a key, only whether one is needed."""
    settings = svc.ctx.settings
    hls_js = VENDOR_DIRS["hls.js"] / HLS_JS
    out = SessionOut(
        auth_required=settings.api.auth,
        signed_in=False,
        role=None,
        key_id=None,
        key_name=None,
        max_clip_s=float(settings.api.max_clip_seconds),
        hls_js_url=f"/web/vendor/hls.js/{HLS_JS}" if hls_js.is_file() else None,
        version=core.__version__,
    )
    if settings.api.auth and not request.headers.get("authorization"):
        return out
    who = authenticate(request, svc, "viewer")  # a sync handler: may ask the catalog on a cache miss
    return out.model_copy(
        update={
            "signed_in": True,
            "role": who.role,
            "permissions": sorted(PERMISSIONS.get(who.role, ())),
            "key_id": who.key.id if who.key else None,
            "key_name": who.name,
        }
    )


@router.get("/web/vendor/{package}/{name}", include_in_schema=False)
def vendor(package: str, name: str, request: Request) -> Response:
    base = VENDOR_DIRS.get(package)
    if base is None or not base.is_dir():
        raise HTTPException(404, f"{package} is not installed (run `npm ci`)")
    return _static(_inside(base, name), request)


@router.get("/web/{rel:path}", include_in_schema=False)
def asset(rel: str, request: Request) -> Response:
    return _static(_inside(WEB_DIR, rel), request)
