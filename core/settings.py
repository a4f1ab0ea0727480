"""Configuration: one YAML file, every key overridable by `VIGIL_…` environment variables.

Nested keys use a double underscore: `VIGIL_STORAGE__BACKEND=s3`, `VIGIL_API__PORT=9000`.
A bad file gets one clear message naming the key and the problem (`ConfigError`), never a traceback.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from core.camera_config import CameraConfig, CameraLocation
from core.health_config import HealthConfig, HealthOverrides
from core.validation import StrictModel, describe_errors

__all__ = [
    "CameraConfig",
    "CameraLocation",
    "ConfigError",
    "EvidenceConfig",
    "HealthConfig",
    "HealthOverrides",
    "NotificationsConfig",
    "TicketsConfig",
    "WebhookConfig",
    "Settings",
    "load_settings",
    "parse_size",
]

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}


class ConfigError(Exception):
    """A configuration problem, worded for the person who wrote the file."""


def parse_size(value: Any) -> int:
    """`10GB`, `512MiB`, `2e9` or an int → bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 10GB")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("size must not be negative")
        return int(value)
    m = _SIZE.match(str(value))
    if not m:
        raise ValueError(f"expected a size such as 10GB or 512MiB, got {value!r}")
    number, unit = float(m.group(1)), (m.group(2) or "").lower()
    binary = "i" in unit
    unit = unit.replace("i", "").replace("b", "")
    factor = (1024 ** "bkmgtp".index(unit) if unit else 1) if binary else _UNITS[unit]
    return int(number * factor)


class S3Config(StrictModel):
    endpoint: str = "127.0.0.1:8333"
    access_key: str = ""
    secret_key: str = ""
    bucket: str = Field(default="vigil", min_length=3, max_length=63)
    secure: bool = False
    region: str = "us-east-1"
    ca_file: Path | None = Field(default=None, description="PEM CA bundle to verify the S3 server's certificate")


class StorageConfig(StrictModel):
    backend: Literal["local", "s3"] = "local"
    path: Path = Path("./data/objects")
    s3: S3Config = S3Config()


class SpoolConfig(StrictModel):
    path: Path = Path("./data/spool")
    max_bytes: int = 10 * 10**9

    _size = field_validator("max_bytes", mode="before")(lambda v: parse_size(v))


class RecordingConfig(StrictModel):
    segment_seconds: float = Field(default=60.0, ge=2, le=600)


class WorkersConfig(StrictModel):
    processes: int = Field(default=2, ge=1, le=256)
    backoff_initial_s: float = Field(default=1.0, gt=0)
    backoff_max_s: float = Field(default=30.0, gt=0)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    read_timeout_s: float = Field(default=5.0, gt=0)
    # Pause after reading a fresh video packet, so a thread wakes a few times a second instead of
    # once per RTP packet (ingest/source.py). Adds up to this much to live latency; 0 = off.
    read_coalesce_s: float = Field(default=0.2, ge=0, le=1.0)
    # The same pause while the camera is watched from wall tiles (viewers content with bursts).
    # Unset: read_coalesce_s — being watched costs the recording nothing; the browser's player
    # absorbs the bursts (~0.4 s glass to glass). 0: every viewer gets each frame as it arrives.
    # docs/design/live.md, "Cost of being watched".
    watched_read_coalesce_s: float | None = Field(default=None, ge=0)
    # A single view or a fullscreen tile asks for low delay: its camera is read frame by frame while
    # so viewed (~0.1 s glass to glass, ~2.7× that camera's worker CPU). False: bursts for every view.
    low_delay_live: bool = True

    @model_validator(mode="after")
    def _watched_pause(self) -> "WorkersConfig":
        if self.watched_read_coalesce_s is None:
            self.watched_read_coalesce_s = self.read_coalesce_s
        elif self.watched_read_coalesce_s > self.read_coalesce_s:
            raise ValueError(
                f"watched_read_coalesce_s ({self.watched_read_coalesce_s:g} s) must not exceed "
                f"read_coalesce_s ({self.read_coalesce_s:g} s): a watched camera is read at least as often"
            )
        return self

    @property
    def watched_pause_s(self) -> float:
        """The read pause while watched from wall tiles (set or inherited)."""
        return self.read_coalesce_s if self.watched_read_coalesce_s is None else self.watched_read_coalesce_s


class ClusterConfig(StrictModel):
    """Camera leases; one node with SQLite needs none of this changed."""

    lease_ttl_s: float = Field(default=15.0, ge=3)
    capacity: int = Field(default=0, ge=0, description="cameras this node may record; 0 = no limit")
    clock_margin_s: float = Field(default=2.0, ge=0, description="a worker stops this long before its lease expires")
    api_url: str = Field(default="", description="how other nodes reach this node's API (live relay); default http://api.host:api.port")


