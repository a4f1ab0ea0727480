"""Catalog at city scale: segments partitioned by day on PostgreSQL, packed fragment index, object
key derived (column dropped), per-camera stored totals, an index on events by time.

The old table is renamed aside, the new one created, the rows copied across by one
INSERT … SELECT in the database (a Python loop re-packing fragments ran at ~10 k rows/s: hours for
a city's 30 days), then the old table dropped: the same path on SQLite and PostgreSQL. Copied rows
keep their fragment index as the JSON text's bytes, which `unpack_fragments` still reads; rows
written after the upgrade are packed, and the JSON ones age out with retention.

Revision ID: 0004
Revises: 0006
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0006"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
_DAY_US = 86_400 * 1_000_000


def _columns() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("id", ID, nullable=False, autoincrement=True),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("start_us", sa.BigInteger, nullable=False),
        sa.Column("end_us", sa.BigInteger, nullable=False),
        sa.Column("media_start_us", sa.BigInteger, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("header_bytes", sa.Integer, nullable=False),
        sa.Column("video_codec", sa.String(16), nullable=False),
        sa.Column("audio_codec", sa.String(16), nullable=True),
        sa.Column("width", sa.Integer, nullable=True),
        sa.Column("height", sa.Integer, nullable=True),
        sa.Column("frames", sa.Integer, nullable=False),
        sa.Column("fragments", sa.LargeBinary, nullable=False),
        sa.Column("recovered", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("drift_us", sa.BigInteger, nullable=True),
        sa.Column("lease_epoch", sa.BigInteger, nullable=True),
        sa.Column("node_id", sa.String(64), nullable=True),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("stored_us", sa.BigInteger, nullable=True),
    ]


def upgrade() -> None:
    bind = op.get_bind()
    pg = bind.dialect.name == "postgresql"
    op.drop_index("ix_segments_camera_start", table_name="segments")
    op.drop_index("ix_segments_state", table_name="segments")
    op.rename_table("segments", "segments_0002")
    if pg:
        op.execute("ALTER INDEX segments_pkey RENAME TO segments_0002_pkey")
        op.execute("ALTER TABLE segments_0002 RENAME CONSTRAINT segments_object_key_key TO segments_0002_object_key_key")
        op.execute("ALTER SEQUENCE segments_id_seq RENAME TO segments_0002_id_seq")
        op.execute("CREATE SEQUENCE segments_id_seq AS bigint")
        cols = _columns()
        cols[0] = sa.Column("id", sa.BigInteger, nullable=False, server_default=sa.text("nextval('segments_id_seq')"))
        op.create_table("segments", *cols, sa.PrimaryKeyConstraint("id", "start_us", name="segments_pkey"),
                        postgresql_partition_by="RANGE (start_us)")
        op.execute("ALTER SEQUENCE segments_id_seq OWNED BY segments.id")
    else:
        cols = _columns()
        cols[0] = sa.Column("id", ID, primary_key=True, autoincrement=True)
        op.create_table("segments", *cols)
    op.create_index("ux_segments_camera_start", "segments", ["camera_id", "start_us"], unique=True)
    op.create_index("ix_segments_unstored", "segments", ["state"], postgresql_where=sa.text("state <> 'stored'"),
                    sqlite_where=sa.text("state <> 'stored'"))
    op.create_table(
        "segment_totals",
        sa.Column("camera_id", sa.String(64), primary_key=True),
        sa.Column("segments", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("bytes", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.create_index("ix_events_at", "events", ["at_us"])

    old = sa.table("segments_0002", sa.column("start_us"))
    if pg:
        from storage.catalog.partitions import ensure_days

        lo, hi = bind.execute(sa.select(sa.func.min(old.c.start_us), sa.func.max(old.c.start_us))).one()
        if lo is not None:
            ensure_days(bind, range(lo // _DAY_US, hi // _DAY_US + 1))
    names = [c.name for c in _columns()]
    as_bytes = "convert_to(fragments::text, 'UTF8')" if pg else "CAST(fragments AS BLOB)"
    cols = ", ".join(names)
    op.execute(f"INSERT INTO segments ({cols}) SELECT {cols.replace('fragments', as_bytes)} FROM segments_0002")
    if pg:
        op.execute("SELECT setval('segments_id_seq', COALESCE((SELECT max(id) FROM segments_0002), 1), "
                   "(SELECT max(id) FROM segments_0002) IS NOT NULL)")
    op.execute(
        "INSERT INTO segment_totals (camera_id, segments, bytes) SELECT camera_id, count(*), sum(bytes) "
        "FROM segments WHERE state = 'stored' GROUP BY camera_id"
    )
    op.drop_table("segments_0002")


def downgrade() -> None:
    from storage.catalog.fragment_index import unpack_fragments
    from storage.keys import segment_key

    bind = op.get_bind()
    op.drop_index("ix_events_at", table_name="events")
    op.drop_table("segment_totals")
    op.drop_index("ux_segments_camera_start", table_name="segments")
    op.drop_index("ix_segments_unstored", table_name="segments")
    op.rename_table("segments", "segments_0004")
    if bind.dialect.name == "postgresql":
        op.execute("ALTER INDEX segments_pkey RENAME TO segments_0004_pkey")
    cols = _columns()
    cols[0] = sa.Column("id", ID, primary_key=True, autoincrement=True)
    cols[14] = sa.Column("fragments", sa.JSON, nullable=False)
    cols.insert(9, sa.Column("object_key", sa.String(255), nullable=False, unique=True))
    op.create_table("segments", *cols)
    op.create_index("ix_segments_camera_start", "segments", ["camera_id", "start_us"])
    op.create_index("ix_segments_state", "segments", ["state"])
    names = [c.name for c in _columns()]
    src = sa.table("segments_0004", *(sa.column(n) for n in names))
    dst = sa.table("segments", *(sa.column(n) for n in names), sa.column("object_key"))
    for r in bind.execute(sa.select(*(src.c[n] for n in names)).order_by(src.c.id)).all():
        m = dict(zip(names, r))
        m["fragments"] = json.dumps([[f.offset, f.size, f.start_off_us, f.duration_us]
                                     for f in unpack_fragments(m["fragments"])])
        m["object_key"] = segment_key(m["camera_id"], m["start_us"])
        bind.execute(sa.insert(dst), m)
    op.drop_table("segments_0004")
    if bind.dialect.name == "postgresql":
        op.execute("SELECT setval('segments_id_seq', GREATEST((SELECT max(id) FROM segments), 1))")
