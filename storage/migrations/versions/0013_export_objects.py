"""Evidence bundles in the object store: where an export's bundle.zip is kept (`object_key`, under
`_exports/`, outside every camera's dated tree), and why it is on its node's disk only when the
store refused it (`store_error`; the node retries). Rows from before keep both null: their bundle
is on the node that made it, which uploads it when it next runs (docs/design/evidence.md).

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("exports") as b:
        b.add_column(sa.Column("object_key", sa.String(200), nullable=True))
        b.add_column(sa.Column("store_error", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("exports") as b:
        b.drop_column("store_error")
        b.drop_column("object_key")
