"""The catalog's tables (SQLAlchemy Core). Times are integer µs since the epoch in `_us` columns."""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["api_keys", "audit", "camera_faults", "cameras", "events", "exports", "feed_status", "holds", "incidents",
           "leases", "metadata", "nodes", "notify_cursor", "notify_outbox", "notify_webhooks", "segment_totals", "segments",
           "server_secrets", "signing_keys", "ticket_cameras", "ticket_notes", "tickets"]

metadata = sa.MetaData()

cameras = sa.Table(
    "cameras",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("url", sa.Text, nullable=False),  # no credentials: `{password}` marks where one goes
    sa.Column("transport", sa.String(8), nullable=False, server_default="tcp"),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("health_url", sa.Text, nullable=True),
    sa.Column("options", sa.JSON, nullable=False),  # per-camera overrides (health thresholds, …)
    sa.Column("updated_us", sa.BigInteger, nullable=False),
    # credentials apart from the URL; the password sealed with the node's key (storage/sealing.py)
    sa.Column("username", sa.String(200), nullable=True),
    sa.Column("password_sealed", sa.Text, nullable=True),
)

# On PostgreSQL `segments` is partitioned by day on start_us (storage/catalog/partitions.py), so
# retention drops whole days; its primary key there is (id, start_us), as a partitioned table's
# unique keys must hold the partition key — `id` stays unique, drawn from one sequence. The object
# key is derived from (camera_id, start_us) by storage/keys.py, never stored.
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
    sa.Column("video_codec", sa.String(16), nullable=False),
    sa.Column("audio_codec", sa.String(16), nullable=True),
    sa.Column("width", sa.Integer, nullable=True),
    sa.Column("height", sa.Integer, nullable=True),
    sa.Column("frames", sa.Integer, nullable=False),
    sa.Column("fragments", sa.LargeBinary, nullable=False),  # packed: storage/catalog/fragment_index.py
    sa.Column("recovered", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("drift_us", sa.BigInteger, nullable=True),  # wall clock minus media clock at close
    sa.Column("lease_epoch", sa.BigInteger, nullable=True),
    sa.Column("node_id", sa.String(64), nullable=True),  # the node that recorded it
    sa.Column("state", sa.String(8), nullable=False),  # spooled | stored | deleting
    sa.Column("stored_us", sa.BigInteger, nullable=True),
    sa.Index("ux_segments_camera_start", "camera_id", "start_us", unique=True),
    sa.Index("ix_segments_start", "start_us"),  # the byte budget: oldest first across cameras
    # only rows not yet stored (or being deleted): small, whatever the history
    sa.Index("ix_segments_unstored", "state", postgresql_where=sa.text("state <> 'stored'"),
             sqlite_where=sa.text("state <> 'stored'")),
    postgresql_partition_by="RANGE (start_us)",
)

# Stored segments and bytes per camera, kept in the transactions that change them (mark stored,
# mark deleting, delete, drop a day), so /metrics and retention never scan `segments`.
segment_totals = sa.Table(
    "segment_totals",
    metadata,
    sa.Column("camera_id", sa.String(64), primary_key=True),
    sa.Column("segments", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("bytes", sa.BigInteger, nullable=False, server_default="0"),
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
    sa.Index("ix_events_at", "at_us"),  # a report's window and event retention read by time
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
    # the hash chain (storage/audit_log.py): the previous row's digest, and this row's over its
    # content and that; NULL only on rows written before the chain existed
    sa.Column("prev_sha256", sa.String(64), nullable=True),
    sa.Column("row_sha256", sa.String(64), nullable=True),
)


server_secrets = sa.Table(
    "server_secrets",  # named secrets shared by every node (the URL-signing key)
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),  # sealed (storage/sealing.py)
    sa.Column("created_us", sa.BigInteger, nullable=False),
)

