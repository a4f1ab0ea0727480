"""The rows vigil passes around, as dataclasses, and their conversions to and from table rows."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from core.camera_url import join_credentials
from core.redact import redact_url

__all__ = ["Camera", "Event", "FeedStatus", "Fragment", "Segment"]


@dataclass(slots=True)
class Camera:
    id: str
    url: str
    name: str = ""
    transport: str = "tcp"
    tags: dict[str, str] = field(default_factory=dict)
    enabled: bool = True
    health_url: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    updated_us: int = 0
    # Credentials apart from the URL (core/camera_url.py): `url` holds none, or the `{password}`
    # placeholder. `password` is plain text only in memory (given on input, or unsealed for the
    # recorder); the catalog stores `password_sealed` (storage/sealing.py).
    username: str | None = None
    password: str | None = None
    password_sealed: str | None = None

    @property
    def safe_url(self) -> str:
        return redact_url(self.url)

    @property
    def source_url(self) -> str:
        """The URL to open, credentials put back (needs `password` unsealed)."""
        return join_credentials(self.url, self.username, self.password)

    @property
    def health_source_url(self) -> str | None:
        """The health substream's URL to open: the camera's own credentials (one device, one login)."""
        return None if self.health_url is None else join_credentials(self.health_url, self.username, self.password)

    def __repr__(self) -> str:  # never let credentials reach a log through repr()
        return f"Camera(id={self.id!r}, url={self.safe_url!r}, enabled={self.enabled})"


@dataclass(frozen=True, slots=True)
class Fragment:
    """One fMP4 fragment (moof + mdat, one GOP) inside a segment object."""

    offset: int
    size: int
    start_off_us: int  # from the segment's start
    duration_us: int


@dataclass(slots=True)
class Segment:
    camera_id: str
    run_id: str
    seq: int
    start_us: int
    end_us: int
    media_start_us: int
    bytes: int
    header_bytes: int
    object_key: str
    video_codec: str
    frames: int
    fragments: list[Fragment]
    audio_codec: str | None = None
    width: int | None = None
    height: int | None = None
    recovered: bool = False
    drift_us: int | None = None
    lease_epoch: int | None = None
    node_id: str | None = None
    state: str = "spooled"
    stored_us: int | None = None
    id: int | None = None

    @property
    def duration_us(self) -> int:
        return self.end_us - self.start_us


@dataclass(slots=True)
class FeedStatus:
    camera_id: str
    state: str
    since_us: int
    updated_us: int
    reason: str = ""
    fps: float | None = None
    bitrate_kbps: float | None = None
    last_packet_us: int | None = None
    reconnects: int = 0
    figures: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    node_id: str | None = None


@dataclass(slots=True)
class Event:
    camera_id: str
    at_us: int
    kind: str
    from_state: str | None = None
    to_state: str | None = None
    reason: str = ""
    figures: dict[str, Any] = field(default_factory=dict)
    id: int | None = None


def _fragments_to_json(frags: Sequence[Fragment]) -> list[list[int]]:
    return [[f.offset, f.size, f.start_off_us, f.duration_us] for f in frags]


def _fragments_from_json(raw: Any) -> list[Fragment]:
    if isinstance(raw, str):
        raw = json.loads(raw)
    return [Fragment(*map(int, r)) for r in raw or []]


def _segment_from_row(r: Any) -> Segment:
    m = dict(r._mapping)
    m["fragments"] = _fragments_from_json(m["fragments"])
    return Segment(**m)


def _shallow(obj: Any) -> dict[str, Any]:
    """A dataclass's fields as a dict, without `asdict`'s deep copies."""
    return {f.name: getattr(obj, f.name) for f in fields(obj)}
