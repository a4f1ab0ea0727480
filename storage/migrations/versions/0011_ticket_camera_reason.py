"""Tickets: why a ticket's camera stopped counting as in a fault — null when it came back online,
`camera_removed` when it was deleted while in a fault (docs/design/operations.md).

Revision ID: 0011
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ticket_cameras") as b:
        b.add_column(sa.Column("recovered_reason", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ticket_cameras") as b:
        b.drop_column("recovered_reason")
