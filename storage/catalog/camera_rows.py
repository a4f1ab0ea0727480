"""Cameras: their rows and the version the supervisor and the status board poll for changes."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError

from core.camera_config import CameraOptions
from core.validation import describe_errors
from storage.catalog.base import CatalogBase
from storage.catalog.models import Camera
from storage.catalog.tables import cameras, feed_status

__all__ = ["CameraRows", "camera_from_row"]


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
        }
        with self._begin() as c:
            # refused options read back are not written over with the empty ones that stood in for them
            changes = {k: v for k, v in row.items() if k != "options" or not cam.options_error}
            done = c.execute(sa.update(cameras).where(cameras.c.id == cam.id).values(**changes)).rowcount
            if not done:
                c.execute(sa.insert(cameras).values(**row))

    def get_camera(self, camera_id: str) -> Camera | None:
        with self.engine.connect() as c:
            r = c.execute(sa.select(cameras).where(cameras.c.id == camera_id)).first()
        return camera_from_row(r) if r else None

    def list_cameras(self, *, enabled_only: bool = False) -> list[Camera]:
        q = sa.select(cameras).order_by(cameras.c.id)
        if enabled_only:
            q = q.where(cameras.c.enabled == sa.true())
        with self.engine.connect() as c:
            return [camera_from_row(r) for r in c.execute(q)]

    def delete_camera(self, camera_id: str) -> bool:
        with self._begin() as c:
            n = c.execute(sa.delete(cameras).where(cameras.c.id == camera_id)).rowcount
            c.execute(sa.delete(feed_status).where(feed_status.c.camera_id == camera_id))
        return bool(n)

    def cameras_version(self) -> tuple[int, int]:
        """(count, newest update) — cheap to poll for changes."""
        with self.engine.connect() as c:
            r = c.execute(sa.select(sa.func.count(), sa.func.max(cameras.c.updated_us))).one()
        return int(r[0]), int(r[1] or 0)
