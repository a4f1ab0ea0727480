"""One camera's settings and the one set of rules that checks them, wherever they come in: the
config file's `cameras:` list, the API (POST and PATCH /api/cameras, via `check_url`/`check_tags`
and `HealthOverrides`), and the catalog's `options` column read back (`CameraOptions`).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator

from core.health_config import HealthOverrides
from core.ids import check_camera_id
from core.validation import StrictModel

__all__ = ["CameraConfig", "CameraLocation", "CameraOptions", "RetentionDays", "check_tags", "check_url"]

_URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://\S+|/\S*)$")
_TAG_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_URL = 2048
MAX_TAGS = 50
MAX_TAG_VALUE = 256
MAX_NAME = 200

RetentionDays = Annotated[float, Field(gt=0, description="age limit of this camera's recordings, days")]


def check_url(v: str | None) -> str | None:
    """A camera URL (None passes): a scheme and no spaces, or an absolute file path."""
    if v is None:
        return v
    if len(v) > MAX_URL or not _URL.match(v):
        raise ValueError("expected a URL such as rtsp://user:pass@host/path (or an absolute file path)")
    return v


def check_tags(v: dict[str, str] | None) -> dict[str, str] | None:
    """Tags (None passes): at most 50, names of 1-64 safe characters, values up to 256 characters."""
    if v is None:
        return v
    if len(v) > MAX_TAGS:
        raise ValueError(f"at most {MAX_TAGS} tags")
    for k, val in v.items():
        if not _TAG_KEY.match(k):
            raise ValueError(f"tag name {k!r}: 1-64 of letters, digits, '_', '.', '-'")
        if len(val) > MAX_TAG_VALUE:
            raise ValueError(f"tag {k!r}: value longer than {MAX_TAG_VALUE} characters")
    return v


class CameraLocation(StrictModel):
    """Where a camera stands and where it looks: what an incident's `near` search and an evidence
    manifest need (WGS 84 degrees; heading clockwise from true north)."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    heading_deg: float | None = Field(default=None, ge=0, lt=360)
    address: str = Field(default="", max_length=500)


class CameraOptions(StrictModel):
    """What the catalog keeps in a camera's `options` column (JSON): its settings beyond the stream."""

    health: HealthOverrides = Field(default_factory=HealthOverrides)
    retention_days: RetentionDays | None = None
    location: CameraLocation | None = None

    def to_json(self) -> dict[str, object]:
        """The column's value: only what is set, so an untouched camera stores `{}`."""
        return self.model_dump(mode="json", exclude_none=True, exclude_defaults=True)


class CameraConfig(StrictModel):
    """One entry of the config file's `cameras:` list."""

    id: str = Field(description="1-64 of a-z, 0-9, '-', '_', starting with a letter or digit", max_length=64)
    name: str = Field("", max_length=MAX_NAME)
    url: str = Field(description="RTSP URL; credentials in it are split out, stored sealed, never returned")
    transport: Literal["tcp", "udp"] = "tcp"
    tags: dict[str, str] = Field(default_factory=dict)
    enabled: bool = True
    health_url: str | None = Field(None, description="a second (sub)stream for health sampling")
    health: HealthOverrides = Field(default_factory=HealthOverrides, description="per-camera health threshold overrides")
    retention_days: RetentionDays | None = None
    location: CameraLocation | None = None
    # credentials apart from the URL (a URL holding them is split when stored: core/camera_url.py)
    username: str | None = Field(None, max_length=200, description="the camera's login (or in the URL)")
    password: str | None = Field(None, max_length=500, repr=False, description="stored sealed, never returned (or in the URL)")

    _id = field_validator("id")(check_camera_id)
    _url = field_validator("url", "health_url")(check_url)
    _tags = field_validator("tags")(check_tags)

    @property
    def options(self) -> CameraOptions:
        return CameraOptions(health=self.health, retention_days=self.retention_days, location=self.location)
