"""Cluster: nodes, camera leases (fencing epochs), retention holds, shared server secrets,
and the recording node of each segment.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "server_secrets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(128), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "nodes",
        sa.Column("node_id", sa.String(64), primary_key=True),
        sa.Column("capacity", sa.Integer, nullable=False),
        sa.Column("heartbeat_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "leases",
        sa.Column("camera_id", sa.String(64), primary_key=True),
        sa.Column("node_id", sa.String(64), nullable=True),
        sa.Column("epoch", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("expires_us", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.create_table(
        "holds",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("start_us", sa.BigInteger, nullable=False),
        sa.Column("end_us", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=True),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("released_us", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_holds_camera", "holds", ["camera_id"])
    with op.batch_alter_table("segments") as b:
        b.add_column(sa.Column("node_id", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("segments") as b:
        b.drop_column("node_id")
    for t in ("holds", "leases", "nodes", "server_secrets"):
        op.drop_table(t)
