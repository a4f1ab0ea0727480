"""The rows vigil passes around, as dataclasses, and their conversions to and from table rows."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from core.camera_url import join_credentials
from core.camera_config import CameraOptions
from core.redact import redact_url
from storage.keys import segment_key

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
    options: CameraOptions = field(default_factory=CameraOptions)
    updated_us: int = 0
    # Credentials apart from the URL (core/camera_url.py): `url` holds none, or the `{password}`
    # placeholder. `password` is plain text only in memory (given on input, or unsealed for the
    # recorder); the catalog stores `password_sealed` (storage/sealing.py).
    username: str | None = None
    password: str | None = None
    password_sealed: str | None = None
    # Why the stored options were refused ("" = they are valid): a row written past the API's and
    # the config's checks. The worker then keeps this camera, alone, in an error state; writing the
    # camera back leaves the stored options as they were, for someone to correct.
    options_error: str = ""

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
    """One segment at every stage of its life: `state` is `recording` while its writer holds it in
    the spool, `spooled` once closed (in the spool, and in the catalog until uploaded), `stored`
    in the object store, `deleting` while retention removes it. The spool's journal and the
    catalog's row are its two stored forms (storage/spool.py, storage/catalog/segment_rows.py)."""

    camera_id: str
    run_id: str
    seq: int
    start_us: int
    end_us: int
    media_start_us: int
    bytes: int
    header_bytes: int
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

    @property
    def object_key(self) -> str:
        """Derived from camera and start (storage/keys.py), never stored twice."""
        return segment_key(self.camera_id, self.start_us)

    @property
    def run_start_us(self) -> int:
        """Wall clock of the run's media time zero: the same for every segment of a run."""
        return self.start_us - self.media_start_us

    @classmethod
    def opening(
        cls,
        camera_id: str,
        run_id: str,
        seq: int,
        start_us: int,
        media_start_us: int,
        video_codec: str,
        **known: Any,
    ) -> Segment:
        """A segment as its writer opens it: no fragment yet, ending where it starts."""
        return cls(
            camera_id=camera_id,
            run_id=run_id,
            seq=seq,
            start_us=start_us,
            end_us=start_us,
            media_start_us=media_start_us,
            bytes=0,
            header_bytes=0,
            video_codec=video_codec,
            frames=0,
            fragments=[],
            state="recording",
            **known,
        )


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


def _shallow(obj: Any) -> dict[str, Any]:
    """A dataclass's fields as a dict, without `asdict`'s deep copies."""
    return {f.name: getattr(obj, f.name) for f in fields(obj)}