class RetentionConfig(StrictModel):
    days: float = Field(default=30.0, gt=0, description="default age limit; a camera's retention_days overrides it")
    max_bytes: int | None = Field(default=None, description="byte budget for the whole object store")
    interval_s: float = Field(default=600.0, gt=0)
    batch: int = Field(default=500, ge=1)
    event_days: float = Field(default=400.0, gt=0, description="health events older than this are deleted, "
                              "except each camera's state at that age (what reports of later windows need)")

    _size = field_validator("max_bytes", mode="before")(lambda v: None if v is None else parse_size(v))


class ApiConfig(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    auth: bool = True
    max_clip_seconds: float = Field(default=3600.0, gt=0)
    # request limits (docs/design/security.md): bodies are small JSON documents
    max_body_bytes: int = Field(default=1 << 20, ge=1024)
    header_timeout_s: float = Field(default=10.0, gt=0, le=300)
    max_header_bytes: int = Field(default=64 * 1024, ge=8 * 1024, le=1 << 20)  # request line + headers, else 431
    body_timeout_s: float = Field(default=30.0, gt=0, le=600)
    # addresses (or networks) of reverse proxies whose X-Forwarded-For names the client; none: the
    # connection's own address is the client's (the failed-key limit counts per client address)
    trusted_proxies: list[str] = Field(default_factory=list)
    tls_cert: Path | None = Field(default=None, description="PEM certificate chain: the API serves HTTPS")
    tls_key: Path | None = Field(default=None, description="PEM private key of tls_cert")

    _size = field_validator("max_body_bytes", "max_header_bytes", mode="before")(lambda v: parse_size(v))

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, v: list[str]) -> list[str]:
        for p in v:
            try:
                ipaddress.ip_network(p, strict=False)
            except ValueError:
                raise ValueError(f"trusted_proxies: {p!r} is not an IP address or network") from None
        return v

    @model_validator(mode="after")
    def _tls_pair(self) -> "ApiConfig":
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: give both or neither")
        return self


class SecurityConfig(StrictModel):
    """docs/design/security.md: what each setting defends against."""

    # camera URL schemes accepted (config file and API alike); add e.g. file only for trusted setups
    camera_url_schemes: list[str] = Field(default_factory=lambda: ["rtsp", "rtsps"])
    # the key sealing credentials in the catalog: this value (VIGIL_SECURITY__KEY), else this file
    key: str = Field(default="", repr=False)
    key_file: Path | None = Field(default=None, description="default: <data_dir>/secret.key")

    @field_validator("camera_url_schemes")
    @classmethod
    def _schemes(cls, v: list[str]) -> list[str]:
        from core.camera_url import KNOWN_SCHEMES

        out = [s.lower() for s in v]
        unknown = [s for s in out if s not in KNOWN_SCHEMES]
        if unknown:
            raise ValueError(f"unknown scheme(s) {unknown}; known: {', '.join(KNOWN_SCHEMES)}")
        return out


ALERT_STATES = ("offline", "frozen", "black", "tampered", "unknown", "online", "starting")


class WebhookConfig(StrictModel):
    """One receiver of state changes and ticket changes (notify/, docs/design/operations.md)."""

    url: str
    secret: str = Field(min_length=1, description="HMAC-SHA256 key of the X-Vigil-Signature header")
    name: str = Field(default="", description="stable name in metrics and the API; default: from the URL")
    states: list[str] = ["offline", "frozen", "black", "tampered", "unknown"]
    tags: dict[str, str | list[str]] = {}  # only cameras with these tag values (a list: any of them)
    timeout_s: float = Field(default=5.0, gt=0, le=60)

    @property
    def key(self) -> str:
        """Its stable name in the outbox, the metrics and the API: `name`, else from the URL."""
        return self.name or "wh-" + hashlib.sha256(self.url.encode()).hexdigest()[:10]

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"^https?://[^\s/]+", v):
            raise ValueError(f"webhook url must start with http:// or https://, got {v.split(':', 1)[0][:10]!r}:…")
        return v

    @field_validator("states")
    @classmethod
    def _states(cls, v: list[str]) -> list[str]:
        bad = [s for s in v if s not in ALERT_STATES]
        if bad:
            raise ValueError(f"unknown state {bad[0]!r}; states are {', '.join(ALERT_STATES)}")
        return v


