"""one job runner for every long operation: the claiming server, the resources asked of
the pool, the kind's input and result

Existing rows keep working: a job of an earlier version has no instance (``""``) and is
taken up by the first server that starts, as before.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 14:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("instance", sa.String(length=255), server_default="", nullable=False)
        )
        batch_op.add_column(sa.Column("cpus", sa.Double(), server_default="0", nullable=False))
        batch_op.add_column(
            sa.Column("memory_mb", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("gpus", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("spec", sa.JSON(), server_default="{}", nullable=False))
        batch_op.add_column(sa.Column("result", sa.JSON(), server_default="{}", nullable=False))
        batch_op.create_index(batch_op.f("ix_jobs_state"), ["state"], unique=False)
        batch_op.create_index("ix_jobs_target", ["target_type", "target_id"], unique=False)
    # a training run asks the pool for its task's resources
    op.execute(
        "UPDATE jobs SET cpus = (SELECT cpus FROM training_tasks WHERE training_tasks.id = "
        "jobs.target_id), memory_mb = (SELECT memory_mb FROM training_tasks WHERE "
        "training_tasks.id = jobs.target_id), gpus = (SELECT gpus FROM training_tasks WHERE "
        "training_tasks.id = jobs.target_id) WHERE kind = 'training' AND EXISTS (SELECT 1 FROM "
        "training_tasks WHERE training_tasks.id = jobs.target_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_target")
        batch_op.drop_index(batch_op.f("ix_jobs_state"))
        batch_op.drop_column("result")
        batch_op.drop_column("spec")
        batch_op.drop_column("gpus")
        batch_op.drop_column("memory_mb")
        batch_op.drop_column("cpus")
        batch_op.drop_column("instance")
