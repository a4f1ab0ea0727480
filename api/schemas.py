"""Request and response models. Units are in field names; times are integer µs since the epoch
(UTC) in `*_us` fields, with the same instant as ISO 8601 text in `*_utc` where documents are small."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from core.camera_config import CameraConfig, CameraLocation, RetentionDays, check_tags, check_url
from core.health_config import HealthOverrides
from core.roles import Role
from core.states import FEED_STATES
from core.validation import StrictModel

__all__ = [
    "AuditEntryOut",
    "AuditList",
    "CameraIn",
    "CameraList",
    "CameraOut",
    "CameraPatch",
    "CameraStatusDetail",
    "ErrorOut",
    "EventList",
    "EventOut",
    "GapOut",
    "HealthOut",
    "KeyCreate",
    "KeyCreated",
    "KeyList",
    "KeyOut",
    "RecordingSegment",
    "RecordingsOut",
    "SignedUrl",
    "StatusCamera",
    "StatusOut",
]


class ErrorOut(BaseModel):
    detail: str = Field(description="what went wrong, for a person")


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    catalog: str
    store: str


# ---- cameras ----------------------------------------------------------------------------------


class CameraPatch(StrictModel):
    """Fields to change; absent fields stay as they are."""

    url: str | None = Field(None, description="RTSP URL; credentials in it are split out, stored sealed, never returned")
    name: str | None = Field(None, max_length=200)
    transport: Literal["tcp", "udp"] | None = None
    tags: dict[str, str] | None = None
    enabled: bool | None = None
    health_url: str | None = Field(None, description="a second (sub)stream for health sampling")
    health: HealthOverrides | None = Field(None, description="per-camera health threshold overrides")
    retention_days: RetentionDays | None = None
    location: CameraLocation | None = Field(None, description="lat, lon, heading_deg, address; null removes it")
    username: str | None = Field(None, max_length=200, description="the camera's login")
    password: str | None = Field(None, max_length=500, description="stored sealed, never returned; null clears it")

    _url = field_validator("url", "health_url")(check_url)
    _tags = field_validator("tags")(check_tags)


class CameraIn(CameraConfig):
    """A new camera: the same settings, checked by the same rules, as a camera in the config file."""


class CameraOut(BaseModel):
    id: str
    name: str
    url: str = Field(description="redacted: credentials replaced by ***")
    transport: str
    tags: dict[str, str]
    enabled: bool
    health_url: str | None = Field(description="redacted")
    health: dict[str, Any]
    retention_days: float | None = None
    location: CameraLocation | None = None
    updated_us: int
    username: str | None = None
    password_set: bool = Field(False, description="whether a password is stored (it is never returned)")


class CameraList(BaseModel):
    cameras: list[CameraOut]


# ---- status -----------------------------------------------------------------------------------


class StatusCamera(BaseModel):
    id: str
    name: str
    state: str = Field(description="|".join(FEED_STATES))
    since_us: int | None = Field(description="when the feed entered this state")
    reason: str
    fps: float | None
    bitrate_kbps: float | None
    last_packet_us: int | None = Field(description="arrival of the newest packet")
    reconnects: int
    updated_us: int | None = Field(description="when the worker last wrote this status")
    enabled: bool
    tags: dict[str, str]


class StatusOut(BaseModel):
    generated_us: int
    cameras_total: int
    counts: dict[str, int] = Field(description="cameras per state, of those listed")
    cameras: list[StatusCamera]


class CameraStatusDetail(StatusCamera):
    figures: dict[str, Any] = Field(description="the last sample's measurements")
    run_id: str | None
    node_id: str | None
    latest_recording_end_us: int | None = Field(description="end of the newest stored segment")


# ---- events -----------------------------------------------------------------------------------


class EventOut(BaseModel):
    id: int
    camera_id: str
    at_us: int
    at_utc: str
    kind: str
    from_state: str | None
    to_state: str | None
    reason: str
    figures: dict[str, Any]


class EventList(BaseModel):
    events: list[EventOut]
    next_cursor: int = Field(description="pass as `since` to get the events after these")


# ---- recordings -------------------------------------------------------------------------------


class RecordingSegment(BaseModel):
    id: int
    run_id: str
    seq: int
    start_us: int
    end_us: int
    start_utc: str
    end_utc: str
    duration_s: float
    bytes: int
    frames: int
    video_codec: str
    audio_codec: str | None
    width: int | None
    height: int | None
    recovered: bool


class GapOut(BaseModel):
    start_us: int
    end_us: int
    start_utc: str
    end_utc: str
    duration_s: float


class RecordingsOut(BaseModel):
    camera_id: str
    start_us: int
    end_us: int
    recorded_s: float = Field(description="time covered by stored segments inside the range")
    gap_s: float
    segments: list[RecordingSegment]
    gaps: list[GapOut]


class SignedUrl(BaseModel):
    url: str = Field(description="path and query, relative to the API's origin")
    expires_us: int


# ---- keys and audit ---------------------------------------------------------------------------


class KeyCreate(StrictModel):
    role: Role
    name: str = Field(min_length=1, max_length=100, pattern=r"\S")


class KeyOut(BaseModel):
    id: str
    name: str
    role: str
    created_us: int
    revoked: bool


class KeyCreated(KeyOut):
    key: str = Field(description="the API key; shown only now")


class KeyList(BaseModel):
    keys: list[KeyOut]


class AuditEntryOut(BaseModel):
    id: int
    at_us: int
    at_utc: str
    key_id: str | None
    key_name: str | None
    action: str
    camera_id: str | None
    start_us: int | None
    end_us: int | None
    sha256: str | None
    bytes: int | None
    detail: dict[str, Any]
    prev_sha256: str | None = Field(None, description="the previous entry's row_sha256 (the hash chain)")
    row_sha256: str | None = Field(None, description="SHA-256 over this entry's content and prev_sha256")


class AuditList(BaseModel):
    entries: list[AuditEntryOut]
    next_cursor: int
