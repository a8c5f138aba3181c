"""services' endpoint credentials: the SHA-256 of each service's key (a service made before
has none: its endpoint refuses every caller until its owner rotates a key), and whether its
endpoint is public on purpose

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 00:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("services", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key_hash", sa.String(64), server_default="", nullable=False))
        batch_op.add_column(
            sa.Column("public_endpoint", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("services", schema=None) as batch_op:
        batch_op.drop_column("public_endpoint")
        batch_op.drop_column("key_hash")
