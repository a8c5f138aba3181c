"""The shared registry's tables (SQLAlchemy 2, typed).

ORM rows stay inside ``workbench``'s services: the REST layer and the client see pydantic
views built from them. The schema changes only through Alembic migrations
(``workbench/registry/migrations``); ``tests/registry/test_registry.py`` checks that the
migrations and these models agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, MappedColumn, mapped_column, relationship

from workbench.enums import (
    AnnotationType,
    DatasetFormat,
    PublishState,
    Purpose,
    Role,
    Split,
    SplitMode,
    SubPurpose,
    Visibility,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp that always comes back timezone-aware in UTC (SQLite drops the zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime stored in the registry; use an aware UTC one")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def enum_column(enum: type[StrEnum]) -> sa.Enum:
    """Store an enum by its value as a plain string (portable across SQLite and PostgreSQL)."""
    return sa.Enum(
        enum,
        native_enum=False,
        create_constraint=False,
        length=32,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


def owned_key(table: str) -> MappedColumn[Any]:
    """A primary-key column that names a row of ``table`` (by its id): this table's row
    belongs to that one and is deleted with it (a membership, a user's quotas)."""
    return mapped_column(sa.ForeignKey(f"{table}.id", ondelete="CASCADE"), primary_key=True)


#: constraint names; a unique constraint's name carries only its first column, so the
#: per-owner ones over (owner_id, name) are named in full (``uq_datasets_owner_id_name``)
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)
    type_annotation_map = {  # noqa: RUF012
        datetime: UTCDateTime(),
        dict[str, Any]: sa.JSON,
        list[Any]: sa.JSON,
    }

    @classmethod
    def __table_cls__(cls, name: str, metadata: sa.MetaData, *args: Any, **kw: Any) -> sa.Table:
        """Every table gives an id only once, on SQLite too (AUTOINCREMENT; PostgreSQL's
        sequences never go back): without it SQLite gives a new row the highest id plus one,
        and a deleted row's id, with all that still names it (its jobs and their logs,
        containers labelled with it, store folders), would pass to the next row's owner."""
        return sa.Table(name, metadata, *args, sqlite_autoincrement=True, **kw)


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Shareable(Timestamped):
    """Every shareable thing has an id, a name, an owner and a visibility; its id and name
    are its table's first columns (``sort_order``), the others its last."""

    id: Mapped[int] = mapped_column(primary_key=True, sort_order=-1)
    name: Mapped[str] = mapped_column(sa.String(128), sort_order=-1)
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    visibility: Mapped[Visibility] = mapped_column(
        enum_column(Visibility), default=Visibility.PRIVATE
    )


# --- people -------------------------------------------------------------------------------


class User(Timestamped, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(128), default="")
    role: Mapped[Role] = mapped_column(enum_column(Role), default=Role.MEMBER)
    active: Mapped[bool] = mapped_column(default=True)

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user")


