"""Evidence: incidents, export jobs, and the audit log's hash chain (existing rows are chained in
id order, so the chain covers the whole log from the start).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("audit") as b:
        b.add_column(sa.Column("prev_sha256", sa.String(64), nullable=True))
        b.add_column(sa.Column("row_sha256", sa.String(64), nullable=True))
    op.create_table(
        "incidents",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("start_us", sa.BigInteger, nullable=False),
        sa.Column("end_us", sa.BigInteger, nullable=False),
        sa.Column("selector", sa.JSON, nullable=False),
        sa.Column("cameras", sa.JSON, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=True),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("created_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "exports",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("incident_id", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("progress", sa.Float, nullable=False, server_default="0"),
        sa.Column("bytes", sa.BigInteger, nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("manifest_sha256", sa.String(64), nullable=True),
        sa.Column("path", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=False, server_default=""),
        sa.Column("node_id", sa.String(64), nullable=True),
        sa.Column("created_by", sa.String(100), nullable=True),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("finished_us", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_exports_incident", "exports", ["incident_id"])
    _chain_existing_rows()


def _chain_existing_rows() -> None:
    from storage.audit_log import GENESIS, row_digest

    conn = op.get_bind()
    audit = sa.table(
        "audit", *(sa.column(n) for n in ("id", "at_us", "key_id", "key_name", "action", "camera_id", "start_us",
                                          "end_us", "sha256", "bytes", "detail", "prev_sha256", "row_sha256"))
    )
    prev = GENESIS
    rows = [dict(r._mapping) for r in conn.execute(sa.select(audit).order_by(audit.c.id))]
    for row in rows:
        detail = row["detail"]
        if isinstance(detail, str):  # a raw table() does not decode JSON
            import json

            row["detail"] = json.loads(detail)
        digest = row_digest(row, prev)
        conn.execute(sa.update(audit).where(audit.c.id == row["id"]).values(prev_sha256=prev, row_sha256=digest))
        prev = digest


def downgrade() -> None:
    op.drop_index("ix_exports_incident", "exports")
    op.drop_table("exports")
    op.drop_table("incidents")
    with op.batch_alter_table("audit") as b:
        b.drop_column("row_sha256")
        b.drop_column("prev_sha256")
