"""The rows of the status board: camera metadata and feed statuses, read apart.

Why queries of their own: the board is rebuilt every second at 4,470 cameras; `list_cameras()` +
`all_status()` build full dataclasses (URLs, options, figures JSON) only to drop most fields.
And a refresh must not pay for what did not change: statuses change all the time (1,000 rows/s
at city scale) but camera names and tags almost never. So:
- `camera_meta()` reads id, name, enabled, tags (the only JSON decoding), once per change of
  `Catalog.cameras_version()` (and at the board's periodic full reload);
- `status_rows()` reads the status columns the document shows, from `feed_status` alone (no join,
  no JSON column), optionally only rows written at or after a time: plain tuples, cheap to compare
  with the previous read so an unchanged row costs no re-encoding;
- `feed_row()` joins the two in Python, into the dict the document shows.
`feed_rows()` (both, joined) remains for one-off callers.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from core.states import DISABLED, UNKNOWN, is_stale, stale_reason
from storage.catalog import Catalog, cameras, feed_status

__all__ = ["CameraMeta", "StatusRow", "camera_meta", "feed_row", "feed_rows", "status_rows"]

# (name, enabled, tags)
CameraMeta = tuple[str, bool, dict[str, str]]
# (camera_id, state, since_us, reason, fps, bitrate_kbps, last_packet_us, reconnects, updated_us)
StatusRow = tuple[str, str, int, str, float | None, float | None, int | None, int, int]

_META = sa.select(cameras.c.id, cameras.c.name, cameras.c.enabled, cameras.c.tags)
_STATUS = sa.select(
    feed_status.c.camera_id,
    feed_status.c.state,
    feed_status.c.since_us,
    feed_status.c.reason,
    feed_status.c.fps,
    feed_status.c.bitrate_kbps,
    feed_status.c.last_packet_us,
    feed_status.c.reconnects,
    feed_status.c.updated_us,
)
_STATUS_SINCE = _STATUS.where(feed_status.c.updated_us >= sa.bindparam("since"))


def camera_meta(catalog: Catalog) -> dict[str, CameraMeta]:
    """Every camera's (name, enabled, tags), by id."""
    with catalog.engine.connect() as c:
        rows = c.execute(_META).all()
    return {cid: (name or "", bool(enabled), tags or {}) for cid, name, enabled, tags in rows}


def status_rows(catalog: Catalog, *, updated_since_us: int | None = None) -> list[StatusRow]:
    """Status rows as tuples (see `StatusRow`); with `updated_since_us`, only those written at or
    after it. Rows of cameras that no longer exist may be among them: `feed_row` callers skip them."""
    with catalog.engine.connect() as c:
        if updated_since_us is None:
            rows = c.execute(_STATUS).all()
        else:
            rows = c.execute(_STATUS_SINCE, {"since": updated_since_us}).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def feed_row(cid: str, meta: CameraMeta, st: StatusRow | None, now_us: int | None = None) -> dict[str, Any]:
    """The document's dict for one camera: id, name, state, since_us, reason, fps, bitrate_kbps,
    last_packet_us, reconnects, updated_us, enabled, tags. The state is `disabled` when not enabled,
    `unknown` with no status yet, or (given `now_us`) when the status is stale: then since its last
    report, saying so, and without the figures it no longer vouches for."""
    name, enabled, tags = meta
    if st is None:
        state, since, reason, fps, kbps, last, reconnects, updated = None, None, "", None, None, None, 0, None
    else:
        _, state, since, reason, fps, kbps, last, reconnects, updated = st
        if enabled and now_us is not None and is_stale(updated, now_us):
            state, since, reason, fps, kbps = UNKNOWN, updated, stale_reason(updated), None, None
    return {
        "id": cid,
        "name": name,
        "state": DISABLED if not enabled else (state or UNKNOWN),
        "since_us": since,
        "reason": reason or "",
        "fps": fps,
        "bitrate_kbps": kbps,
        "last_packet_us": last,
        "reconnects": reconnects or 0,
        "updated_us": updated,
        "enabled": enabled,
        "tags": tags,
    }


def feed_rows(
    catalog: Catalog, *, updated_since_us: int | None = None, now_us: int | None = None
) -> list[dict[str, Any]]:
    """One dict per camera (see `feed_row`), in id order. With `updated_since_us`, only cameras
    whose status was written at or after it (a camera without a status row is then left out)."""
    meta = camera_meta(catalog)
    status = {r[0]: r for r in status_rows(catalog, updated_since_us=updated_since_us)}
    ids = sorted(meta) if updated_since_us is None else sorted(k for k in status if k in meta)
    return [feed_row(k, meta[k], status.get(k), now_us) for k in ids]
