"""Operations: the webhook outbox (cursor over the event log, deliveries, per-webhook figures) and
fault tickets (cameras in a fault now, tickets, their cameras and notes).

Revision ID: 0005
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "notify_cursor",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("event_id", sa.BigInteger, nullable=False),
        sa.Column("holder", sa.String(64), nullable=True),
        sa.Column("expires_us", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.create_table(
        "notify_outbox",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("webhook", sa.String(64), nullable=False),
        sa.Column("order_key", sa.String(64), nullable=False),
        sa.Column("delivery_id", sa.String(64), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_us", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("delivered_us", sa.BigInteger, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
    )
    op.create_index("ix_notify_outbox_pending", "notify_outbox", ["webhook", "delivered_us", "id"])
    op.create_table(
        "notify_webhooks",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("delivered", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("failures", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("last_ok_us", sa.BigInteger, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("last_error_us", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "camera_faults",
        sa.Column("camera_id", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("since_us", sa.BigInteger, nullable=False),
        sa.Column("ticket_id", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "tickets",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("fault", sa.String(16), nullable=False),
        sa.Column("element_tag", sa.String(64), nullable=True),
        sa.Column("element_value", sa.String(200), nullable=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("detected_us", sa.BigInteger, nullable=False),
        sa.Column("opened_us", sa.BigInteger, nullable=False),
        sa.Column("acked_us", sa.BigInteger, nullable=True),
        sa.Column("acked_by", sa.String(100), nullable=True),
        sa.Column("closed_us", sa.BigInteger, nullable=True),
        sa.Column("closed_by", sa.String(100), nullable=True),
        sa.Column("close_reason", sa.String(16), nullable=True),
    )
    op.create_index("ix_tickets_status", "tickets", ["status", "detected_us"])
    op.create_table(
        "ticket_cameras",
        sa.Column("ticket_id", sa.BigInteger, primary_key=True),
        sa.Column("camera_id", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("since_us", sa.BigInteger, nullable=False),
        sa.Column("recovered_us", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_ticket_cameras_camera", "ticket_cameras", ["camera_id"])
    op.create_table(
        "ticket_notes",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.BigInteger, nullable=False),
        sa.Column("at_us", sa.BigInteger, nullable=False),
        sa.Column("author", sa.String(100), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
    )
    op.create_index("ix_ticket_notes_ticket", "ticket_notes", ["ticket_id"])


def downgrade() -> None:
    for t in ("ticket_notes", "ticket_cameras", "tickets", "camera_faults", "notify_webhooks", "notify_outbox", "notify_cursor"):
        op.drop_table(t)
