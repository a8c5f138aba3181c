"""services from model versions: the format served and its runtime, each replica's CPU and
memory, the model server's options, what the service does or why it failed, its newest
deploy job

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 23:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("services", schema=None) as batch_op:
        batch_op.add_column(sa.Column("format", sa.String(32), server_default="", nullable=False))
        batch_op.add_column(sa.Column("runtime", sa.String(32), server_default="", nullable=False))
        batch_op.add_column(sa.Column("cpus", sa.Double(), server_default="1", nullable=False))
        batch_op.add_column(
            sa.Column("memory_mb", sa.Integer(), server_default="1024", nullable=False)
        )
        batch_op.add_column(sa.Column("options", sa.JSON(), server_default="{}", nullable=False))
        batch_op.add_column(sa.Column("message", sa.Text(), server_default="", nullable=False))
        batch_op.add_column(sa.Column("job_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_services_job_id", "jobs", ["job_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("services", schema=None) as batch_op:
        batch_op.drop_constraint("fk_services_job_id", type_="foreignkey")
        for column in ("job_id", "message", "options", "memory_mb", "cpus", "runtime", "format"):
            batch_op.drop_column(column)
