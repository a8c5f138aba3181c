"""Request and response types of the training service (also the REST API's bodies)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from workbench.enums import TaskState
from workbench.models.evaluation import Evaluation
from workbench.schemas.common import (
    PurposedCreate,
    PurposedFilter,
    PurposedInfo,
    PurposedUpdate,
)

#: a parameter's value as a task gives it (the algorithm's declared type decides)
ParamValue = int | float | str | bool | None


class TaskCreate(PurposedCreate):
    """A new training task (manual 2.3.1): purpose, basic information, an algorithm, a
    dataset (with the share of it to train on when it has no independent test set), the
    algorithm's parameters, resources; saved as a draft, or started with ``start``."""

    algorithm_id: int
    dataset_id: int
    #: the share of the train archive trained on (the rest is the test split); only for a
    #: dataset split by ratio, whose own train_ratio is the default
    train_ratio: float | None = Field(None, gt=0, lt=1)
    #: values of the algorithm's declared parameters; the rest keep their defaults
    parameters: dict[str, ParamValue] = Field(default_factory=dict)
    cpus: float = Field(1.0, gt=0, le=256)
    memory_mb: int = Field(2048, ge=64, le=1024 * 1024)
    gpus: int = Field(0, ge=0, le=16)
    #: transfer training: start from this model version's files ($BASE_MODEL_DIR)
    base_model_version_id: int | None = None
    #: queue it at once instead of saving a draft
    start: bool = False


class TaskUpdate(PurposedUpdate):
    """Fields to change (a draft or a finished task); the ones left out stay as they are.
    ``parameters`` replaces the whole set; ``base_model_version_id`` and ``train_ratio``
    may be set to null (no base model; the dataset's ratio)."""

    algorithm_id: int | None = None
    dataset_id: int | None = None
    train_ratio: float | None = Field(None, gt=0, lt=1)
    parameters: dict[str, ParamValue] | None = None
    cpus: float | None = Field(None, gt=0, le=256)
    memory_mb: int | None = Field(None, ge=64, le=1024 * 1024)
    gpus: int | None = Field(None, ge=0, le=16)
    base_model_version_id: int | None = None


class TaskFilter(PurposedFilter):
    state: TaskState | None = None
    algorithm_id: int | None = None
    dataset_id: int | None = None


class TaskInfo(PurposedInfo):
    algorithm_id: int
    algorithm_name: str
    dataset_id: int
    dataset_name: str
    #: the share trained on (None: the dataset has an independent test set)
    train_ratio: float | None
    parameters: dict[str, Any]
    cpus: float
    memory_mb: int
    gpus: int
    base_model_version_id: int | None
    state: TaskState
    #: why the last run failed, or what the run is waiting for
    state_reason: str
    #: the current run's evaluation (None until a run succeeds)
    evaluation: Evaluation | None
    #: the model its successful runs add versions to, and the latest of them
    model_id: int | None
    model_version_id: int | None
    #: the current run (a job)
    job_id: int | None
    started_at: datetime | None
    finished_at: datetime | None
    created_at: datetime
    updated_at: datetime


class TrainingRunInfo(BaseModel):
    """One run of a task (a job of kind "training")."""

    id: int
    task_id: int
    #: queued, starting, running, stopping, succeeded, failed or stopped
    state: str
    message: str
    exit_code: int | None
    model_version_id: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class MetricPoint(BaseModel):
    """One line of the run's metrics file (``seq``: its position, from 0)."""

    seq: int
    values: dict[str, Any]
    created_at: datetime


class MetricsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: only the lines after this one
    after: int = Field(-1, ge=-1)
    job_id: int | None = None
