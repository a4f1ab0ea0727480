"""The catalog: SQLAlchemy Core over SQLite (WAL) by default, PostgreSQL for a cluster.

Times are integer microseconds since the epoch (UTC) in columns ending `_us`: exact, cheap to
index, the same on both backends. Ranges are half-open, [start_us, end_us).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

__all__ = [
    "Camera",
    "Catalog",
    "Event",
    "Fragment",
    "FeedStatus",
    "Segment",
    "metadata",
    "redact_url",
]

metadata = sa.MetaData()

cameras = sa.Table(
    "cameras",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("url", sa.Text, nullable=False),  # holds RTSP credentials: never leaves the service
    sa.Column("transport", sa.String(8), nullable=False, server_default="tcp"),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("health_url", sa.Text, nullable=True),
    sa.Column("options", sa.JSON, nullable=False),  # per-camera overrides (health thresholds, …)
    sa.Column("updated_us", sa.BigInteger, nullable=False),
)

segments = sa.Table(
    "segments",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("camera_id", sa.String(64), nullable=False),
    sa.Column("run_id", sa.String(32), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),  # position within the run, from 0
    sa.Column("start_us", sa.BigInteger, nullable=False),
    sa.Column("end_us", sa.BigInteger, nullable=False),
    sa.Column("media_start_us", sa.BigInteger, nullable=False),  # decode time since the run began
    sa.Column("bytes", sa.BigInteger, nullable=False),
    sa.Column("header_bytes", sa.Integer, nullable=False),
    sa.Column("object_key", sa.String(255), nullable=False, unique=True),
    sa.Column("video_codec", sa.String(16), nullable=False),
    sa.Column("audio_codec", sa.String(16), nullable=True),
    sa.Column("width", sa.Integer, nullable=True),
    sa.Column("height", sa.Integer, nullable=True),
    sa.Column("frames", sa.Integer, nullable=False),
    sa.Column("fragments", sa.JSON, nullable=False),  # [[offset, size, start_off_us, duration_us], …]
    sa.Column("recovered", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("drift_us", sa.BigInteger, nullable=True),  # wall clock minus media clock at close
    sa.Column("lease_epoch", sa.BigInteger, nullable=True),
    sa.Column("node_id", sa.String(64), nullable=True),  # the node that recorded it
    sa.Column("state", sa.String(8), nullable=False),  # spooled | stored | deleting
    sa.Column("stored_us", sa.BigInteger, nullable=True),
    sa.Index("ix_segments_camera_start", "camera_id", "start_us"),
    sa.Index("ix_segments_state", "state"),
)

feed_status = sa.Table(
    "feed_status",
    metadata,
    sa.Column("camera_id", sa.String(64), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("since_us", sa.BigInteger, nullable=False),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("fps", sa.Float, nullable=True),
    sa.Column("bitrate_kbps", sa.Float, nullable=True),
    sa.Column("last_packet_us", sa.BigInteger, nullable=True),
    sa.Column("reconnects", sa.Integer, nullable=False, server_default="0"),
    sa.Column("figures", sa.JSON, nullable=False),  # last sample: diff, luma, sharpness, …
    sa.Column("run_id", sa.String(32), nullable=True),
    sa.Column("node_id", sa.String(64), nullable=True),
    sa.Column("updated_us", sa.BigInteger, nullable=False),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("camera_id", sa.String(64), nullable=False),
    sa.Column("at_us", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),  # state | spool_drop | …
    sa.Column("from_state", sa.String(16), nullable=True),
    sa.Column("to_state", sa.String(16), nullable=True),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("figures", sa.JSON, nullable=False),
    sa.Index("ix_events_camera_at", "camera_id", "at_us"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),  # public prefix of the key
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("secret_hash", sa.String(128), nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Column("revoked", sa.Boolean, nullable=False, server_default=sa.false()),
)

audit = sa.Table(
    "audit",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("at_us", sa.BigInteger, nullable=False),
    sa.Column("key_id", sa.String(32), nullable=True),
    sa.Column("key_name", sa.String(100), nullable=True),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("camera_id", sa.String(64), nullable=True),
    sa.Column("start_us", sa.BigInteger, nullable=True),
    sa.Column("end_us", sa.BigInteger, nullable=True),
    sa.Column("sha256", sa.String(64), nullable=True),
    sa.Column("bytes", sa.BigInteger, nullable=True),
    sa.Column("detail", sa.JSON, nullable=False),
)


server_secrets = sa.Table(
    "server_secrets",  # named secrets shared by every node (the URL-signing key)
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(128), nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
)

nodes = sa.Table(
    "nodes",  # cluster members, by heartbeat
    metadata,
    sa.Column("node_id", sa.String(64), primary_key=True),
    sa.Column("capacity", sa.Integer, nullable=False),
    sa.Column("heartbeat_us", sa.BigInteger, nullable=False),
)

leases = sa.Table(
    "leases",  # which node records which camera; `epoch` is the fencing token
    metadata,
    sa.Column("camera_id", sa.String(64), primary_key=True),
    sa.Column("node_id", sa.String(64), nullable=True),
    sa.Column("epoch", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("expires_us", sa.BigInteger, nullable=False, server_default="0"),
)

holds = sa.Table(
    "holds",  # ranges an investigator placed out of retention's reach
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("camera_id", sa.String(64), nullable=False),
    sa.Column("start_us", sa.BigInteger, nullable=False),
    sa.Column("end_us", sa.BigInteger, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(100), nullable=True),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Column("released_us", sa.BigInteger, nullable=True),
    sa.Index("ix_holds_camera", "camera_id"),
)


_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^?#]*@")
_SECRET_PARAM = re.compile(r"pass|pwd|secret|token|key|auth|sig|credential", re.IGNORECASE)


def redact_url(url: str) -> str:
    """What logs and responses may show of a camera URL: no user info, no secret query values.

    `rtsp://user:pass@host/x?password=y` → `rtsp://***@host/x?password=***`. User info is cut up
    to the last '@' before the query, so a password with an unescaped '/' or '@' cannot leak
    through what a parser takes for the path (over-masking a host is the safe error).
    """
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    red = _USERINFO.sub(r"\1***@", url)
    try:
        parts = urlsplit(red)
    except ValueError:
        return "<unparseable url>"
    if not parts.query:
        return red
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    masked = [(k, "***" if _SECRET_PARAM.search(k) else v) for k, v in pairs]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(masked, safe="*"), parts.fragment))


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

    @property
    def safe_url(self) -> str:
        return redact_url(self.url)

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


# Statements the recorder runs for every segment, built once: constructing them per call cost more
# CPU than SQLite's work.
_SEGMENT_BY_KEY = sa.select(segments.c.id).where(segments.c.object_key == sa.bindparam("key"))
_SEGMENT_INSERT = segments.insert()
# …and for every camera's status every couple of seconds
_STATUS_UPDATE = feed_status.update().where(feed_status.c.camera_id == sa.bindparam("_cid"))
_STATUS_INSERT = feed_status.insert()
# PostgreSQL hands out an event's id when the row is inserted, not when it commits: two writers can
# commit ids 11 then 10, and a reader paging by `id > cursor` (the SSE stream, /api/events) that
# saw 11 would never see 10. A transaction-scoped advisory lock, taken before a transaction's first
# event, makes ids commit in order: the lock goes only after the commit is visible. SQLite has one
# writer at a time already.
_EVENT_ORDER_LOCK = sa.text("SELECT pg_advisory_xact_lock(7391002)")
_EVENT_INSERT = events.insert()


def _shallow(obj: Any) -> dict[str, Any]:
    """A dataclass's fields as a dict, without `asdict`'s deep copies."""
    return {f.name: getattr(obj, f.name) for f in fields(obj)}
_SEGMENT_STORED = (
    sa.update(segments)
    .where(segments.c.id == sa.bindparam("sid"))
    .values(state="stored", stored_us=sa.bindparam("now"))
)


class Catalog:
    """Thread-safe handle on the catalog database; one per process."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"future": True}
        if self.is_sqlite:
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                from pathlib import Path

                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = sa.create_engine(url, **kwargs)
        if self.is_sqlite:

            @sa.event.listens_for(self.engine, "connect")
            def _pragmas(dbapi_conn: Any, _rec: Any) -> None:
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA busy_timeout=30000")
                cur.close()

        self._lock = threading.Lock()
        if create:
            self.create_schema()

    def create_schema(self) -> None:
        """Bring the database to the newest schema revision (Alembic; see storage/migrate.py)."""
        from storage.migrate import upgrade

        upgrade(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def _begin(self) -> Any:
        return self.engine.begin()

    # ---- cameras -------------------------------------------------------------------------
    def upsert_camera(self, cam: Camera, now_us: int) -> None:
        row = {
            "id": cam.id,
            "name": cam.name,
            "url": cam.url,
            "transport": cam.transport,
            "tags": dict(cam.tags),
            "enabled": cam.enabled,
            "health_url": cam.health_url,
            "options": dict(cam.options),
            "updated_us": now_us,
        }
        with self._begin() as c:
            done = c.execute(sa.update(cameras).where(cameras.c.id == cam.id).values(**row)).rowcount
            if not done:
                c.execute(sa.insert(cameras).values(**row))

    def get_camera(self, camera_id: str) -> Camera | None:
        with self.engine.connect() as c:
            r = c.execute(sa.select(cameras).where(cameras.c.id == camera_id)).first()
        return Camera(**dict(r._mapping)) if r else None

    def list_cameras(self, *, enabled_only: bool = False) -> list[Camera]:
        q = sa.select(cameras).order_by(cameras.c.id)
        if enabled_only:
            q = q.where(cameras.c.enabled == sa.true())
        with self.engine.connect() as c:
            return [Camera(**dict(r._mapping)) for r in c.execute(q)]

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

    # ---- segments ------------------------------------------------------------------------
    def add_segment(self, seg: Segment) -> int:
        """Insert (or, for a retried upload, find) the row of a segment; returns its id."""
        return self.add_segments([seg])[0]

    def add_segments(self, segs: Sequence[Segment]) -> list[int]:
        """`add_segment` for many, in one transaction (the uploader registers a pass's worth)."""
        ids: list[int] = []
        with self._begin() as c:
            for seg in segs:
                existing = c.execute(_SEGMENT_BY_KEY, {"key": seg.object_key}).scalar_one_or_none()
                if existing is None:
                    row = _shallow(seg)  # `asdict` deep-copied every Fragment only to make JSON of it
                    row.pop("id")
                    row["fragments"] = _fragments_to_json(seg.fragments)
                    existing = c.execute(_SEGMENT_INSERT, row).inserted_primary_key[0]
                seg.id = int(existing)
                ids.append(seg.id)
        return ids

    def mark_stored(self, segment_id: int, now_us: int) -> None:
        self.mark_stored_many([segment_id], now_us)

    def mark_stored_many(self, segment_ids: Sequence[int], now_us: int) -> None:
        if not segment_ids:
            return
        with self._begin() as c:
            c.execute(_SEGMENT_STORED, [{"sid": sid, "now": now_us} for sid in segment_ids])

    def get_segment_by_key(self, key: str) -> Segment | None:
        with self.engine.connect() as c:
            r = c.execute(sa.select(segments).where(segments.c.object_key == key)).first()
        return _segment_from_row(r) if r else None

    def segments_between(
        self, camera_id: str, start_us: int, end_us: int, *, stored_only: bool = True
    ) -> list[Segment]:
        """Segments overlapping [start_us, end_us), oldest first."""
        q = (
            sa.select(segments)
            .where(segments.c.camera_id == camera_id)
            .where(segments.c.start_us < end_us)
            .where(segments.c.end_us > start_us)
            .order_by(segments.c.start_us)
        )
        if stored_only:
            q = q.where(segments.c.state == "stored")
        with self.engine.connect() as c:
            return [_segment_from_row(r) for r in c.execute(q)]

    def segments_for(self, camera_id: str | None = None, *, stored_only: bool = False) -> list[Segment]:
        q = sa.select(segments).order_by(segments.c.camera_id, segments.c.start_us)
        if camera_id is not None:
            q = q.where(segments.c.camera_id == camera_id)
        if stored_only:
            q = q.where(segments.c.state == "stored")
        with self.engine.connect() as c:
            return [_segment_from_row(r) for r in c.execute(q)]

    def latest_segments(self, camera_id: str, limit: int) -> list[Segment]:
        q = (
            sa.select(segments)
            .where(segments.c.camera_id == camera_id, segments.c.state == "stored")
            .order_by(segments.c.start_us.desc())
            .limit(limit)
        )
        with self.engine.connect() as c:
            rows = [_segment_from_row(r) for r in c.execute(q)]
        return rows[::-1]

    def pending_segments(self) -> list[Segment]:
        with self.engine.connect() as c:
            q = sa.select(segments).where(segments.c.state != "stored").order_by(segments.c.start_us)
            return [_segment_from_row(r) for r in c.execute(q)]

    def delete_segments(self, ids: Iterable[int]) -> int:
        ids = list(ids)
        if not ids:
            return 0
        with self._begin() as c:
            return int(c.execute(sa.delete(segments).where(segments.c.id.in_(ids))).rowcount)

    def segment_totals(self) -> dict[str, tuple[int, int]]:
        """Per camera: (stored segments, stored bytes)."""
        q = (
            sa.select(segments.c.camera_id, sa.func.count(), sa.func.coalesce(sa.func.sum(segments.c.bytes), 0))
            .where(segments.c.state == "stored")
            .group_by(segments.c.camera_id)
        )
        with self.engine.connect() as c:
            return {r[0]: (int(r[1]), int(r[2])) for r in c.execute(q)}

    # ---- feed status and events ----------------------------------------------------------
    def put_status(self, st: FeedStatus, conn: Connection | None = None) -> None:
        row = asdict(st)
        if conn is None:
            with self._begin() as c:
                self._put_status(c, row)
        else:
            self._put_status(conn, row)

    @staticmethod
    def _put_status(c: Connection, row: dict[str, Any]) -> None:
        done = c.execute(_STATUS_UPDATE, {**row, "_cid": row["camera_id"]}).rowcount
        if not done:
            c.execute(_STATUS_INSERT, row)

    def put_status_with_event(self, st: FeedStatus, ev: Event | None) -> int | None:
        """Status and its state-change event in one transaction: never one without the other."""
        with self._begin() as c:
            if ev is not None:
                self._order_events(c)
            self._put_status(c, asdict(st))
            if ev is None:
                return None
            row = asdict(ev)
            row.pop("id")
            ev.id = int(c.execute(sa.insert(events).values(**row)).inserted_primary_key[0])
            return ev.id

    def put_statuses_with_events(self, items: Sequence[tuple[FeedStatus, Event | None]]) -> None:
        """Many cameras' statuses, each with its event if any, in one transaction, in the order given.

        A worker process writes all its cameras' pending statuses this way every couple of seconds:
        one commit (one fsync on SQLite) instead of one per camera. All or nothing, so a status is
        never written without its event; events get their ids in list order.
        """
        if not items:
            return
        with self._begin() as c:
            if any(ev is not None for _st, ev in items):
                self._order_events(c)  # before any row lock: a writer waiting here holds none
            for st, ev in items:
                self._put_status(c, _shallow(st))
                if ev is not None:
                    row = _shallow(ev)
                    row.pop("id")
                    ev.id = int(c.execute(_EVENT_INSERT, row).inserted_primary_key[0])

    def get_status(self, camera_id: str) -> FeedStatus | None:
        with self.engine.connect() as c:
            r = c.execute(sa.select(feed_status).where(feed_status.c.camera_id == camera_id)).first()
        return FeedStatus(**dict(r._mapping)) if r else None

    def all_status(self) -> list[FeedStatus]:
        with self.engine.connect() as c:
            return [FeedStatus(**dict(r._mapping)) for r in c.execute(sa.select(feed_status))]

    def add_event(self, ev: Event) -> int:
        row = asdict(ev)
        row.pop("id")
        with self._begin() as c:
            self._order_events(c)
            ev.id = int(c.execute(sa.insert(events).values(**row)).inserted_primary_key[0])
        return ev.id

    def _order_events(self, c: Connection) -> None:
        """Call first in a transaction that inserts events (see `_EVENT_ORDER_LOCK`)."""
        if not self.is_sqlite:
            c.execute(_EVENT_ORDER_LOCK)

    def events_since(
        self,
        cursor: int = 0,
        *,
        camera_id: str | None = None,
        limit: int = 100,
        start_us: int | None = None,
        end_us: int | None = None,
    ) -> list[Event]:
        q = sa.select(events).where(events.c.id > cursor).order_by(events.c.id).limit(limit)
        if camera_id is not None:
            q = q.where(events.c.camera_id == camera_id)
        if start_us is not None:
            q = q.where(events.c.at_us >= start_us)
        if end_us is not None:
            q = q.where(events.c.at_us < end_us)
        with self.engine.connect() as c:
            return [Event(**dict(r._mapping)) for r in c.execute(q)]

    def last_event_id(self) -> int:
        with self.engine.connect() as c:
            return int(c.execute(sa.select(sa.func.coalesce(sa.func.max(events.c.id), 0))).scalar_one())
