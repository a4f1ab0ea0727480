"""Nodes: the address of each node's API, so a node serves live video of cameras recorded by
another (it relays that node's live channel).

Revision ID: 0010
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("nodes") as b:
        b.add_column(sa.Column("api_url", sa.String(300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("nodes") as b:
        b.drop_column("api_url")