class ApiToken(Base):
    """An API token; only its SHA-256 is stored, the secret is shown once at creation."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(128))
    prefix: Mapped[str] = mapped_column(sa.String(16))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    #: "full", or a narrower scope such as "workspace:<id>"
    scope: Mapped[str] = mapped_column(sa.String(64), default="full")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(back_populates="tokens")


class Team(Timestamped, Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), unique=True)
    description: Mapped[str] = mapped_column(sa.Text, default="")


class TeamMember(Base):
    __tablename__ = "team_members"

    team_id: Mapped[int] = owned_key("teams")
    user_id: Mapped[int] = owned_key("users")
    role: Mapped[Role] = mapped_column(enum_column(Role), default=Role.MEMBER)


class Invitation(Base):
    """An invitation to join a team or a workspace (one of the two ids): the invitee becomes
    a member only by accepting it; declining or the inviter's cancel deletes it."""

    __tablename__ = "invitations"
    __table_args__ = (
        sa.UniqueConstraint("team_id", "user_id"),
        sa.UniqueConstraint("workspace_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int | None] = mapped_column(sa.ForeignKey("teams.id", ondelete="CASCADE"))
    workspace_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("workspaces.id", ondelete="CASCADE")
    )
    #: the invitee, and who invited them
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    inviter_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Quota(Base):
    """An admin's quotas for one user; a column left null takes the server's default."""

    __tablename__ = "quotas"

    user_id: Mapped[int] = owned_key("users")
    #: replicas running across the user's services
    replicas: Mapped[int | None]
    #: MiB reserved by the user's replicas, running workspaces and training runs
    memory_mb: Mapped[int | None]
    #: bytes the user keeps in the store (datasets, model versions and formats, images)
    upload_bytes: Mapped[int | None] = mapped_column(sa.BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Project(Shareable, Base):
    """A namespace for models and services (food-recommendation, pricing, ...)."""

    __tablename__ = "projects"

    name: Mapped[str] = mapped_column(sa.String(64), unique=True)
    description: Mapped[str] = mapped_column(sa.Text, default="")


# --- datasets -----------------------------------------------------------------------------


class Dataset(Shareable, Base):
    __tablename__ = "datasets"
    __table_args__ = (sa.UniqueConstraint("owner_id", "name", name="uq_datasets_owner_id_name"),)

    description: Mapped[str] = mapped_column(sa.Text, default="")
    project_id: Mapped[int | None] = mapped_column(sa.ForeignKey("projects.id"))
    purpose: Mapped[Purpose] = mapped_column(enum_column(Purpose))
    sub_purpose: Mapped[SubPurpose] = mapped_column(enum_column(SubPurpose))
    annotation_type: Mapped[AnnotationType] = mapped_column(enum_column(AnnotationType))
    format: Mapped[DatasetFormat] = mapped_column(enum_column(DatasetFormat))
    split_mode: Mapped[SplitMode] = mapped_column(enum_column(SplitMode))
    #: default share of the train archive used for training when split_mode is "ratio"
    train_ratio: Mapped[float] = mapped_column(default=0.8)
    state: Mapped[PublishState] = mapped_column(
        enum_column(PublishState), default=PublishState.DRAFT
    )

    splits: Mapped[list[DatasetSplit]] = relationship(
        back_populates="dataset", cascade="all, delete-orphan", order_by="DatasetSplit.split"
    )


class DatasetSplit(Base):
    """One uploaded, unpacked and validated archive of a dataset (train or test)."""

    __tablename__ = "dataset_splits"
    __table_args__ = (sa.UniqueConstraint("dataset_id", "split"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(sa.ForeignKey("datasets.id", ondelete="CASCADE"))
    split: Mapped[Split] = mapped_column(enum_column(Split))
    archive_name: Mapped[str] = mapped_column(sa.String(255))
    archive_bytes: Mapped[int] = mapped_column(sa.BigInteger)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    files: Mapped[int]
    unpacked_bytes: Mapped[int] = mapped_column(sa.BigInteger)
    #: the folder under the artifact store that holds the unpacked files
    storage_key: Mapped[str] = mapped_column(sa.String(255))
    report: Mapped[dict[str, Any]]
    statistics: Mapped[dict[str, Any]]
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)

    dataset: Mapped[Dataset] = relationship(back_populates="splits")


# --- environments and workspaces ----------------------------------------------------------


class Environment(Shareable, Base):
    """A base image for workspaces and builds (its definition lives in ``envs/``)."""

    __tablename__ = "environments"
    __table_args__ = (
        sa.UniqueConstraint("owner_id", "name", name="uq_environments_owner_id_name"),
    )

    description: Mapped[str] = mapped_column(sa.Text, default="")
    framework: Mapped[str] = mapped_column(sa.String(64))
    framework_version: Mapped[str] = mapped_column(sa.String(32), default="")
    device: Mapped[str] = mapped_column(sa.String(8), default="cpu")
    definition: Mapped[str] = mapped_column(sa.String(255), default="")
    image_ref: Mapped[str] = mapped_column(sa.String(255), default="")
    image_id: Mapped[str] = mapped_column(sa.String(128), default="")
    state: Mapped[str] = mapped_column(sa.String(32), default="draft")
    state_reason: Mapped[str] = mapped_column(sa.Text, default="", server_default="")


class Workspace(Shareable, Base):
    __tablename__ = "workspaces"

    project_id: Mapped[int | None] = mapped_column(sa.ForeignKey("projects.id"))
    purpose: Mapped[Purpose] = mapped_column(enum_column(Purpose))
    sub_purpose: Mapped[SubPurpose] = mapped_column(enum_column(SubPurpose))
    environment_id: Mapped[int] = mapped_column(sa.ForeignKey("environments.id"))
    dataset_id: Mapped[int | None] = mapped_column(sa.ForeignKey("datasets.id"))
    code_source: Mapped[dict[str, Any]] = mapped_column(default=dict)
    cpus: Mapped[float] = mapped_column(default=1.0)
    memory_mb: Mapped[int] = mapped_column(default=2048)
    gpus: Mapped[int] = mapped_column(default=0)
    state: Mapped[str] = mapped_column(sa.String(32), default="created")
    state_reason: Mapped[str] = mapped_column(sa.Text, default="")
    container_id: Mapped[str] = mapped_column(sa.String(128), default="")


class WorkspaceMember(Base):
    __tablename__ = "workspace_members"

    workspace_id: Mapped[int] = owned_key("workspaces")
    user_id: Mapped[int] = owned_key("users")


# --- algorithms, training, models ---------------------------------------------------------


class Algorithm(Shareable, Base):
    __tablename__ = "algorithms"
    __table_args__ = (sa.UniqueConstraint("owner_id", "name", name="uq_algorithms_owner_id_name"),)

    description: Mapped[str] = mapped_column(sa.Text, default="")
    purpose: Mapped[Purpose] = mapped_column(enum_column(Purpose))
    sub_purpose: Mapped[SubPurpose] = mapped_column(enum_column(SubPurpose))
    state: Mapped[str] = mapped_column(sa.String(32), default="draft")
    #: the environment of the workspace its images were published from (lineage)
    environment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("environments.id"))


class AlgorithmImage(Base):
    """The training or the inference image of an algorithm, with how to run it."""

    __tablename__ = "algorithm_images"
    __table_args__ = (sa.UniqueConstraint("algorithm_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    algorithm_id: Mapped[int] = mapped_column(sa.ForeignKey("algorithms.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(16))  # "train" | "predict"
    command: Mapped[list[Any]] = mapped_column(default=list)
    args: Mapped[list[Any]] = mapped_column(default=list)
    env: Mapped[dict[str, Any]] = mapped_column(default=dict)
    device: Mapped[str] = mapped_column(sa.String(8), default="cpu")
    api_spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    image_ref: Mapped[str] = mapped_column(sa.String(255), default="")
    digest: Mapped[str] = mapped_column(sa.String(80), default="")
    state: Mapped[str] = mapped_column(sa.String(32), default="missing")
    state_reason: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    #: how the image came: "upload", "pull" or "workspace", and from what (file, reference)
    source: Mapped[str] = mapped_column(sa.String(16), default="", server_default="")
    source_detail: Mapped[str] = mapped_column(sa.String(255), default="", server_default="")
    #: the image's own config: entrypoint, cmd, env, exposed_ports, tags
    config: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    size: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    updated_at: Mapped[datetime | None]


class Job(Base):
    """A long operation (image load/build, conversion, benchmark, training, deploy)."""

    __tablename__ = "jobs"
    __table_args__ = (sa.Index("ix_jobs_target", "target_type", "target_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    target_type: Mapped[str] = mapped_column(sa.String(32), default="")
    target_id: Mapped[int | None]
    state: Mapped[str] = mapped_column(sa.String(16), default="queued", index=True)
    progress: Mapped[float] = mapped_column(default=0.0)
    message: Mapped[str] = mapped_column(sa.Text, default="")
    log_key: Mapped[str] = mapped_column(sa.String(255), default="")
    #: the backend's id of the container running it, to re-attach after a restart
    run_id: Mapped[str] = mapped_column(sa.String(128), default="", server_default="")
    exit_code: Mapped[int | None]
    #: the server (installation) that claimed it; only that one follows or ends it
    instance: Mapped[str] = mapped_column(sa.String(255), default="", server_default="")
    #: what its container asks of the runner's pool (0 for work done in the server)
    cpus: Mapped[float] = mapped_column(default=0.0, server_default="0")
    memory_mb: Mapped[int] = mapped_column(default=0, server_default="0")
    gpus: Mapped[int] = mapped_column(default=0, server_default="0")
    #: the kind's input (what to build, load, run) and what it produced
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    result: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class TrainingTask(Shareable, Base):
    __tablename__ = "training_tasks"

    description: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    purpose: Mapped[Purpose] = mapped_column(enum_column(Purpose))
    sub_purpose: Mapped[SubPurpose] = mapped_column(enum_column(SubPurpose))
    algorithm_id: Mapped[int] = mapped_column(sa.ForeignKey("algorithms.id"))
    dataset_id: Mapped[int] = mapped_column(sa.ForeignKey("datasets.id"))
    train_ratio: Mapped[float | None]
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    cpus: Mapped[float] = mapped_column(default=1.0)
    memory_mb: Mapped[int] = mapped_column(default=2048)
    gpus: Mapped[int] = mapped_column(default=0)
    base_model_version_id: Mapped[int | None] = mapped_column(sa.ForeignKey("model_versions.id"))
    job_id: Mapped[int | None] = mapped_column(sa.ForeignKey("jobs.id"))
    state: Mapped[str] = mapped_column(sa.String(16), default="draft")
    state_reason: Mapped[str] = mapped_column(sa.Text, default="")
    evaluation: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: the model its successful runs add versions to (made by the first one)
    model_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("models.id", use_alter=True, name="fk_training_tasks_model_id")
    )


class TrainingMetric(Base):
    """One JSON line a training run appended to its metrics file (``{"epoch": 1, ...}``)."""

    __tablename__ = "training_metrics"
    __table_args__ = (sa.UniqueConstraint("job_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(
        sa.ForeignKey("training_tasks.id", ondelete="CASCADE"), index=True
    )
    job_id: Mapped[int] = mapped_column(sa.ForeignKey("jobs.id", ondelete="CASCADE"))
    #: the line's position in the run's metrics file (0, 1, ...)
    seq: Mapped[int]
    values: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Model(Shareable, Base):
    __tablename__ = "models"

    project_id: Mapped[int | None] = mapped_column(sa.ForeignKey("projects.id"))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    #: what it does (a Purpose value, "" when unknown): from its algorithm, or given on import
    purpose: Mapped[str] = mapped_column(sa.String(32), default="", server_default="")
    #: free key/value tags (as in MLflow's registry)
    tags: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    #: the highest version number ever given (a deleted version's number is not reused)
    last_version: Mapped[int] = mapped_column(default=0, server_default="0")


class ModelAlias(Base):
    """A name for one version of a model (``champion`` -> version 3); moving it is one
    UPDATE, so readers see the old or the new version, never none."""

    __tablename__ = "model_aliases"
    __table_args__ = (sa.UniqueConstraint("model_id", "alias"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(sa.ForeignKey("models.id", ondelete="CASCADE"))
    alias: Mapped[str] = mapped_column(sa.String(64))
    #: no cascade: a version an alias points at is not deleted until the alias moves
    version_id: Mapped[int] = mapped_column(sa.ForeignKey("model_versions.id"), index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (sa.UniqueConstraint("model_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(sa.ForeignKey("models.id", ondelete="CASCADE"))
    version: Mapped[int]
    task_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("training_tasks.id", use_alter=True, name="fk_model_versions_task_id")
    )
    algorithm_id: Mapped[int | None] = mapped_column(sa.ForeignKey("algorithms.id"))
    dataset_id: Mapped[int | None] = mapped_column(sa.ForeignKey("datasets.id"))
    environment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("environments.id"))
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    evaluation: Mapped[dict[str, Any]] = mapped_column(default=dict)
    storage_key: Mapped[str] = mapped_column(sa.String(255), default="")
    sha256: Mapped[str] = mapped_column(sa.String(64), default="")
    #: the training run that made it, and the base version it was transfer-trained from
    job_id: Mapped[int | None] = mapped_column(sa.ForeignKey("jobs.id"))
    base_version_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("model_versions.id", use_alter=True, name="fk_model_versions_base_version_id")
    )
    files: Mapped[int] = mapped_column(default=0, server_default="0")
    size: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    description: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    #: the native format's framework (pytorch, tensorflow, sklearn, onnx; "" unknown)
    framework: Mapped[str] = mapped_column(sa.String(32), default="", server_default="")
    #: inputs and outputs: names, dtypes, shapes (-1 or None for a dynamic axis)
    signature: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    tags: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    #: the format a service serves by default: the benchmark's best (or "native")
    default_format: Mapped[str] = mapped_column(sa.String(32), default="", server_default="")
    #: an imported version: {"import": kind, "file", "sha256", "warnings": [...]}
    source: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelFormat(Base):
    """A converted artifact of a model version (onnx, torchscript, tensorrt, savedmodel)."""

    __tablename__ = "model_formats"
    __table_args__ = (sa.UniqueConstraint("model_version_id", "format"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_version_id: Mapped[int] = mapped_column(
        sa.ForeignKey("model_versions.id", ondelete="CASCADE")
    )
    format: Mapped[str] = mapped_column(sa.String(32))
    storage_key: Mapped[str] = mapped_column(sa.String(255), default="")
    #: the conversion's numeric check: max abs error against the native model, tolerance
    check: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: converting, verified (offered for serving) or failed
    state: Mapped[str] = mapped_column(sa.String(16), default="pending")
    #: how the conversion went, or why it failed
    message: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    #: the model file in the format's folder (``model.onnx``)
    file: Mapped[str] = mapped_column(sa.String(255), default="", server_default="")
    size: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    #: the conversion job that made it (or makes it now)
    job_id: Mapped[int | None] = mapped_column(sa.ForeignKey("jobs.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class BenchmarkRun(Base):
    __tablename__ = "benchmark_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    model_version_id: Mapped[int] = mapped_column(
        sa.ForeignKey("model_versions.id", ondelete="CASCADE")
    )
    format: Mapped[str] = mapped_column(sa.String(32))
    device: Mapped[str] = mapped_column(sa.String(64))
    batch_size: Mapped[int]
    p50_ms: Mapped[float]
    p95_ms: Mapped[float]
    p99_ms: Mapped[float]
    throughput: Mapped[float]
    memory_mb: Mapped[float | None]
    job_id: Mapped[int | None] = mapped_column(sa.ForeignKey("jobs.id"))
    #: the calls and samples behind the figures (the last three windows)
    calls: Mapped[int] = mapped_column(default=0, server_default="0")
    samples: Mapped[int] = mapped_column(default=0, server_default="0")
    #: three windows in a row agreed within 10% before the point's time cap
    stable: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    #: the machine it was measured on: CPU model, CPUs given, GPU; and software versions
    hardware: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    software: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    #: a digest of ``hardware``: runs on different machines are never mixed up
    machine: Mapped[str] = mapped_column(sa.String(64), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Service(Shareable, Base):
    """An HTTP service from a model version (our model server) or an inference image."""

    __tablename__ = "services"

    project_id: Mapped[int | None] = mapped_column(sa.ForeignKey("projects.id"))
    model_version_id: Mapped[int | None] = mapped_column(sa.ForeignKey("model_versions.id"))
    algorithm_id: Mapped[int | None] = mapped_column(sa.ForeignKey("algorithms.id"))
    image_ref: Mapped[str] = mapped_column(sa.String(255), default="")
    replicas: Mapped[int] = mapped_column(default=1)
    port: Mapped[int | None]
    state: Mapped[str] = mapped_column(sa.String(16), default="stopped")
    health: Mapped[str] = mapped_column(sa.String(16), default="unknown")
    #: the version's format served ("native" or a verified format) and its runtime
    format: Mapped[str] = mapped_column(sa.String(32), default="", server_default="")
    runtime: Mapped[str] = mapped_column(sa.String(32), default="", server_default="")
    #: each replica's limits, and the model server's options (max_batch, max_delay_ms...)
    cpus: Mapped[float] = mapped_column(default=1.0, server_default="1")
    memory_mb: Mapped[int] = mapped_column(default=1024, server_default="1024")
    options: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    #: what it does now, or why its last deploy failed
    message: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    #: its newest deploy job
    job_id: Mapped[int | None] = mapped_column(sa.ForeignKey("jobs.id"))
    #: the SHA-256 (hex) of its endpoint's key, never the key ("": no key, every caller
    #: refused until its owner rotates one); ``public_endpoint``: open to anyone, on purpose
    key_hash: Mapped[str] = mapped_column(sa.String(64), default="", server_default="")
    public_endpoint: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
