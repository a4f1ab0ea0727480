"""Cameras: their rows and the version the supervisor and the status board poll for changes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError

from core.camera_config import CameraOptions
from core.camera_url import split_credentials
from core.validation import describe_errors
from storage.sealing import SealError

from storage.catalog.base import CatalogBase
from storage.catalog.models import Camera
from storage.catalog.tables import cameras, feed_status

__all__ = ["CameraRows", "camera_from_row", "split_camera"]

log = logging.getLogger("vigil.catalog")


def split_camera(cam: Camera) -> None:
    """Move credentials out of `cam.url` and `cam.health_url` into its username/password, in
    place (core/camera_url.py). ValueError when they disagree."""
    main = split_credentials(cam.url, cam.username, cam.password)
    user, password = main.username, main.password
    if cam.health_url is not None:
        sub = split_credentials(cam.health_url)
        for mine, theirs, what in ((user, sub.username, "user"), (password, sub.password, "password")):
            if theirs is not None and mine is not None and theirs != mine:
                raise ValueError(f"health_url holds another {what} than url; a camera has one login")
        user = user if user is not None else sub.username
        password = password if password is not None else sub.password
        cam.health_url = sub.url
    cam.url, cam.username, cam.password = main.url, user, password


def camera_from_row(r: Any) -> Camera:
    """A `cameras` row as a Camera; options that fail their rules are kept out and named, never raised."""
    m = dict(r._mapping)
    raw = m.pop("options") or {}
    try:
        m["options"] = CameraOptions.model_validate(raw)
    except ValidationError as e:
        m["options"], m["options_error"] = CameraOptions(), describe_errors(e.errors())
    return Camera(**m)


class CameraRows(CatalogBase):
    def upsert_camera(self, cam: Camera, now_us: int) -> None:
        """Write a camera; credentials in its URLs are split out first, and its password sealed
        (storage/sealing.py). `cam` is left holding the split form."""
        split_camera(cam)
        if cam.password is not None:
            if self.sealer is None:
                raise SealError("storing a camera password needs the secrets key (security.key_file)")
            cam.password_sealed = self.sealer.seal(cam.password)
        row = {
            "id": cam.id,
            "name": cam.name,
            "url": cam.url,
            "transport": cam.transport,
            "tags": dict(cam.tags),
            "enabled": cam.enabled,
            "health_url": cam.health_url,
            "options": cam.options.to_json(),
            "updated_us": now_us,
            "username": cam.username,
            "password_sealed": cam.password_sealed,
        }
        with self._begin() as c:
            # refused options read back are not written over with the empty ones that stood in for them
            changes = {k: v for k, v in row.items() if k != "options" or not cam.options_error}
            done = c.execute(sa.update(cameras).where(cameras.c.id == cam.id).values(**changes)).rowcount
            if not done:
                c.execute(sa.insert(cameras).values(**row))

    def _camera(self, r: Any, unseal: bool) -> Camera:
        cam = camera_from_row(r)
        if unseal and cam.password_sealed is not None:
            try:
                if self.sealer is None:
                    raise SealError("this process has no secrets key")
                cam.password = self.sealer.unseal(cam.password_sealed)
            except SealError as e:  # one camera's password, not every camera's recording
                log.error("camera %s: cannot unseal its password: %s", cam.id, e)
        return cam

    def get_camera(self, camera_id: str, *, unseal: bool = False) -> Camera | None:
        """The camera; its password is unsealed only with `unseal` (the recorder needs it)."""
        with self.engine.connect() as c:
            r = c.execute(sa.select(cameras).where(cameras.c.id == camera_id)).first()
        return self._camera(r, unseal) if r else None

    def list_cameras(self, *, enabled_only: bool = False, unseal: bool = False) -> list[Camera]:
        q = sa.select(cameras).order_by(cameras.c.id)
        if enabled_only:
            q = q.where(cameras.c.enabled == sa.true())
        with self.engine.connect() as c:
            return [self._camera(r, unseal) for r in c.execute(q)]

    def seal_credentials(self) -> int:
        """Split and seal what an older version stored in clear, and reseal every password with
        the first key (after a key rotation). Returns the cameras rewritten; update times unchanged."""
        n = 0
        for cam in self.list_cameras():
            sealed = cam.password_sealed
            stale = sealed is not None and (self.sealer is None or not self.sealer.is_current(sealed))
            if not stale and split_credentials(cam.url).url == cam.url and (
                cam.health_url is None or split_credentials(cam.health_url).url == cam.health_url
            ):
                continue  # already split, and sealed with the first key
            full = self.get_camera(cam.id, unseal=True)
            if full is not None and (sealed is None or full.password is not None):
                self.upsert_camera(full, full.updated_us)
                n += 1
        return n

    def delete_camera(self, camera_id: str, before: Callable[[sa.Connection], object] | None = None) -> bool:
        """`before(connection)`: what else goes with the camera, in the same transaction, while its
        row is still there (its open tickets: storage/tickets.close_for_removed_camera)."""
        with self._begin() as c:
            if before is not None:
                before(c)
            n = c.execute(sa.delete(cameras).where(cameras.c.id == camera_id)).rowcount
            c.execute(sa.delete(feed_status).where(feed_status.c.camera_id == camera_id))
        return bool(n)

    def cameras_version(self) -> tuple[int, int]:
        """(count, newest update) — cheap to poll for changes."""
        with self.engine.connect() as c:
            r = c.execute(sa.select(sa.func.count(), sa.func.max(cameras.c.updated_us))).one()
        return int(r[0]), int(r[1] or 0)
