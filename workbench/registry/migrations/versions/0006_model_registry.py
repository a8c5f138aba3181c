"""the model registry: a model's purpose, tags and last version number; a version's
description, framework, signature and tags; aliases (``champion`` -> a version); a
converted format's message, file, size and job; a benchmark point's calls, samples,
stability and machine; a version's default serving format

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 21:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("purpose", sa.String(length=32), server_default="", nullable=False)
        )
        batch_op.add_column(sa.Column("tags", sa.JSON(), server_default="{}", nullable=False))
        batch_op.add_column(
            sa.Column("last_version", sa.Integer(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("description", sa.Text(), server_default="", nullable=False))
        batch_op.add_column(
            sa.Column("framework", sa.String(length=32), server_default="", nullable=False)
        )
        batch_op.add_column(sa.Column("signature", sa.JSON(), server_default="{}", nullable=False))
        batch_op.add_column(sa.Column("tags", sa.JSON(), server_default="{}", nullable=False))
        batch_op.add_column(
            sa.Column("default_format", sa.String(length=32), server_default="", nullable=False)
        )
    with op.batch_alter_table("benchmark_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("calls", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("samples", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(
            sa.Column("stable", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
        batch_op.add_column(sa.Column("hardware", sa.JSON(), server_default="{}", nullable=False))
        batch_op.add_column(sa.Column("software", sa.JSON(), server_default="{}", nullable=False))
        batch_op.add_column(
            sa.Column("machine", sa.String(length=64), server_default="", nullable=False)
        )
    with op.batch_alter_table("model_formats", schema=None) as batch_op:
        batch_op.add_column(sa.Column("message", sa.Text(), server_default="", nullable=False))
        batch_op.add_column(
            sa.Column("file", sa.String(length=255), server_default="", nullable=False)
        )
        batch_op.add_column(sa.Column("size", sa.BigInteger(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("job_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "updated_at",
                sa.DateTime(timezone=True),
                server_default=sa.func.current_timestamp(),
                nullable=False,
            )
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_model_formats_job_id_jobs"), "jobs", ["job_id"], ["id"]
        )
    op.create_table(
        "model_aliases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_model_aliases_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name=op.f("fk_model_aliases_version_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_aliases")),
        sa.UniqueConstraint("model_id", "alias", name=op.f("uq_model_aliases_model_id")),
    )
    with op.batch_alter_table("model_aliases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_model_aliases_version_id"), ["version_id"])
    # what is known already: a trained model's purpose is its algorithm's, its versions'
    # framework their environment's
    op.execute(
        "UPDATE models SET purpose = COALESCE((SELECT algorithms.purpose FROM model_versions "
        "JOIN algorithms ON algorithms.id = model_versions.algorithm_id WHERE "
        "model_versions.model_id = models.id ORDER BY model_versions.version LIMIT 1), '')"
    )
    op.execute(
        "UPDATE models SET last_version = COALESCE((SELECT max(model_versions.version) FROM "
        "model_versions WHERE model_versions.model_id = models.id), 0)"
    )
    op.execute(
        "UPDATE model_versions SET framework = COALESCE((SELECT environments.framework FROM "
        "environments WHERE environments.id = model_versions.environment_id), '')"
    )


def downgrade() -> None:
    op.drop_table("model_aliases")
    with op.batch_alter_table("benchmark_runs", schema=None) as batch_op:
        for column in ("machine", "software", "hardware", "stable", "samples", "calls"):
            batch_op.drop_column(column)
    with op.batch_alter_table("model_formats", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_model_formats_job_id_jobs"), type_="foreignkey")
        batch_op.drop_column("updated_at")
        batch_op.drop_column("job_id")
        batch_op.drop_column("size")
        batch_op.drop_column("file")
        batch_op.drop_column("message")
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_column("default_format")
        batch_op.drop_column("tags")
        batch_op.drop_column("signature")
        batch_op.drop_column("framework")
        batch_op.drop_column("description")
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.drop_column("last_version")
        batch_op.drop_column("tags")
        batch_op.drop_column("purpose")
