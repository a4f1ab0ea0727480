"""The catalog: SQLAlchemy Core over SQLite (WAL) by default, PostgreSQL for a cluster.

Times are integer microseconds since the epoch (UTC) in columns ending `_us`: exact, cheap to
index, the same on both backends. Ranges are half-open, [start_us, end_us).
"""

from __future__ import annotations

from storage.catalog.camera_rows import CameraRows
from storage.catalog.models import Camera, Event, FeedStatus, Fragment, Segment
from storage.catalog.segment_rows import SegmentRows
from storage.catalog.signing_key_rows import PublishedKey, SigningKeyRows
from storage.catalog.status_rows import StatusRows
from storage.catalog.tables import (
    api_keys,
    audit,
    cameras,
    events,
    exports,
    feed_status,
    holds,
    incidents,
    leases,
    metadata,
    nodes,
    segments,
    server_secrets,
    signing_keys,
)

__all__ = ["Camera", "Catalog", "Event", "FeedStatus", "Fragment", "PublishedKey", "Segment", "api_keys", "audit", "cameras",
           "events", "exports", "feed_status", "holds", "incidents", "leases", "metadata", "nodes", "segments", "server_secrets",
           "signing_keys"]


class Catalog(CameraRows, SegmentRows, StatusRows, SigningKeyRows):
    """Thread-safe handle on the catalog database; one per process. One row family per module."""
