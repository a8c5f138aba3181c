"""algorithm images (source, config, size), training runs (jobs.run_id) and their metrics,
model versions' lineage

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 20:11:06.344241
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "training_metrics",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_training_metrics_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["training_tasks.id"],
            name=op.f("fk_training_metrics_task_id_training_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_metrics")),
        sa.UniqueConstraint("job_id", "seq", name=op.f("uq_training_metrics_job_id")),
    )
    with op.batch_alter_table("training_metrics", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_training_metrics_task_id"), ["task_id"], unique=False)

    with op.batch_alter_table("algorithm_images", schema=None) as batch_op:
        batch_op.add_column(sa.Column("state_reason", sa.Text(), server_default="", nullable=False))
        batch_op.add_column(
            sa.Column("source", sa.String(length=16), server_default="", nullable=False)
        )
        batch_op.add_column(
            sa.Column("source_detail", sa.String(length=255), server_default="", nullable=False)
        )
        batch_op.add_column(sa.Column("config", sa.JSON(), server_default="{}", nullable=False))
        batch_op.add_column(sa.Column("size", sa.BigInteger(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("algorithms", schema=None) as batch_op:
        batch_op.add_column(sa.Column("environment_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_algorithms_environment_id_environments"),
            "environments",
            ["environment_id"],
            ["id"],
        )

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("run_id", sa.String(length=128), server_default="", nullable=False)
        )
        batch_op.add_column(sa.Column("exit_code", sa.Integer(), nullable=True))

    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("job_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("base_version_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("files", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("size", sa.BigInteger(), server_default="0", nullable=False))
        batch_op.create_foreign_key(
            "fk_model_versions_base_version_id",
            "model_versions",
            ["base_version_id"],
            ["id"],
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_model_versions_job_id_jobs"), "jobs", ["job_id"], ["id"]
        )

    with op.batch_alter_table("training_tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("description", sa.Text(), server_default="", nullable=False))
        batch_op.add_column(sa.Column("model_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_training_tasks_model_id", "models", ["model_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("training_tasks", schema=None) as batch_op:
        batch_op.drop_constraint("fk_training_tasks_model_id", type_="foreignkey")
        batch_op.drop_column("model_id")
        batch_op.drop_column("description")

    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_model_versions_job_id_jobs"), type_="foreignkey")
        batch_op.drop_constraint("fk_model_versions_base_version_id", type_="foreignkey")
        batch_op.drop_column("size")
        batch_op.drop_column("files")
        batch_op.drop_column("base_version_id")
        batch_op.drop_column("job_id")

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("exit_code")
        batch_op.drop_column("run_id")

    with op.batch_alter_table("algorithms", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_algorithms_environment_id_environments"), type_="foreignkey"
        )
        batch_op.drop_column("environment_id")

    with op.batch_alter_table("algorithm_images", schema=None) as batch_op:
        batch_op.drop_column("updated_at")
        batch_op.drop_column("size")
        batch_op.drop_column("config")
        batch_op.drop_column("source_detail")
        batch_op.drop_column("source")
        batch_op.drop_column("state_reason")

    with op.batch_alter_table("training_metrics", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_training_metrics_task_id"))

    op.drop_table("training_metrics")
