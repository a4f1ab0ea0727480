"""Segments by start time alone: the byte-budget retention takes the oldest stored segments across
all cameras, oldest first; without this index each batch sorted every stored row (docs/design/catalog.md).

On PostgreSQL the index on the partitioned table is made on every day partition (and on each new
one by itself); on a large existing table, writes to a partition wait while its index is built.

Revision ID: 0012
Revises: 0011
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_segments_start", "segments", ["start_us"])


def downgrade() -> None:
    op.drop_index("ix_segments_start", table_name="segments")
