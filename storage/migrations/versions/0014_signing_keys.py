"""Evidence signing keys published in the catalog: every node's public keys (never a private key),
with the node, when each was made and when it was retired, so a bundle made on any node verifies
against one place. Each node fills it at start, importing the keys it had published in its own
directory before (docs/design/evidence.md).

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signing_keys",
        sa.Column("fingerprint", sa.String(64), primary_key=True),
        sa.Column("pem", sa.Text, nullable=False),
        sa.Column("node_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("retired_us", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_signing_keys_node", "signing_keys", ["node_id"])


def downgrade() -> None:
    op.drop_index("ix_signing_keys_node", table_name="signing_keys")
    op.drop_table("signing_keys")
