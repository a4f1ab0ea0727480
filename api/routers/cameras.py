"""Cameras: list, add, change, remove at run time (admin). URLs are returned redacted.

The supervisor polls `Catalog.cameras_version()` and starts or stops recording; this router only
writes the catalog (and the audit log)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Response

from api.dependencies import CameraDep, Principal, ServicesDep, now_us, require
from core.camera_config import CameraOptions
from core.camera_url import check_camera_urls, split_credentials
from core.health_config import HealthOverrides
from core.redact import safe_url
from api.schemas import CameraIn, CameraList, CameraOut, CameraPatch
from storage.audit_log import add_audit
from storage.catalog import Camera
from storage.catalog.camera_rows import split_camera
from storage.tickets import close_for_removed_camera

router = APIRouter(prefix="/api/cameras", tags=["cameras"])
_OPTIONS = {"health": HealthOverrides(), "retention_days": None, "location": None}  # what null resets each to
Admin = Annotated[Principal, Depends(require("admin"))]


def camera_out(cam: Camera) -> CameraOut:
    return CameraOut(
        id=cam.id,
        name=cam.name,
        url=safe_url(cam.url) or "",
        transport=cam.transport,
        tags=dict(cam.tags or {}),
        enabled=cam.enabled,
        health_url=safe_url(cam.health_url),
        health=cam.options.health.model_dump(exclude_none=True),
        retention_days=cam.options.retention_days,
        location=cam.options.location.model_dump() if cam.options.location else None,
        updated_us=cam.updated_us,
        username=cam.username,
        password_set=cam.password_sealed is not None or cam.password is not None,
    )


def _checked(svc: ServicesDep, cam: Camera) -> None:
    """The config file's rule for URLs (core/camera_url.py), then credentials split out of them."""
    try:
        check_camera_urls({"url": cam.url, "health_url": cam.health_url}, svc.ctx.settings.security.camera_url_schemes)
        split_camera(cam)
    except ValueError as e:
        raise HTTPException(422, str(e)) from None


def _audited(out: CameraOut) -> dict[str, Any]:
    """What the audit log keeps of a camera: its response form (URLs redacted, no password)."""
    return out.model_dump(exclude={"updated_us", "id"})


def _write(svc: ServicesDep, cam: Camera) -> None:
    """Upsert with an update time above every camera's, so `cameras_version()` always moves."""
    now_us = int(svc.ctx.clock.now() * 1_000_000)
    _, newest = svc.ctx.catalog.cameras_version()
    cam.updated_us = max(now_us, newest + 1)
    svc.ctx.catalog.upsert_camera(cam, cam.updated_us)
    svc.board.invalidate()


@router.get("", response_model=CameraList)
def list_cameras(_: Admin, svc: ServicesDep) -> CameraList:
    return CameraList(cameras=[camera_out(c) for c in svc.ctx.catalog.list_cameras()])


@router.post("", response_model=CameraOut, status_code=201, responses={409: {"description": "id exists"}})
def add_camera(who: Admin, body: CameraIn, svc: ServicesDep, response: Response) -> CameraOut:
    if svc.ctx.catalog.get_camera(body.id) is not None:
        raise HTTPException(409, f"camera {body.id!r} exists; change it with PATCH /api/cameras/{body.id}")
    cam = Camera(
        id=body.id,
        url=body.url,
        name=body.name,
        transport=body.transport,
        tags=body.tags,
        enabled=body.enabled,
        health_url=body.health_url,
        options=body.options,
        username=body.username,
        password=body.password,
    )
    _checked(svc, cam)
    _write(svc, cam)
    add_audit(
        svc.ctx.catalog, "camera.create", key=who.key, at_us=cam.updated_us, camera_id=cam.id,
        detail={"new": _audited(camera_out(cam))},
    )
    response.headers["Location"] = f"/api/cameras/{cam.id}"
    return camera_out(cam)


@router.get("/{camera_id}", response_model=CameraOut)
def get_camera(_: Admin, cam: CameraDep) -> CameraOut:
    return camera_out(cam)


@router.patch("/{camera_id}", response_model=CameraOut)
def change_camera(who: Admin, cam: CameraDep, body: CameraPatch, svc: ServicesDep) -> CameraOut:
    changes = body.model_dump(exclude_unset=True)
    for name in ("url", "transport", "enabled", "name", "tags"):
        if name in changes and changes[name] is None:
            raise HTTPException(422, f"{name} cannot be null")
    before = _audited(camera_out(cam))
    if changes.get("health_url") and cam.password_sealed is not None and cam.password is None:
        # the stored password, so that one in the substream URL is compared with it (a camera has
        # one login) and never silently replaces it — the main stream's login too — unaudited
        stored = svc.ctx.catalog.get_camera(cam.id, unseal=True)
        cam.password = stored.password if stored is not None else None
    for name in ("url", "name", "transport", "tags", "enabled", "health_url", "username"):
        if name in changes:
            setattr(cam, name, changes[name])
    if "password" in changes:  # a new one, or null: none
        cam.password, cam.password_sealed = changes["password"], None
    if changes.get("url"):  # a new URL's own credentials replace the stored ones
        try:
            given = split_credentials(changes["url"])
        except ValueError as e:
            raise HTTPException(422, f"url: {e}") from None
        cam.url = given.url
        if given.username is not None and "username" not in changes:
            cam.username = given.username
        if given.password is not None and "password" not in changes:
            cam.password, cam.password_sealed = given.password, None
    if changes.keys() & _OPTIONS.keys():
        if cam.options_error:  # what is stored was refused: these replace it whole
            cam.options, cam.options_error = CameraOptions(), ""
        cam.options = cam.options.model_copy(
            update={name: getattr(body, name) or default for name, default in _OPTIONS.items() if name in changes}
        )
    _checked(svc, cam)
    new_password = cam.password_sealed is None and cam.password is not None
    _write(svc, cam)
    after = _audited(camera_out(cam))
    changed = [k for k in after if after[k] != before[k]]
    old = {k: before[k] for k in changed}
    new = {k: after[k] for k in changed}
    if new_password:  # that it changed is recorded; the values never are
        old["password"] = "***" if before["password_set"] else None
        new["password"] = "*** (new)"
    fields = sorted(k for k in changes if k != "url") + (["url"] if "url" in changes else [])
    add_audit(
        svc.ctx.catalog, "camera.update", key=who.key, at_us=cam.updated_us, camera_id=cam.id,
        detail={"fields": fields, "old": old, "new": new},
    )
    return camera_out(cam)


@router.delete("/{camera_id}", status_code=204, response_class=Response)
def delete_camera(who: Admin, cam: CameraDep, svc: ServicesDep) -> Response:
    """The camera's open tickets go with it (storage/tickets.close_for_removed_camera), in the
    same transaction."""
    closed: list[int] = []
    hooks = svc.ctx.settings.notifications.webhooks

    def tickets_too(c: Any) -> None:
        closed.extend(close_for_removed_camera(c, cam.id, now_us(svc), who.name, hooks))

    svc.ctx.catalog.delete_camera(cam.id, before=tickets_too)
    svc.board.invalidate()
    detail = {"old": _audited(camera_out(cam)), **({"tickets_closed": closed} if closed else {})}
    add_audit(svc.ctx.catalog, "camera.delete", key=who.key, camera_id=cam.id, detail=detail)
    return Response(status_code=204)