class NotificationsConfig(StrictModel):
    webhooks: list[WebhookConfig] = []
    retry_initial_s: float = Field(default=1.0, gt=0)
    retry_max_s: float = Field(default=60.0, gt=0)
    poll_s: float = Field(default=0.25, gt=0, le=5, description="how often the event log is read")
    keep_delivered_days: float = Field(default=7.0, gt=0)

    @field_validator("webhooks")
    @classmethod
    def _unique(cls, hooks: list[WebhookConfig]) -> list[WebhookConfig]:
        seen: set[str] = set()
        for h in hooks:
            if h.name and h.name in seen:
                raise ValueError(f"webhook name {h.name!r} appears twice")
            seen.add(h.name)
        return hooks


class TicketsConfig(StrictModel):
    """When a fault becomes a ticket, and which tags name what cameras hang on."""

    enabled: bool = True
    open_after_s: dict[str, float] = {"offline": 60.0, "frozen": 300.0, "black": 300.0, "tampered": 300.0}
    correlate_tags: list[str] = ["uplink", "switch", "site"]
    correlate_window_s: float = Field(default=5.0, ge=0, le=300)

    @field_validator("open_after_s")
    @classmethod
    def _thresholds(cls, v: dict[str, float]) -> dict[str, float]:
        for state, secs in v.items():
            if state not in ("offline", "frozen", "black", "tampered", "unknown"):
                raise ValueError(f"{state!r} is not a fault state (offline, frozen, black, tampered, unknown)")
            if secs < 0:
                raise ValueError(f"{state} must not be negative")
        return v


class EvidenceConfig(StrictModel):
    """Evidence exports: the Ed25519 signing key (a file, never the catalog) and the bundles."""

    signing_key_path: Path | None = Field(
        default=None, description="private key file (0600); default: {data_dir}/signing/signing-key.pem"
    )
    exports_path: Path | None = Field(
        default=None, description="bundles being made, and those the object store refused; default: {data_dir}/exports")
    exports_at_once: int = Field(default=1, ge=1, le=8)
    upload_retry_s: float = Field(
        default=60.0, gt=0, le=86400,
        description="how often a node retries putting its bundles the object store refused into it",
    )
    max_incident_seconds: float = Field(default=7 * 86400.0, gt=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VIGIL_", env_nested_delimiter="__", extra="forbid", case_sensitive=False,
        allow_inf_nan=False,
    )

    storage: StorageConfig = StorageConfig()
    catalog: str = "sqlite:///./data/catalog.db"
    spool: SpoolConfig = SpoolConfig()
    recording: RecordingConfig = RecordingConfig()
    workers: WorkersConfig = WorkersConfig()
    health: HealthConfig = HealthConfig()
    api: ApiConfig = ApiConfig()
    cluster: ClusterConfig = ClusterConfig()
    retention: RetentionConfig = RetentionConfig()
    security: SecurityConfig = SecurityConfig()
    notifications: NotificationsConfig = NotificationsConfig()
    tickets: TicketsConfig = TicketsConfig()
    evidence: EvidenceConfig = EvidenceConfig()
    node_id: str = ""
    data_dir: Path = Path("./data")
    cameras: list[CameraConfig] = []

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment beats the file: operators override one key without editing YAML.
        return env_settings, init_settings

    @field_validator("cameras")
    @classmethod
    def _unique(cls, cams: list[CameraConfig]) -> list[CameraConfig]:
        seen: set[str] = set()
        for c in cams:
            if c.id in seen:
                raise ValueError(f"camera id {c.id!r} appears twice")
            seen.add(c.id)
        return cams

    @model_validator(mode="after")
    def _camera_urls(self) -> "Settings":
        """The API's rule (core/camera_url.py), so the file cannot hold what the API refuses."""
        from core.camera_url import check_camera_urls

        for i, c in enumerate(self.cameras):
            try:
                check_camera_urls({"url": c.url, "health_url": c.health_url}, self.security.camera_url_schemes)
            except ValueError as e:
                raise ValueError(f"cameras.{i} ({c.id}).{e}") from None
        return self


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping: YAML's last-one-wins would let a
    second `api:` block silently replace the first (and turn auth off)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark, f"duplicate key {key!r}", key_node.start_mark
                )
            seen[key] = True
        return super().construct_mapping(node, deep=deep)


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read the YAML file (if any), apply `VIGIL_*` variables, validate. Raises `ConfigError`."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text()
        except OSError as e:
            raise ConfigError(f"{p}: cannot read config file ({e.strerror})") from None
        try:
            loaded = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(e, "problem", None) or str(e)
            raise ConfigError(f"{p}: not valid YAML{where}: {problem}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{p}: the top level must be a mapping of keys, got {type(loaded).__name__}")
        data = loaded
    data.update(overrides)
    try:
        return Settings(**data)
    except ValidationError as e:
        where = f"{path}: " if path else ""
        raise ConfigError(f"{where}{describe_errors(e.errors())}") from None
