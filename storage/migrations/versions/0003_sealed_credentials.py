"""Camera credentials apart from the URL (username, sealed password); server secrets sealed
(their value column widened to hold a Fernet token). Existing rows are split and sealed by
`Catalog.seal_credentials()` at the next start: a migration has no access to the key.

Revision ID: 0003
Revises: 0004 (re-chained after main's head at the merge)
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cameras") as b:
        b.add_column(sa.Column("username", sa.String(200), nullable=True))
        b.add_column(sa.Column("password_sealed", sa.Text, nullable=True))
    with op.batch_alter_table("server_secrets") as b:
        b.alter_column("value", type_=sa.Text, existing_type=sa.String(128), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("server_secrets") as b:
        b.alter_column("value", type_=sa.String(128), existing_type=sa.Text, existing_nullable=False)
    with op.batch_alter_table("cameras") as b:
        b.drop_column("password_sealed")
        b.drop_column("username")