nodes = sa.Table(
    "nodes",  # cluster members, by heartbeat
    metadata,
    sa.Column("node_id", sa.String(64), primary_key=True),
    sa.Column("capacity", sa.Integer, nullable=False),
    sa.Column("heartbeat_us", sa.BigInteger, nullable=False),
    sa.Column("api_url", sa.String(300), nullable=True),  # where other nodes reach its API (live relay)
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

# ---- operations: webhook outbox, fault tickets (docs/design/operations.md) ----------------------

notify_cursor = sa.Table(
    "notify_cursor",  # the notifier's place in the event log, and which node runs it (a lease)
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("event_id", sa.BigInteger, nullable=False),
    sa.Column("holder", sa.String(64), nullable=True),
    sa.Column("expires_us", sa.BigInteger, nullable=False, server_default="0"),
)

notify_outbox = sa.Table(
    "notify_outbox",  # one row per (change, webhook): delivered at least once, in id order per camera
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("webhook", sa.String(64), nullable=False),
    sa.Column("order_key", sa.String(64), nullable=False),  # the camera: deliveries keep its order
    sa.Column("delivery_id", sa.String(64), nullable=False),  # the body's `id`, the same on retries
    sa.Column("body", sa.Text, nullable=False),  # the exact bytes signed and sent
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_us", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("delivered_us", sa.BigInteger, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Index("ix_notify_outbox_pending", "webhook", "delivered_us", "id"),
)

notify_webhooks = sa.Table(
    "notify_webhooks",  # delivery figures per webhook, for /metrics and the API of any node
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("delivered", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("failures", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("last_ok_us", sa.BigInteger, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("last_error_us", sa.BigInteger, nullable=True),
)

camera_faults = sa.Table(
    "camera_faults",  # cameras in a fault now: since when, and the ticket that covers it (if any)
    metadata,
    sa.Column("camera_id", sa.String(64), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("since_us", sa.BigInteger, nullable=False),
    sa.Column("ticket_id", sa.BigInteger, nullable=True),
)

tickets = sa.Table(
    "tickets",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("status", sa.String(8), nullable=False),  # open | closed
    sa.Column("fault", sa.String(16), nullable=False),  # the first camera's fault state
    sa.Column("element_tag", sa.String(64), nullable=True),  # correlated: the tag they share (uplink)
    sa.Column("element_value", sa.String(200), nullable=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("detected_us", sa.BigInteger, nullable=False),  # the earliest camera's fault began
    sa.Column("opened_us", sa.BigInteger, nullable=False),
    sa.Column("acked_us", sa.BigInteger, nullable=True),
    sa.Column("acked_by", sa.String(100), nullable=True),
    sa.Column("closed_us", sa.BigInteger, nullable=True),  # repaired: recovered, or resolved by hand
    sa.Column("closed_by", sa.String(100), nullable=True),  # null: closed by the cameras' recovery
    sa.Column("close_reason", sa.String(16), nullable=True),  # recovered | resolved
    sa.Index("ix_tickets_status", "status", "detected_us"),
)

ticket_cameras = sa.Table(
    "ticket_cameras",
    metadata,
    sa.Column("ticket_id", sa.BigInteger, primary_key=True),
    sa.Column("camera_id", sa.String(64), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("since_us", sa.BigInteger, nullable=False),
    sa.Column("recovered_us", sa.BigInteger, nullable=True),
    sa.Column("recovered_reason", sa.String(32), nullable=True),  # null: back online; camera_removed
    sa.Index("ix_ticket_cameras_camera", "camera_id"),
)

ticket_notes = sa.Table(
    "ticket_notes",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("ticket_id", sa.BigInteger, nullable=False),
    sa.Column("at_us", sa.BigInteger, nullable=False),
    sa.Column("author", sa.String(100), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Index("ix_ticket_notes_ticket", "ticket_id"),
)

incidents = sa.Table(
    "incidents",  # an investigator's question: these cameras, this window (evidence/incidents.py)
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("start_us", sa.BigInteger, nullable=False),
    sa.Column("end_us", sa.BigInteger, nullable=False),
    sa.Column("selector", sa.JSON, nullable=False),  # what was asked: cameras, tags, near
    sa.Column("cameras", sa.JSON, nullable=False),  # what it resolved to: [{camera_id, hold_id}, …]
    sa.Column("created_by", sa.String(100), nullable=True),
    sa.Column("key_id", sa.String(32), nullable=True),
    sa.Column("created_us", sa.BigInteger, nullable=False),
)

exports = sa.Table(
    "exports",  # evidence bundles: a background job per row, its zip in the object store
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("incident_id", sa.BigInteger, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # queued | running | done | failed
    sa.Column("progress", sa.Float, nullable=False, server_default="0"),
    sa.Column("bytes", sa.BigInteger, nullable=True),
    sa.Column("sha256", sa.String(64), nullable=True),  # of bundle.zip
    sa.Column("manifest_sha256", sa.String(64), nullable=True),
    sa.Column("path", sa.Text, nullable=True),  # on node_id's disk, while not (yet) in the store
    sa.Column("error", sa.Text, nullable=False, server_default=""),
    sa.Column("node_id", sa.String(64), nullable=True),
    sa.Column("created_by", sa.String(100), nullable=True),
    sa.Column("key_id", sa.String(32), nullable=True),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Column("finished_us", sa.BigInteger, nullable=True),
    sa.Column("object_key", sa.String(200), nullable=True),  # _exports/{id}/bundle.zip once uploaded, verified
    sa.Column("store_error", sa.Text, nullable=True),  # why the bundle is local only (the node retries)
    sa.Index("ix_exports_incident", "incident_id"),
)

signing_keys = sa.Table(
    "signing_keys",  # every node's evidence public keys; the private key is a file on its node, never here
    metadata,
    sa.Column("fingerprint", sa.String(64), primary_key=True),  # SHA-256 of the DER SubjectPublicKeyInfo
    sa.Column("pem", sa.Text, nullable=False),
    sa.Column("node_id", sa.String(64), nullable=False, server_default=""),  # the node that first published it
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Column("retired_us", sa.BigInteger, nullable=True),  # set when its node rotated to a new key
    sa.Index("ix_signing_keys_node", "node_id"),
)
